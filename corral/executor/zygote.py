"""The spawn helper: a pre-imported, single-threaded process that forks monitors.

The controller may have threads, so it must never run Python in a forked copy
of itself; and starting a fresh interpreter per container costs tens of
milliseconds before any kernel work. So each executor starts this helper once
(`python -S -P -c "from corral.executor.zygote import main; main()" FD`, launch.py),
with everything the monitor and the init need already imported, and asks it
over a SOCK_SEQPACKET socket to fork.
A fork of this small, single-threaded process costs well under a millisecond.

It exits when the controller's end of the socket closes (the controller exited
or crashed): nothing else keeps it alive. Monitors it forked are not its
responsibility after that; they are reparented and keep their containers.

It is started with `os.posix_spawn` (launch.py), which closes nothing: `main`
first checks it runs sealed and closes every descriptor but 0-2 and its socket
(the caller's stdio, `--preserve-fds`, `LISTEN_FDS` of the command that started
it), and only then imports what the children need.
"""

from __future__ import annotations

import os
import sys

from corral.executor import fds as fd_hygiene, sealed

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import socket


def preload() -> None:
    """Import what every monitor and init needs, once, before any fork: not `executor/hooks.py`
    (nor `subprocess`), which only a config with hooks needs (`serve` imports it then)."""
    from corral.executor import monitor, observer, protocol  # noqa: F401
    from corral.executor import credentials, init, rootfs, syscalls  # noqa: F401
    import corral.config  # noqa: F401


def serve(sock: socket.socket) -> None:
    preload()
    import signal
    import socket

    from corral.executor import monitor, observer, protocol
    from corral.executor.protocol import CreateRequest, ExecRequest, Forked, Ping, Pong, Refused

    # Monitors are reaped automatically; they report to the controller directly.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            request, fds = protocol.recv_request(sock)
        except InterruptedError:
            continue
        except protocol.ProtocolError as exc:  # the fds were closed; the helper goes on serving
            protocol.send(sock, Refused(str(exc)))
            continue
        if request is None:
            return
        if isinstance(request, Ping):
            for fd in fds:
                os.close(fd)
            protocol.send(sock, Pong(os.getpid()))
            continue
        # The extra descriptors (Stdio.extra_fds) follow the socket and the stdio.
        wanted = len(fds) >= 4
        if not isinstance(request, (CreateRequest, ExecRequest)) or not wanted:
            for fd in fds:
                os.close(fd)
            protocol.send(sock, Refused(f"unexpected request {request!r} with {len(fds)} fds"))
            continue
        if isinstance(request, CreateRequest):
            observer.preload(request)  # once here, shared by every monitor forked after
            if request.config.hooks:
                # Only a config with hooks needs hooks.py (and `subprocess`): imported here, once,
                # before the fork, so that neither the monitor nor the init (in its namespaces,
                # after pivot_root for startContainer) reads it from disk.
                from corral.executor import hooks  # noqa: F401
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            protocol.send(sock, Refused(f"fork: {exc}"))
            continue
        if pid == 0:
            try:
                sock.close()
                fd_hygiene.close_all_except([0, 1, 2, *fds])
                ctl = socket.socket(fileno=fds[0])
                if isinstance(request, CreateRequest):
                    monitor.run_create(request, ctl, fds[1:])
                else:
                    monitor.run_exec(request, ctl, fds[1:])
            finally:
                os._exit(1)
        for fd in fds:
            os.close(fd)
        del request  # a large config need not stay in this long-lived process until the next one
        protocol.send(sock, Forked(pid))


def main() -> None:
    sealed.require_sealed()
    fd = int(sys.argv[1])
    fd_hygiene.close_all_except([0, 1, 2, fd])  # what posix_spawn let through (launch.py)
    import socket

    from corral.executor import monitor

    sock = socket.socket(fileno=fd)
    monitor.name_process("corral-helper")
    serve(sock)
    # The controller closed its end: nothing is left to do, and nothing to flush. Tearing down
    # the interpreter (every module the children needed) costs tens of milliseconds, which a
    # controller closing its executor waits for (Helper._stop): a one-shot `create` pays it.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
