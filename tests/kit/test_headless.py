"""``kit.headless``: the server and worker processes run without Rich, Pygments, Click and
``cryptography``, which structlog, httpx and PyJWT would otherwise import just because they
are installed; logging, JWTs and sealed secrets work the same without them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from novabilling.kit import headless

HIDDEN = ("rich", "pygments", "click", "cryptography")

PROBE = """
import json, sys
from datetime import UTC, datetime
import httpx, structlog
from novabilling.kit.crypto import Encryptor
from novabilling.kit.logging import configure_logging, flush_logs, get_logger
from novabilling.kit.tokens import TokenSigner
signer = TokenSigner("s" * 32, access_minutes=5, refresh_days=1)
now = datetime.now(UTC)
token = signer.access_token(tenant_id="t1", email="a@b.test", now=now)
assert signer.read_access(token, now=now) == "t1"
enc = Encryptor(bytes(32))
assert enc.decrypt(enc.encrypt("secret", aad=b"x"), aad=b"x") == "secret"
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
    argv = headless.command("nbprobe", ["--flag", "x"], hidden=HIDDEN)
    out, logged = _run(argv, tmp_path)
    assert out["name"] == "__main__" and out["argv"] == ["--flag", "x"]
    assert not set(HIDDEN) & set(out["loaded"])  # type: ignore[arg-type]
    # logging still renders exceptions (plain traceback, as without the launcher)
    assert "Traceback (most recent call last)" in logged and "RuntimeError: probe" in logged


def test_without_the_launcher_they_would_be_loaded(tmp_path: Path) -> None:
    out, _ = _run([sys.executable, "-m", "nbprobe"], tmp_path)
    assert set(HIDDEN) <= set(out["loaded"])  # type: ignore[arg-type]
