"""Starting the spawn helper process (corral.executor.zygote), and nothing else.

spawn.Helper starts it on first need. A one-shot command line `create` starts
it first instead, before it imports the config and the executor: the helper's
own start (a new interpreter importing everything a monitor and an init need)
then runs on another core while the command parses the bundle and writes the
record, and the command adopts it (`Helper.adopt`). So this module imports
neither the protocol nor the config, nor `subprocess`, `socket` or `pathlib`
(with `enum`, `selectors`, `threading`: ~10 ms the command spent before the
helper's execve): `_socket` for the pair, `os.posix_spawn` for the process.

posix_spawn closes nothing, unlike `subprocess`'s close_fds: the helper
inherits every descriptor of the command that is not close-on-exec (the stdio
containerd passed, `--preserve-fds`, `LISTEN_FDS`). The zygote closes all of
them but its socket and 0-2 first thing (zygote.main), before it imports.
"""

from __future__ import annotations

import fcntl
import os
import sys

import _socket

from corral.executor import sealed

TYPE_CHECKING = False  # not `from typing import TYPE_CHECKING`: this module runs before any import
if TYPE_CHECKING:  # pragma: no cover
    #: A started helper and our end of its socket (an fd: `socket` is not imported here).
    Started = tuple["HelperProcess", int]

#: What the helper runs: `-c`, not `-m corral.executor.zygote`, whose runpy imports importlib.util
#: (~2-5 ms of the helper's start, on a one-shot create's critical path).
HELPER_CODE = "from corral.executor.zygote import main; main()"
#: The helper's interpreter flags: no site (faster), and -P: nothing from the working directory on
#: sys.path (`-c` and `-m` put it first), which for containerd's `create` is the bundle: a `corral`
#: directory there would otherwise run as root in the helper, and every monitor and init.
FLAGS = ("-S", "-P")

#: How long `HelperProcess.stop` waits for the helper to exit before it kills it.
STOP_TIMEOUT = 5.0

#: Helpers dropped unreaped (a Helper nobody closed): reaped at the next start, as subprocess does.
_unreaped: list[int] = []


class HelperProcess:
    """The helper as a process: reaped with waitpid (and waited for through a pidfd), not a Popen.

    `returncode` follows Popen's convention: the exit status, or minus the signal that ended it."""

    __slots__ = ("pid", "returncode")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def _reaped(self, flags: int) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, flags)
            except ChildProcessError:  # reaped by someone else (SIGCHLD ignored): as Popen, say 0
                self.returncode = 0
            else:
                if pid == self.pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def poll(self) -> int | None:
        """Its status if it has exited (then reaped), else None."""
        return self._reaped(os.WNOHANG)

    def wait(self, timeout: float | None = None) -> int:
        """Its status once it has exited; TimeoutError if it has not within `timeout` seconds."""
        if timeout is not None and self.poll() is None and not _exits_within(self.pid, timeout):
            raise TimeoutError(f"the spawn helper {self.pid} did not exit within {timeout:g} s")
        status = self._reaped(0)
        assert status is not None
        return status

    def kill(self) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 9)  # SIGKILL (not `signal`: it imports enum)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Reap it once its socket is closed (it exits at the end of file); killed after `timeout`."""
        try:
            self.wait(timeout)
        except TimeoutError:
            self.kill()
            self.wait()

    def __del__(self, _unreaped: list[int] = _unreaped) -> None:  # bound: no module global at shutdown
        if self.returncode is None:
            _unreaped.append(self.pid)


def _exits_within(pid: int, timeout: float) -> bool:
    """Whether `pid` (our child) exits within `timeout`: a pidfd is readable once it has."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # before Linux 5.3: poll its status as subprocess does
        return _polled(pid, timeout)
    try:
        import select

        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(max(0, int(timeout * 1000))))
    finally:
        os.close(pidfd)


def _polled(pid: int, timeout: float) -> bool:
    import time

    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.05)


def _reap_dropped() -> None:
    for pid in list(_unreaped):
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                continue  # still running: next time
        except ChildProcessError:
            pass  # not (or no longer) ours: another thread reaped it, or this is a fork
        try:
            _unreaped.remove(pid)
        except ValueError:
            pass  # another thread's start removed it


def python_path() -> str:
    """Where the helper, started with -S (no site: faster), finds corral and cffi's backend."""
    import _cffi_backend  # type: ignore[import-not-found]

    here = os.path.realpath(__file__)  # .../corral/executor/launch.py
    paths = [
        os.path.dirname(os.path.dirname(os.path.dirname(here))),
        os.path.dirname(os.path.abspath(_cffi_backend.__file__)),
    ]
    return os.pathsep.join(dict.fromkeys(paths))


def _above_stdio(fd: int) -> int:
    """`fd`, moved above 0-2 if it is one of them (a command started with its stdio closed): the
    spawn replaces stdin, and the child's socket and interpreter must survive that; and the
    command's own writes to a stdout it was not given must not land in the helper's socket."""
    if fd > 2:
        return fd
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    finally:
        os.close(fd)


def _free_fd(*taken: int) -> int:
    """A low descriptor number that is none of `taken`: where the helper finds its socket."""
    return next(fd for fd in range(3, 3 + len(taken) + 1) if fd not in taken)


def start_helper() -> Started:
    """Start a helper from a sealed copy of the interpreter (CVE-2019-5736); its process and our
    end of its socket, an fd the caller owns (wrap it: `socket.socket(fileno=fd)`).

    The socket is protocol.pair()'s kind (SOCK_SEQPACKET). Requests sent before the
    helper has finished importing wait in the socket for it.
    """
    _reap_dropped()
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)  # both close-on-exec
    ours, theirs = a.detach(), b.detach()
    try:
        ours = _above_stdio(ours)  # else what this command writes to a closed stdout would reach the helper
    except BaseException:
        os.close(theirs)
        raise
    try:
        theirs = _above_stdio(theirs)
    except BaseException:
        os.close(ours)
        raise
    env = dict(os.environ)
    env["PYTHONPATH"] = python_path()
    try:
        interpreter = _above_stdio(sealed.sealed_copy())  # what the helper and every fork of it run
        try:
            # The spawned child execs its own copy of `interpreter` (close-on-exec: the helper
            # does not keep it), gets /dev/null as stdin and its socket at `target`: a dup2 to
            # another number is inheritable, and happens in the child only, so no other
            # child of this process (another thread's) can inherit the socket meanwhile.
            target = _free_fd(theirs, interpreter)
            pid = os.posix_spawn(
                sealed.exec_path(interpreter),
                [sys.executable, *FLAGS, "-c", HELPER_CODE, str(target)],
                env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, theirs, target),
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                ],
                setsid=True,
            )
        finally:
            os.close(interpreter)
    except BaseException:
        os.close(ours)
        raise
    finally:
        os.close(theirs)
    return HelperProcess(pid), ours
