"""The README's code blocks that the test suite runs and type-checks, found by their markers."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def block(name: str) -> str:
    """The fenced block between `<!-- name:begin -->` and `<!-- name:end -->`."""
    pattern = rf"<!-- {name}:begin -->\n```\w+\n(.*?)```\n<!-- {name}:end -->"
    found = re.search(pattern, README.read_text(), re.S)
    assert found is not None, f"README.md has no {name} block"
    return found.group(1)
