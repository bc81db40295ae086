"""``python -m novabilling.cli`` (and the console script for every command but a plain
``worker``: novabilling/launcher.py)."""

from novabilling.cli import app

app(prog_name="novabilling")
