"""exec: run a process in a running container, from --process FILE or from arguments.

With arguments, the process starts from the container's own (`process` in its
config: env, user, capabilities, rlimits...) as runc's does; the flags then
override the command, the working directory and the user, add environment
variables and capabilities. With --process the file is the whole process and
those flags are ignored, as runc's getProcess ignores them.

A failure before the process runs exits 255 with "exec failed: ..." (runc's
exec.go: `fatalWithCode(fmt.Errorf("exec failed: %w", err), 255)`; runner.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from contextlib import nullcontext
from typing import TYPE_CHECKING

from corral.cli import terminal
from corral.cli.commands.lifecycle import check_console_socket, hand_over_console, inherited_stdio
from corral.cli.context import Context, write_pid_file
from corral.cli.forwarding import Forwarding
from corral.cli.listen_fds import NAMES as LISTEN_NAMES
from corral.cli.parser import UsageError
from corral.errors import CorralError, InvalidTransition

if TYPE_CHECKING:  # pragma: no cover
    from corral.config import Process
    from corral.statemachine.process import ExecProcess


_USER = re.compile(r"([0-9]+)(?::([0-9]+))?")


def parse_user(text: str) -> tuple[int, int | None]:
    """`UID[:GID]` as numbers (corral does not read the container's /etc/passwd).

    ASCII digits only: Python's int() also reads `+1`, ` 1`, `1_0` and other
    scripts' digits, and a user string read differently by two programs is how
    an exec runs as someone else (crun CVE-2026-30892).
    """
    match = _USER.fullmatch(text)
    if match is None:
        raise UsageError(f"exec: --user {text!r}: only numeric UID[:GID] (ASCII digits) is supported")
    uid = int(match.group(1))
    gid = int(match.group(2)) if match.group(2) is not None else None
    return uid, gid


def _env_name(entry: str) -> str:
    return entry.split("=", 1)[0]


#: The flags that shape the process from arguments: runc ignores them all with --process.
PROCESS_FLAGS = (
    ("env", "--env"), ("cwd", "--cwd"), ("user", "--user"), ("additional_gids", "--additional-gids"),
    ("cap", "--cap"), ("tty", "--tty"), ("no_new_privs", "--no-new-privs"),
    ("apparmor", "--apparmor"), ("process_label", "--process-label"),
)


def ignored_flags(a: argparse.Namespace) -> list[str]:
    """The process flags given beside --process (which runc, and so corral, ignore)."""
    if not a.process:
        return []
    return [flag for attribute, flag in PROCESS_FLAGS if getattr(a, attribute)]


def build_process(a: argparse.Namespace, base: Process) -> Process:
    """The Process to exec from the exec flags, on top of the container's `base` process;
    with --process, the file's process alone (ignored_flags() names what is then ignored)."""
    from corral.config import Capabilities, Process, User

    if a.process:
        source = a.process
        text = sys.stdin.read() if source == "-" else open(source).read()
        return Process.from_json(text, source=source)
    command = list(a.args)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("exec: give the command to run, or --process FILE")
    # Socket activation's LISTEN_FDS/LISTEN_PID=1 are the init's alone (listen_fds.py): the exec'd
    # process is not PID 1 and has none of its fds (runc's exec starts from config.json, without them).
    env = [e for e in base.env if _env_name(e) not in LISTEN_NAMES]
    for entry in a.env:
        if "=" not in entry:
            raise UsageError(f"exec: --env {entry!r}: use KEY=VALUE")
        env = [e for e in env if _env_name(e) != _env_name(entry)] + [entry]
    user = base.user
    if a.user:
        uid, gid = parse_user(a.user)
        user = User(uid=uid, gid=gid if gid is not None else user.gid, additional_gids=user.additional_gids, umask=user.umask)
    if a.additional_gids:  # added to the container's, as runc's -g does
        negative = [gid for gid in a.additional_gids if gid < 0]
        if negative:
            raise UsageError(f"exec: --additional-gids {negative[0]}: must be 0 or more")
        user = dataclasses.replace(user, additional_gids=user.additional_gids + tuple(a.additional_gids))
    process = dataclasses.replace(
        base,
        args=tuple(command),
        env=tuple(env),
        cwd=a.cwd or base.cwd,
        user=user,
        terminal=bool(a.tty),
        no_new_privileges=base.no_new_privileges or bool(a.no_new_privs),
    )
    caps = [c.upper() if c.upper().startswith("CAP_") else "CAP_" + c.upper() for c in a.cap]
    if caps:
        current = process.capabilities or Capabilities((), (), (), (), ())

        def add(names: tuple[str, ...]) -> tuple[str, ...]:
            return names + tuple(c for c in caps if c not in names)

        # Not to the inheritable set: runc stopped that in 1.1.2 (CVE-2022-29162, an exec'd
        # program whose file has inheritable capabilities would gain them at its execve).
        process = dataclasses.replace(
            process,
            capabilities=Capabilities(
                bounding=add(current.bounding),
                effective=add(current.effective),
                permitted=add(current.permitted),
                inheritable=current.inheritable,
                ambient=current.ambient,
            ),
        )
    return process


#: exec --ignore-paused --tty into a paused container. The process's terminal is made by the
#: process itself, in the container, and a frozen cgroup lets it do nothing until resumed: runc
#: 1.1 then blocks (its exec waits for the console, ignoring SIGTERM) until someone resumes the
#: container. corral refuses at once instead, before anything is made, and says what to do.
_PAUSED_TERMINAL = (
    "container {id} is paused: a terminal (--tty, or terminal in --process) cannot be set up in it "
    "until it is resumed; run `resume {id}` first, or exec without a terminal"
)


def exec_(ctx: Context) -> int:
    args = ctx.args
    if args.preserve_fds < 0:
        raise UsageError(f"exec: --preserve-fds {args.preserve_fds}: give a count of descriptors, 0 or more")
    ignored = ignored_flags(args)
    if ignored:
        ctx.log.debug(f"exec: {', '.join(ignored)} ignored: --process gives the whole process (as runc)")
    for flag in ("process_label", "apparmor"):
        if getattr(args, flag) and not args.process:
            raise CorralError(f"exec: --{flag.replace('_', '-')}: not supported by corral")
    if args.cgroup:
        raise CorralError("exec: --cgroup: joining a sub-cgroup is not supported by corral")
    box = ctx.load(detached=bool(args.detach))
    process = build_process(args, box.config.process)
    if args.console_socket and not args.detach:
        # runc's checkTerminal, word for word (runc adds "exec failed: "): in the foreground the
        # terminal, if any, is this command's own, so a socket would never be used.
        raise CorralError("cannot use console socket if runc will not detach or allocate tty")
    if process.terminal and args.ignore_paused and box.state.value == "paused":
        raise CorralError(_PAUSED_TERMINAL.format(id=box.id))
    host: int | None = None  # runc's foreground terminal: a terminal, no socket, not detached
    if process.terminal and not args.console_socket:
        if args.detach:
            raise CorralError("exec: --tty with --detach: pass --console-socket SOCKET to receive the terminal")
        host = terminal.host_terminal()
        console = True
    else:
        console = check_console_socket(process.terminal, args.console_socket, "exec: --tty (or terminal in --process)")
    # --preserve-fds N: this process's 3..3+N-1 become the process's 3..3+N-1, beside a terminal too.
    stdio = inherited_stdio(args.preserve_fds)
    if console:
        stdio = dataclasses.replace(stdio, stdin=None, stdout=None, stderr=None)  # the terminal is 0, 1 and 2
    with Forwarding(ctx.log) if not args.detach else nullcontext() as forwarding:
        try:
            handle = box.exec(process, stdio=stdio, console=console, ignore_paused=bool(args.ignore_paused))
        except InvalidTransition as exc:  # runc's words: containerd shows them
            if host is not None:
                os.close(host)
            if exc.state == "paused":
                raise CorralError("cannot exec in a paused container (use --ignore-paused to override)") from exc
            if exc.state == "stopped":
                raise CorralError("cannot exec in a stopped container") from exc
            raise
        except BaseException:
            if host is not None:
                os.close(host)
            raise
        return _after_exec(ctx, handle, host, forwarding)


def _after_exec(ctx: Context, handle: ExecProcess, host: int | None, forwarding: Forwarding | None) -> int:
    """Hand the terminal over or proxy it, write the pid file, and in the foreground wait."""
    args = ctx.args
    master, handle.console_fd = handle.console_fd, None
    if master is not None and host is None:
        hand_over_console(args.console_socket, master)  # unsent: closing the master hangs the process up
    ctx.log.debug(f"exec in {ctx.container_id}: pid {handle.pid}")
    if args.pid_file:
        write_pid_file(args.pid_file, handle.pid)
    if forwarding is None:
        return 0
    forwarding.to(handle.pid)
    if master is not None and host is not None:
        try:
            terminal.proxy(master, host)
        finally:
            os.close(master)
    status = handle.wait()
    return 255 if status is None else status
