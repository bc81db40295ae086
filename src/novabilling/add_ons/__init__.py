"""Add-ons: one-time charges billed on the customer's next subscription invoice (contract
add-ons.md)."""
