"""`linux.devices`: a node made in the container's /dev with its type, numbers, mode and
owner (busybox `stat` inside); `linux.resources.devices` decides whether it opens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from corral import Runtime
from tests.integration.spec.helpers import sh

pytestmark = pytest.mark.root


def test_a_device_node_is_made_as_configured(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["linux"]["devices"] = [{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o620, "uid": 7, "gid": 8}]
        data["linux"].setdefault("resources", {})["devices"] = [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        ]

    out = sh(runtime, bundle, tmp_path, "devices", "stat -c '%F %t:%T %a %u:%g' /dev/mynull; echo x > /dev/mynull && echo written", change)
    assert out.splitlines() == ["character special file 1:3 620 7:8", "written"]


@pytest.mark.parametrize("allowed", [False, True])
def test_a_node_the_rules_deny_does_not_open(runtime: Runtime, bundle: Path, tmp_path: Path, allowed: bool) -> None:
    """A node the container makes itself (CAP_MKNOD) passes the cgroup only if a rule
    allows it (nodes in linux.devices and runc's defaults are allowed with them, as runc does)."""

    def change(data: dict[str, Any]) -> None:
        rules: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "access": "m"}]
        if allowed:
            rules.append({"allow": True, "type": "c", "major": 240, "minor": 0, "access": "r"})
        data["linux"].setdefault("resources", {})["devices"] = rules

    # 240:0 (a major for local use, no driver here): past the rules, opening it says ENXIO
    script = "mknod /dev/z c 240 0 && head -c1 /dev/z 2>&1; true"
    out = sh(runtime, bundle, tmp_path, f"devices-{allowed}", script, change)
    assert ("Operation not permitted" in out) is not allowed, out
