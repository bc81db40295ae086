"""Alembic environment for the tenant tree.

Run through `novabilling.tenancy.migrations`, which hands us an open connection in
`config.attributes["connection"]` (async engines run us via `run_sync`)."""

from __future__ import annotations

from alembic import context

from novabilling.kit.db import TenantBase
import novabilling.tenant_schema  # noqa: F401

target_metadata = TenantBase.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through novabilling.tenancy.migrations")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
