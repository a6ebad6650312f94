"""The identity file: what create wrote, in the container's run dir, about what it made.

The store is the record of what exists. When it forgets a live container (a
commit lost to a filesystem error, a database restored from a backup), the
run dir under the run root is all that is left to find the container by, so
create writes there, before it returns, the facts that let recovery act on
the kernel without the record (orphans.py, forgotten.py):

- the init's PID, its start time and the boot id: together they name one
  process; a PID alone may have been handed to another process since;
- the monitor's PID and start time (none when the caller's subreaper is the
  init's parent), so that removal waits for it to finish writing the exit;
- the cgroup directories, which of them create made, and the inode of the
  container's own directory in each hierarchy as it was made: a directory
  removed and made again (by anyone) has another inode, so it is not this
  container's any more.

Written once, atomically (a temporary file renamed), never updated. Not
synced: the run dir is on tmpfs as a rule, and a power cut that would lose it
also ends every process it names (the boot id then differs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from corral.errors import RunDirError
from corral.identity import ProcessIdentity
from corral.records import record

IDENTITY_FILE = "identity.json"
BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"
FORMAT = 1


@record
class Identity:
    container_id: str
    boot_id: str
    init: ProcessIdentity
    monitor: ProcessIdentity | None
    cgroup_paths: Mapping[str, str]  # hierarchy key -> the container's directory
    created_cgroups: Mapping[str, tuple[str, ...]]  # per key, what create made, parents first
    cgroup_inodes: Mapping[str, int]  # per key, st_ino of the container's directory once made


def kernel_boot_id() -> str:
    """The kernel's boot id (not a Runtime's, which tests may pretend): what makes a PID's start time unique."""
    with open(BOOT_ID_FILE) as f:
        return f.read().strip()


def path_in(run_dir: str) -> str:
    return os.path.join(run_dir, IDENTITY_FILE)


def write(
    run_dir: str,
    container_id: str,
    init: ProcessIdentity,
    monitor: ProcessIdentity | None,
    cgroup_paths: Mapping[str, str],
    created_cgroups: Mapping[str, tuple[str, ...]] | None,
) -> None:
    """Write the identity of a just-spawned container; RunDirError if the run dir refuses it."""
    created = {k: list(v) for k, v in (created_cgroups or {}).items()}
    inodes: dict[str, int] = {}
    for key, path in cgroup_paths.items():
        try:
            inodes[key] = os.stat(path).st_ino
        except FileNotFoundError:
            pass  # not made (yet): no inode, so never killed in by the sweep
    data = {
        "format": FORMAT,
        "id": container_id,
        "boot_id": kernel_boot_id(),
        "init": [init.pid, init.start_time],
        "monitor": None if monitor is None else [monitor.pid, monitor.start_time],
        "cgroup_paths": dict(cgroup_paths),
        "created_cgroups": created,
        "cgroup_inodes": inodes,
    }
    final = path_in(run_dir)
    temporary = final + ".tmp"
    try:
        with open(temporary, "w") as f:
            json.dump(data, f)
        os.rename(temporary, final)
    except OSError as exc:
        raise RunDirError(
            f"container {container_id!r}: cannot write {final}: {os.strerror(exc.errno or 0)} ({exc}); "
            f"check {os.path.dirname(run_dir)} (full? read-only?) or choose another run_root",
            run_dir,
            container_id=container_id,
        ) from exc


def read(run_dir: str) -> Identity | None:
    """The identity in `run_dir`, or None when there is none or it is not one corral wrote whole."""
    try:
        with open(path_in(run_dir)) as f:
            data = json.load(f)
        if data.get("format") != FORMAT:
            return None
        monitor = data["monitor"]
        return Identity(
            container_id=_str(data["id"]),
            boot_id=_str(data["boot_id"]),
            init=_process(data["init"]),
            monitor=None if monitor is None else _process(monitor),
            cgroup_paths={_str(k): _str(v) for k, v in data["cgroup_paths"].items()},
            created_cgroups={_str(k): tuple(_str(d) for d in _list(v)) for k, v in data["created_cgroups"].items()},
            cgroup_inodes={_str(k): _int(v) for k, v in data["cgroup_inodes"].items()},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _process(value: object) -> ProcessIdentity:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(value)
    return ProcessIdentity(_int(value[0]), _int(value[1]))


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise ValueError(value)
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(value)
    return value


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(value)
    return value
