"""Start-up and configuration as a new user meets them: a wrong setting is one line naming
it (exit 2, no traceback); serve prints its URL, the console URL and where data lives;
NB_PUBLIC_URL follows the address served; help texts are plain; ``billing run --at``
takes offsets; the README names every setting and every command."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from novabilling.cli import app as cli
from novabilling.config import Settings, get_settings
from novabilling.kit.timestamps import parse_when
from novabilling.web import serving
from tests.live import api_server, clean_env, console_script

pytestmark = pytest.mark.long(seconds=25)

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
runner = CliRunner()


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [console_script(), *args],
        env=clean_env(NB_DATA_DIR=str(tmp_path), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


WRONG_SETTINGS = [
    (["serve"], {"NB_PORT": "abc"}, "NB_PORT='abc'"),
    (["serve"], {"NB_ENV": "production"}, "NB_SECRET_KEY"),
    (["serve"], {"NB_ENV": "staging"}, "NB_ENV='staging'"),
    (["serve"], {"NB_MAX_BODY_BYTES": "10"}, "NB_MAX_BODY_BYTES='10'"),
    (["migrate"], {"NB_PORT": "abc"}, "NB_PORT='abc'"),
    (["billing", "run"], {"NB_ENV": "production"}, "NB_SECRET_KEY"),
    (["tenants", "list"], {"NB_LOG_JSON": "maybe"}, "NB_LOG_JSON='maybe'"),
]


def _assert_one_line(code: int, stdout: str, stderr: str, names: str) -> None:
    assert code == 2, (code, stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("novabilling: invalid setting: ") and names in lines[0]
    assert "Traceback" not in stderr + stdout
    assert not stdout.strip()


def test_a_wrong_setting_stops_the_real_start_up_with_one_line(tmp_path: Path) -> None:
    """The console script as a user starts it: interpreter, imports, logging set-up and
    all - nothing else may print on the way to the one line."""
    done = _run(["serve"], tmp_path, NB_PORT="abc")
    _assert_one_line(done.returncode, done.stdout, done.stderr, "NB_PORT='abc'")


@pytest.mark.parametrize(("command", "env", "names"), WRONG_SETTINGS)
def test_a_wrong_setting_is_one_line_naming_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    env: dict[str, str],
    names: str,
) -> None:
    """Every command and kind of wrong setting, through the same Typer app the console
    script runs for them (``novabilling.cli:app``, through novabilling/launcher.py), in
    this process: a process each cost 17-27 s of a loaded suite. Serving is replaced by a
    failure, should a wrong setting pass."""

    def serve_anyway(**kwargs: object) -> None:
        raise AssertionError(f"serve started despite {env}")

    monkeypatch.setattr(serving, "exec_serve", serve_anyway)
    for name in [n for n in os.environ if n.startswith("NB_")]:
        monkeypatch.delenv(name)
    for name, value in {"NB_DATA_DIR": str(tmp_path), **env}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, command)
    finally:
        get_settings.cache_clear()
    assert not isinstance(result.exception, AssertionError), result.exception
    _assert_one_line(result.exit_code, result.stdout, result.stderr, names)


def test_serve_prints_where_it_serves_and_where_data_lives(tmp_path: Path) -> None:
    with api_server(tmp_path) as server:
        out = server.output()
    assert f"NovaBilling serving {server.url}" in out
    assert f"API console:  {server.url}/api/docs" in out
    assert f"central DB:   {tmp_path / 'central.db'}" in out
    assert f"tenant DBs:   {tmp_path / 'tenants'}/" in out
    assert f"data dir:     {tmp_path}" in out
    assert "public URL" not in out  # it is the address served


def test_public_url_defaults_to_the_address_served() -> None:
    assert Settings(env="test", port=9123).public_url == "http://127.0.0.1:9123"
    assert Settings(env="test", host="0.0.0.0", port=80).public_url == "http://127.0.0.1:80"
    assert Settings(env="test", host="::1", port=81).public_url == "http://[::1]:81"
    explicit = Settings(env="test", port=9123, public_url="https://billing.example.com")
    assert explicit.public_url == "https://billing.example.com"


def _commands() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []

    def walk(prefix: str, command: Any) -> None:
        if hasattr(command, "commands"):  # a group
            for name, sub in command.commands.items():
                walk(f"{prefix} {name}".strip(), sub)
        else:
            found.append((prefix, command))

    walk("", typer.main.get_command(cli))
    return found


def test_help_texts_are_plain_and_typed() -> None:
    commands = _commands()
    assert {name for name, _ in commands} >= {
        "serve",
        "migrate",
        "tenants list",
        "health",
        "simulate",
        "billing run",
        "worker",
    }
    for name, _ in [("", None), *commands]:
        result = runner.invoke(cli, [*name.split(), "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (name, result.output)
        assert "``" not in result.output and ":class:" not in result.output, name
        assert "NoneType" not in result.output, name
    simulate = runner.invoke(cli, ["simulate", "--help"], env={"COLUMNS": "200"}).output
    assert "paystack|flutterwave|mpesa|stripe" in simulate


def test_readme_lists_every_command_and_every_setting() -> None:
    cli_section = _section("CLI")
    for name, _ in _commands():
        assert f"`{name}" in cli_section, name
    running = _section("Running")
    for field in Settings.model_fields:
        assert f"NB_{field.upper()}" in running, field


def test_billing_run_takes_offsets_and_iso(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("NB_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NB_ENV", "test")
    monkeypatch.setenv("NB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NB_LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    try:
        assert runner.invoke(cli, ["migrate"]).exit_code == 0
        before = datetime.now(UTC)
        result = runner.invoke(cli, ["billing", "run", "--at", "+40d"])
        assert result.exit_code == 0, result.output
        stamp = re.search(r"billing at (\S+)", result.output)
        assert stamp, result.output
        when = datetime.fromisoformat(stamp.group(1).replace("Z", "+00:00"))
        assert abs(when - (before + timedelta(days=40))) < timedelta(minutes=1)
        iso = runner.invoke(cli, ["billing", "run", "--at", "2030-01-15"])
        assert iso.exit_code == 0 and "billing at 2030-01-15T00:00:00.000Z" in iso.output
        bad = runner.invoke(cli, ["billing", "run", "--at", "in 40 days"])
        assert bad.exit_code == 2 and "+40d" in bad.output and "Traceback" not in bad.output
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+40d", datetime(2026, 4, 10, 9, tzinfo=UTC)),
        ("-1d", datetime(2026, 2, 28, 9, tzinfo=UTC)),
        ("+2h", datetime(2026, 3, 1, 11, tzinfo=UTC)),
        ("+30m", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
        ("+2w", datetime(2026, 3, 15, 9, tzinfo=UTC)),
        ("now", datetime(2026, 3, 1, 9, tzinfo=UTC)),
        (" NOW ", datetime(2026, 3, 1, 9, tzinfo=UTC)),
        ("2026-05-01", datetime(2026, 5, 1, tzinfo=UTC)),
        ("2026-05-01T10:00:00+01:00", datetime(2026, 5, 1, 9, tzinfo=UTC)),
    ],
)
def test_parse_when(text: str, expected: datetime) -> None:
    assert parse_when(text, now=datetime(2026, 3, 1, 9, tzinfo=UTC)) == expected


@pytest.mark.parametrize("text", ["40d", "+40", "+d", "+4.5d", "tomorrow", ""])
def test_parse_when_refuses_the_rest(text: str) -> None:
    with pytest.raises(ValueError, match=r"\+40d"):
        parse_when(text, now=datetime(2026, 3, 1, tzinfo=UTC))
