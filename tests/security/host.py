"""What the security tests read on the host: the mount table, a file's bytes and mode."""

from __future__ import annotations

import os
from pathlib import Path


def host_mounts() -> set[tuple[str, str, str]]:
    """The host's mount table as a set of (mount point, fs type, source): a mount made
    outside the container's namespace and left behind shows up as a new element."""
    found = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            found.add((fields[4], fields[sep + 1], fields[sep + 2]))
    return found


def file_state(path: str | Path) -> tuple[bytes, int]:
    """A file's bytes and mode, read without following a final symlink's target twice."""
    st = os.lstat(path)
    return Path(path).read_bytes(), st.st_mode


def new_host_mounts(before: set[tuple[str, str, str]], own_dir: str | Path) -> set[tuple[str, str, str]]:
    """Mounts the host gained since `before`, less other programs' own: on a shared machine
    other test sessions and benchmarks mount and unmount under their /tmp directories
    while a test runs. A mount an attack leaks lands in the host's namespace at a path
    of the host (/, /dev, /proc, the test's own directory), not under someone else's
    temporary directory; a mount that went away is not evidence of an escape."""
    own = str(own_dir)
    return {
        m for m in host_mounts() - before
        if not (m[0].startswith("/tmp/") and not m[0].startswith(own))
    }
