"""Operations commands of the CLI: ``--version``."""

from __future__ import annotations

from importlib.metadata import version

from typer.testing import CliRunner

from novabilling.cli import app as cli

runner = CliRunner()


def test_version() -> None:
    for flag in ("--version", "-V"):
        result = runner.invoke(cli, [flag])
        assert result.exit_code == 0, result.output
        assert result.output == f"novabilling {version('novabilling')}\n"
