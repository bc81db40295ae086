"""Run the two Alembic trees (``migrations/central``, ``migrations/tenant``).

Alembic (~11 MiB resident) is imported on first use, not by every API process at start:
an API process migrates nothing unless it provisions a tenant without a template."""

from __future__ import annotations

import ast
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
    """The tree's head (read once per process: the scripts do not change while it runs).

    Every tenant provisioning needs it (the template's name), so it is read from the
    scripts' ``revision`` / ``down_revision`` assignments without importing Alembic; a
    tree that is not one straight line of heads (several heads, or an assignment that is
    not a literal) is left to Alembic, which reports it."""
    heads = _heads(MIGRATIONS_DIR / tree / "versions")
    if heads is not None and len(heads) <= 1:
        return heads[0] if heads else None
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(tree)).get_current_head()


def _heads(versions: Path) -> list[str] | None:
    """The revisions no other script names as its ``down_revision``; None if a script
    does not declare both as literals."""
    revisions: set[str] = set()
    downs: set[str] = set()
    for script in sorted(versions.glob("*.py")):
        found: dict[str, object] = {}
        for node in ast.parse(script.read_text(encoding="utf-8")).body:
            target = node.targets[0] if isinstance(node, ast.Assign) else None
            if isinstance(node, ast.AnnAssign):
                target = node.target
            value = getattr(node, "value", None)
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                try:
                    found[target.id] = ast.literal_eval(value) if value else None
                except ValueError:
                    return None
        revision, down = found.get("revision"), found.get("down_revision")
        if "revision" not in found or "down_revision" not in found or not isinstance(revision, str):
            return None
        revisions.add(revision)
        if isinstance(down, str):
            downs.add(down)
        elif isinstance(down, tuple | list):
            downs.update(str(d) for d in down)
        elif down is not None:
            return None
    return sorted(revisions - downs)


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
