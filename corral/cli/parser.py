"""The argument parser: runc's global flags, its commands and their flags.

Each command names the function that runs it as "module:function" under
corral.cli.commands, imported only when that command runs. A flag runc has
but corral cannot honour is still accepted, so that callers written for runc
get a clear error from the command (or, when it changes nothing that corral
does, is ignored and logged at debug level) instead of a usage error.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, NoReturn

from corral.errors import CorralError


class UsageError(CorralError):
    """The command line itself is wrong (exit status 1, as runc's)."""


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter without its `import shutil` (for the terminal width) on every
    parse: argparse builds formatters while adding arguments, and a fast command pays it."""

    def __init__(self, prog: str) -> None:
        columns = os.environ.get("COLUMNS", "")
        super().__init__(prog, width=(int(columns) if columns.isdigit() else 100) - 2)


class Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _command(
    sub: Any, name: str, target: str, help_text: str, usage_args: str = ""
) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(command=name, target=target)
    return p


def _id(p: argparse.ArgumentParser) -> None:
    p.add_argument("container_id", metavar="container-id", help="the container's id")


def _create_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-b", "--bundle", default="", help="the bundle directory (default: the current one)")
    p.add_argument("--console-socket", default="", help="AF_UNIX socket to send the pty master to (process.terminal: true)")
    p.add_argument("--pid-file", default="", help="write the init's PID to this file")
    p.add_argument("--no-pivot", action="store_true", help="accepted for runc compatibility; corral always pivots")
    p.add_argument("--no-new-keyring", action="store_true", help="accepted for runc compatibility; corral creates no session keyring")
    p.add_argument("--preserve-fds", type=int, default=0, help="pass N more fds (3..3+N-1) to the process")


def build_parser() -> Parser:
    parser = Parser(
        prog="corral",
        description="corral: a Linux container runtime with runc's command line.",
    )
    parser.add_argument("-v", "--version", action="store_true", help="print the version")
    parser.add_argument("--debug", action="store_true", help="log debug messages")
    parser.add_argument("--log", default=None, help="log file (default: stderr)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="log format")
    parser.add_argument("--root", default=None, help="the store and run state (default: /var/lib/corral and /run/corral)")
    parser.add_argument("--criu", default="criu", help=argparse.SUPPRESS)
    parser.add_argument("--systemd-cgroup", action="store_true", help="use systemd cgroups (not supported: an error)")
    parser.add_argument("--rootless", default="auto", choices=("auto", "true", "false"), help="rootless mode (only 'false' is supported)")
    parser.add_argument(
        "--parent",
        choices=("monitor", "caller"),
        default=None,
        help="who becomes the parent of the init (create, run --detach) and of exec --detach's process: "
        "corral's monitor, which records the exit status (corral's default), or the caller's subreaper, as "
        "with runc (corral-runc's default: containerd's shim and conmon reap the PID in the pid file)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p = _command(sub, "create", "lifecycle:create", "create a container (its init waits for start)")
    _create_flags(p)
    _id(p)

    p = _command(sub, "start", "lifecycle:start", "start the user process of a created container")
    _id(p)

    p = _command(sub, "run", "lifecycle:run", "create and start a container; in the foreground, wait for it")
    _create_flags(p)
    p.add_argument("-d", "--detach", action="store_true", help="do not wait for the container")
    p.add_argument("--keep", action="store_true", help="do not delete the container after it exits")
    p.add_argument("--no-subreaper", action="store_true", help="accepted for runc compatibility")
    _id(p)

    p = _command(sub, "delete", "lifecycle:delete", "delete a container and what it holds")
    p.add_argument("-f", "--force", action="store_true", help="kill it first if it still runs; a missing container is not an error")
    _id(p)

    p = _command(sub, "kill", "lifecycle:kill", "send a signal to the container's init (default SIGTERM)")
    p.add_argument("-a", "--all", action="store_true", help="send it to every process of the container")
    _id(p)
    p.add_argument("signal", nargs="?", default="SIGTERM", help="a name (KILL, SIGKILL) or a number")

    p = _command(sub, "pause", "lifecycle:pause", "freeze every process of the container")
    _id(p)
    p = _command(sub, "resume", "lifecycle:resume", "thaw a paused container")
    _id(p)

    p = _command(sub, "state", "inspect:state", "print the OCI state of a container as JSON")
    _id(p)

    p = _command(sub, "ps", "inspect:ps", "list the processes of a container")
    p.add_argument("-f", "--format", choices=("table", "json"), default="table")
    _id(p)
    p.add_argument("ps_args", nargs=argparse.REMAINDER, help="options for ps(1) (default -ef)")

    p = _command(sub, "list", "inspect:list_", "list the containers")
    p.add_argument("-f", "--format", choices=("table", "json"), default="table")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the ids")

    p = _command(sub, "events", "inspect:events", "print the container's resource usage as JSON events")
    p.add_argument("--interval", default="5s", help="time between stats events (a Go duration: 5s, 100ms)")
    p.add_argument("--stats", action="store_true", help="print one stats event and exit")
    _id(p)

    p = _command(sub, "exec", "exec:exec_", "run a process in a running container")
    p.add_argument("--console-socket", default="", help="AF_UNIX socket to send the pty master to (with --tty)")
    p.add_argument("--cwd", default="", help="the working directory in the container")
    p.add_argument("-e", "--env", action="append", default=[], help="add an environment variable K=V")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a terminal (needs --console-socket)")
    p.add_argument("-u", "--user", default="", help="UID[:GID]")
    p.add_argument("-g", "--additional-gids", action="append", type=int, default=[])
    p.add_argument("-p", "--process", default="", help="an OCI process JSON file (replaces the arguments)")
    p.add_argument("-d", "--detach", action="store_true", help="do not wait for the process")
    p.add_argument("--pid-file", default="")
    p.add_argument("--process-label", default="")
    p.add_argument("--apparmor", default="")
    p.add_argument("--no-new-privs", action="store_true")
    p.add_argument("-c", "--cap", action="append", default=[], help="add a capability")
    p.add_argument("--preserve-fds", type=int, default=0)
    p.add_argument("--cgroup", action="append", default=[])
    p.add_argument("--ignore-paused", action="store_true")
    _id(p)
    p.add_argument("args", nargs=argparse.REMAINDER, help="the command and its arguments")

    p = _command(sub, "spec", "spec:spec", "write a new config.json (busybox 'sh') in the bundle")
    p.add_argument("-b", "--bundle", default="", help="where to write config.json (default: here)")
    p.add_argument("--rootless", action="store_true", help="a spec for a container in a user namespace mapping root to the caller (runc's)")

    _command(sub, "features", "spec:features", "print what this runtime supports (OCI features JSON)")

    p = _command(sub, "update", "update:update", "change a container's resource limits")
    p.add_argument("-r", "--resources", default="", help="a JSON file (- for stdin) of linux.resources")
    for flag in (
        "--blkio-weight", "--cpu-period", "--cpu-quota", "--cpu-share", "--cpu-rt-period",
        "--cpu-rt-runtime", "--cpuset-cpus", "--cpuset-mems", "--kernel-memory", "--kernel-memory-tcp",
        "--memory", "--memory-reservation", "--memory-swap", "--pids-limit", "--l3-cache-schema",
        "--mem-bw-schema",
    ):
        p.add_argument(flag, *(["--cpu-shares"] if flag == "--cpu-share" else []), default=None)
    _id(p)
    return parser


def parse_duration(text: str) -> float:
    """A Go duration ("5s", "100ms", "1m30s", "1.5h") in seconds, as runc's --interval takes it."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    rest, total = text.strip(), 0.0
    if not rest:
        raise UsageError(f"invalid duration {text!r}")
    if rest == "0":
        return 0.0
    while rest:
        i = 0
        while i < len(rest) and (rest[i].isdigit() or rest[i] == "."):
            i += 1
        j = i
        while j < len(rest) and not (rest[j].isdigit() or rest[j] == "."):
            j += 1
        number, unit, rest = rest[:i], rest[i:j], rest[j:]
        try:
            total += float(number) * units[unit]
        except (ValueError, KeyError):
            raise UsageError(f"invalid duration {text!r}") from None
    return total
