"""Test clocks (Stripe-like): frozen time for the customers attached to a clock."""
