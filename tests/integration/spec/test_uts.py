"""`hostname` and `domainname`: set in the container's new UTS namespace (`uname -n`,
/proc/sys/kernel/domainname inside), the host's unchanged; refused without one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from corral import Runtime
from corral.errors import ConfigError
from tests.integration.spec.helpers import sh, spec_config, without_namespace

pytestmark = pytest.mark.root


def test_hostname_and_domainname(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    host = os.uname().nodename, open("/proc/sys/kernel/domainname").read()

    def change(data: dict[str, Any]) -> None:
        data["hostname"] = "spec-box"
        data["domainname"] = "example.org"

    out = sh(runtime, bundle, tmp_path, "uts", "uname -n; cat /proc/sys/kernel/domainname", change).split()
    assert out == ["spec-box", "example.org"]
    assert (os.uname().nodename, open("/proc/sys/kernel/domainname").read()) == host


def test_domainname_without_a_uts_namespace_is_refused(bundle: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        without_namespace(data, "uts")
        data.pop("hostname", None)
        data["domainname"] = "example.org"

    with pytest.raises(ConfigError, match="^domainname: cannot be set without a uts namespace"):
        spec_config(bundle, "true", change=change)
