"""`linux.maskedPaths` and `linux.readonlyPaths`: masked files read empty and masked
directories list empty; read-only paths refuse writes and show `ro` in the container's
/proc/self/mountinfo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from corral import Runtime
from tests.integration.spec.helpers import sh

pytestmark = pytest.mark.root


def test_masked_paths(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["linux"]["maskedPaths"] = ["/proc/cpuinfo", "/proc/driver", "/proc/no-such-path"]

    out = sh(runtime, bundle, tmp_path, "masked", "wc -c < /proc/cpuinfo; ls /proc/driver | wc -l; grep -c processor /proc/self/mountinfo || true", change)
    assert out.split()[:2] == ["0", "0"], out


def test_readonly_paths(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["linux"]["readonlyPaths"] = ["/proc/sys"]

    out = sh(runtime, bundle, tmp_path, "readonly", "echo 1 > /proc/sys/kernel/shmmni 2>&1 || echo refused; grep ' /proc/sys ' /proc/self/mountinfo", change)
    lines = out.splitlines()
    assert "refused" in lines[-2] or "Read-only" in out, out
    assert "ro" in lines[-1].split()[5].split(","), out
