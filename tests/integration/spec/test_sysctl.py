"""`linux.sysctl`: namespaced sysctls show in the container's /proc/sys, the host's
values stay as they were; a host-wide one is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from corral import Runtime
from corral.errors import ConfigError
from tests.integration.spec.helpers import sh, spec_config

pytestmark = pytest.mark.root

FILES = {"net.ipv4.ip_forward": "/proc/sys/net/ipv4/ip_forward", "kernel.shmmni": "/proc/sys/kernel/shmmni"}


def test_namespaced_sysctls_reach_the_container_only(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    host = {key: Path(path).read_text() for key, path in FILES.items()}
    wanted = {"net.ipv4.ip_forward": "1" if host["net.ipv4.ip_forward"].strip() == "0" else "0", "kernel.shmmni": "1234"}

    def change(data: dict[str, Any]) -> None:
        data["linux"]["sysctl"] = wanted

    out = sh(runtime, bundle, tmp_path, "sysctl", " ; ".join(f"cat {path}" for path in FILES.values()), change).split()
    assert out == [wanted["net.ipv4.ip_forward"], "1234"]
    assert {key: Path(path).read_text() for key, path in FILES.items()} == host


def test_a_host_wide_sysctl_is_refused(bundle: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["linux"]["sysctl"] = {"vm.swappiness": "10"}

    with pytest.raises(ConfigError, match="is not namespaced"):
        spec_config(bundle, "true", change=change)
