"""Every table of a tenant database, imported so Alembic sees one metadata.

Each domain registers its models here (import only; no logic)."""

from __future__ import annotations

import novabilling.add_ons.models  # noqa: F401
import novabilling.coupons.models  # noqa: F401
import novabilling.customers.models  # noqa: F401
import novabilling.invoices.models  # noqa: F401
import novabilling.invoices.reminders  # noqa: F401
import novabilling.kit.idempotency  # noqa: F401
import novabilling.kit.outbox  # noqa: F401
import novabilling.kit.rowcounts  # noqa: F401
import novabilling.payments.models  # noqa: F401
import novabilling.plans.models  # noqa: F401
import novabilling.subscriptions.models  # noqa: F401
import novabilling.taxes.models  # noqa: F401
import novabilling.testclocks.models  # noqa: F401
import novabilling.usage.models  # noqa: F401
import novabilling.wallets.models  # noqa: F401
import novabilling.webhooks.models  # noqa: F401
from novabilling.kit.db import TenantBase

__all__ = ["TenantBase"]
