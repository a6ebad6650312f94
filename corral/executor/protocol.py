"""Messages between the controller, the spawn helper, the monitor and the init.

One JSON object per SOCK_SEQPACKET message: the kernel keeps message
boundaries, so there is no framing to get wrong, and file descriptors travel
with a message (SCM_RIGHTS). A closed peer reads as None: that is how each
side learns that the other died.
"""

from __future__ import annotations

import json
import socket
from typing import Any

MAX_MESSAGE = 1 << 20
MAX_FDS = 16


def pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | tuple[int, ...] = ()) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


def recv(sock: socket.socket) -> dict[str, Any] | None:
    data = sock.recv(MAX_MESSAGE)
    return json.loads(data) if data else None


def recv_with_fds(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
    return (json.loads(data) if data else None), fds
