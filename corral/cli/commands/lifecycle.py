"""create, start, run, delete, kill, pause, resume: the transitions, through the library.

Messages containerd's shim matches on are kept as runc's: "does not exist"
(a delete of a container runc already removed is not an error to it) and
"container not running" (a kill of a stopped container is "process already
finished").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from corral.cli.context import Context, write_pid_file
from corral.cli.fast import try_fire
from corral.errors import ContainerExists, ContainerNotFound, CorralError, InvalidTransition

if TYPE_CHECKING:  # pragma: no cover
    from corral.cli.fast_create import EarlyHelper
    from corral.statemachine.container import Container
    from corral.statemachine.quick_create import Created
    from corral.types import Stdio

# create's, kill's and run's modules (fast_create, signals, dataclasses) are imported where they
# are used: start, pause and resume, one process each under containerd, need none of them.


def _load(ctx: Context) -> Container:
    return ctx.load()


def inherited_stdio(preserve_fds: int = 0) -> Stdio:
    """This process's fds 0, 1 and 2, those that are open (containerd hands its pipes over this way);
    with `preserve_fds` N, also its fds 3 to 3+N-1, the container's 3 to 3+N-1 (runc's --preserve-fds)."""
    from corral.types import Stdio

    def open_fd(fd: int) -> int | None:
        try:
            os.fstat(fd)
        except OSError:
            return None
        return fd

    return Stdio(open_fd(0), open_fd(1), open_fd(2), extra_fds=tuple(range(3, 3 + preserve_fds)))


def check_console_socket(terminal: bool, socket_path: str, what: str) -> bool:
    """Whether to ask the library for a console: a terminal needs a socket to go to, and back."""
    if terminal and not socket_path:  # runc: "cannot allocate tty if runc will detach without setting console socket"
        raise CorralError(
            f"{what} asks for a terminal and this command detaches: pass --console-socket SOCKET to receive it "
            "(or set it to false)"
        )
    if socket_path and not terminal:
        raise CorralError(f"--console-socket: {what} asks for no terminal (set it to true)")
    return terminal


def hand_over_console(socket_path: str, master: int, undo: Callable[[], None] | None = None) -> None:
    """Send the pty master over the console socket (runc's protocol) and close ours; `undo` if it cannot go."""
    from corral.executor.console_socket import send_console

    try:
        send_console(socket_path, master)
    except CorralError:
        if undo is not None:
            undo()
        raise
    finally:
        os.close(master)


def _refuse_unsupported(ctx: Context) -> None:
    args = ctx.args
    if ctx.args.systemd_cgroup:
        raise CorralError("--systemd-cgroup: corral manages cgroupfs directly; the systemd cgroup driver is not supported")
    if args.no_pivot:
        ctx.log.debug("--no-pivot ignored: corral always uses pivot_root")
    if args.no_new_keyring:
        ctx.log.debug("--no-new-keyring ignored: corral does not create a session keyring")


def _refuse_existing(ctx: Context) -> None:
    """A live id is refused first, by id, as runc does: the library would otherwise say
    what else is wrong with the bundle (its cgroup is in use, by that very container)."""
    store = ctx.readonly()
    if store is None:
        return  # the library's own check stands
    with store:
        view = store.find(ctx.container_id)
    if view is not None and view.live and not ctx.needs_recovery(view):
        raise ContainerExists(ctx.container_id, view.state)  # else recovery may free the id first


def _create(ctx: Context) -> tuple[Container | Created, int | None]:
    """The container, and the command's own terminal when a foreground `run` keeps the pty master
    (box.console_fd) to join it to that terminal (runc's tty.go: a terminal, no console socket)."""
    # create returns while the init waits; run in the foreground waits for it itself.
    detached = ctx.args.command == "create" or bool(ctx.args.detach)
    # The one-shot path (fast_create.py) starts the spawn helper first, to start while this parses.
    from corral.cli.fast_create import EarlyHelper

    helper = EarlyHelper.for_create(ctx) if detached else None
    host: list[int] = []
    try:
        box = _create_with(ctx, detached, helper, host)
    except BaseException:
        for fd in host:
            os.close(fd)
        raise
    finally:
        if helper is not None:
            helper.close()  # not adopted: the library's path was taken, or create failed first
    if box.console_fd is not None and not host:  # with `host`, the master stays in box.console_fd
        hand_over_console(ctx.args.console_socket, box.console_fd, lambda: _destroy(ctx, box))
        box.console_fd = None
    if ctx.args.pid_file:
        pid = box.pid
        assert pid is not None
        try:
            write_pid_file(ctx.args.pid_file, pid)
        except OSError:
            for fd in (*host, box.console_fd):
                if fd is not None:
                    os.close(fd)
            _destroy(ctx, box)
            raise
    ctx.log.debug(f"created {box.id}: init {box.pid}")
    return box, host[0] if host else None


def _create_with(ctx: Context, detached: bool, helper: EarlyHelper | None, host: list[int]) -> Container | Created:
    """Create from the bundle; a foreground terminal without a console socket appends the
    command's own terminal to `host` (runc's initHostConsole: before anything exists)."""
    from corral.cli import terminal
    from corral.cli.listen_fds import announce, listen_fds
    from corral.config import Config
    from corral.records import replace  # not dataclasses': create imports no `inspect`

    _refuse_unsupported(ctx)
    _refuse_existing(ctx)
    bundle = os.path.abspath(ctx.args.bundle or os.getcwd())
    config = Config.from_bundle(bundle)
    if config.process.terminal and not ctx.args.console_socket and not detached:
        host.append(terminal.host_terminal())
        console = True
    else:
        console = check_console_socket(config.process.terminal, ctx.args.console_socket, "process.terminal in config.json")
    # Socket activation's fds 3..3+L-1 first, then --preserve-fds's (runc's order): one run from 3.
    listening = listen_fds()
    if listening:
        ctx.log.debug(f"LISTEN_FDS={listening}: passing fds 3..{2 + listening} for socket activation")
        config = replace(config, process=announce(config.process, listening))
    stdio = inherited_stdio(listening + ctx.args.preserve_fds)
    if console:
        stdio = replace(stdio, stdin=None, stdout=None, stderr=None)  # the terminal is 0, 1 and 2
    if detached:
        from corral.cli.fast_create import try_create

        made = try_create(ctx, config, stdio, console, detached=detached, helper=helper)
        if made is not None:
            return made
    if helper is not None:
        helper.close()  # the library starts its own, once it needs one
    return ctx.runtime(detached=detached).create(ctx.container_id, config, stdio=stdio, console=console)


def _destroy(ctx: Context, box: Container | Created) -> None:
    """Undo a create (forced destroy), by the path that made it."""
    from corral.statemachine.quick_create import Created

    if isinstance(box, Created):
        from corral.cli.fast_create import try_delete

        if not try_delete(ctx, force=True):  # the library then destroys it
            _load(ctx).destroy(force=True)
    else:
        box.destroy(force=True)


def create(ctx: Context) -> int:
    _create(ctx)  # never a terminal of its own: create detaches
    return 0


def start(ctx: Context) -> int:
    if not try_fire(ctx, "start"):
        _load(ctx).start()
    return 0


def pause(ctx: Context) -> int:
    if not try_fire(ctx, "pause"):
        _load(ctx).pause()
    return 0


def resume(ctx: Context) -> int:
    if not try_fire(ctx, "resume"):
        _load(ctx).resume()
    return 0


def kill(ctx: Context) -> int:
    from corral.cli.signals import parse_signal

    sig = parse_signal(ctx.args.signal)
    try:
        if not try_fire(ctx, "signal", sig=sig, all_processes=ctx.args.all):
            _load(ctx).signal(sig, all_processes=ctx.args.all)
    except InvalidTransition as exc:
        if exc.state == "stopped":
            raise CorralError("container not running") from exc
        raise
    return 0


def delete(ctx: Context) -> int:
    """runc's delete: stopped → removed; created → killed and removed (as runc and crun do);
    running or paused only with --force. --force of a missing container is success."""
    try:
        from corral.cli.fast_create import try_delete

        if try_delete(ctx, force=ctx.args.force):
            return 0
        box = _load(ctx)
    except ContainerNotFound:
        if ctx.args.force:
            ctx.log.debug(f"delete --force: {ctx.container_id} does not exist")
            return 0
        raise
    state = box.state.value
    if state in ("running", "paused") and not ctx.args.force:
        raise CorralError(f"cannot delete container {box.id} that is not stopped: {state}")
    box.destroy(force=state != "stopped")
    return 0


def run(ctx: Context) -> int:
    from contextlib import nullcontext

    from corral.cli.forwarding import Forwarding
    from corral.statemachine.quick_create import Created

    if ctx.args.console_socket and not ctx.args.detach:
        # runc's checkTerminal, word for word, before anything exists: in the foreground the
        # terminal, if any, is the command's own, so a socket would never be used.
        raise CorralError("cannot use console socket if runc will not detach or allocate tty")
    # In the foreground the signals to pass on are caught from before the container exists (as
    # runc's handler is): one that came between the start and the wait would otherwise kill this
    # command and leave the container running. Held until the init runs, then passed on.
    with nullcontext() if ctx.args.detach else Forwarding(ctx.log) as forwarding:
        made, host = _create(ctx)
        if isinstance(made, Created):  # run --detach on the one-shot path: start it the same way
            try:
                if not try_fire(ctx, "start"):
                    _load(ctx).start()
            except BaseException:
                _destroy(ctx, made)
                raise
            return 0
        box = made
        master: int | None = None
        if host is not None:  # the pty master is this command's, for its own terminal
            master, box.console_fd = box.console_fd, None
        try:
            box.start()
        except BaseException:
            for fd in (master, host):
                if fd is not None:
                    os.close(fd)
            box.destroy(force=True)
            raise
        if forwarding is None:
            return 0
        assert box.pid is not None
        forwarding.to(box.pid)
        return _wait_in_foreground(ctx, box, master, host)


def _wait_in_foreground(ctx: Context, box: Container, master: int | None = None, host: int | None = None) -> int:
    """Wait for the init (run() passes the signals on meanwhile); then delete it (unless --keep).
    With a pty `master` and the command's terminal `host`, first copy between them until the
    container's side of the pty closes (terminal.py; it closes `host`)."""
    from corral.cli import terminal

    if master is not None and host is not None:
        try:
            terminal.proxy(master, host)  # SIGWINCH resizes the pty meanwhile, as runc's
        finally:
            os.close(master)
    status = box.wait()
    if not ctx.args.keep:
        box.destroy()
    if status is None:
        ctx.log.warning(f"container {box.id}: its exit status could not be observed")
        return 255
    return status
