"""What every benchmark that starts real containers does on its way out, also on Ctrl-C or
SIGTERM: destroy what its runtimes hold, remove its cgroup parent in every hierarchy, and
turn SIGTERM into KeyboardInterrupt so that the `finally` doing this runs."""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType

from corral import Runtime


def destroy_all(runtime: Runtime) -> None:
    """Destroy (with force) every live container of `runtime`, then close it; report, never stop."""
    try:
        for box in runtime.list():
            try:
                box.destroy(force=True)
            except Exception as exc:  # noqa: BLE001 - report and go on cleaning
                print(f"cleanup of {box.id}: {exc}", file=sys.stderr)
    finally:
        runtime.close()


def remove_cgroup_parent(parent: str) -> None:
    """rmdir `parent` and what is below it in every hierarchy (children first); only ever ours."""
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / parent.lstrip("/")
        if not top.is_dir():
            continue
        for directory in [*sorted((d for d in top.rglob("*") if d.is_dir()), reverse=True), top]:
            try:
                directory.rmdir()
            except OSError as exc:
                print(f"cleanup of {directory}: {exc}", file=sys.stderr)


def on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through the finally that cleans up
