"""Layering rules, checked by walking every module's imports with ``ast`` (docs/conventions.md).

Each rule names the modules it covers and the ``novabilling`` imports they may use; a
wrong-way edge fails with the offending module and import. Imports inside functions count
too (a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "novabilling"

# composition roots: they wire everything together and may import anything
ROOTS = {
    "novabilling.app",
    "novabilling.asgi",
    "novabilling.cli",
    "novabilling.routes",
    "novabilling.runtime",
    "novabilling.worker",
    "novabilling.tenancy.tenant_models",
}
FOUNDATION = (
    "novabilling.kit",
    "novabilling.errors",
    "novabilling.config",
    "novabilling.tenancy",
    "novabilling.web",
    "novabilling.auth",
    "novabilling.notifications",
)
DOMAINS = (
    "novabilling.customers",
    "novabilling.plans",
    "novabilling.subscriptions",
    "novabilling.invoices",
    "novabilling.payments",
    "novabilling.billing",
    "novabilling.webhooks",
    "novabilling.analytics",
    "novabilling.wallets",
    "novabilling.events",
    "novabilling.metrics",
)
HTTP = ("fastapi", "starlette")


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def load_modules(root: Path = PACKAGE) -> dict[str, Module]:
    modules = {}
    for path in sorted(root.rglob("*.py")):
        name = _module_name(path, root.parent)
        modules[name] = Module(name, path, ast.parse(path.read_text(), filename=str(path)))
    return modules


def imports_of(module: Module, known: set[str]) -> set[str]:
    """Absolute names imported by ``module``; ``from pkg import sub`` resolves to
    ``pkg.sub`` when that is a module."""
    out: set[str] = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.name.split(".")
                if not module.is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.add(target)
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                if candidate in known:
                    out.add(candidate)
    return out


@dataclass(frozen=True)
class Rule:
    name: str
    applies: Callable[[str], bool]
    allowed: Callable[[str], bool]  # for novabilling.* imports (others: see forbid_external)
    forbid_external: tuple[str, ...] = ()


def _internal(name: str) -> bool:
    return name == "novabilling" or name.startswith("novabilling.")


def violations(modules: dict[str, Module], rules: Iterable[Rule]) -> list[str]:
    known = set(modules)
    found = []
    for rule in rules:
        for name, module in modules.items():
            if not rule.applies(name):
                continue
            for imported in sorted(imports_of(module, known)):
                if _internal(imported):
                    if not rule.allowed(imported):
                        found.append(f"[{rule.name}] {name} imports {imported}")
                elif _under(imported, rule.forbid_external):
                    found.append(f"[{rule.name}] {name} imports {imported}")
    return found


def _is_router(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last == "router" or last.endswith("_router")


def _is_service_or_model(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last in ("service", "models", "schemas", "usage") or last.endswith(
        ("_service", "_models")
    )


RULES = [
    Rule(
        "kit is the bottom layer",
        lambda n: _under(n, ["novabilling.kit"]),
        lambda i: _under(i, ["novabilling.kit", "novabilling.errors"]),
    ),
    Rule(
        "errors and config import nothing of ours",
        lambda n: n in ("novabilling.errors", "novabilling.config"),
        lambda i: False,
        forbid_external=HTTP + ("sqlalchemy",),
    ),
    Rule(
        "provider adapters know only kit and providers.base",
        lambda n: _under(n, ["novabilling.payments.providers"]),
        lambda i: (
            _under(
                i,
                [
                    "novabilling.kit",
                    "novabilling.errors",
                    "novabilling.payments.providers.base",
                    "novabilling.payments.providers",  # the registry names adapters lazily
                ],
            )
            and i != "novabilling.payments"
        ),
        forbid_external=HTTP + ("sqlalchemy",),
    ),
    Rule(
        "simulators stand alone (they fake external services)",
        lambda n: _under(n, ["novabilling.simulators"]),
        lambda i: _under(i, ["novabilling.simulators"]),
    ),
    Rule(
        "the foundation never reaches into a domain",
        lambda n: _under(n, FOUNDATION) and n not in ROOTS,
        lambda i: not _under(i, DOMAINS),
    ),
    Rule(
        "only composition roots import the app",
        lambda n: n not in ROOTS,
        lambda i: i not in ("novabilling.app", "novabilling.asgi", "novabilling.cli"),
    ),
    Rule(
        "routers run no queries (no sqlalchemy)",
        _is_router,
        lambda i: True,
        forbid_external=("sqlalchemy",),
    ),
    Rule(
        "services, models and schemas know nothing of HTTP",
        lambda n: _is_service_or_model(n) and not _under(n, ["novabilling.web"]),
        lambda i: not _is_router(i) and not _under(i, ["novabilling.web", "novabilling.app"]),
        forbid_external=HTTP,
    ),
]


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return load_modules()


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_layering(modules: dict[str, Module], rule: Rule) -> None:
    assert violations(modules, [rule]) == []


def test_routers_do_not_query(modules: dict[str, Module]) -> None:
    bad = []
    for name, module in modules.items():
        if not _is_router(name):
            continue
        for node in ast.walk(module.tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("execute", "scalar", "scalars", "commit", "flush")
            ):
                bad.append(f"{name}:{node.lineno} calls .{node.func.attr}()")
    assert bad == []


def test_time_comes_from_the_clock(modules: dict[str, Module]) -> None:
    """``datetime.now()`` / ``utcnow()`` / ``date.today()`` only in kit/clock (STYLE §3.12);
    simulators fake other companies' servers and keep their own time."""
    bad = []
    for name, module in modules.items():
        if name == "novabilling.kit.clock" or _under(name, ["novabilling.simulators"]):
            continue
        for node in ast.walk(module.tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("now", "utcnow", "today")
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("datetime", "date")
            ):
                bad.append(f"{name}:{node.lineno}")
    assert bad == []


def test_the_walker_sees_every_module(modules: dict[str, Module]) -> None:
    for name in (
        "novabilling.kit.clock",
        "novabilling.tenancy.deps",
        "novabilling.auth.router",
        "novabilling.payments.providers.base",
    ):
        assert name in modules


# --- the checker itself catches wrong-way edges ------------------------------------------------


def _fake(tmp_path: Path, files: dict[str, str]) -> dict[str, Module]:
    root = tmp_path / "src"
    for rel, body in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    return load_modules(root / "novabilling")


@pytest.mark.parametrize(
    ("rel", "body", "rule"),
    [
        ("novabilling/kit/bad.py", "from novabilling.customers import service\n", "kit"),
        ("novabilling/kit/bad.py", "from ..tenancy import deps\n", "kit"),
        ("novabilling/kit/bad.py", "def f():\n    import novabilling.payments.models\n", "kit"),
        (
            "novabilling/payments/providers/bad.py",
            "from novabilling.payments import models\n",
            "provider",
        ),
        ("novabilling/payments/providers/bad.py", "import sqlalchemy\n", "provider"),
        (
            "novabilling/tenancy/bad.py",
            "from novabilling.invoices.service import x\n",
            "foundation",
        ),
        ("novabilling/customers/router.py", "from sqlalchemy import select\n", "routers"),
        ("novabilling/customers/service.py", "from fastapi import Request\n", "HTTP"),
        ("novabilling/plans/service.py", "from novabilling.app import create_app\n", "app"),
    ],
)
def test_checker_catches_wrong_way_edges(tmp_path: Path, rel: str, body: str, rule: str) -> None:
    files = {
        "novabilling/__init__.py": "",
        "novabilling/kit/__init__.py": "",
        "novabilling/tenancy/__init__.py": "",
        "novabilling/tenancy/deps.py": "",
        "novabilling/customers/__init__.py": "",
        "novabilling/customers/service.py": "",
        "novabilling/payments/__init__.py": "",
        "novabilling/payments/models.py": "",
        "novabilling/payments/providers/__init__.py": "",
        "novabilling/payments/providers/base.py": "",
        "novabilling/invoices/__init__.py": "",
        "novabilling/invoices/service.py": "",
        "novabilling/plans/__init__.py": "",
        "novabilling/app.py": "",
    }
    files[rel] = body
    found = violations(_fake(tmp_path, files), RULES)
    assert found, f"{rel}: {body!r} was not caught"
    assert any(rule in line for line in found), found
