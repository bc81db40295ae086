"""``tenancy.migrations.head_revision`` reads the head from the scripts without importing
Alembic (every provisioning needs it), agrees with Alembic, and leaves branches to it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from novabilling.tenancy import migrations


@pytest.mark.parametrize("tree", ["central", "tenant"])
def test_the_head_is_alembics(tree: str) -> None:
    alembic_head = ScriptDirectory.from_config(migrations.alembic_config(tree)).get_current_head()
    assert migrations.head_revision(tree) == alembic_head is not None


def test_reading_the_head_imports_no_alembic() -> None:
    code = (
        "import sys\n"
        "from novabilling.tenancy import migrations\n"
        "print(migrations.head_revision('tenant'), 'alembic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    head, imported = out.stdout.split()
    assert (
        head == ScriptDirectory.from_config(migrations.alembic_config("tenant")).get_current_head()
    )
    assert imported == "False"


def _script(folder: Path, revision: str, down: str) -> None:
    (folder / f"{revision}_x.py").write_text(
        f'"""x"""\nrevision: str = "{revision}"\ndown_revision = {down}\n'
    )


def test_heads_of_a_line_a_merge_and_a_branch(tmp_path: Path) -> None:
    _script(tmp_path, "a", "None")
    _script(tmp_path, "b", '"a"')
    assert migrations._heads(tmp_path) == ["b"]
    _script(tmp_path, "c", '"a"')  # a branch: two heads, left to Alembic
    assert migrations._heads(tmp_path) == ["b", "c"]
    _script(tmp_path, "d", '("b", "c")')  # merged again
    assert migrations._heads(tmp_path) == ["d"]
    (tmp_path / "e_x.py").write_text('revision = "e"\ndown_revision = compute()\n')
    assert migrations._heads(tmp_path) is None  # not a literal: left to Alembic
