"""Coupons: discounts applied to customers, consumed by subscription invoices (contract
coupons.md)."""
