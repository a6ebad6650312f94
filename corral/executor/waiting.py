"""Hand a monitor's or keeper's steady state to the C waiter (corral-waiter, waiter.c).

Once set-up is done, a monitor only waits for the init and a keeper for the
monitor; as forks of the Python spawn helper, each keeps 1.6-3 MiB of the
helper's pages private (copy-on-write: reference counts and the garbage collector
touch them). exec'd into a small C program, each costs ~0.1 MiB, and keeps what
matters across exec: its PID, its children, the subreaper flag and the exit
file's flock. The waiter writes the exit file as protocol.py does, and the
journal rows of each OOM kill and of the exit: itself, through libsqlite3
(waiter_store.c, a port of corral/store/observed.py), when the recorder is that
module, else (or should that fail) by running the Python recorder
(corral.executor.recorded). A Python start per exit cost ~50 ms that
`Container.wait()` and destroy waited for (they wait for the monitor).

The waiter runs from a sealed memfd copy, as the helper does (sealed.py):
`/proc/<pid>/exe` of a monitor must never name a host file a container could
write (CVE-2019-5736).

exec_keeper and exec_monitor return only if the waiter could not be exec'd; the
caller then goes on in Python, as before the waiter existed.
"""

from __future__ import annotations

import json
import os
import sys

from corral.executor import sealed
from corral.executor.protocol import CreateRequest

#: The waiter, built next to this module by scripts/install (cc -O2 waiter.c waiter_store.c -lsqlite3).
WAITER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corral-waiter")
#: Set to "0" to keep the Python monitor and keeper (to compare, or should the waiter misbehave).
ENV_SWITCH = "CORRAL_C_WAITER"
#: Tells the waiter the symlink it was exec'd through, to remove.
LINK_ENV = "CORRAL_WAITER_LINK"
#: The recorder waiter_store.c ports (statemachine/outcomes.OBSERVED_MODULE: the executor names it, never imports it).
PORTED_RECORDER = "corral.store.observed"


def available() -> bool:
    """Whether the waiter is built and not switched off."""
    return os.environ.get(ENV_SWITCH, "1") != "0" and os.access(WAITER, os.X_OK)


def covers(request: CreateRequest) -> bool:
    """Whether the waiter can do this monitor's steady state: not with `Stdio.log` (its pipes are read
    by Python, logwriter.py), nor for parent="caller" (the monitor hands off and exits anyway)."""
    return request.log_file is None and available()


def _exec(argv: list[str], keep: list[int], run_dir: str) -> None:
    """exec the sealed waiter with `argv` (argv[0]: the process's name), `keep` inherited; return
    only if that failed.

    Through a symlink named argv[0] in the run dir: the kernel names an exec'd process after
    the file's name, so /proc/<pid>/comm says corral-mon:ID from the first instant (a name
    the waiter only set itself would read "6", from /proc/self/fd/6, for a moment). The
    waiter removes the link as it starts (CORRAL_WAITER_LINK).
    """
    try:
        memfd = sealed.sealed_copy(WAITER)
    except OSError:
        return
    link = os.path.join(run_dir, argv[0].replace("/", "_"))
    try:
        try:
            os.unlink(f"{link}.tmp")
        except FileNotFoundError:
            pass
        os.symlink(sealed.exec_path(memfd), f"{link}.tmp")  # resolved by the exec'ing process: its own fd
        os.replace(f"{link}.tmp", link)
        for fd in keep:
            os.set_inheritable(fd, True)
        os.execve(link, argv, {**os.environ, LINK_ENV: link})  # the memfd is close-on-exec: the mapping keeps it
    except OSError:
        for fd in keep:
            os.set_inheritable(fd, False)
        for path in (link, f"{link}.tmp"):
            try:
                os.unlink(path)
            except OSError:
                pass
        os.close(memfd)


def exec_keeper(name: str, monitor_pid: int, exit_fd: int | None, exit_file: str) -> None:
    """The keeper's wait (monitor._keep), in C."""
    fd = -1 if exit_fd is None else exit_fd
    keep = [] if exit_fd is None else [exit_fd]
    _exec([name, "keep", str(monitor_pid), str(fd), exit_file], keep, os.path.dirname(exit_file))


def _recorder_argv(request: CreateRequest, init_pid: int, interpreter: int) -> list[str]:
    """How the waiter runs corral.executor.recorded: the file to run (the sealed interpreter this
    process runs, through the inherited fd `interpreter`), then Python's argv, without site."""
    assert request.recorder is not None
    spec = {
        "module": request.recorder.module,
        "arguments": dict(request.recorder.arguments),
        "init_pid": init_pid,
    }
    path = [entry for entry in sys.path if entry]
    code = f"import sys; sys.path[:0] = {path!r}; from corral.executor.recorded import main; main(sys.argv[1:])"
    return [sealed.exec_path(interpreter), sys.executable, "-S", "-c", code, json.dumps(spec)]


def _store_argv(request: CreateRequest) -> list[str]:
    """`--store ROOT KEY LOCK_FILE LOCK_SLOT` when the waiter can write the recorder's rows itself."""
    recorder = request.recorder
    if recorder is None or recorder.module != PORTED_RECORDER:
        return []
    try:
        arguments = recorder.arguments
        return ["--store", str(arguments["root"]), str(int(arguments["key"])), str(arguments["lock_file"]),
                str(int(arguments["lock_slot"]))]
    except (KeyError, TypeError, ValueError):
        return []


def _oom_source(request: CreateRequest) -> tuple[str, int, str, int]:
    """(file with the oom_kill line, fd to wait on or -1, its kind, the kill count now)."""
    from corral.executor.cgroups import open_cgroup  # the same cgroup the Observer would open
    from corral.executor.cgroups.v1 import V1Cgroup

    try:
        cgroup = open_cgroup(request.cgroup_paths)
        reported = cgroup.oom_kill_count()
        d = cgroup.dir_for("memory")
        if d is None:
            return "", -1, "none", reported
        if isinstance(cgroup, V1Cgroup):
            efd, cfd = cgroup._register_oom_eventfd(d)
            os.close(cfd)  # the registration holds what it needs: the eventfd
            return f"{d}/memory.oom_control", efd, "eventfd", reported
        path = f"{d}/memory.events"
        try:
            return path, os.open(path, os.O_RDONLY | os.O_CLOEXEC), "pri", reported
        except OSError:
            return path, -1, "none", reported
    except Exception:  # noqa: BLE001 - as the Observer: no cgroup to read, exits are still reported
        return "", -1, "none", 0


def exec_monitor(name: str, request: CreateRequest, init_pid: int, exit_fd: int | None) -> None:
    """The monitor's wait for a confirmed init, its exit file and journal rows (Observer), in C."""
    fd = -1 if exit_fd is None else exit_fd
    keep = [] if exit_fd is None else [exit_fd]
    argv = [name, "monitor", str(init_pid), str(fd), request.exit_file]
    if request.recorder is None:
        argv += ["", "-1", "none", "0"]
    else:
        try:  # the sealed copy the helper (and so this fork of it) runs, never the host's file
            interpreter = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        oom_file, wake_fd, kind, reported = _oom_source(request)
        argv += [oom_file, str(wake_fd), kind, str(reported), *_store_argv(request), "--"]
        argv += _recorder_argv(request, init_pid, interpreter)
        owned = [interpreter] + ([wake_fd] if wake_fd >= 0 else [])
        keep += owned
    _exec(argv, keep, os.path.dirname(request.exit_file))
    for extra in keep:  # still here: the waiter could not run, the Python monitor goes on
        if extra != exit_fd:
            os.close(extra)
