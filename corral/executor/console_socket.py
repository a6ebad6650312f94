"""runc's `--console-socket` protocol: a terminal's master handed to another process.

A caller that wants a container's terminal (containerd's shim, conmon, a test)
listens on an AF_UNIX stream socket and passes its path; the runtime connects,
sends one message whose bytes are the terminal's name and whose one SCM_RIGHTS
descriptor is the pty master, and closes. runc sends the same (its
`utils.SendFile`), so a receiver written for runc receives corral's master.

Both ends are here so that the command line only wires them: `send_console`
for `create/run/exec --console-socket`, `receive_console` for a caller (and the
tests) on the listening side. The standard library only.
"""

from __future__ import annotations

import os
import socket
import stat
from typing import NamedTuple

from corral.errors import CorralError

#: The longest name accepted with the descriptor (runc's receivers read 4 KiB).
MAX_NAME = 4096


class ConsoleSocketError(CorralError):
    """The console socket could not be reached, or what came over it was not a terminal."""


class ReceivedConsole(NamedTuple):
    """What `receive_console` got: the master (the caller's to close) and the name sent with it."""

    fd: int
    name: str


def send_console(socket_path: str, master_fd: int, name: str = "/dev/ptmx") -> None:
    """Connect to `socket_path` and send `master_fd` with `name` as the message (runc's protocol).

    The sender keeps its own `master_fd` (the kernel duplicates it into the message):
    close it after, as runc does, so that the receiver is its only holder.
    """
    data = name.encode() or b"\0"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(socket_path)
            socket.send_fds(sock, [data], [master_fd])
    except OSError as exc:
        raise ConsoleSocketError(f"--console-socket {socket_path}: cannot send the terminal: {exc.strerror or exc}") from exc


def receive_console(listener: socket.socket, timeout: float | None = None) -> ReceivedConsole:
    """Accept one connection on `listener` and take the terminal sent over it.

    Refuses a message without exactly one descriptor, or with one that is not a
    character device (what a pty master is), closing whatever came.
    """
    listener.settimeout(timeout)
    try:
        conn, _ = listener.accept()
    except (TimeoutError, socket.timeout) as exc:
        raise ConsoleSocketError(f"no terminal arrived on the console socket within {timeout:g} s") from exc
    with conn:
        conn.settimeout(timeout)
        data, fds, flags, _ = socket.recv_fds(conn, MAX_NAME, 2)
    if len(fds) != 1 or flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        for fd in fds:
            os.close(fd)
        raise ConsoleSocketError(f"the console socket received {len(fds)} descriptors, not one terminal")
    fd = fds[0]
    os.set_inheritable(fd, False)
    if not stat.S_ISCHR(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConsoleSocketError("the console socket received a descriptor that is not a terminal")
    return ReceivedConsole(fd, data.rstrip(b"\0").decode(errors="replace"))
