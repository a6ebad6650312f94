"""`state`, `ps --format json` and `list` answered with `os`, `sqlite3` and the C JSON encoder alone.

The answers are those of corral/cli/commands/inspect.py on its read-only path
(status.py's `quick_status` and `oci_state`, printed by `json.dumps`), byte for
byte; tests/unit/test_cli_oneshot.py compares the two on the same stores.
Each function returns the text to print, or None when the call is not the
plain case (anything status.py would hand to the library, any record missing
or destroyed, any config field of an unusual type, any error): the caller then
runs the command through argparse and inspect.py, which decides and reports it.
Nothing here writes.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime

from _json import encode_basestring_ascii as _string  # what json.dumps itself calls for a str

from corral.executor.procstat import alive_pid
from corral.store import peek

from corral.cli.roots import BOOT_ID_FILE, DEFAULT_ROOT, root_of  # noqa: F401  (not context.py: its log imports json)
#: status.INIT_ALIVE, status.OCI_STATUS and status.OCI_VERSION (a unit test checks).
INIT_ALIVE = ("created", "running", "paused")
OCI_STATUS = ("created", "running", "paused", "stopped")  # "creating" is always the library's
OCI_VERSION = "1.0.2"

#: One state as `runc state` prints it: its fields in order (the annotations last, apart).
State = tuple[list[tuple[str, "str | int"]], dict[str, str]]


def _boot_id() -> str | None:
    try:
        with open(BOOT_ID_FILE) as f:
            return f.read().strip()
    except OSError:
        return None


def _status(row: peek.Row, boot_id: str) -> str | None:
    """status.quick_status of a record: its state when nothing needs recording, else None."""
    state, pending, pid, start, record_boot = row[2], row[3], row[4], row[5], row[6]
    if pending is not None or state not in OCI_STATUS:
        return None
    if state in INIT_ALIVE and (record_boot != boot_id or pid is None or start is None or not alive_pid(pid, start)):
        return None
    return str(state)


def _state(con: sqlite3.Connection, row: peek.Row, status: str, owner: str) -> State | None:
    """status.oci_state of a record, encoded; None when a config field is not of the plain type."""
    (key, cid, _state, _pending, pid, _start, _boot, bundle, created_at,
     config_type, version_type, version, path_type, path, annotations_type, _live) = row
    if config_type != "object" or version_type not in (None, "text") or path_type not in (None, "text"):
        return None
    bundle = bundle or ""
    rootfs = path if path_type == "text" else ""
    if rootfs and not os.path.isabs(rootfs) and bundle:
        rootfs = os.path.join(bundle, rootfs)
    try:  # status.created_text: RFC 3339 in UTC with nanoseconds
        created = datetime.fromisoformat(str(created_at)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    except ValueError:
        return None
    annotations: dict[str, str] = {}
    if annotations_type == "object":
        for name, value, kind in peek.annotations_of(con, key):
            if kind != "text":
                return None
            annotations[name] = value  # a repeated name keeps its first place and its last value, as json.loads
    fields: list[tuple[str, str | int]] = [
        ("ociVersion", str(version) if version_type == "text" else OCI_VERSION),
        ("id", str(cid)),
        ("pid", int(pid or 0) if status in INIT_ALIVE else 0),
        ("status", status),
        ("bundle", str(bundle)),
        ("rootfs", str(rootfs)),
        ("created", created),
        ("owner", owner),
    ]
    return fields, annotations


def _json(value: str | int) -> str:
    return _string(value) if isinstance(value, str) else str(value)


def _indented(state: State) -> str:
    """json.dumps(oci_state, indent=2)."""
    fields, annotations = state
    lines = [f'  "{name}": {_json(value)}' for name, value in fields]
    if annotations:
        inner = ",\n".join(f"    {_string(name)}: {_string(value)}" for name, value in annotations.items())
        lines.append(f'  "annotations": {{\n{inner}\n  }}')
    else:
        lines.append('  "annotations": {}')
    return "{\n" + ",\n".join(lines) + "\n}"


def _flat(state: State) -> str:
    """json.dumps(oci_state) inside a list: one line, ", " and ": " separators."""
    fields, annotations = state
    inner = ", ".join(f"{_string(name)}: {_string(value)}" for name, value in annotations.items())
    return "{" + "".join(f'"{name}": {_json(value)}, ' for name, value in fields) + '"annotations": {' + inner + "}}"


def _plain(root: str) -> tuple[sqlite3.Connection, str] | None:
    """The store and this boot's id, when nothing is left for recovery to finish; else None."""
    boot_id = _boot_id()
    con = peek.connect(root) if boot_id is not None else None
    if con is None or boot_id is None:
        return None
    try:
        if peek.settled(con, boot_id):
            return con, boot_id
    except sqlite3.Error:
        pass
    con.close()
    return None


def _one(root: str, container_id: str) -> tuple[sqlite3.Connection, peek.Row, str] | None:
    """The store, this live container's record and its status; None for anything but that."""
    plain = _plain(root)
    if plain is None:
        return None
    con, boot_id = plain
    try:
        row = peek.find(con, container_id)
        status = _status(row, boot_id) if row is not None and row[-1] else None
        if row is not None and status is not None:
            return con, row, status
    except sqlite3.Error:
        pass
    con.close()
    return None


def state(root: str, container_id: str) -> str | None:
    """What `state ID` prints, or None."""
    found = _one(root, container_id)
    if found is None:
        return None
    con, row, status = found
    try:
        encoded = _state(con, row, status, "")
    except sqlite3.Error:
        encoded = None
    finally:
        con.close()
    return _indented(encoded) + "\n" if encoded is not None else None


def cgroup_pids(paths: dict[str, str]) -> list[int]:
    """status.cgroup_pids: every PID in the recorded cgroups and their descendants, sorted."""
    pids: set[int] = set()
    for top in set(paths.values()):
        for directory, _dirs, _files in os.walk(top):
            try:
                with open(os.path.join(directory, "cgroup.procs")) as f:
                    pids.update(int(line) for line in f.read().split())
            except OSError:
                continue
    return sorted(pids)


def ps_json(root: str, container_id: str) -> str | None:
    """What `ps --format json ID` prints, or None."""
    found = _one(root, container_id)
    if found is None:
        return None
    con, row, _status_ = found
    try:
        paths = peek.cgroup_paths(con, row[0])
    except sqlite3.Error:
        return None
    finally:
        con.close()
    return "[" + ", ".join(str(pid) for pid in cgroup_pids(paths)) + "]\n"


def _owner(path: str) -> str:
    """inspect._owner: the name of the user owning the store's directory."""
    import pwd  # built in, but only `list` needs it

    try:
        uid = os.stat(path).st_uid
    except OSError:
        return ""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def list_(root: str, fmt: str, quiet: bool) -> str | None:
    """What `list [--format F] [--quiet]` prints, or None."""
    plain = _plain(root)
    if plain is None:
        return None
    con, boot_id = plain
    try:
        rows = peek.live(con)
        statuses = [_status(row, boot_id) for row in rows]
        if any(status is None for status in statuses):
            return None
        if quiet:
            return "".join(f"{row[1]}\n" for row in rows)
        owner = _owner(root)
        states = [_state(con, row, str(status), owner) for row, status in zip(rows, statuses)]
    except sqlite3.Error:
        return None
    finally:
        con.close()
    if any(s is None for s in states):
        return None
    done = [s for s in states if s is not None]
    if fmt == "json":
        return "[" + ", ".join(_flat(s) for s in done) + "]\n"
    return _table(done)


def _table(states: list[State]) -> str:
    """inspect._print_list's table."""
    table = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    for fields, _annotations in states:
        values = dict(fields)
        table.append([str(values[name]) for name in ("id", "pid", "status", "bundle", "created", "owner")])
    widths = [max(12, max(len(r[i]) for r in table) + 3) for i in range(len(table[0]) - 1)]
    return "".join("".join(c.ljust(w) for c, w in zip(r, widths)) + r[-1] + "\n" for r in table)
