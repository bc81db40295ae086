"""Run the two Alembic trees (``migrations/central``, ``migrations/tenant``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "migrations"


def alembic_config(tree: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR / tree))
    return cfg


def _upgrade(connection: Connection, tree: str, revision: str) -> None:
    cfg = alembic_config(tree)
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def head_revision(tree: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(tree)).get_current_head()


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


async def upgrade(engine: AsyncEngine, tree: str, revision: str = "head") -> None:
    """Bring the database behind ``engine`` to ``revision`` of ``tree``."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, tree, revision)
