"""Run the two Alembic trees (``migrations/central``, ``migrations/tenant``).

Alembic (~11 MiB resident) is imported on first use, not by every API process at start:
an API process migrates nothing unless it provisions a tenant without a template."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "migrations"


def alembic_config(tree: str) -> Config:
    from alembic.config import Config  # heavy, optional at run time (see module doc)

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR / tree))
    return cfg


def _upgrade(connection: Connection, tree: str, revision: str) -> None:
    from alembic import command

    cfg = alembic_config(tree)
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


@cache
def head_revision(tree: str) -> str | None:
    """The tree's head (read once per process: the scripts do not change while it runs)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(tree)).get_current_head()


def _current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


async def upgrade(engine: AsyncEngine, tree: str, revision: str = "head") -> None:
    """Bring the database behind ``engine`` to ``revision`` of ``tree``."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, tree, revision)
