"""``novabilling`` command line: serve, migrate, tenants list, health, simulate, billing run,
worker. Settings come from ``NB_*``; a wrong one is reported in one line naming it (exit 2,
no traceback). Help texts are plain text: Typer prints docstrings as they are."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from enum import StrEnum
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

import httpx
import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy.engine import make_url

from novabilling import launcher
from novabilling.cli import doctor as diagnostics
from novabilling.cli import seed
from novabilling.cli.billing import run_billing_once
from novabilling.config import Settings, get_settings, served_url
from novabilling.errors import DomainError
from novabilling.kit.clock import SystemClock
from novabilling.kit.logging import configure_logging
from novabilling.kit.timestamps import parse_when, to_wire
from novabilling.simulators import create_simulator_app, sandbox_credentials
from novabilling.tenancy import operations
from novabilling.tenancy.moving import MoveFailed, move_tenant
from novabilling.web import serving

app = typer.Typer(
    help="NovaBilling: multi-tenant subscription billing API.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold secrets and DSNs
)


def _version() -> str:
    try:
        return package_version("novabilling")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"novabilling {_version()}")
        raise typer.Exit(code=0)


@app.callback()
def _main(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        help="print the version and exit",
        callback=_print_version,
        is_eager=True,
    ),
) -> None:
    """NovaBilling: multi-tenant subscription billing API."""


tenants_app = typer.Typer(help="Tenant administration.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
console = Console()


class Provider(StrEnum):
    paystack = "paystack"
    flutterwave = "flutterwave"
    mpesa = "mpesa"
    stripe = "stripe"
    dpo = "dpo"
    payu = "payu"
    pesapal = "pesapal"


_settings = launcher.settings_or_exit


def _where(url: str) -> str:
    """A database URL for people: SQLite as its file, others without the password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return os.path.abspath(parsed.database or "")
    return parsed.render_as_string(hide_password=True)


def _banner(settings: Settings) -> None:
    """Where the API is, where its console is and where its data lives."""
    url = served_url(settings.host, settings.port)
    typer.echo(f"NovaBilling serving {url}  (workers: {settings.workers})")
    typer.echo(f"  API console:  {url}/api/docs")
    if settings.public_url.rstrip("/") != url:
        typer.echo(f"  public URL:   {settings.public_url}")
    typer.echo(f"  central DB:   {_where(settings.central_url)}")
    if settings.tenant_database_url:
        typer.echo(f"  tenant DBs:   {_where(settings.tenant_database_url)}")
    else:
        typer.echo(
            f"  tenant DBs:   {os.path.abspath(settings.tenants_dir)}/ (one SQLite file each)"
        )
    mail = settings.smtp_url and _where(settings.smtp_url)
    typer.echo(f"  e-mail:       {mail or os.path.abspath(settings.mail_dir) + '/ (.eml files)'}")
    jobs = f"Redis {_where(settings.redis_url)}" if settings.redis_url else "in process"
    typer.echo(f"  jobs:         {jobs}")
    typer.echo(f"  data dir:     {os.path.abspath(settings.data_dir)}")


def _migrate_all() -> int:
    """Central, then every tenant with a progress bar; returns the number of failures."""
    settings = _settings()
    asyncio.run(operations.migrate_central(settings))
    console.print("[green]central database migrated[/green]")
    total = asyncio.run(operations.count_tenant_databases(settings))
    with Progress(
        TextColumn("tenants"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=console,
    ) as progress:
        task = progress.add_task("tenants", total=total)

        def step(tenant_id: str, error: str | None) -> None:
            if error:
                progress.console.print(f"[red]tenant {tenant_id} failed:[/red] {error}")
            progress.advance(task)

        failures = asyncio.run(operations.migrate_tenants(settings, on_progress=step))
    ok = total - len(failures)
    console.print(
        f"tenants migrated: {ok}/{total}" + (f", failed: {len(failures)}" if failures else "")
    )
    return len(failures)


@app.command()
def migrate() -> None:
    """Migrate the central database and every tenant database (continues past failures)."""
    failed = _migrate_all()
    raise typer.Exit(code=1 if failed else 0)


@app.command()
def serve(
    workers: int = typer.Option(None, help="API worker processes (default: NB_WORKERS)"),
    host: str = typer.Option(None, help="bind address (default: NB_HOST)"),
    port: int = typer.Option(None, help="port (default: NB_PORT)"),
    migrate_first: bool = typer.Option(
        True, "--migrate/--no-migrate", help="migrate before serving"
    ),
) -> None:
    """Migrate, then serve the HTTP API; prints its URL, the API console URL and where
    the data lives. One process, or one small supervisor plus N workers."""
    for name, value in (("NB_HOST", host), ("NB_PORT", port), ("NB_WORKERS", workers)):
        if value:  # the options win over the environment, in this process and its workers
            os.environ[name] = str(value)
    get_settings.cache_clear()
    settings = _settings()
    if migrate_first and _migrate_all():
        console.print("[yellow]some tenant migrations failed; serving anyway[/yellow]")
    _banner(settings)
    serving.exec_serve(host=settings.host, port=settings.port, workers=settings.workers)


@tenants_app.command("list")
def tenants_list() -> None:
    """List tenants and where their databases live."""
    rows = asyncio.run(operations.list_tenants(_settings()))
    lines = [
        (
            row.id,
            row.name,
            row.slug,
            row.email,
            "yes" if row.is_active else "no",
            f"{row.dialect}:{row.database_name}" if row.dialect else "-",
            row.server or "-",
        )
        for row in rows
    ]
    if not console.is_terminal:  # piped: whole values, tab-separated (never truncated)
        for line in [("id", "name", "slug", "email", "active", "database", "server"), *lines]:
            typer.echo("\t".join(line))
        return
    table = Table("id", "name", "slug", "email", "active", "database", "server")
    for line in lines:
        table.add_row(*line)
    console.print(table)


@tenants_app.command("servers")
def tenants_servers() -> None:
    """Tenant database servers (NB_TENANT_DATABASE_URLS) and how many tenants each holds."""
    settings = get_settings()
    counts = asyncio.run(operations.tenants_per_server(settings))
    if not counts:
        console.print("embedded: tenant databases are SQLite files")
        return
    table = Table("server", "tenants")
    for name, count in counts.items():
        table.add_row(name, str(count))
    console.print(table)


@tenants_app.command("move")
def tenants_move(
    tenant: str = typer.Argument(..., help="tenant id"),
    server: str = typer.Argument(..., help="target server, host:port (see `tenants servers`)"),
    grace: float = typer.Option(
        None, help="seconds between the switch and dropping the source (default TTL + 1)"
    ),
) -> None:
    """Move a tenant's database, data included, to another server (writes 503 meanwhile)."""

    async def show(stage: str) -> None:
        console.print(f"  {stage}")

    try:
        report = asyncio.run(
            move_tenant(get_settings(), tenant_id=tenant, target=server, grace=grace, on_stage=show)
        )
    except (DomainError, MoveFailed) as exc:
        console.print(f"[red]move failed:[/red] {exc}")
        raise typer.Exit(code=1) from exc
    total = sum(report.rows.values())
    console.print(
        f"[green]moved[/green] {report.tenant_id} {report.source} -> {report.target}: "
        f"{total} rows in {len(report.rows)} tables, verified, {report.seconds:.1f}s"
    )


@app.command()
def health(
    url: str = typer.Option(None, help="base URL (default: http://NB_HOST:NB_PORT)"),
) -> None:
    """Check a running instance: exit 0 when /health and /health/ready answer 200."""
    settings = _settings()
    base = url or served_url(settings.host, settings.port)
    try:
        live = httpx.get(f"{base}/health", timeout=5)
        ready = httpx.get(f"{base}/health/ready", timeout=5)
    except httpx.HTTPError as exc:
        console.print(f"[red]unreachable:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    console.print(f"live: {live.status_code} {live.text}")
    console.print(f"ready: {ready.status_code} {ready.text}")
    raise typer.Exit(code=0 if live.status_code == 200 and ready.status_code == 200 else 1)


@app.command()
def simulate(
    provider: Provider = typer.Argument(..., help="the provider to simulate"),
    port: int = typer.Option(9100, help="port to listen on (loopback)"),
    webhook_url: str = typer.Option(
        None,
        "--webhook-url",
        help="where to POST webhooks (default: NB_PUBLIC_URL/webhooks/PROVIDER)",
    ),
) -> None:
    """Run a local simulator of a payment provider's API; it delivers its own webhooks and
    serves the hosted checkout pages on its own address."""

    name = provider.value
    base_url = f"http://127.0.0.1:{port}"
    target = webhook_url or f"{_settings().public_url.rstrip('/')}/webhooks/{name}"
    os.environ["NB_SIM_WEBHOOK_URL"] = target
    os.environ["NB_SIM_PUBLIC_URL"] = base_url
    try:
        asgi = create_simulator_app(name)
    except KeyError as exc:
        console.print(f"[red]{exc.args[0]}[/red]")
        raise typer.Exit(code=2) from exc
    credentials = sandbox_credentials(name, base_url)
    typer.echo(f"{name} simulator on {base_url}")
    if name == "mpesa":
        typer.echo("callbacks: to the CallBackURL of each STK push (NB_PUBLIC_URL of the API)")
    else:
        typer.echo(f"webhooks: {target}")
    if credentials:
        body = json.dumps({"providerName": name, "credentials": credentials})
        typer.echo(f"configure: POST /api/payment-providers {body}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    uvicorn.run(asgi, host="127.0.0.1", port=port, log_level="info")


billing_app = typer.Typer(help="Billing engine.", no_args_is_help=True)
app.add_typer(billing_app, name="billing")


@billing_app.command("run")
def billing_run(
    at: str = typer.Option(
        "now",
        "--at",
        help="when to bill: an offset from now (+40d, +2h, -1d, +30m, +2w) or an ISO 8601 "
        "date or date-time (2026-05-01, 2026-05-01T09:00:00Z)",
    ),
) -> None:
    """Run one billing tick for every active tenant, as if it were the time given by --at:
    renew what is due, end trials, retry and cancel per dunning."""

    settings = _settings()
    try:
        when = parse_when(at, now=SystemClock().now())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--at") from None
    typer.echo(f"billing at {to_wire(when)}")
    totals = asyncio.run(run_billing_once(settings, at=to_wire(when)))
    table = Table("tenant", "invoiced", "advanced", "canceled", "skipped", "conflicts")
    for row in totals:
        o = row.outcomes
        table.add_row(
            row.tenant_id,
            str(row.invoiced),
            str(o.get("advanced", 0)),
            str(o.get("canceled", 0)),
            str(o.get("skipped", 0)),
            str(o.get("conflict", 0)),
        )
    console.print(table)


@app.command()
def worker(
    concurrency: int = typer.Option(
        launcher.DEFAULT_CONCURRENCY, min=1, help="jobs at once per queue"
    ),
    scheduler: bool = typer.Option(True, "--scheduler/--no-scheduler", help="also run the tick"),
) -> None:
    """Consume the BullMQ queues (needs NB_REDIS_URL); SIGTERM stops gracefully."""
    launcher.start_worker(concurrency=concurrency, scheduler=scheduler)


@app.command("seed-demo")
def seed_demo(
    name: str = typer.Option(seed.DEFAULT_NAME, "--name", help="tenant (company) name"),
    customers: int = typer.Option(500, "--customers", min=1, max=20000, help="customers"),
    small: bool = typer.Option(
        False, "--small", help="CI size: 24 customers over 4 months (about 20 s)"
    ),
    months: int = typer.Option(12, "--months", min=1, max=36, help="months of history"),
    random_seed: int = typer.Option(7, "--seed", help="random seed (same seed, same story)"),
) -> None:
    """Create a demo tenant with months of history (customers in several currencies,
    plans, subscriptions in every status, renewals by the billing engine, payments through
    the Paystack simulator and mark-paid, refunds, usage); prints its credentials and API
    key. Idempotent per --name: a second run changes nothing. Exit 1 when seeding fails."""
    settings = _settings()
    configure_logging(json=False, level="WARNING")
    asyncio.run(operations.migrate_central(settings))
    count, months = (24, 4) if small else (customers, months)
    with Progress(
        TextColumn("seeding days"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=console,
    ) as progress:
        task = progress.add_task("days", total=None)

        def step(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            result = asyncio.run(
                seed.seed_demo(
                    settings,
                    name=name,
                    customers=count,
                    months=months,
                    seed=random_seed,
                    on_progress=step,
                )
            )
        except seed.SeedError as exc:
            console.print(f"[red]seed-demo failed:[/red] {exc}")
            raise typer.Exit(code=1) from None
    if not result.created:
        console.print(
            f"demo tenant {result.name!r} already exists ({result.tenant_id}, "
            f"{result.email}); nothing changed"
        )
        return
    console.print(f"[green]demo tenant {result.name!r} created[/green] ({result.tenant_id})")
    typer.echo(f"  login:     {result.email}")
    typer.echo(f"  password:  {result.password}")
    typer.echo(f"  API key:   {result.api_key}")
    typer.echo(f"  payments:  {result.payments_via}")
    for key, value in sorted(result.counts.items()):
        typer.echo(f"  {key}: {value}")


@app.command()
def doctor(
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Check the installation: central database, Redis and queue depths (waiting, delayed,
    active, failed jobs), every tenant database (connects, migration head, row counts,
    stale outbox rows). A table on a terminal, JSON with --json; exit 1 when any check
    fails (failed jobs and stale outbox rows only warn)."""
    settings = _settings()
    configure_logging(json=False, level="WARNING")
    report = asyncio.run(diagnostics.diagnose(settings))
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        colours = {"ok": "green", "warn": "yellow", "fail": "red"}
        table = Table("check", "status", "detail")
        for check in report.checks:
            table.add_row(check.name, f"[{colours[check.status]}]{check.status}[/]", check.detail)
        console.print(table)
        verdict = "[green]healthy[/green]" if report.healthy else "[red]problems found[/red]"
        console.print(verdict)
    raise typer.Exit(code=0 if report.healthy else 1)


def main() -> None:  # pragma: no cover
    sys.exit(app())
