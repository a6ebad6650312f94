"""The typed messages between the controller, the spawn helper, the monitor and the init.

One module, imported by all four, so that the contract between three processes
is written once: every message is a frozen dataclass here, and every reader
uses its attributes.

Two directions, two codecs, by trust:

- **Requests go down** (controller → helper → monitor → init) as a pickle of the
  already-validated `Config` or `Process`. The helper, the monitor and the init
  are corral's own processes, with the controller's trust; unpickling a frozen
  dataclass restores its fields without calling `__init__`, so the config is
  validated once, where it was built, and crosses the process boundary once, in
  one form.
- **Reports go up** (init → monitor → controller, helper → controller) as
  small JSON objects with a type tag. A process that has entered a container
  must never be able to make a host process unpickle its bytes; `recv` refuses
  a pickle, only `recv_request` (the helper's) accepts one.

Transport: one message per SOCK_SEQPACKET datagram (the kernel keeps the
boundaries, and file descriptors travel with a message by SCM_RIGHTS). A
message larger than `INLINE_MAX` (a config of many MiB) travels in a sealed
memfd passed along instead, so there is no size limit. A closed peer reads as
None: that is how each side learns that the other died.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import pickle
import socket
import time
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from corral.config import Config, Process
from corral.errors import ExecutorError
from corral.executor.interface import Recorder
from corral.executor.seccomp import CompiledFilter
from corral.types import MAX_EXTRA_FDS

#: The largest encoded message sent inline; anything bigger goes through a memfd.
#: Well under the socket's send buffer (about 208 KiB by default).
INLINE_MAX = 64 * 1024
#: A request's descriptors: its socket, stdio, and its `Stdio.extra_fds`.
MAX_FDS = 4 + MAX_EXTRA_FDS

_JSON = b"J"
_PICKLE = b"P"
_MEMFD = b"M"  # the payload is in the last fd: a memfd holding a _JSON or _PICKLE message
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


class ProtocolError(ExecutorError):
    """A message that is not one this protocol defines: a bug in corral, never a user error."""


# --------------------------------------------------------------------------- requests (pickled)

#: Who ends up the parent of a container's init or exec'd process (see corral.executor.monitor):
#: corral's monitor, which reaps it and records its status (the default), or the caller's
#: child subreaper (containerd's shim, conmon), as with runc: the monitor exits once the
#: process is set up and the kernel reparents the process.
PARENT_MONITOR = "monitor"
PARENT_CALLER = "caller"
PARENTS = (PARENT_MONITOR, PARENT_CALLER)

#: The exit file's reason when the init was handed to the caller's subreaper.
HANDED_OFF = (
    "the init was handed to the caller's subreaper (parent='caller'), which reaps it: "
    "corral cannot know its exit status"
)


@dataclass(frozen=True)
class CreateRequest:
    """Controller → helper → monitor → init: make a container's init.

    `config.bundle` travels inside the config. The monitor opens `fifo` (as host
    root) and puts the first child into `cgroup_procs` before it runs anything.
    """

    id: str
    config: Config
    cgroup_procs: tuple[str, ...]  # cgroup.procs (v2) or tasks files to write the first child's PID to
    cgroup_paths: Mapping[str, str]  # hierarchy key -> cgroup directory, for the rootfs's cgroup mount
    fifo: str
    exit_file: str
    join: tuple[tuple[str, str], ...]  # (namespace type, path), the user namespace first
    new: tuple[str, ...]  # namespace types to create, the user namespace first
    uid_map: str  # the text written to /proc/<pid>/uid_map; empty: none
    gid_map: str
    seccomp: CompiledFilter | None = None  # config.seccomp, compiled in the controller
    log_file: str | None = None  # Stdio.log: the monitor writes stdout and stderr here (logwriter.py)
    log_max_bytes: int = 0
    parent: str = PARENT_MONITOR  # PARENTS: who is the init's parent once it is set up
    recorder: Recorder | None = None  # who the monitor tells of the init's exit and OOM kills


@dataclass(frozen=True)
class ExecRequest:
    """Controller → helper → monitor: run `process` in the container of init `init_pid`."""

    id: str
    init_pid: int
    init_start_time: int  # with init_pid, the init's identity: a reused PID is never joined
    join: tuple[str, ...]  # namespace types to join through the init's pidfd
    cgroup_procs: tuple[str, ...]
    process: Process
    seccomp: CompiledFilter | None = None  # the container's filter: exec'd processes run under it too
    parent: str = PARENT_MONITOR  # PARENTS: who is the process's parent once it runs
    #: The cgroup is frozen (a paused container, exec'd with ignore_paused): the process joins it
    #: once forked, before it runs anything, and is reported started without waiting for its
    #: execve, which happens only once the cgroup is thawed.
    frozen: bool = False


@dataclass(frozen=True)
class Ping:
    """Controller → helper: are you up? Answered by `Pong`."""


# --------------------------------------------------------------------------- reports (JSON)


@dataclass(frozen=True)
class Pong:
    """Helper → controller: up, as this PID."""

    pid: int


@dataclass(frozen=True)
class Forked:
    """Helper → controller: the monitor for the request runs as `monitor`."""

    monitor: int


@dataclass(frozen=True)
class Refused:
    """Helper → controller: the request was not carried out."""

    error: str


@dataclass(frozen=True)
class Go:
    """Monitor → init stage: the cgroups (or the uid/gid maps) are in place; go on."""


@dataclass(frozen=True)
class UsernsCreated:
    """Namespaces stage → monitor: write the uid/gid maps of process `pid`, then say `Go`."""

    pid: int


@dataclass(frozen=True)
class InitForked:
    """Namespaces stage → monitor: the init (PID 1 of the new PID namespace) is host PID `pid`."""

    pid: int


@dataclass(frozen=True)
class InitReady:
    """Init → monitor: set up, and blocked on the exec fifo."""


@dataclass(frozen=True)
class HooksDue:
    """Init → monitor: set up to just before pivot_root; run `prestart` and `createRuntime`
    (host namespaces) with the init's host PID `pid`, then say `Go`, or kill the init."""

    pid: int


@dataclass(frozen=True)
class HookRan:
    """Monitor → controller (and init → monitor → controller; init → `start` over the exec
    fifo): how one hook of the config ended (executor/hooks.py HookOutcome, field by field)."""

    kind: str
    path: str
    status: int | None
    signal: int | None
    timed_out: bool
    duration: float
    error: str | None


@dataclass(frozen=True)
class Console:
    """Init or exec'd process → monitor → controller: the pty master, with the message (SCM_RIGHTS).

    `name` is the slave's path inside the container (`/dev/pts/N`). The only
    report that carries a file descriptor, and it must carry exactly one."""

    name: str


@dataclass(frozen=True)
class ExecForked:
    """Exec stage → monitor: the process to exec is host PID `pid`."""

    pid: int


@dataclass(frozen=True)
class Failed:
    """Init or exec stage → monitor → controller: `step` failed with `message`; the process is gone."""

    step: str
    message: str

    def __str__(self) -> str:
        return f"{self.step}: {self.message}"


@dataclass(frozen=True)
class Spawned:
    """Monitor → controller: the init is host PID `pid` (create: before it is ready; the
    controller records it at once, so that a crash from here on leaks nothing)."""

    pid: int


@dataclass(frozen=True)
class Ready:
    """Monitor → controller: the init `pid` is set up and waits on its exec fifo."""

    pid: int


@dataclass(frozen=True)
class ExecStarted:
    """Monitor → controller: the exec'd process runs as host PID `pid`, started at `start_time`."""

    pid: int
    start_time: int | None


@dataclass(frozen=True)
class Exited:
    """Monitor → controller (exec), and the exit file of an init: how the process ended.

    `status` None: it could not be observed."""

    status: int | None
    signal: int | None


@dataclass(frozen=True)
class Confirm:
    """Controller → monitor: the container is recorded; the init is no longer at risk of leaking.

    There is no abort message: closing the socket is the abort (the monitor then
    kills the init), so that a controller's crash aborts too."""


Request = Union[CreateRequest, ExecRequest, Ping]
Message = Union[
    CreateRequest, ExecRequest, Ping, Pong, Forked, Refused, Go, UsernsCreated, InitForked, InitReady,
    Console, ExecForked, Failed, Spawned, Ready, ExecStarted, Exited, Confirm, HooksDue, HookRan,
]

_PICKLED: tuple[type, ...] = (CreateRequest, ExecRequest)
_REPORTS: dict[str, type] = {
    cls.__name__: cls
    for cls in (Ping, Pong, Forked, Refused, Go, UsernsCreated, InitForked, InitReady, Console, ExecForked,
                Failed, Spawned, Ready, ExecStarted, Exited, Confirm, HooksDue, HookRan)
}


def _field_types(cls: type) -> dict[str, tuple[type, ...]]:
    """The JSON types each field of a report accepts (its annotation: int, str, or X | None)."""
    hints = typing.get_type_hints(cls)
    accepted: dict[str, tuple[type, ...]] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        accepted[f.name] = typing.get_args(hint) or (hint,)
    return accepted


_FIELD_TYPES = {name: _field_types(cls) for name, cls in _REPORTS.items()}


# --------------------------------------------------------------------------- codec


def encode(message: Message) -> bytes:
    """The bytes of one message: a kind byte, then a pickle (requests) or a tagged JSON object."""
    if isinstance(message, _PICKLED):
        return _PICKLE + pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    name = type(message).__name__
    if _REPORTS.get(name) is not type(message):
        raise ProtocolError(f"protocol: {type(message).__name__} is not a message")
    fields = {f: getattr(message, f) for f in _FIELD_TYPES[name]}
    return _JSON + json.dumps({"type": name, **fields}, separators=(",", ":")).encode()


def decode(data: bytes, *, allow_pickle: bool = False) -> Message:
    """The message in `data`; a pickle only if `allow_pickle` (only the helper reads requests)."""
    kind = data[:1]
    if kind == _PICKLE:
        if not allow_pickle:
            raise ProtocolError("protocol: a request arrived where only reports are accepted")
        message = pickle.loads(memoryview(data)[1:])
        if not isinstance(message, (CreateRequest, ExecRequest)):
            raise ProtocolError(f"protocol: {type(message).__name__} is not a request")
        return message
    if kind != _JSON:
        raise ProtocolError(f"protocol: unknown message kind {kind!r}")
    body = data[1:]
    try:
        obj = json.loads(body)
        name = obj.pop("type")
        types = _FIELD_TYPES[name]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ProtocolError(f"protocol: not a message: {body[:80]!r}") from exc
    if obj.keys() != types.keys():
        raise ProtocolError(f"protocol: {name} needs fields {sorted(types)}, got {sorted(obj)}")
    for key, value in obj.items():
        accepted = types[key]
        if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
            raise ProtocolError(f"protocol: {name}.{key} = {value!r} has the wrong type")
    return _REPORTS[name](**obj)


# --------------------------------------------------------------------------- transport


def pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def _to_memfd(data: bytes) -> int:
    fd = os.memfd_create("corral-message", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)  # the reader sees exactly what was sent
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_memfd(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks: list[bytes] = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            raise ProtocolError("protocol: the message's memfd is shorter than its size")
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def send(sock: socket.socket, message: Message, fds: list[int] | tuple[int, ...] = ()) -> None:
    data = encode(message)
    if len(data) > INLINE_MAX:
        memfd = _to_memfd(data)
        try:
            socket.send_fds(sock, [_MEMFD], [*fds, memfd])
        finally:
            os.close(memfd)
    elif fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


def _recv(sock: socket.socket, max_fds: int, allow_pickle: bool) -> tuple[Message | None, list[int]]:
    data, fds, flags, _addr = socket.recv_fds(sock, INLINE_MAX, max_fds + 1)
    try:
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            raise ProtocolError("protocol: a message or its file descriptors were cut short")
        if not data:
            return None, fds
        if data == _MEMFD:
            if not fds:
                raise ProtocolError("protocol: a memfd message came without its memfd")
            memfd = fds.pop()
            try:
                data = _read_memfd(memfd)
            finally:
                os.close(memfd)
        if len(fds) > max_fds:
            raise ProtocolError(f"protocol: {len(fds)} file descriptors, at most {max_fds} expected")
        return decode(data, allow_pickle=allow_pickle), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def recv(sock: socket.socket) -> Message | None:
    """The next report (never a pickle), or None if the peer closed its end."""
    return _recv(sock, 0, allow_pickle=False)[0]


def recv_report(sock: socket.socket) -> tuple[Message | None, list[int]]:
    """The next report and its fds: one with a `Console`, none with any other (else ProtocolError)."""
    message, fds = _recv(sock, 1, allow_pickle=False)
    if len(fds) != (1 if isinstance(message, Console) else 0):
        for fd in fds:
            os.close(fd)
        raise ProtocolError(f"protocol: {type(message).__name__} came with {len(fds)} file descriptors")
    return message, fds


def recv_request(sock: socket.socket) -> tuple[Message | None, list[int]]:
    """The helper's read: the next request and the fds that came with it (None: the controller left)."""
    return _recv(sock, MAX_FDS, allow_pickle=True)


# --------------------------------------------------------------------------- the exit file
#
# Made by the controller at create, before the init exists: a placeholder
# padded to EXIT_FILE_SIZE bytes. The monitor opens it while the init sets up
# and, when it reaps the init, overwrites it in place through that fd, padded
# to the same size: the status needs no new space, so a run root that has
# filled up meanwhile does not lose it. What a placeholder still says when its
# monitor is gone is how the reader knows the monitor died first.

#: The placeholder's size: any status record fits in it, padded with spaces.
EXIT_FILE_SIZE = 512


@dataclass(frozen=True)
class ExitUnknown:
    """No status in the exit file, and why."""

    reason: str
    pending: bool = False  # the placeholder: the monitor has written nothing (yet)


def _padded(record: Mapping[str, Any]) -> bytes:
    data = json.dumps(dict(record)).encode()
    if len(data) > EXIT_FILE_SIZE:  # only a reason can be long: cut it, keep the record valid
        reason = str(record.get("reason", ""))[: EXIT_FILE_SIZE // 2]
        data = json.dumps({**record, "reason": reason}).encode()[:EXIT_FILE_SIZE]
    return data.ljust(EXIT_FILE_SIZE, b" ")


def create_exit_file(path: str) -> None:
    """The controller's placeholder (OSError if it cannot be made: ENOSPC at create, not at exit)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        data = _padded({"status": None, "signal": None, "pending": True})
        if os.write(fd, data) != len(data):
            raise OSError(28, os.strerror(28), path)  # ENOSPC: a short write
    finally:
        os.close(fd)


def open_exit_file(path: str) -> int | None:
    """The monitor's fd on the placeholder, or None if there is none (then `write_exit_file`)."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return None


def hold_exit_file(fd: int) -> None:
    """A writer's shared lock on the file, held until its process dies: "someone will still write"."""
    fcntl.flock(fd, fcntl.LOCK_SH)


def wait_for_writers(path: str, timeout: float) -> bool:
    """Wait until no process holds the exit file to write it (True), or `timeout` passes (False).

    The kernel drops a dead writer's lock, so a free lock on a placeholder means
    nobody is left who could still write the status.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return True
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)
    finally:
        os.close(fd)  # drops our lock with it


def overwrite_exit_file(fd: int, exited: Exited, reason: str | None = None) -> None:
    """The monitor's write, in place: no new space needed (OSError if it still fails)."""
    record: dict[str, Any] = {"status": exited.status, "signal": exited.signal}
    if reason is not None:
        record["reason"] = reason
    data = _padded(record)
    if os.pwrite(fd, data, 0) != len(data):
        raise OSError(28, os.strerror(28))


def write_exit_file(path: str, exited: Exited) -> None:
    """Written by the monitor as the init is reaped when it holds no placeholder.

    The file keeps the form it always had, ``{"status": .., "signal": ..}``, so
    that a controller reads what a monitor of an earlier corral wrote.
    """
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump({"status": exited.status, "signal": exited.signal}, f)
    os.rename(tmp, path)


def read_exit_record(path: str) -> Exited | ExitUnknown:
    """What the monitor wrote, or why there is no status to read."""
    try:
        with open(path) as f:
            record = json.load(f)
    except FileNotFoundError:
        run_dir = os.path.dirname(path)
        if not os.path.isdir(run_dir):
            return ExitUnknown(f"its run directory {run_dir} is gone (removed by someone else?), and the exit file with it")
        return ExitUnknown(f"the exit file {path} is missing (removed by someone else?)")
    except OSError as exc:
        return ExitUnknown(f"the exit file {path} cannot be read: {exc}")
    except ValueError as exc:
        return ExitUnknown(f"the exit file {path} is not valid JSON ({exc}): damaged?")
    if not isinstance(record, dict):
        return ExitUnknown(f"the exit file {path} holds no status record: damaged?")
    status, sig = record.get("status"), record.get("signal")
    if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (status, sig)):
        return ExitUnknown(f"the exit file {path} holds no status record: damaged?")
    if status is None:
        if record.get("pending"):
            return ExitUnknown("the monitor has not recorded the init's exit", pending=True)
        reason = record.get("reason")
        return ExitUnknown(reason if isinstance(reason, str) and reason else "the monitor could not observe it")
    return Exited(status, sig)


def read_exit_file(path: str) -> Exited | None:
    """What the monitor wrote, or None if there is nothing readable."""
    record = read_exit_record(path)
    return record if isinstance(record, Exited) else None
