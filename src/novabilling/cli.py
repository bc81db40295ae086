"""``novabilling`` command line: serve, worker, migrate, tenants, billing, health, simulate."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys

import httpx
import typer
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from novabilling.config import get_settings
from novabilling.tenancy import operations

app = typer.Typer(help="NovaBilling: multi-tenant subscription billing API.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenant administration.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
console = Console()


def _migrate_all() -> int:
    """Central, then every tenant with a progress bar; returns the number of failures."""
    settings = get_settings()
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
    workers: int = typer.Option(None, help="API worker processes (default NB_WORKERS)"),
    host: str = typer.Option(None, help="bind address (default NB_HOST)"),
    port: int = typer.Option(None, help="port (default NB_PORT)"),
    migrate_first: bool = typer.Option(
        True, "--migrate/--no-migrate", help="migrate before serving"
    ),
) -> None:
    """Serve the HTTP API (uvicorn, uvloop, httptools)."""
    for name, value in (("NB_HOST", host), ("NB_PORT", port), ("NB_WORKERS", workers)):
        if value:  # the options win over the environment, in this process and its workers
            os.environ[name] = str(value)
    get_settings.cache_clear()
    settings = get_settings()
    if migrate_first and _migrate_all():
        console.print("[yellow]some tenant migrations failed; serving anyway[/yellow]")
    uvicorn.run(
        "novabilling.asgi:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        log_config=None,  # uvicorn's own records go through our (off-loop, scrubbing) handler
        proxy_headers=True,
    )


@tenants_app.command("list")
def tenants_list() -> None:
    """List tenants and where their databases live."""
    rows = asyncio.run(operations.list_tenants(get_settings()))
    lines = [
        (
            row.id,
            row.name,
            row.slug,
            row.email,
            "yes" if row.is_active else "no",
            f"{row.dialect}:{row.database_name}" if row.dialect else "-",
        )
        for row in rows
    ]
    if not console.is_terminal:  # piped: whole values, tab-separated (never truncated)
        for line in [("id", "name", "slug", "email", "active", "database"), *lines]:
            typer.echo("\t".join(line))
        return
    table = Table("id", "name", "slug", "email", "active", "database")
    for line in lines:
        table.add_row(*line)
    console.print(table)


@app.command()
def health(url: str = typer.Option(None, help="base URL (default http://NB_HOST:NB_PORT)")) -> None:
    """Check a running instance: exit 0 when /health and /health/ready answer 200."""
    settings = get_settings()
    base = url or f"http://{settings.host}:{settings.port}"
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
    provider: str = typer.Argument(..., help="paystack | flutterwave | mpesa | stripe"),
    port: int = typer.Option(9100, help="port to listen on (loopback)"),
    webhook_url: str = typer.Option(
        None,
        "--webhook-url",
        help="where to POST webhooks (default: NB_PUBLIC_URL/webhooks/PROVIDER)",
    ),
) -> None:
    """Run a local simulator of a payment provider's API; it delivers its own webhooks and
    serves the hosted checkout pages on its own address."""
    from novabilling.simulators import create_simulator_app, sandbox_credentials

    name = provider.strip().lower()
    base_url = f"http://127.0.0.1:{port}"
    target = webhook_url or f"{get_settings().public_url.rstrip('/')}/webhooks/{name}"
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
    at: str = typer.Option(None, "--at", help="ISO instant to bill at (default: now)"),
) -> None:
    """Run one billing tick for every active tenant at ``--at`` (default now)."""
    from novabilling.billing.cli import run_billing_once

    totals = asyncio.run(run_billing_once(get_settings(), at=at))
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
    concurrency: int = typer.Option(8, help="jobs at once per queue"),
    scheduler: bool = typer.Option(True, "--scheduler/--no-scheduler", help="also run the tick"),
) -> None:
    """Consume the BullMQ queues (needs NB_REDIS_URL); SIGTERM stops gracefully."""
    from novabilling.billing.cli import run_worker_process

    settings = get_settings()
    if not settings.redis_url:
        console.print("[red]NB_REDIS_URL is not set: embedded mode runs jobs in `serve`[/red]")
        raise typer.Exit(code=2)
    asyncio.run(run_worker_process(settings, concurrency=concurrency, scheduler=scheduler))


def main() -> None:  # pragma: no cover
    sys.exit(app())
