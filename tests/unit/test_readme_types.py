"""The README's "Writing a controller" example type-checks with `mypy --strict` against the
installed corral (issue 13): the names it uses are exported, typed and re-exported for a
strict checker (py.typed, `X as X` in corral/__init__.py)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.readme_blocks import block

pytest.importorskip("mypy")


def test_the_controller_example_passes_mypy_strict(tmp_path: Path) -> None:
    example = tmp_path / "controller.py"
    example.write_text(block("controller"))
    spec = importlib.util.find_spec("corral")
    assert spec is not None and spec.origin is not None
    # The editable install's import hook is invisible to mypy: point it where Python imports corral from.
    # --follow-imports=silent: the example's errors are reported, not those inside the package.
    installed = str(Path(spec.origin).parents[1])
    env = {**os.environ, "MYPYPATH": installed}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
         "--cache-dir", str(tmp_path / "cache"), str(example)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 1 source file" in result.stdout
