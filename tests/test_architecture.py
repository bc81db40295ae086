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
    "novabilling.bootstrap",
    "novabilling.routes",
    "novabilling.worker",
    "novabilling.tenant_schema",
    "novabilling.worker_main",
    "novabilling.launcher",
}
ROOT_PACKAGES = ("novabilling.cli",)
# below the domains: they never reach into one
FOUNDATION = (
    "novabilling.kit",
    "novabilling.errors",
    "novabilling.config",
    "novabilling.tenancy",
    "novabilling.notifications",
    "novabilling.runtime",
    "novabilling.web",
    "novabilling.webhooks",
    "novabilling.auth",
    "novabilling.tenants",
)
DOMAINS = (
    "novabilling.customers",
    "novabilling.plans",
    "novabilling.subscriptions",
    "novabilling.usage",
    "novabilling.invoices",
    "novabilling.payments",
    "novabilling.wallets",
    "novabilling.coupons",
    "novabilling.add_ons",
    "novabilling.analytics",
    "novabilling.billing",
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
    """HTTP routers live in ``novabilling.api`` (one module per resource)."""
    return _under(name, ["novabilling.api"]) and name != "novabilling.api"


def _is_service_or_model(name: str) -> bool:
    """Everything below the HTTP layer: domain packages (services, models, schemas,
    repositories, jobs) know nothing of HTTP."""
    return _under(name, DOMAINS) or _under(name, ["novabilling.tenancy"])


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
        lambda n: _under(n, FOUNDATION),
        lambda i: not _under(i, DOMAINS),
    ),
    Rule(
        "only composition roots import the app",
        lambda n: n not in ROOTS and not _under(n, ROOT_PACKAGES),
        lambda i: i not in ROOTS and not _under(i, ROOT_PACKAGES),
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


# --- the package graph: one way, no cycles ---------------------------------------------------
#
# Top-level packages (and top-level modules) in layers, bottom first. A package may import
# its own layer's *lower* neighbours and anything below; never upwards. ``billing`` is the
# only orchestrator above the domains; ``api`` (HTTP) sits above it; the composition roots
# on top wire everything. Function-local and TYPE_CHECKING imports count.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "config"),
    ("kit",),
    ("notifications",),
    ("tenancy",),
    ("runtime",),
    ("webhooks",),
    ("web",),
    ("auth",),
    ("tenants",),
    # test clocks: customers are attached to one; advancing one is billing's
    ("testclocks",),
    ("customers",),
    ("plans",),
    ("subscriptions",),
    # usage: metrics, events, charges, plan overrides - inputs to invoices (DESIGN), it
    # reads plans, customers and subscriptions
    ("usage",),
    # taxes: rates and their assignments to customers, plans and charges (inputs to
    # invoices, like usage)
    ("taxes",),
    ("invoices",),
    ("payments",),
    # credits: wallets (prepaid credits; a purchase is invoiced in a currency the
    # tenant's providers can charge), coupons and add-ons (catalogue + what is applied to
    # customers), each loading its part of the builder's Inputs (invoices.builder)
    ("wallets", "coupons", "add_ons"),
    # reports: aggregate reads over customers .. payments (credit notes included); billing
    # (the portal, the demo seed) and the routers read them, no domain below needs them
    ("analytics",),
    ("billing",),
    ("api",),
    (
        "routes",
        "worker",
        "bootstrap",
        "tenant_schema",
        "app",
        "cli",
        "asgi",
        "worker_main",
        "launcher",
    ),
)
STANDALONE = ("simulators",)  # fakes of other companies' servers: import only themselves
_RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def top_level(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "novabilling" else None


def package_edges(modules: dict[str, Module]) -> dict[str, set[str]]:
    """Top-level package -> top-level packages it imports (anywhere in its modules)."""
    known = set(modules)
    edges: dict[str, set[str]] = {}
    for name, module in modules.items():
        source = top_level(name)
        if source is None:
            continue
        for imported in imports_of(module, known):
            target = top_level(imported)
            if target is not None and target != source:
                edges.setdefault(source, set()).add(target)
    return edges


def layer_violations(edges: dict[str, set[str]]) -> list[str]:
    found = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            if source in STANDALONE or target in STANDALONE:
                if not (source == "cli" and target in STANDALONE):
                    found.append(f"{source} -> {target}: simulators stand alone")
                continue
            if source not in _RANK or target not in _RANK:
                found.append(f"{source} -> {target}: place the new package in LAYERS")
                continue
            if _RANK[target] > _RANK[source] or (
                _RANK[target] == _RANK[source] and source not in LAYERS[-1]
            ):
                found.append(f"{source} -> {target}: wrong way (up or sideways)")
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                group.append(item)
                if item == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(set(edges) | {t for ts in edges.values() for t in ts}):
        if node not in index:
            visit(node)
    return groups


def function_local_imports(modules: dict[str, Module]) -> list[str]:
    """``novabilling`` imports inside function bodies (a lazy import is a dependency the
    module hides; the package graph is one-way, so none is needed)."""
    found = []
    for name, module in modules.items():
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if (
                    isinstance(inner, ast.ImportFrom)
                    and (inner.level or (inner.module or "").startswith("novabilling"))
                    or isinstance(inner, ast.Import)
                    and any(a.name.startswith("novabilling") for a in inner.names)
                ):
                    found.append(f"{name}:{inner.lineno}")
    return sorted(set(found))


def test_package_graph_is_layered(modules: dict[str, Module]) -> None:
    assert layer_violations(package_edges(modules)) == []


def test_no_package_cycles(modules: dict[str, Module]) -> None:
    assert cycles(package_edges(modules)) == []


def test_no_function_local_imports(modules: dict[str, Module]) -> None:
    assert function_local_imports(modules) == []


def test_every_package_has_a_layer(modules: dict[str, Module]) -> None:
    names = {top_level(n) for n in modules} - {None}
    assert names - set(_RANK) - set(STANDALONE) == set()


@pytest.mark.parametrize(
    ("rel", "body"),
    [
        ("novabilling/customers/bad.py", "from novabilling.invoices import service\n"),
        ("novabilling/payments/bad.py", "def f():\n    from novabilling.billing import x\n"),
        (
            "novabilling/kit/bad.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from novabilling.runtime import Runtime\n",
        ),
        ("novabilling/invoices/bad.py", "from ..payments import models\n"),
    ],
)
def test_graph_checks_catch_a_planted_wrong_way_edge(tmp_path: Path, rel: str, body: str) -> None:
    files = {
        "novabilling/__init__.py": "",
        "novabilling/kit/__init__.py": "",
        "novabilling/runtime.py": "from novabilling.kit import x\n",
        "novabilling/customers/__init__.py": "",
        "novabilling/invoices/__init__.py": "",
        "novabilling/invoices/service.py": "from novabilling.customers import models\n",
        "novabilling/payments/__init__.py": "",
        "novabilling/payments/models.py": "from novabilling.invoices import service\n",
        "novabilling/billing/__init__.py": "",
        "novabilling/billing/x.py": "from novabilling.payments import models\n",
    }
    clean = package_edges(_fake(tmp_path / "clean", files))
    assert layer_violations(clean) == [] and cycles(clean) == []
    files[rel] = body
    planted = _fake(tmp_path / "planted", files)
    edges = package_edges(planted)
    assert layer_violations(edges), f"{rel}: {body!r} was not caught"
    if "def f" in body:
        assert function_local_imports(planted)


def test_cycle_finder_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return load_modules()


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_layering(modules: dict[str, Module], rule: Rule) -> None:
    assert violations(modules, [rule]) == []


def foreign_repositories(modules: dict[str, Module]) -> list[str]:
    """Imports of another top-level package's ``repository`` module: a domain is reached
    through its service, never its repository (STYLE §2)."""
    known = set(modules)
    found = []
    for name, module in modules.items():
        own = top_level(name)
        for imported in imports_of(module, known):
            parts = imported.split(".")
            if len(parts) >= 3 and parts[2] == "repository" and parts[1] != own:
                found.append(f"{name} imports {imported}")
    return sorted(found)


def test_other_domains_repositories_are_not_imported(modules: dict[str, Module]) -> None:
    assert foreign_repositories(modules) == []


def test_foreign_repository_check_catches_one(tmp_path: Path) -> None:
    files = {
        "novabilling/__init__.py": "",
        "novabilling/invoices/__init__.py": "",
        "novabilling/invoices/repository.py": "",
        "novabilling/invoices/service.py": "from novabilling.invoices import repository\n",
        "novabilling/billing/__init__.py": "",
        "novabilling/billing/x.py": "from novabilling.invoices import repository\n",
    }
    assert foreign_repositories(_fake(tmp_path, files)) == [
        "novabilling.billing.x imports novabilling.invoices.repository"
    ]


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
        "novabilling.web.deps",
        "novabilling.api.auth",
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
        ("novabilling/api/customers.py", "from sqlalchemy import select\n", "routers"),
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
