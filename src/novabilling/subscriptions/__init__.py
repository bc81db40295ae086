"""Subscriptions: lifecycle of a customer's plan (contract subscriptions.md)."""
