"""state, ps, list, events: the reads. `state` and `ps` take the sqlite3-only path when they can."""

from __future__ import annotations

import json
import os
import pwd
import sys
import time
from typing import Any

from corral.cli.context import Context
from corral.cli.fast import recovery_reason
from corral.cli.parser import UsageError, parse_duration
from corral.cli.status import INIT_ALIVE, cgroup_pids, oci_state, quick_status
from corral.errors import ContainerNotFound, CorralError
from corral.store.readonly import RecordView


def _not_found(ctx: Context) -> ContainerNotFound:
    return ctx.not_found()


def _quick(ctx: Context) -> tuple[RecordView, str] | None:
    """This container's record and status from the read-only path, or None to ask the library.

    A missing or destroyed container raises ContainerNotFound here already."""
    store = ctx.readonly()
    if store is None:
        if not ctx.store_exists():
            raise _not_found(ctx)
        return None
    with store:
        view = store.find(ctx.container_id)
        if view is None or (not view.live and view.pending_event is None):
            raise _not_found(ctx)
        if recovery_reason(ctx, store) is not None:
            return None
    status = quick_status(view)
    return (view, status) if status is not None else None


def state(ctx: Context) -> int:
    quick = _quick(ctx)
    if quick is not None:
        view, status = quick
        ctx.log.debug(f"state of {view.id}: {status} (read-only path)")
        result = oci_state(view, status)
    else:
        box = ctx.runtime().load(ctx.container_id)
        status = box.state.value
        if status == "destroyed":
            raise _not_found(ctx)
        result = oci_state(box.record, status)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


def _pids(ctx: Context) -> list[int]:
    quick = _quick(ctx)
    if quick is not None:  # every state quick_status answers has its cgroups (or had them)
        return cgroup_pids(quick[0].cgroup_paths)
    box = ctx.runtime().load(ctx.container_id)
    if box.state.value == "destroyed":
        raise _not_found(ctx)
    return box.processes()


def ps(ctx: Context) -> int:
    args = ctx.args
    pids = _pids(ctx)
    if args.format == "json":
        if args.ps_args:
            raise UsageError("ps: options for ps(1) cannot be used with --format json")
        sys.stdout.write(json.dumps(pids) + "\n")
        return 0
    import subprocess  # only the table needs ps(1)

    ps_args = list(args.ps_args)
    if ps_args[:1] == ["--"]:
        ps_args = ps_args[1:]
    try:
        out = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise CorralError(f"ps: {exc}") from exc
    lines = out.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    if "PID" not in header:
        raise CorralError("ps: the output of ps(1) has no PID column")
    column = header.index("PID")
    wanted = set(pids)
    sys.stdout.write(lines[0] + "\n")
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in wanted:
            sys.stdout.write(line + "\n")
    return 0


def _owner(path: os.PathLike[str] | str) -> str:
    try:
        uid = os.stat(path).st_uid
    except OSError:
        return ""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def list_(ctx: Context) -> int:
    states: list[dict[str, Any]] = []
    if not ctx.store_exists():
        return _print_list(ctx, states)
    store = ctx.readonly()
    views: list[RecordView] = []
    slow = store is None
    if store is not None:
        with store:
            views = store.live()
        statuses = [quick_status(v) for v in views]
        slow = any(s is None for s in statuses)
    owner = _owner(ctx.root)
    if slow:  # something to record first (an exit, an interrupted intent): the library does it
        runtime = ctx.runtime(recover=True)
        for box in runtime.list():
            status = box.state.value
            if status != "destroyed":
                states.append(oci_state(box.record, status, owner))
    else:
        states = [oci_state(v, s, owner) for v, s in zip(views, statuses) if s is not None]
    return _print_list(ctx, states)


def _print_list(ctx: Context, states: list[dict[str, Any]]) -> int:
    args = ctx.args
    if args.quiet:
        for s in states:
            sys.stdout.write(s["id"] + "\n")
    elif args.format == "json":
        sys.stdout.write(json.dumps(states) + "\n")
    else:
        rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        rows += [[s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]] for s in states]
        widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
        for r in rows:
            sys.stdout.write("".join(c.ljust(w) for c, w in zip(r, widths)) + r[-1] + "\n")
    return 0


def _stats_data(stats: Any) -> dict[str, Any]:
    """The library's Stats in the shape of runc's events `data` (libcontainer's types.Stats)."""
    data: dict[str, Any] = {}
    if stats.cpu is not None:
        cpu = stats.cpu
        data["cpu"] = {
            "usage": {
                "total": cpu.total_usage_ns,
                "percpu": list(cpu.per_cpu_usage_ns or []),
                "kernel": cpu.system_ns or 0,
                "user": cpu.user_ns or 0,
            },
            "throttling": {
                "periods": cpu.periods or 0,
                "throttledPeriods": cpu.throttled_periods or 0,
                "throttledTime": cpu.throttled_time_ns or 0,
            },
        }
    if stats.memory is not None:
        mem = stats.memory
        data["memory"] = {
            "usage": {
                "usage": mem.usage,
                "max": mem.max_usage or 0,
                "limit": mem.limit if mem.limit is not None else 2**64 - 1,
                "failcnt": mem.failcnt or 0,
            },
            "oom_kills": mem.oom_kills,
        }
    if stats.pids is not None:
        data["pids"] = {"current": stats.pids.current, "limit": stats.pids.limit or 0}
    if stats.interfaces:  # libcontainer names each by its host side
        data["network_interfaces"] = [
            {"name": i.host_name, **{k: getattr(i, k) for k in _INTERFACE_COUNTERS}} for i in stats.interfaces
        ]
    return data


_INTERFACE_COUNTERS = tuple(
    f"{way}_{what}" for way in ("rx", "tx") for what in ("bytes", "packets", "errors", "dropped")
)


def events(ctx: Context) -> int:
    interval = parse_duration(ctx.args.interval)
    if interval <= 0:
        raise UsageError("events: --interval must be greater than 0")
    box = ctx.load()
    while True:
        if box.state.value not in INIT_ALIVE:
            if ctx.args.stats:
                raise CorralError(f"container {ctx.container_id!r} is not running")
            return 0
        event = {"type": "stats", "id": ctx.container_id, "data": _stats_data(box.stats())}
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()
        if ctx.args.stats:
            return 0
        time.sleep(interval)
