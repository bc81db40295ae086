"""``kit.leancode``: installed libraries load without docstrings and asserts (as ``-OO``),
NovaBilling's own modules unchanged; the compiled code is cached in ``-OO``'s file; the
API's OpenAPI document (route and model docstrings) is the same under the launcher."""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
import subprocess
import sys
from pathlib import Path

import pytest

from novabilling.kit import headless, leancode

SOURCE = '''"""Module doc."""


def f() -> int:
    """Function doc."""
    assert False, "asserts run"
    return 1
'''


def _loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "somelib"
) -> leancode.LeanLoader:
    lib = tmp_path / "lib"
    lib.mkdir(exist_ok=True)
    path = lib / f"{name.rsplit('.', 1)[-1]}.py"
    path.write_text(SOURCE)
    monkeypatch.setattr(leancode.LeanLoader, "dirs", (str(lib) + os.sep,))
    monkeypatch.setattr(sys, "pycache_prefix", None)  # the cache next to the source
    return leancode.LeanLoader(name, str(path))


def _run(code: object) -> dict[str, object]:
    namespace: dict[str, object] = {}
    exec(code, namespace)  # noqa: S102 - the module under test
    return namespace


def test_a_library_module_loses_docstrings_and_asserts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    namespace = _run(_loader(tmp_path, monkeypatch).get_code("somelib"))
    f = namespace["f"]
    assert namespace.get("__doc__") is None and f.__doc__ is None  # type: ignore[attr-defined]
    assert f() == 1  # type: ignore[operator]  # the assert is compiled out
    assert not list((tmp_path / "lib").rglob("*.pyc"))  # nothing written when forbidden


def test_our_own_modules_and_modules_elsewhere_load_as_usual(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    own = _loader(tmp_path, monkeypatch, name="novabilling.somemodule")
    f = _run(own.get_code("novabilling.somemodule"))["f"]
    assert f.__doc__ == "Function doc."  # type: ignore[attr-defined]
    with pytest.raises(AssertionError, match="asserts run"):
        f()  # type: ignore[operator]
    elsewhere = tmp_path / "app" / "local.py"
    elsewhere.parent.mkdir()
    elsewhere.write_text(SOURCE)
    local = leancode.LeanLoader("local", str(elsewhere)).get_code("local")
    assert _run(local)["f"].__doc__ == "Function doc."  # type: ignore[attr-defined]


def test_the_compiled_code_is_cached_where_minus_oo_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    loader = _loader(tmp_path, monkeypatch)
    loader.get_code("somelib")
    cache = Path(importlib.util.cache_from_source(loader.path, optimization=2))
    assert cache.name.endswith(".opt-2.pyc") and cache.exists()
    # the same file python -OO writes: Python's own loader accepts it at that level
    first = cache.read_bytes()
    assert first[:4] == importlib.util.MAGIC_NUMBER
    # read back, not compiled again (a changed cache body is what gets loaded)
    marker = compile("MARK = 1", loader.path, "exec", optimize=2)
    cache.write_bytes(first[:16] + marshal.dumps(marker))
    assert _run(loader.get_code("somelib")).get("MARK") == 1
    # a changed source (size and mtime in the header) is compiled again
    Path(loader.path).write_text(SOURCE + "\nX = 2\n")
    assert _run(loader.get_code("somelib")).get("X") == 2


PROBE = """
import json, sys
import sqlalchemy.orm
from novabilling.asgi import app
print(json.dumps({"library_doc": sqlalchemy.orm.Session.__doc__, "openapi": app.openapi()}))
"""


def test_the_openapi_document_is_the_same_under_the_launcher(tmp_path: Path) -> None:
    (tmp_path / "nbleanprobe.py").write_text(PROBE)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
        "NB_ENV": "test",
        "NB_DATA_DIR": str(tmp_path / "data"),
    }
    for key in ("NB_DATABASE_URL", "NB_TENANT_DATABASE_URL", "NB_REDIS_URL"):
        env.pop(key, None)
    argv = headless.command("nbleanprobe", [], hidden=("rich", "pygments", "cryptography"))
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["library_doc"] is None  # the launcher did strip the libraries
    here = subprocess.run(
        [sys.executable, "-m", "nbleanprobe"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    plain = json.loads(here.stdout.strip().splitlines()[-1])
    assert plain["library_doc"]  # without it they keep theirs
    assert out["openapi"] == plain["openapi"]
    assert "description" in json.dumps(out["openapi"])  # our docstrings are in it
