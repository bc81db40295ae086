"""The console script (novabilling/launcher.py): a plain ``novabilling worker`` becomes
the job worker without importing the command line; anything else is the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from novabilling import launcher
from novabilling.config import get_settings
from tests.live import clean_env, console_script


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], (8, True)),
        (["--no-scheduler"], (8, False)),
        (["--concurrency", "3", "--no-scheduler"], (3, False)),
        (["--concurrency=5", "--scheduler"], (5, True)),
        (["--no-scheduler", "--scheduler"], (8, True)),
    ],
)
def test_plain_worker_arguments_are_read(args: list[str], expected: tuple[int, bool]) -> None:
    assert launcher.worker_options(args) == expected


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--concurrency"], ["--concurrency", "x"], ["--concurrency=0"], ["--bogus"]],
)
def test_anything_else_goes_to_the_command_line(args: list[str]) -> None:
    assert launcher.worker_options(args) is None


class Exec(Exception):
    pass


def _settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> None:
    for name in [n for n in os.environ if n.startswith("NB_")]:
        monkeypatch.delenv(name)
    for name, value in {"NB_DATA_DIR": str(tmp_path), **env}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def test_worker_execs_the_worker_module_headless(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[list[str]] = []

    def execve(path: str, args: list[str], env: dict[str, str]) -> None:
        seen.append(args)
        raise Exec

    monkeypatch.setattr(os, "execve", execve)
    _settings_env(monkeypatch, tmp_path, NB_REDIS_URL="redis://127.0.0.1:6379/0")
    try:
        with pytest.raises(Exec):
            launcher.main(["worker", "--concurrency", "3", "--no-scheduler"])
    finally:
        get_settings.cache_clear()
    args = seen[0]
    assert args[0] == sys.executable and "novabilling.kit.headless" in args
    assert args[-4:] == [launcher.WORKER_MODULE, "--concurrency", "3", "--no-scheduler"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NB_PORT": "abc"}, "invalid setting: NB_PORT='abc'"),
        ({}, "NB_REDIS_URL is not set"),
    ],
)
def test_worker_refuses_wrong_settings_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    message: str,
) -> None:
    monkeypatch.setattr(os, "execve", lambda *a: pytest.fail("exec despite a wrong setting"))
    _settings_env(monkeypatch, tmp_path, **env)
    try:
        with pytest.raises(SystemExit) as exit_:
            launcher.main(["worker"])
    finally:
        get_settings.cache_clear()
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_the_console_script_is_the_launcher(tmp_path: Path) -> None:
    """A plain worker with no Redis answers from the launcher (one line, exit 2, and not
    the command line's Rich output); --help is the command line's, named novabilling."""
    env = clean_env(NB_DATA_DIR=str(tmp_path))
    plain = subprocess.run(
        [console_script(), "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert plain.returncode == 2
    assert plain.stderr.strip() == (
        "novabilling: NB_REDIS_URL is not set: embedded mode runs jobs in serve"
    )
    helped = subprocess.run(
        [console_script(), "worker", "--help"],
        env={**env, "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert helped.returncode == 0 and "Usage: novabilling worker [OPTIONS]" in helped.stdout
