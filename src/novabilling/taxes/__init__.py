"""Taxes (contract taxes.md): percentage rates, default taxes, assignments to customers,
plans and charges, and the tax sets a subscription invoice is taxed with."""
