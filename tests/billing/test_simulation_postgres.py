"""The 13-month billing simulation (tests/billing/simulation.py) on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.billing.simulation import thirteen_months_of_billing
from tests.conftest import Backend

pytestmark = pytest.mark.long(seconds=90)


@pytest.mark.parametrize(
    "backend", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_thirteen_months_of_billing(backend: Backend) -> None:
    await thirteen_months_of_billing(backend)
