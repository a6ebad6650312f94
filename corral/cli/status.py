"""The OCI state of a container, computed without the library when the record allows it.

The library's `Container.state` reloads the record and, for a state whose init
should be alive (created, running, paused), checks the init against /proc: same
boot, same PID, same start time, not a zombie; otherwise it records `exited`.
`quick_status` makes the same check from a read-only record and answers only
when nothing needs recording; when it returns None (an intent pending, another
boot, an init gone, a record still `creating`), the caller asks the library,
which records what changed, so that both paths always report the same status.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from corral.cli.context import boot_id
from corral.executor import proc
from corral.store.readonly import RecordView

#: The states the init is expected alive in (corral.statemachine.lifecycle's init_alive).
INIT_ALIVE = frozenset({"created", "running", "paused"})
#: What the runtime spec calls the states corral can report.
OCI_STATUS = {
    "creating": "creating",
    "created": "created",
    "running": "running",
    "paused": "paused",
    "stopped": "stopped",
}
OCI_VERSION = "1.0.2"


class Record(Protocol):
    """What both RecordView and the library's ContainerRecord provide (read-only)."""

    @property
    def id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def init_pid(self) -> int | None: ...
    @property
    def bundle(self) -> str | None: ...
    @property
    def config(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


def init_alive(pid: int | None, start_time: int | None) -> bool:
    """The library's own check (corral.executor.proc.alive): same PID, same start time, not a zombie."""
    if pid is None or start_time is None:
        return False
    return proc.alive_pid(pid, start_time)


def quick_status(view: RecordView) -> str | None:
    """The status the library would report, or None when only the library may decide it."""
    if view.pending_event is not None or view.state not in OCI_STATUS or view.state == "creating":
        return None
    if view.state in INIT_ALIVE:
        try:
            if view.boot_id != boot_id():
                return None
        except OSError:
            return None
        if not init_alive(view.init_pid, view.init_start_time):
            return None
    return view.state


def _config(record: Record) -> Mapping[str, Any]:
    try:
        data = json.loads(record.config)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def created_text(created_at: datetime) -> str:
    """RFC 3339 in UTC with nanoseconds, as runc prints `created` (the store keeps naive UTC)."""
    return created_at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def oci_state(record: Record, status: str, owner: str = "") -> dict[str, Any]:
    """The state JSON as `runc state` prints it (runtime-spec state plus rootfs, created, owner)."""
    config = _config(record)
    root = config.get("root")
    rootfs = root.get("path", "") if isinstance(root, dict) else ""
    bundle = record.bundle or ""
    if rootfs and not os.path.isabs(rootfs) and bundle:
        rootfs = os.path.join(bundle, rootfs)
    annotations = config.get("annotations")
    return {
        "ociVersion": str(config.get("ociVersion", OCI_VERSION)),
        "id": record.id,
        "pid": (record.init_pid or 0) if status in INIT_ALIVE else 0,
        "status": OCI_STATUS.get(status, status),
        "bundle": bundle,
        "rootfs": rootfs,
        "created": created_text(record.created_at),
        "owner": owner,
        "annotations": dict(annotations) if isinstance(annotations, dict) else {},
    }


def cgroup_pids(paths: Mapping[str, str]) -> list[int]:
    """Every PID in the recorded cgroups and their descendants, sorted (the executor's `processes`)."""
    pids: set[int] = set()
    for top in set(paths.values()):
        for directory, _dirs, _files in os.walk(top):
            try:
                with open(os.path.join(directory, "cgroup.procs")) as f:
                    pids.update(int(line) for line in f.read().split())
            except OSError:
                continue
    return sorted(pids)
