"""The typed messages between the controller, the spawn helper, the monitor and the init.

One module, imported by all four, so that the contract between three processes
is written once: every message is a class here, and every reader
uses its attributes. The messages with fields are named tuples (built in a fraction of
a dataclass's time: the command line's `create` and the spawn helper import this
module before their first message); the four without fields stay frozen dataclasses,
since an empty tuple is false. Readers dispatch on the type (`isinstance`), never on
equality, which for named tuples ignores the type.

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

import fcntl
import json
import os
import pickle
import socket
import typing
from collections.abc import Mapping
from typing import NamedTuple, Union

from corral.config import Config, Process
from corral.errors import ExecutorError
from corral.executor.exitfile import (  # noqa: F401  (re-exported: the exit file is the monitor's report too)
    EXIT_FILE_SIZE, Exited, ExitUnknown, create_exit_file, hold_exit_file, open_exit_file, overwrite_exit_file,
    read_exit_file, read_exit_record, wait_for_writers, write_exit_file,
)
from corral.executor.interface import Recorder
from corral.executor.seccomp import CompiledFilter
from corral.records import record
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


class CreateRequest(NamedTuple):
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


class ExecRequest(NamedTuple):
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


@record
class Ping:
    """Controller → helper: are you up? Answered by `Pong`."""


# --------------------------------------------------------------------------- reports (JSON)


class Pong(NamedTuple):
    """Helper → controller: up, as this PID."""

    pid: int


class Forked(NamedTuple):
    """Helper → controller: the monitor for the request runs as `monitor`."""

    monitor: int


class Refused(NamedTuple):
    """Helper → controller: the request was not carried out."""

    error: str


@record
class Go:
    """Monitor → init stage: the cgroups (or the uid/gid maps) are in place; go on."""


class UsernsCreated(NamedTuple):
    """Namespaces stage → monitor: write the uid/gid maps of process `pid`, then say `Go`."""

    pid: int


class InitForked(NamedTuple):
    """Namespaces stage → monitor: the init (PID 1 of the new PID namespace) is host PID `pid`."""

    pid: int


@record
class InitReady:
    """Init → monitor: set up, and blocked on the exec fifo."""


class HooksDue(NamedTuple):
    """Init → monitor: set up to just before pivot_root; run `prestart` and `createRuntime`
    (host namespaces) with the init's host PID `pid`, then say `Go`, or kill the init."""

    pid: int


class HookRan(NamedTuple):
    """Monitor → controller (and init → monitor → controller; init → `start` over the exec
    fifo): how one hook of the config ended (executor/hooks.py HookOutcome, field by field)."""

    kind: str
    path: str
    status: int | None
    signal: int | None
    timed_out: bool
    duration: float
    error: str | None


class Console(NamedTuple):
    """Init or exec'd process → monitor → controller: the pty master, with the message (SCM_RIGHTS).

    `name` is the slave's path inside the container (`/dev/pts/N`). The only
    report that carries a file descriptor, and it must carry exactly one."""

    name: str


class ExecForked(NamedTuple):
    """Exec stage → monitor: the process to exec is host PID `pid`."""

    pid: int


class Failed(NamedTuple):
    """Init or exec stage → monitor → controller: `step` failed with `message`; the process is gone."""

    step: str
    message: str

    def __str__(self) -> str:
        return f"{self.step}: {self.message}"


class Spawned(NamedTuple):
    """Monitor → controller: the init is host PID `pid` (create: before it is ready; the
    controller records it at once, so that a crash from here on leaks nothing)."""

    pid: int


class Ready(NamedTuple):
    """Monitor → controller: the init `pid` is set up and waits on its exec fifo."""

    pid: int


class ExecStarted(NamedTuple):
    """Monitor → controller: the exec'd process runs as host PID `pid`, started at `start_time`."""

    pid: int
    start_time: int | None


@record
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
    hints = typing.get_type_hints(cls)  # in field order, for a dataclass and a named tuple (exitfile.Exited) alike
    return {name: typing.get_args(hint) or (hint,) for name, hint in hints.items()}


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
