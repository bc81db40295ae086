"""Invoices: numbering, lifecycle and the PDF."""
