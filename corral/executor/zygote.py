"""The spawn helper: a pre-imported, single-threaded process that forks monitors.

The controller may have threads, so it must never run Python in a forked copy
of itself; and starting a fresh interpreter per container costs tens of
milliseconds before any kernel work. So each executor starts this helper once
(`python -S -m corral.executor.zygote FD`), with everything the monitor and the
init need already imported, and asks it over a SOCK_SEQPACKET socket to fork.
A fork of this small, single-threaded process costs well under a millisecond.

It exits when the controller's end of the socket closes (the controller exited
or crashed): nothing else keeps it alive. Monitors it forked are not its
responsibility after that; they are reparented and keep their containers.
"""

from __future__ import annotations

import os
import signal
import socket
import sys

from corral.executor import monitor, protocol  # noqa: F401  (pre-import for the children)
from corral.executor import credentials, fds as fd_hygiene, init, rootfs, sealed, syscalls  # noqa: F401
import corral.config  # noqa: F401

HANDLERS = {"create": monitor.run_create, "exec": monitor.run_exec}


def serve(sock: socket.socket) -> None:
    # Monitors are reaped automatically; they report to the controller directly.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            request, fds = protocol.recv_with_fds(sock)
        except InterruptedError:
            continue
        if request is None:
            return
        op = str(request.get("op"))
        if op == "ping":
            protocol.send(sock, {"ok": True, "pid": os.getpid()})
            continue
        handler = HANDLERS.get(op)
        if handler is None or not fds:
            for fd in fds:
                os.close(fd)
            protocol.send(sock, {"ok": False, "error": f"unknown request {op!r}"})
            continue
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            protocol.send(sock, {"ok": False, "error": f"fork: {exc}"})
            continue
        if pid == 0:
            try:
                sock.close()
                fd_hygiene.close_all_except([0, 1, 2, *fds])
                ctl = socket.socket(fileno=fds[0])
                handler(request, ctl, fds[1:])
            finally:
                os._exit(1)
        for fd in fds:
            os.close(fd)
        protocol.send(sock, {"ok": True, "monitor": pid})


def main() -> None:
    sealed.require_sealed()
    fd = int(sys.argv[1])
    sock = socket.socket(fileno=fd)
    serve(sock)


if __name__ == "__main__":
    main()
