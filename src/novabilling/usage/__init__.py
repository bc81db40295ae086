"""Usage-based billing: billable metrics, usage events, charges (pricing models) and plan
overrides - the usage inputs of subscription invoices (contract billable-metrics.md,
events.md, charges.md, plan-overrides.md). Sits between ``subscriptions`` and
``invoices``: it reads plans, customers and subscriptions; invoices and the billing engine
read it."""
