"""Wallets: prepaid credits of a customer in one currency (contract wallets.md)."""
