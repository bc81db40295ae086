"""Typed settings, read once from the environment (prefix ``NB_``).

Development generates its secrets once into ``NB_DATA_DIR``; production refuses to start
with a missing or default secret (STYLE §3.11).
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DEFAULT_SECRET_MARKERS = ("changeme", "change-me", "secret", "default", "dev")


def _secret_file(data_dir: Path, name: str, nbytes: int) -> str:
    """Read a generated development secret, creating it (mode 600) the first time.

    Created under a private temp name (never readable by others) and published with a
    hard link, which fails if the file exists: when several processes start at once the
    first writer wins and every process reads the same value."""
    path = data_dir / "secrets" / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = secrets.token_hex(nbytes)
    tmp = path.parent / f".{name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_text().strip()
    finally:
        tmp.unlink(missing_ok=True)
    return value


def served_url(host: str, port: int) -> str:
    """The base URL of a server bound to ``host``:``port`` (a wildcard bind is reached on
    the loopback address from this machine)."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NB_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("./var")
    database_url: str | None = None
    tenant_database_url: str | None = None
    # several tenant database servers, comma-separated (new tenants go to the emptiest)
    tenant_database_urls: str | None = None
    tenant_db_prefix: str = "nb_tenant_"
    redis_url: str | None = None
    redis_prefix: str = "nb"
    secret_key: str | None = None
    encryption_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    smtp_url: str | None = None
    mail_from_address: str = "billing@novabilling.local"
    mail_from_name: str = "NovaBilling"
    rate_limit: str = "100/60s"
    cors_origins: str = "http://localhost:4001,http://localhost:4002"
    provider_base_url_allowlist: str = ""
    # None: public hosts only in production, any host elsewhere (local test receivers)
    webhook_allow_private: bool | None = None
    public_url: str = ""  # empty: the address served, http://NB_HOST:NB_PORT
    log_level: str = "INFO"
    log_json: bool | None = None
    access_token_minutes: int = 15
    refresh_token_days: int = 7
    # customer portal tokens (POST /api/portal/customers/{externalId}/token): default life
    portal_token_minutes: int = Field(default=60, ge=1, le=1440)
    refresh_reuse_grace_seconds: int = Field(default=60, ge=0)
    principal_cache_seconds: float = 5.0
    tenant_engine_cache_size: int = 2000
    tenant_pool_size: int = 5
    tenant_pool_overflow: int = 0
    tenant_engine_idle_seconds: float = 600.0
    # every database connection one process may hold (central pool included); size it so
    # processes x this stays under the server's max_connections
    max_db_connections: int = Field(default=30, ge=2)
    db_pool_timeout: float = Field(default=30.0, gt=0)
    # database URLs point at PgBouncer in transaction mode: no prepared-statement caches
    pgbouncer: bool = False
    # how long a process trusts a tenant's database location before re-reading it (moves)
    tenant_url_ttl: float = Field(default=30.0, gt=0)
    # new tenant databases are copies of a migrated template (CREATE DATABASE ... TEMPLATE)
    tenant_templates: bool = True
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=1024)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    run_scheduler: bool = True

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if self.database_url is None:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir}/central.db"
        if not self.public_url:
            self.public_url = served_url(self.host, self.port)
        if self.env == "production":
            for name in ("secret_key", "encryption_key"):
                value = getattr(self, name)
                if not value or len(value) < 32 or value.lower() in _DEFAULT_SECRET_MARKERS:
                    raise ValueError(
                        f"NB_{name.upper()} must be set to a strong secret in production"
                    )
        else:
            if not self.secret_key:
                self.secret_key = _secret_file(self.data_dir, "secret_key", 32)
            if not self.encryption_key:
                self.encryption_key = _secret_file(self.data_dir, "encryption_key", 32)
        return self

    @property
    def tenant_server_urls(self) -> list[str]:
        if self.tenant_database_urls:
            return [u.strip() for u in self.tenant_database_urls.split(",") if u.strip()]
        return [self.tenant_database_url] if self.tenant_database_url else []

    @property
    def embedded(self) -> bool:
        return not self.tenant_server_urls

    @property
    def central_url(self) -> str:
        assert self.database_url is not None
        return self.database_url

    @property
    def central_pool_size(self) -> int:
        """The central database's share of ``max_db_connections``; tenants share the rest."""
        return max(1, min(10, self.max_db_connections // 4))

    @property
    def json_logs(self) -> bool:
        return self.log_json if self.log_json is not None else self.env == "production"

    @property
    def webhooks_public_only(self) -> bool:
        """Tenant webhookUrls must be public http(s) hosts (checked again at delivery)."""
        if self.webhook_allow_private is not None:
            return not self.webhook_allow_private
        return self.env == "production"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def tenants_dir(self) -> Path:
        return self.data_dir / "tenants"


def describe_error(exc: ValidationError) -> str:
    """One line naming each bad setting: ``NB_PORT='abc': Input should be a valid integer``."""
    problems: list[str] = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = error.get("loc") or ()
        if loc:
            name = f"NB_{str(loc[0]).upper()}"
            problems.append(f"{name}={error.get('input')!r}: {message}")
        else:  # a rule over several settings; its message names them
            problems.append(message)
    return "; ".join(problems)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
