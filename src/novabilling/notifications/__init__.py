"""Email: views (what a message shows), messages (templates -> EmailMessage), mailer."""
