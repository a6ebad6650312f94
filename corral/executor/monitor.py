"""The monitor: the parent of a container's init (or of an exec'd process), like a shim.

Forked by the spawn helper, it stays in the host's namespaces and cgroups, and:

- plays the parent's part of the sync protocol: puts the child into the
  container's cgroups before it runs anything, writes the uid/gid maps of a new
  user namespace, relays "spawned", "ready" or the child's error to the
  controller;
- kills the init if the controller dies before confirming that it recorded
  the container (so a crash between spawning and recording leaks nothing);
- is the init's parent and a child subreaper, so it reaps the init and writes
  its exit status to `<run dir>/init.exit`, where any controller, including
  one started after the first crashed, reads it.

Why a monitor rather than the controller as parent (runc's CLONE_PARENT): the
exit status survives the controller, the controller never has to reap (nothing
to steal from a SIGCHLD handler of the application hosting it), and the init's
parent never changes under it. The cost is one small forked process per
container, as containerd-shim and conmon cost.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Mapping
from typing import Any, NoReturn

from corral.executor import init, proc, protocol
from corral.executor.interface import ExitStatus
from corral.executor import syscalls as sc


def _become_monitor() -> None:
    os.setsid()  # away from the controller's terminal and process group
    # Nor keep the controller's stdio open: a monitor outlives its controller,
    # and must not hold a pipe its reader waits to see closed.
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)


def _join_cgroups(procs_files: list[str], pid: int) -> None:
    for path in procs_files:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)


def _write_maps(pid: int, request: Mapping[str, Any]) -> None:
    for name in ("uid_map", "gid_map"):
        text = request[name]
        if text:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)


def _reap_until(pid: int) -> int | None:
    """Reap children (we are a subreaper) until `pid` is reaped; its wait status, or None."""
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return None
        except InterruptedError:
            continue
        if reaped == pid:
            return status


def _exit_record(status: int | None) -> dict[str, Any]:
    exit = ExitStatus.unknown() if status is None else ExitStatus.from_wait_status(status)
    return {"status": exit.status, "signal": exit.signal}


def _write_exit_file(path: str, record: Mapping[str, Any]) -> None:
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, path)
    except OSError:
        pass  # the run dir is gone: the container was destroyed meanwhile


def _kill(pid: int | None) -> None:
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_create(request: Mapping[str, Any], ctl: socket.socket, stdio: list[int]) -> NoReturn:
    _become_monitor()
    # Opened here, as host root: the init may be in a user namespace that cannot
    # even walk to the run dir. It reopens this O_PATH fd for writing once set up.
    request = {**request, "fifo_fd": os.open(request["fifo"], os.O_PATH | os.O_CLOEXEC)}
    ours, theirs = protocol.pair()
    first = os.fork()
    if first == 0:
        ours.close()
        ctl.close()
        init.namespaces_stage(request, theirs, stdio)
    theirs.close()
    for fd in stdio:
        os.close(fd)
    init_pid: int | None = None
    try:
        _join_cgroups(request["cgroup_procs"], first)
        protocol.send(ours, {"go": True})
        while True:
            message = protocol.recv(ours)
            if message is None:
                status = _reap_until(init_pid or first)
                raise RuntimeError(f"the init died during set-up ({_exit_record(status)})")
            stage = message["stage"]
            if stage == "userns":
                _write_maps(message["pid"], request)
                protocol.send(ours, {"go": True})
            elif stage == "init":
                init_pid = message["pid"]
                protocol.send(ctl, {"event": "spawned", "pid": init_pid})
            elif stage == "ready":
                break
            elif stage == "error":
                protocol.send(ctl, {"event": "error", "message": message["message"]})
                _kill(init_pid)
                _reap_until(init_pid or first)
                os._exit(1)
    except BaseException as exc:
        try:
            protocol.send(ctl, {"event": "error", "message": f"monitor: {exc}"})
        except OSError:
            pass
        _kill(init_pid)
        os._exit(1)
    ours.close()
    assert init_pid is not None
    try:
        protocol.send(ctl, {"event": "ready", "pid": init_pid})
        confirmed = protocol.recv(ctl)
    except OSError:  # EPIPE: the controller died after "spawned", before recording the container
        confirmed = None
    ctl.close()
    if confirmed is None:  # the controller died before recording the container
        _kill(init_pid)
    status = _reap_until(init_pid)
    _write_exit_file(request["exit_file"], _exit_record(status))
    os._exit(0)


def run_exec(request: Mapping[str, Any], ctl: socket.socket, stdio: list[int]) -> NoReturn:
    _become_monitor()
    init_identity = proc.ProcessIdentity(request["init_pid"], request["init_start_time"])
    pidfd = proc.open_pidfd(init_identity)
    if pidfd is None:
        protocol.send(ctl, {"event": "error", "message": "the container's init is gone"})
        os._exit(1)
    ours, theirs = protocol.pair()
    first = os.fork()
    if first == 0:
        ours.close()
        ctl.close()
        init.exec_stage(request, theirs, stdio, pidfd)
    theirs.close()
    os.close(pidfd)
    for fd in stdio:
        os.close(fd)
    pid: int | None = None
    try:
        _join_cgroups(request["cgroup_procs"], first)
        protocol.send(ours, {"go": True})
        while True:
            message = protocol.recv(ours)
            if message is None:  # both stages closed it: the process exec'd
                break
            if message["stage"] == "exec-pid":
                pid = message["pid"]
            elif message["stage"] == "error":
                protocol.send(ctl, {"event": "error", "message": message["message"]})
                _reap_until(pid or first)
                os._exit(1)
        if pid is None:
            raise RuntimeError("the exec'd process vanished before it ran")
        start_time = proc.start_time(pid)
        protocol.send(ctl, {"event": "spawned", "pid": pid, "start_time": start_time})
    except BaseException as exc:
        try:
            protocol.send(ctl, {"event": "error", "message": f"monitor: {exc}"})
        except OSError:
            pass
        _kill(pid)
        os._exit(1)
    status = _reap_until(pid)
    try:
        protocol.send(ctl, {"event": "exit", **_exit_record(status)})
    except OSError:
        pass
    os._exit(0)
