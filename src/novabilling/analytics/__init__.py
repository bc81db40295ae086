"""Analytics: revenue, subscription, customer, payment, MRR, net revenue, cohort and LTV
reports computed in SQL in the tenant database (contract analytics.md)."""
