"""The controller's side of spawning: the helper process and the sync protocol.

The helper (corral.executor.zygote) is started lazily, once per executor and
process, and restarted if it died. Each create or exec gets its own socket
pair: one end goes to the monitor through the helper (SCM_RIGHTS), the other
stays here, so that many threads can create containers at once while only the
short request to the helper is serialised.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from corral.errors import ExecutorError, HookFailed, InitError, WaitTimeout
from corral.executor import launch, proc, protocol, pty
from corral.executor import stdio as stdio_fds
from corral.executor.interface import ExitStatus, InitFacts, ProcessIdentity, Stdio
from corral.executor.teardown import wait_for_exit, wait_for_exit_file  # noqa: F401  (re-exported)
from corral.executor.protocol import (
    Confirm,
    Console,
    CreateRequest,
    ExecRequest,
    ExecStarted,
    Exited,
    Failed,
    Forked,
    Go,
    HookRan,
    Ping,
    Pong,
    Ready,
    Refused,
    Spawned,
)
from corral.records import record

if TYPE_CHECKING:  # pragma: no cover
    from corral.executor.hooks import HookOutcome

#: How long the init may take to set up before create gives up on it.
SETUP_TIMEOUT = 60.0
#: parent="caller": how long create and exec wait for the monitor to exit (it only reaps the
#: first stage and writes one record), so that the process is the caller's child on return.
HANDOFF_TIMEOUT = 5.0


class Helper:
    """The spawn helper process of this controller process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: launch.HelperProcess | None = None
        self._sock: socket.socket | None = None
        self._owner = 0

    def _start(self) -> None:
        process, fd = launch.start_helper()
        self._process, self._sock = process, socket.socket(fileno=fd)
        self._owner = os.getpid()
        protocol.send(self._sock, Ping())
        if not isinstance(protocol.recv(self._sock), Pong):
            raise ExecutorError("the spawn helper exited at start (see its stderr)")

    def adopt(self, process: launch.HelperProcess, fd: int) -> None:
        """Use a helper started earlier by launch.start_helper (a one-shot create starts it first):
        its process and our end of its socket (an fd, now this Helper's to close).

        Not pinged: the first request waits in the socket while it finishes its start, and
        one that finds it dead restarts it, as for a helper that died since (request)."""
        with self._lock:
            if self._owner == os.getpid():
                self._stop()
            self._process, self._sock, self._owner = process, socket.socket(fileno=fd), os.getpid()

    def _stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._process is not None:
            self._process.stop()  # it exits at its end of file; killed after 5 s
            self._process = None

    def close(self) -> None:
        with self._lock:
            if self._owner == os.getpid():
                self._stop()
            else:  # inherited across fork: not ours to stop
                self._sock = None
                self._process = None

    def request(self, request: CreateRequest | ExecRequest, fds: list[int]) -> Forked:
        """Have the helper fork a monitor for `request`; restart the helper once if it died."""
        with self._lock:
            for _attempt in (1, 2):
                if self._sock is None or self._owner != os.getpid() or (
                    self._process is not None and self._process.poll() is not None
                ):
                    if self._owner == os.getpid():
                        self._stop()
                    self._sock, self._process = None, None
                    self._start()
                assert self._sock is not None
                try:
                    protocol.send(self._sock, request, fds)
                    reply = protocol.recv(self._sock)
                except OSError as exc:
                    if exc.errno not in _PEER_GONE:
                        # Not the helper's death: say what it is rather than restart it.
                        raise ExecutorError(f"cannot send the request to the spawn helper: {exc}") from exc
                    reply = None
                if isinstance(reply, Forked):
                    return reply
                if isinstance(reply, Refused):
                    raise ExecutorError(f"spawn helper: {reply.error}")
                if reply is not None:
                    raise protocol.ProtocolError(f"protocol: the spawn helper answered {reply!r}")
                self._stop()
            raise ExecutorError("the spawn helper died twice in a row (see its stderr)")


#: How a send or receive fails when the helper has exited: then it is restarted.
_PEER_GONE = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ECONNREFUSED})


def check_stdio(stdio: Stdio) -> None:
    """Refuse a closed fd or file object, or a path that cannot be opened, before anything is made.

    Checked here, in the controller, because a bad fd found later would fail the
    send to the helper, far from the caller's mistake (corral/executor/stdio.py).
    """
    stdio_fds.check(stdio)


def _recv(sock: socket.socket, what: str, timeout: float | None) -> tuple[protocol.Message, list[int]]:
    sock.settimeout(timeout)
    try:
        message, passed = protocol.recv_report(sock)
    except TimeoutError:
        raise InitError(f"{what}: no answer from the init after {timeout:g} s") from None
    if message is None:
        raise InitError(f"{what}: the monitor exited without a word")
    return message, passed


def _take_console(what: str, message: Console, passed: list[int], held: int | None) -> int:
    """The pty master the init (or exec'd process) sent: checked to be one, and the only one."""
    fd = passed[0]
    if held is not None or not pty.is_master(fd):
        os.close(fd)
        raise protocol.ProtocolError(f"{what}: the terminal sent up ({message.name}) is not one new pty master")
    os.set_inheritable(fd, False)  # SCM_RIGHTS gives it without close-on-exec: the caller's other children must not get it
    return fd


def _ask_helper(
    helper: Helper, request: CreateRequest | ExecRequest, stdio: Stdio
) -> tuple[socket.socket, ProcessIdentity | None]:
    """Have the helper fork a monitor for `request`; return our end of its socket and the monitor."""
    ours, theirs = protocol.pair()
    try:
        streams = stdio_fds.open_stdio(stdio)
    except BaseException:
        ours.close()
        theirs.close()
        raise
    try:
        reply = helper.request(request, [theirs.fileno(), *streams.fds])
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
        streams.close()
    return ours, proc.identity(reply.monitor)


@record(frozen=False)
class SpawnedInit:
    """An init, set up and waiting on its exec fifo; the monitor awaits `confirm()`.

    `console_fd`: the pty master of a `process.terminal` init, the caller's to close
    once confirmed (`abort` closes it)."""

    facts: InitFacts
    _ctl: socket.socket
    monitor: ProcessIdentity | None
    console_fd: int | None = None
    handed_off: bool = False  # parent="caller": the monitor exits once confirmed

    def confirm(self) -> None:
        try:
            protocol.send(self._ctl, Confirm())
        finally:
            self._ctl.close()
        if self.handed_off:  # then the init is the caller's subreaper's child
            wait_for_exit(self.monitor, HANDOFF_TIMEOUT)

    def abort(self) -> None:
        self._ctl.close()  # the monitor kills the init on EOF
        if self.console_fd is not None:
            os.close(self.console_fd)
            self.console_fd = None
        wait_for_exit(self.monitor, 5.0)


def _hook_failed(ran: list[HookOutcome]) -> bool:
    """Whether one of create's hooks failed: only asked when some ran, so hooks.py is loaded already."""
    from corral.executor.hooks import first_failure

    return first_failure(ran) is not None


def _setup_timeout(request: CreateRequest) -> float | None:
    """SETUP_TIMEOUT, plus the time create's hooks may take: none if one of them has no timeout
    (the spec sets no limit then, and neither does runc)."""
    limits = [
        hook.timeout
        for kind in ("prestart", "createRuntime", "createContainer")
        for hook in request.config.hooks.of(kind)
    ]
    if any(limit is None for limit in limits):
        return None
    return SETUP_TIMEOUT + sum(limit for limit in limits if limit is not None)


def spawn_init(
    helper: Helper,
    request: CreateRequest,
    stdio: Stdio,
    on_spawned: Callable[[], None],
    hooks: list[HookOutcome] | None = None,
    cgroups_ready: Callable[[], None] = lambda: None,
) -> tuple[int, ProcessIdentity | None, socket.socket, int | None]:
    """Ask for a monitor and an init; return (init pid, monitor, control socket, pty master
    or None) once it is ready.

    `cgroups_ready` makes the container's cgroups while the helper forks the monitor and
    the monitor its first child (they are a few process hops apart: the work overlaps);
    the monitor moves that child into them only on the Go sent once it returns. If it
    raises, the monitor sees its socket close and kills what it started.

    Raises InitError with the init's own message if set-up failed (HookFailed if a hook
    did); by then the monitor has killed and reaped whatever it started and is exiting.
    How each hook of create ended is appended to `hooks`, also when create fails.
    """
    what = f"container {request.id!r}"
    ran: list[HookOutcome] = [] if hooks is None else hooks
    timeout = _setup_timeout(request)
    ours, monitor = _ask_helper(helper, request, stdio)
    console: int | None = None
    try:
        cgroups_ready()
        try:
            protocol.send(ours, Go())
        except BrokenPipeError:
            pass  # the monitor failed meanwhile: what it said is read below
        while True:
            message, passed = _recv(ours, what, timeout)
            if isinstance(message, Spawned):
                on_spawned()
            elif isinstance(message, HookRan):  # only a config with hooks: hooks.py (and `subprocess`) then
                from corral.executor.hooks import from_message

                ran.append(from_message(message))
            elif isinstance(message, Console):
                console = _take_console(what, message, passed, console)
            elif isinstance(message, Ready):
                init_pid = message.pid
                break
            elif isinstance(message, Failed):
                if ran and _hook_failed(ran):
                    raise HookFailed(
                        f"{what}: {message}", container_id=request.id, hooks=tuple(o.record() for o in ran)
                    )
                raise InitError(f"{what}: {message}", container_id=request.id)
            else:
                raise protocol.ProtocolError(f"{what}: unexpected message from the monitor: {message!r}")
    except BaseException:
        ours.close()
        if console is not None:
            os.close(console)
        wait_for_exit(monitor, 5.0)
        raise
    if request.config.process.terminal and console is None:
        ours.close()
        wait_for_exit(monitor, 5.0)
        raise protocol.ProtocolError(f"{what}: the config asks for a terminal but the init sent none")
    ours.settimeout(None)
    return init_pid, monitor, ours, console


class LinuxExecHandle:
    """A process exec'd into a container; its monitor reports the exit on the socket."""

    def __init__(
        self, ctl: socket.socket, pid: int, start_time: int, monitor: ProcessIdentity | None, console_fd: int | None = None
    ) -> None:
        self._ctl = ctl
        #: The pty master of a `terminal` process: the caller's to close.
        self.console_fd = console_fd
        self.pid = pid
        self.start_time = start_time
        self._monitor = monitor
        self._status: ExitStatus | None = None
        self._lock = threading.Lock()

    def _read(self, timeout: float | None) -> ExitStatus | None:
        with self._lock:
            if self._status is not None:
                return self._status
            self._ctl.settimeout(timeout)
            try:
                message = protocol.recv(self._ctl)
            except (TimeoutError, BlockingIOError):
                return None
            if isinstance(message, Exited):
                self._status = ExitStatus(message.status, message.signal)
            else:
                self._status = ExitStatus.unknown()
            self._ctl.close()
            return self._status

    def wait(self, timeout: float | None = None) -> ExitStatus:
        status = self._read(timeout)
        if status is None:
            raise WaitTimeout(f"exec'd process {self.pid}", timeout or 0)
        return status

    def poll(self) -> ExitStatus | None:
        return self._read(0.0)


class HandedOffExecHandle:
    """parent="caller": an exec'd process the caller's subreaper reaps. Its end is seen
    through a pidfd; its status is the reaper's to know, so corral's is unknown."""

    def __init__(self, pid: int, start_time: int, console_fd: int | None = None) -> None:
        self.pid = pid
        self.start_time = start_time
        self.console_fd = console_fd  # the pty master of a terminal process: the caller's

    def _status(self, timeout: float | None) -> ExitStatus | None:
        if not wait_for_exit(ProcessIdentity(self.pid, self.start_time), timeout):
            return None
        return ExitStatus.unknown(
            "the process was handed to the caller's subreaper (parent='caller'), which reaps it"
        )

    def wait(self, timeout: float | None = None) -> ExitStatus:
        status = self._status(timeout)
        if status is None:
            raise WaitTimeout(f"exec'd process {self.pid}", timeout or 0)
        return status

    def poll(self) -> ExitStatus | None:
        return self._status(0.0)


def spawn_exec(helper: Helper, request: ExecRequest, stdio: Stdio) -> LinuxExecHandle | HandedOffExecHandle:
    what = f"exec in container {request.id!r}"
    ours, monitor = _ask_helper(helper, request, stdio)
    console: int | None = None
    try:
        while True:
            message, passed = _recv(ours, what, SETUP_TIMEOUT)
            if isinstance(message, Console):
                console = _take_console(what, message, passed, console)
                continue
            if isinstance(message, Failed):
                raise InitError(f"{what}: {message}", container_id=request.id)
            if not isinstance(message, ExecStarted):
                raise protocol.ProtocolError(f"{what}: unexpected message from the monitor: {message!r}")
            if request.process.terminal and console is None:
                raise protocol.ProtocolError(f"{what}: the process asked for a terminal but none was sent")
            break
    except BaseException:
        ours.close()
        if console is not None:
            os.close(console)
        wait_for_exit(monitor, 5.0)
        raise
    if request.parent == protocol.PARENT_CALLER:
        ours.close()
        wait_for_exit(monitor, HANDOFF_TIMEOUT)  # then the process is the caller's subreaper's child
        return HandedOffExecHandle(message.pid, message.start_time or 0, console)
    ours.settimeout(None)
    return LinuxExecHandle(ours, message.pid, message.start_time or 0, monitor, console)
