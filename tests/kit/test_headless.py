"""``kit.headless``: the server and worker processes run without Rich, Pygments and Click,
which structlog and httpx would otherwise import just because they are installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from novabilling.kit import headless

PROBE = """
import json, sys
import httpx, structlog
from novabilling.kit.logging import configure_logging, flush_logs, get_logger
configure_logging(json=False, level="INFO")
try:
    raise RuntimeError("probe")
except RuntimeError:
    get_logger("probe").exception("failed")
flush_logs()
loaded = sorted({m.split(".")[0] for m in sys.modules if sys.modules[m] is not None})
print(json.dumps({"name": __name__, "argv": sys.argv[1:], "loaded": loaded}))
"""


def _run(argv: list[str], tmp_path: Path) -> tuple[dict[str, object], str]:
    (tmp_path / "nbprobe.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_the_launcher_hides_the_named_packages_and_passes_the_arguments(tmp_path: Path) -> None:
    argv = headless.command("nbprobe", ["--flag", "x"], hidden=("rich", "pygments", "click"))
    out, logged = _run(argv, tmp_path)
    assert out["name"] == "__main__" and out["argv"] == ["--flag", "x"]
    assert not {"rich", "pygments", "click"} & set(out["loaded"])  # type: ignore[arg-type]
    # logging still renders exceptions (plain traceback, as without the launcher)
    assert "Traceback (most recent call last)" in logged and "RuntimeError: probe" in logged


def test_without_the_launcher_they_would_be_loaded(tmp_path: Path) -> None:
    out, _ = _run([sys.executable, "-m", "nbprobe"], tmp_path)
    assert {"rich", "pygments", "click"} <= set(out["loaded"])  # type: ignore[arg-type]
