"""What the config package and the value vocabulary may import (no root needed).

The container's init and the zygote import these in fresh interpreters: they
must stay cheap (standard library and corral's own small modules only), and
the config modules must import one another in one direction only.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import corral

CORRAL = Path(corral.__file__).parent

#: Each config module, in the order they may import one another (later imports earlier).
CONFIG_LAYERS = ("linux", "checks", "types", "hooks", "seccomp", "network", "process_attrs", "validate", "spec", "oci")


def _corral_modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(*[m for m in sys.modules if m.startswith('corral')])"
    out = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=CORRAL.parent,
    ).stdout
    return set(out.split())


def _top_level_imports(path: Path) -> set[str]:
    """Modules imported when the file is imported (not inside functions or TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_vocabulary_depends_only_on_the_errors() -> None:
    # The errors, so that Stdio refuses a bad descriptor with a CorralError; the root
    # imports only its version eagerly; the process identity and exit status are corral.identity's;
    # the frozen dataclasses are corral.records'.
    expected = {"corral", "corral.version", "corral.errors", "corral.types", "corral.identity", "corral.records"}
    assert _corral_modules_after("import corral.types") == expected


def test_the_config_package_imports_only_itself_and_the_errors() -> None:
    loaded = _corral_modules_after("import corral.config")
    expected = {"corral", "corral.version", "corral.errors", "corral.records", "corral.config"}
    expected |= {f"corral.config.{name}" for name in CONFIG_LAYERS}
    assert loaded == expected


def test_config_modules_import_one_another_in_one_direction() -> None:
    for i, name in enumerate(CONFIG_LAYERS):
        imported = _top_level_imports(CORRAL / "config" / f"{name}.py")
        later = {f"corral.config.{other}" for other in CONFIG_LAYERS[i:]}
        assert not imported & later, (name, sorted(imported & later))
        outside = {
            m
            for m in imported
            if m.startswith("corral.") and not m.startswith(("corral.config.", "corral.errors", "corral.records"))
        }
        assert not outside, (name, sorted(outside))
