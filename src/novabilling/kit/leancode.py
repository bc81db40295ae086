"""Load installed libraries without their docstrings and ``assert`` statements.

A long-running process holds the code of every module it imported: ~32 MiB of code
objects in an API process, most of it SQLAlchemy, redis-py, Pydantic and the standard
library, and a fifth of that is docstrings nobody reads at run time. ``python -OO`` drops
them, but for every module: ours too, and FastAPI and Pydantic turn our route and model
docstrings into the OpenAPI document's descriptions.

``install()`` compiles the modules found in the interpreter's library directories
(site-packages and the standard library), except NovaBilling's own, the way ``-OO`` does
(``compile(..., optimize=2)``: no docstrings, no asserts) and caches them where ``-OO``
would (``*.opt-2.pyc``, same contents, so the two share it; nothing is written when the
environment forbids bytecode files, as Python itself does). Everything else is imported
as usual. Modules imported before ``install()`` keep their docstrings.

Measured in an API process: ~7 MiB less (docs/benchmarks.md, Memory). The server and
job-worker processes call it through ``kit.headless``; tests and the command line don't.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import marshal
import os
import sys
import sysconfig
from types import CodeType

OWN = "novabilling"
LEVEL = 2  # -OO: docstrings and asserts removed
_HEADER = 16  # magic, flags, source mtime, source size (PEP 552, timestamp form)


def library_dirs() -> tuple[str, ...]:
    """Where installed libraries live: site-packages and the standard library."""
    paths = sysconfig.get_paths()
    found = {os.path.realpath(paths[key]) + os.sep for key in ("purelib", "platlib", "stdlib")}
    return tuple(sorted(found))


class LeanLoader(importlib.machinery.SourceFileLoader):
    """``SourceFileLoader`` that compiles library modules at ``LEVEL`` (see module doc)."""

    dirs: tuple[str, ...] = ()

    def _lean(self, fullname: str) -> bool:
        if fullname == OWN or fullname.startswith(OWN + "."):
            return False
        return os.path.realpath(self.path).startswith(self.dirs)

    def get_code(self, fullname: str) -> CodeType | None:
        if not self._lean(fullname):
            return super().get_code(fullname)
        cache = importlib.util.cache_from_source(self.path, optimization=LEVEL)
        stat = os.stat(self.path)
        header = (
            importlib.util.MAGIC_NUMBER
            + (0).to_bytes(4, "little")
            + (int(stat.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
            + (stat.st_size & 0xFFFFFFFF).to_bytes(4, "little")
        )
        try:
            with open(cache, "rb") as file:
                data = file.read()
        except OSError:
            data = b""
        if data[:_HEADER] == header:
            code = marshal.loads(data[_HEADER:])
            if isinstance(code, CodeType):
                return code
        source = self.get_data(self.path)
        code = compile(source, self.path, "exec", dont_inherit=True, optimize=LEVEL)
        if not sys.dont_write_bytecode:
            with contextlib.suppress(OSError):  # read-only installation: compile next time
                self.set_data(cache, header + marshal.dumps(code))
        return code


def install() -> None:
    """Import library modules through ``LeanLoader`` from now on (once per process)."""
    if any(getattr(hook, "lean", False) for hook in sys.path_hooks):
        return
    LeanLoader.dirs = library_dirs()
    details = [
        (importlib.machinery.ExtensionFileLoader, importlib.machinery.EXTENSION_SUFFIXES),
        (LeanLoader, importlib.machinery.SOURCE_SUFFIXES),
        (importlib.machinery.SourcelessFileLoader, importlib.machinery.BYTECODE_SUFFIXES),
    ]
    hook = importlib.machinery.FileFinder.path_hook(*details)
    hook.lean = True  # type: ignore[attr-defined]
    sys.path_hooks.insert(0, hook)
    sys.path_importer_cache.clear()
