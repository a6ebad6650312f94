"""Security tests share the integration fixtures: busybox bundles, leak-checked Runtimes.

Each test here performs an attack from inside a container and then checks the
host (a file's bytes, a marker's absence, a process's /proc entries), never
corral's own records.
"""

from __future__ import annotations

from tests.integration.conftest import (  # noqa: F401  (fixtures, found by pytest by name)
    _remove_session_cgroup_parent,
    bundle,
    rootfs_template,
    runtime,
)
from tests.security.cli import corral_cli  # noqa: F401  (the attacks once through the `corral` command)
