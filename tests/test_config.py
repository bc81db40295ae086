"""Settings: production refuses weak secrets; development generates them once and reuses them."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import ValidationError

from novabilling.config import Settings, _secret_file, get_settings

STRONG = "k" * 20 + "0123456789abcdef0123"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("NB_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("secret_key", "encryption_key"),
    [
        (None, None),
        (STRONG, None),
        (None, STRONG),
        ("short", STRONG),
        (STRONG, "x" * 31),
        ("", STRONG),
    ],
)
def test_production_refuses_missing_or_short_secrets(
    tmp_path: Path, secret_key: str | None, encryption_key: str | None
) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(
            env="production",
            data_dir=tmp_path,
            secret_key=secret_key,
            encryption_key=encryption_key,
        )
    assert "strong secret" in str(info.value)
    assert not (tmp_path / "secrets").exists()  # never generates in production


def test_production_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NB_ENV", "production")
    monkeypatch.setenv("NB_DATA_DIR", str(tmp_path))
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("NB_SECRET_KEY", STRONG)
    monkeypatch.setenv("NB_ENCRYPTION_KEY", STRONG[::-1])
    settings = Settings()
    assert settings.env == "production"
    assert settings.secret_key == STRONG
    assert settings.json_logs is True
    assert not (tmp_path / "secrets").exists()


def test_development_generates_secrets_once(tmp_path: Path) -> None:
    first = Settings(env="development", data_dir=tmp_path)
    second = Settings(env="development", data_dir=tmp_path)
    assert first.secret_key and first.encryption_key
    assert len(first.secret_key) == 64 and len(first.encryption_key) == 64
    assert first.secret_key != first.encryption_key
    assert (second.secret_key, second.encryption_key) == (first.secret_key, first.encryption_key)
    for name in ("secret_key", "encryption_key"):
        path = tmp_path / "secrets" / name
        assert path.read_text().strip() == getattr(first, name)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "secrets").iterdir()) == [
        "encryption_key",
        "secret_key",
    ]  # no temp files left behind
    other = Settings(env="development", data_dir=tmp_path / "elsewhere")
    assert other.secret_key != first.secret_key


def test_given_secrets_are_not_replaced(tmp_path: Path) -> None:
    settings = Settings(env="test", data_dir=tmp_path, secret_key="mine", encryption_key=STRONG)
    assert settings.secret_key == "mine"
    assert not (tmp_path / "secrets").exists()


def test_concurrent_first_start_agrees_on_one_secret(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        values = list(pool.map(lambda _: _secret_file(tmp_path, "secret_key", 32), range(64)))
    assert len(set(values)) == 1
    assert (tmp_path / "secrets" / "secret_key").read_text() == values[0]


def test_defaults(tmp_path: Path) -> None:
    settings = Settings(env="test", data_dir=tmp_path)
    assert settings.embedded
    assert settings.central_url == f"sqlite+aiosqlite:///{tmp_path}/central.db"
    assert settings.rate_limit == "100/60s"
    assert "http://localhost:4001" in settings.cors_origins
    assert "http://localhost:4002" in settings.cors_origins
    assert settings.max_body_bytes >= 100 * 1024
    assert settings.mail_dir == tmp_path / "mail"
    assert settings.tenants_dir == tmp_path / "tenants"
    assert settings.json_logs is False


def test_server_mode(tmp_path: Path) -> None:
    settings = Settings(
        env="test",
        data_dir=tmp_path,
        database_url="postgresql+asyncpg://u@h/central",
        tenant_database_url="postgresql+asyncpg://u@h/postgres",
    )
    assert not settings.embedded
    assert settings.central_url == "postgresql+asyncpg://u@h/central"


def test_body_limit_has_a_floor(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(env="test", data_dir=tmp_path, max_body_bytes=10)


def test_get_settings_reads_the_environment_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    get_settings.cache_clear()
    monkeypatch.setenv("NB_ENV", "test")
    monkeypatch.setenv("NB_DATA_DIR", str(tmp_path))
    try:
        assert get_settings() is get_settings()
        assert get_settings().data_dir == tmp_path
    finally:
        get_settings.cache_clear()
