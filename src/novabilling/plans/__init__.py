"""Plans and their per-currency prices (contract plans.md)."""
