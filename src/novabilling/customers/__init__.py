"""Customers of a tenant: CRUD, strict list with search, sub-lists (contract customers.md)."""
