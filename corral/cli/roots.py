"""Where a command line's store and run state are, from `--root` alone.

Its own module, importing only `os`: a one-shot `create` computes the root to start the spawn
helper first (early.py), and the plain reads (quickread.py) and the commands' Context share it,
so that the default is written once for the command line (the library's is runtime.py's).
"""

from __future__ import annotations

import os

DEFAULT_ROOT = "/var/lib/corral"
DEFAULT_RUN_ROOT = "/run/corral"
BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"


def root_of(root: str | None) -> str:
    """The store's directory for `--root` (None: not given)."""
    return os.path.abspath(root) if root else DEFAULT_ROOT
