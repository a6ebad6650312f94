"""The import rules of the house hold, and would catch a change that breaks them.

The rules are import-linter contracts in pyproject.toml (DESIGN.md, "Layout"):
face -> lifecycle -> {store, executor} -> vocabulary, nothing imports the face,
and no import cycle anywhere in the package. A rule that cannot fail protects
nothing, so each kind of violation is planted in a copy of the package and must
be reported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(repo: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: `pip install -e '.[test]'` installs import-linter")
    env = dict(os.environ, PYTHONPATH=str(repo))
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(repo / "pyproject.toml")],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_rules_hold() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


#: (module to change, line to add, what lint-imports must then say: each string appears)
PLANTS = {
    "executor imports the store": (
        "corral/executor/proc.py",
        "import corral.store.repository",
        ("corral.executor is not allowed to import corral.store", "corral.executor.proc -> corral.store"),
    ),
    "executor imports the lifecycle": (
        "corral/executor/cgroups/base.py",
        "from corral.statemachine import lifecycle",
        ("corral.executor is not allowed to import corral.statemachine", "corral.executor.cgroups.base ->"),
    ),
    "store imports the executor": (
        "corral/store/models.py",
        "import corral.executor.proc",
        ("corral.store is not allowed to import corral.executor", "corral.store.models -> corral.executor"),
    ),
    "vocabulary imports the lifecycle": (
        "corral/errors.py",
        "import corral.statemachine.lifecycle",
        ("corral.errors is not allowed to import corral.statemachine", "corral.errors -> corral.statemachine"),
    ),
    "a module imports the face": (
        "corral/statemachine/lifecycle.py",
        "import corral",
        ("Illegal imports of protected package corral", "corral.statemachine.lifecycle -> corral (l."),
    ),
    "an import cycle": (
        "corral/ids.py",
        "import corral.faults",
        ("No cycles are allowed in corral.\n", ".ids", ".faults"),
    ),
}


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_a_planted_violation_is_reported(plant: str, tmp_path: Path) -> None:
    module, line, messages = PLANTS[plant]
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "corral", copy / "corral", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")
    if plant == "an import cycle":  # the other half of the cycle
        with open(copy / "corral/faults.py", "a") as f:
            f.write("\nimport corral.ids  # planted\n")
    with open(copy / module, "a") as f:
        f.write(f"\n{line}  # planted\n")
    result = _lint(copy)
    assert result.returncode != 0, result.stdout
    for message in messages:
        assert message in result.stdout, result.stdout
