"""Tenant table ``test_clocks``. A customer is attached by ``customers.test_clock_id``
(no foreign key: deleting a clock deletes its customers first, ``billing.test_clocks``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from novabilling.kit.db import TenantBase, id_column

READY = "ready"
ADVANCING = "advancing"


class TestClockRow(TenantBase):
    __tablename__ = "test_clocks"
    __table_args__ = (Index("ix_test_clocks_created_at_id", "created_at", "id"),)
    __test__ = False  # not a pytest class

    id: Mapped[str] = id_column()
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    # The clock's "now" for everything attached to it; moves forward only (advance).
    frozen_time: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=READY)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
