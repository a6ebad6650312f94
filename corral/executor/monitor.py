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
  one started after the first crashed, reads it. It writes in place into the
  placeholder the controller made at create (protocol.py), so a run root that
  filled up meanwhile does not lose the status.

The process the helper forks (and the controller records as the monitor) is a
*keeper*: a child subreaper whose only job is to be the monitor's parent. If the
monitor is killed, the kernel reparents the init to the keeper, which reaps it
and writes its status; if the keeper is killed, the monitor goes on. Only when
both die before the init is the status unknown (only a parent can reap for it):
the placeholder is left pending with nobody holding it, and the controller
records `exit: unknown` with that reason rather than a silent None.

**parent="caller"** (`LinuxExecutor(parent="caller")`; the `corral-runc` command line uses
it for the callers that take a runc binary): the init ends up a child of the caller's child
subreaper, as with runc, because containerd's runc shim and conmon learn a task's exit by
reaping the PID in the pid file. There is no keeper then: the monitor plays its part of the
set-up (cgroups, maps, relaying, the kill if the controller dies before confirming), then,
once confirmed, reaps the first stage, writes the reason the status is unknown
(`protocol.HANDED_OFF`) into the exit file and exits; the kernel reparents the init to the
nearest living subreaper above (the shim: the helper and the controller are not
subreapers). The controller waits for that exit before create returns, so the init is the
shim's child by then. Exec'd processes are handed over the same way, once they run. The
record keeps the init by PID, start time and boot id; its exit is the reaper's to know.

Why a monitor rather than the controller as parent (runc's CLONE_PARENT): the
exit status survives the controller, the controller never has to reap (nothing
to steal from a SIGCHLD handler of the application hosting it), and the init's
parent never changes under it. The cost is one small forked process per
container, as containerd-shim and conmon cost.
"""

from __future__ import annotations

import os
import signal
import socket
from typing import NoReturn

from corral.executor import fds, init, proc, procfs, protocol, waiting
from corral.executor.interface import ExitStatus
from corral.executor.logwriter import LogPipes
from corral.executor.observer import Observer
from corral.executor.protocol import (
    Confirm,
    Console,
    CreateRequest,
    ExecForked,
    ExecRequest,
    ExecStarted,
    Exited,
    Failed,
    Go,
    HookRan,
    HooksDue,
    InitForked,
    InitReady,
    Ready,
    Spawned,
    UsernsCreated,
)
from corral.executor import syscalls as sc

#: How long the monitor waits, after reaping the init, for the rest of its output to reach the log.
LOG_DRAIN = 1.0


def name_process(name: str) -> None:
    """Name this process in /proc/self/comm, which ps -o comm, top and pstree show.

    Every helper is a fork of one `python -S -c "...zygote import main..." FD`, so its
    command line says nothing about what it is or whose container it serves. The
    kernel keeps 15 bytes of the name; argv cannot be rewritten from Python.
    """
    try:
        with open("/proc/self/comm", "wb") as f:
            f.write(name.encode()[:15])
    except OSError:
        pass  # a name is a courtesy: never a reason to fail


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


def _join_cgroups(procs_files: tuple[str, ...], pid: int) -> None:
    for path in procs_files:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)


def _write_maps(pid: int, request: CreateRequest) -> None:
    for name, text in (("uid_map", request.uid_map), ("gid_map", request.gid_map)):
        if text:
            procfs.write(f"{pid}/{name}", text)  # one write(2), through a procfs the monitor made


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


def _exited(status: int | None) -> Exited:
    exit = ExitStatus.unknown() if status is None else ExitStatus.from_wait_status(status)
    return Exited(exit.status, exit.signal)


def _write_exit_file(fd: int | None, path: str, exited: Exited, reason: str | None) -> None:
    """Record the init's exit: in place through `fd` (the placeholder), else by path.

    A write that still fails has nowhere else to go: the placeholder (or the
    missing file) is what tells the reader the status is unknown, and why.
    """
    try:
        if fd is not None:
            protocol.overwrite_exit_file(fd, exited, reason)
        else:
            protocol.write_exit_file(path, exited)
    except OSError:
        pass


def _kill(pid: int | None) -> None:
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _relay(ctl: socket.socket, message: Console, passed: list[int]) -> None:
    """The terminal's master, on to the controller; the monitor keeps no copy."""
    try:
        protocol.send(ctl, message, passed)
    finally:
        for fd in passed:
            os.close(fd)


def _report_failure(ctl: socket.socket, exc: BaseException) -> None:
    try:
        protocol.send(ctl, Failed("monitor", str(exc)))
    except OSError:
        pass


def _keep(monitor_pid: int, exit_fd: int | None, exit_file: str) -> NoReturn:
    """The keeper: the monitor's parent, so that the init's status survives the monitor.

    A child subreaper: when the monitor dies before the init (killed), the kernel
    reparents the init here, and the keeper reaps it and writes its status. While
    the monitor lives it does nothing but wait. Its shared lock on the exit file
    (and the monitor's) tells a reader that someone may still write the status.
    """
    monitor_status: int | None = None
    orphan_status: int | None = None
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == monitor_pid:
            monitor_status = status
        else:  # reparented from a dead monitor: its only child by then is the init
            orphan_status = status
    monitor_died = monitor_status is None or os.WIFSIGNALED(monitor_status)
    if monitor_died and orphan_status is not None:
        _write_exit_file(exit_fd, exit_file, _exited(orphan_status), None)
    os._exit(0)


def _fork_into_pid_namespace(request: CreateRequest) -> int:
    """Fork the init straight into its new PID namespace (init.forks_init_directly).

    unshare(CLONE_NEWPID) changes only where this process's next children go: the
    monitor itself stays where it is, and takes its own namespace back for its later
    children (the hooks it runs) once the init is forked.
    """
    if "pid" not in request.new:
        return os.fork()
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.unshare(sc.CLONE_NEWPID)
        pid = os.fork()
        if pid != 0:
            sc.setns(own, sc.CLONE_NEWPID)
        return pid
    finally:
        os.close(own)


def _log_pipes(request: CreateRequest, stdio: list[int], ctl: socket.socket) -> LogPipes | None:
    """With `Stdio.log`: pipes in place of the init's stdout and stderr, read into the log by this monitor."""
    if request.log_file is None:
        return None
    try:
        logs = LogPipes(request.log_file, request.log_max_bytes)
    except OSError as exc:
        _report_failure(ctl, exc)
        os._exit(1)
    for index, writer in zip((1, 2), logs.writers):
        os.close(stdio[index])
        stdio[index] = writer
    return logs


def _hand_off(first: int | None, exit_fd: int | None, exit_file: str | None) -> NoReturn:
    """parent="caller": reap the first stage (None: the init was forked directly, there is
    none), say why the status will be unknown, and exit, so that the kernel reparents the
    init to the caller's subreaper."""
    if first is not None:
        try:
            os.waitpid(first, 0)
        except ChildProcessError:
            pass
    if exit_file is not None:
        _write_exit_file(exit_fd, exit_file, Exited(None, None), protocol.HANDED_OFF)
    os._exit(0)


def run_create(request: CreateRequest, ctl: socket.socket, stdio: list[int]) -> NoReturn:
    _become_monitor()
    keeper_fd: int | None = None
    if request.parent != protocol.PARENT_CALLER:  # no keeper when the init is handed off
        name_process(f"corral-keep:{request.id}")
        # The process the helper forked (and the controller records) is the keeper;
        # the monitor proper is its child. Either may die and the status is kept.
        keeper_fd = protocol.open_exit_file(request.exit_file)
        if keeper_fd is not None:
            protocol.hold_exit_file(keeper_fd)
        try:
            monitor_pid = os.fork()
        except OSError as exc:
            _report_failure(ctl, exc)
            os._exit(1)
        if monitor_pid != 0:
            ctl.close()
            for fd in stdio:
                os.close(fd)
            if waiting.available():  # the same wait, in C: ~0.1 MiB instead of the fork's 1.6
                waiting.exec_keeper(f"corral-keep:{request.id}", monitor_pid, keeper_fd, request.exit_file)
            _keep(monitor_pid, keeper_fd, request.exit_file)
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)  # not inherited across fork
    name_process(f"corral-mon:{request.id}")
    if keeper_fd is not None:
        os.close(keeper_fd)  # the keeper's, and kept from the init: the monitor opens its own below
    # Opened here, as host root: the init may be in a user namespace that cannot
    # even walk to the run dir. It reopens this O_PATH fd for writing once set up.
    fifo_fd = os.open(request.fifo, os.O_PATH | os.O_CLOEXEC)
    ours, theirs = protocol.pair()
    fds.close_all_except([0, 1, 2, ctl.fileno(), ours.fileno(), theirs.fileno(), fifo_fd, *stdio])
    logs = _log_pipes(request, stdio, ctl)
    direct = init.forks_init_directly(request)
    try:
        first = _fork_into_pid_namespace(request) if direct else os.fork()
    except OSError as exc:
        protocol.send(ctl, Failed("creating the pid namespace and forking the init", str(exc)))
        os._exit(1)
    if first == 0:
        ours.close()
        ctl.close()
        if direct:
            init.direct_stage(request, fifo_fd, theirs, stdio)
        init.namespaces_stage(request, fifo_fd, theirs, stdio)
    theirs.close()
    for fd in stdio:
        os.close(fd)
    if logs is not None:
        logs.start()  # after closing our write ends: the pump sees EOF once the container's are closed
    # Opened now, after the fork: the init never holds it. While it is open, a
    # full run root cannot stop the status from being written.
    exit_fd = protocol.open_exit_file(request.exit_file)
    if exit_fd is not None:
        protocol.hold_exit_file(exit_fd)
    init_pid: int | None = None
    try:
        # The controller makes the cgroups while we fork: it says Go once they and their
        # limits exist, and closes the socket if it could not make them.
        if not isinstance(protocol.recv(ctl), Go):
            _kill(first)
            _reap_until(first)
            os._exit(1)
        _join_cgroups(request.cgroup_procs, first)
        protocol.send(ours, Go())
        if direct:
            init_pid = first
            protocol.send(ctl, Spawned(init_pid))
        while True:
            message, passed = protocol.recv_report(ours)
            if message is None:
                status = _reap_until(init_pid or first)
                exited = _exited(status)
                record = {"status": exited.status, "signal": exited.signal}
                raise RuntimeError(f"the init died during set-up ({record})")
            if isinstance(message, UsernsCreated):
                _write_maps(message.pid, request)
                protocol.send(ours, Go())
            elif isinstance(message, InitForked):
                init_pid = message.pid
                protocol.send(ctl, Spawned(init_pid))
            elif isinstance(message, HooksDue):  # prestart, createRuntime: here, in the host's namespaces
                from corral.executor import hooks  # the helper imported it for a config with hooks (zygote.serve)

                failed = hooks.runtime_create_hooks(
                    request.config, request.id, message.pid, lambda o: protocol.send(ctl, hooks.to_message(o))
                )
                if failed is not None:
                    protocol.send(ctl, Failed(f"running the {failed.kind} hooks", failed.describe()))
                    _kill(init_pid)
                    _reap_until(init_pid or first)
                    os._exit(1)
                protocol.send(ours, Go())
            elif isinstance(message, HookRan):  # createContainer, run by the init
                protocol.send(ctl, message)
            elif isinstance(message, Console):
                _relay(ctl, message, passed)
            elif isinstance(message, InitReady):
                break
            elif isinstance(message, Failed):
                protocol.send(ctl, message)
                _kill(init_pid)
                _reap_until(init_pid or first)
                os._exit(1)
            else:
                raise protocol.ProtocolError(f"unexpected message from the init: {message!r}")
    except BaseException as exc:
        _report_failure(ctl, exc)
        _kill(init_pid)
        os._exit(1)
    ours.close()
    assert init_pid is not None
    try:  # EPIPE: the controller died after "spawned", before recording the container
        protocol.send(ctl, Ready(init_pid))
        confirmed = isinstance(protocol.recv(ctl), Confirm)
    except (OSError, protocol.ProtocolError):
        confirmed = False
    ctl.close()
    if not confirmed:  # the controller died (or aborted) before recording the container
        _kill(init_pid)
    elif request.parent == protocol.PARENT_CALLER:
        _hand_off(None if direct else first, exit_fd, request.exit_file)  # direct: `first` is the init
    if confirmed and waiting.covers(request):  # the rest, in C (waiting.py); returns only if it could not
        waiting.exec_monitor(f"corral-mon:{request.id}", request, init_pid, exit_fd)
    # Records OOM kills and, below, the exit, so that the journal has them with nobody waiting.
    observer = Observer.start(request, init_pid) if confirmed else None
    status = _reap_until(init_pid)
    if logs is not None:
        logs.drain(LOG_DRAIN)  # the log is complete before anyone learns of the exit
    reason = None if status is not None else "the monitor could not reap the init (it was not its child)"
    _write_exit_file(exit_fd, request.exit_file, _exited(status), reason)
    if observer is not None:
        observer.exited(_exited(status), reason)
    os._exit(0)


def run_exec(request: ExecRequest, ctl: socket.socket, stdio: list[int]) -> NoReturn:
    _become_monitor()
    name_process(f"corral-exec:{request.id}")
    init_identity = proc.ProcessIdentity(request.init_pid, request.init_start_time)
    pidfd = proc.open_pidfd(init_identity)
    if pidfd is None:
        protocol.send(ctl, Failed("monitor", "the container's init is gone"))
        os._exit(1)
    ours, theirs = protocol.pair()
    fds.close_all_except([0, 1, 2, ctl.fileno(), ours.fileno(), theirs.fileno(), pidfd, *stdio])
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
        if not request.frozen:
            _join_cgroups(request.cgroup_procs, first)
        protocol.send(ours, Go())
        while True:
            message, passed = protocol.recv_report(ours)
            if message is None:  # both stages closed it: the process exec'd
                break
            if isinstance(message, ExecForked):
                pid = message.pid
                if request.frozen:
                    # Into the frozen cgroup before it runs anything of its own (it waits for this
                    # Go): it freezes there, and its set-up and execve happen once thawed.
                    _join_cgroups(request.cgroup_procs, pid)
                    protocol.send(ours, Go())
                    break
            elif isinstance(message, Console):
                _relay(ctl, message, passed)
            elif isinstance(message, Failed):
                protocol.send(ctl, message)
                _reap_until(pid or first)
                os._exit(1)
            else:
                raise protocol.ProtocolError(f"unexpected message from the exec stage: {message!r}")
        if pid is None:
            raise RuntimeError("the exec'd process vanished before it ran")
        protocol.send(ctl, ExecStarted(pid, proc.start_time(pid)))
    except BaseException as exc:
        _report_failure(ctl, exc)
        _kill(pid)
        os._exit(1)
    if request.parent == protocol.PARENT_CALLER:
        ctl.close()
        _hand_off(first, None, None)
    exited = _exited(_reap_until(pid))
    try:
        protocol.send(ctl, exited)
    except OSError:
        pass
    os._exit(0)
