"""The command line's front door: the calls containerd makes, recognised before argparse.

containerd runs one runtime process per call, and for `state` or `kill` the
interpreter's start and the imports are most of the call: argparse (with the
parser of every command built), `json` (which pulls in `re`), `typing`,
`dataclasses`. `main` first looks for the plain forms of those calls:

    [--root DIR] [--log FILE] [--log-format text|json] [--debug]
        state ID | start ID | pause ID | resume ID | kill [-a|--all] ID [SIGNAL]
        | ps -f|--format json ID | list [-f|--format table|json] [-q|--quiet]
        | delete [-f|--force] ID
        | create [-b|--bundle DIR] [--pid-file FILE] [--console-socket SOCKET]
                 [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID

(global flags once each, before the command; a command's flags once each,
before its positionals; `--flag VALUE` or `--flag=VALUE`; a number in decimal
digits). Anything else (`--help`, an unknown or abbreviated flag, a repeated
one, a value that looks like a flag, a number `int` would have to read, `ps` as
a table, another command) goes to argparse (app.py) untouched, so that every
message and exit status stays argparse's.

A recognised call builds exactly the namespace argparse would (a unit test
compares them, and these tables with parser.py's). `start`, `pause`, `resume`,
`kill`, `delete` and `create` then run their command (commands/lifecycle.py)
through runner.py, as app.py does: same lean path, same library fallback, same
errors. A `create`, recognised or not, first starts the spawn helper (early.py);
one it did not take is ended before `main` returns. `state`, `ps` and `list`
are answered by quickread.py with `sqlite3` alone, without `--debug`, and only
in the plain case; otherwise the whole call goes to app.py, which reads again
and decides.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not `from typing import TYPE_CHECKING`: the reads import no typing
if TYPE_CHECKING:  # pragma: no cover
    from typing import NoReturn

    #: A flag's attribute and its value: choices (none: any text), `int`, or None for a switch.
    Flag = tuple[str, tuple[str, ...] | type[int] | None]

#: The global flags recognised here, with the attribute argparse gives each.
_GLOBAL_VALUES = {"--root": "root", "--log": "log", "--log-format": "log_format"}
#: What argparse sets for every call before the command's own (parser.build_parser).
_GLOBAL_DEFAULTS: dict[str, object] = {
    "version": False, "debug": False, "log": None, "log_format": "text", "root": None, "criu": "criu",
    "systemd_cgroup": False, "rootless": "auto", "parent": None,
}
_TARGETS = {
    "state": "inspect:state", "ps": "inspect:ps", "list": "inspect:list_",
    "start": "lifecycle:start", "pause": "lifecycle:pause", "resume": "lifecycle:resume", "kill": "lifecycle:kill",
    "create": "lifecycle:create", "delete": "lifecycle:delete",
}
#: Each command's flags: spelling -> (attribute, the value it takes: its choices (none: any text),
#: `int` for a number, or None for a switch). As parser.py declares them (a unit test compares).
_FLAGS: dict[str, dict[str, Flag]] = {
    "state": {}, "start": {}, "pause": {}, "resume": {},
    "kill": {"-a": ("all", None), "--all": ("all", None)},
    "delete": {"-f": ("force", None), "--force": ("force", None)},
    "create": {
        "-b": ("bundle", ()), "--bundle": ("bundle", ()), "--console-socket": ("console_socket", ()),
        "--pid-file": ("pid_file", ()), "--no-pivot": ("no_pivot", None), "--no-new-keyring": ("no_new_keyring", None),
        "--preserve-fds": ("preserve_fds", int),
    },
    "ps": {"-f": ("format", ("json",)), "--format": ("format", ("json",))},  # a table runs ps(1): argparse's
    "list": {
        "-f": ("format", ("table", "json")), "--format": ("format", ("table", "json")),
        "-q": ("quiet", None), "--quiet": ("quiet", None),
    },
}
_COMMAND_DEFAULTS: dict[str, dict[str, object]] = {
    "state": {}, "start": {}, "pause": {}, "resume": {},
    "kill": {"all": False, "signal": "SIGTERM"},
    "delete": {"force": False},
    "create": {
        "bundle": "", "console_socket": "", "pid_file": "", "no_pivot": False, "no_new_keyring": False, "preserve_fds": 0,
    },
    "ps": {"ps_args": []},  # `format` must be given: json is the only form recognised
    "list": {"format": "table", "quiet": False},
}
#: How many positionals each takes (at least, at most): the container id, and kill's signal.
_POSITIONALS = {
    "state": (1, 1), "start": (1, 1), "pause": (1, 1), "resume": (1, 1), "kill": (1, 2), "ps": (1, 1), "list": (0, 0),
    "create": (1, 1), "delete": (1, 1),
}


class Namespace:
    """What argparse.Namespace holds for a recognised call (without importing argparse)."""

    def __init__(self, values: dict[str, object]) -> None:
        self.__dict__.update(values)

    def __eq__(self, other: object) -> bool:
        return vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Namespace({vars(self)!r})"


def _flag(args: list[str], i: int, known: dict[str, Flag]) -> tuple[str, object, int] | None:
    """The flag at args[i]: (attribute, value, next index), or None if it is not one of `known` in a plain form
    (a number only in decimal digits: argparse reports whatever `int` refuses)."""
    spelling, eq, inline = args[i].partition("=")
    if spelling not in known:
        return None
    attribute, choices = known[spelling]
    if choices is None:
        return None if eq else (attribute, True, i + 1)
    if eq:
        value, following = inline, i + 1
    elif i + 1 < len(args) and not args[i + 1].startswith("-"):
        value, following = args[i + 1], i + 2
    else:
        return None
    if not isinstance(choices, tuple):  # int: argparse's int() also takes "+1", " 1", "1_0", and refuses 5,000 digits
        return (attribute, int(value), following) if value.isascii() and value.isdigit() and len(value) <= 18 else None
    if choices and value not in choices:
        return None
    return attribute, value, following


def _globals(argv: list[str]) -> tuple[dict[str, object], int] | None:
    """The global flags' values (argparse's defaults for the rest) and where the command is; None if
    they are not in a plain form."""
    values = dict(_GLOBAL_DEFAULTS)
    seen: set[str] = set()
    known_globals: dict[str, Flag] = {
        flag: (attribute, ("text", "json") if attribute == "log_format" else ()) for flag, attribute in _GLOBAL_VALUES.items()
    }
    known_globals["--debug"] = ("debug", None)
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        flag = _flag(argv, i, known_globals)
        if flag is None or flag[0] in seen:
            return None
        attribute, value, i = flag
        seen.add(attribute)
        values[attribute] = value
    return values, i


def recognise(argv: list[str]) -> Namespace | None:
    """argparse's namespace for `argv` if it is a plain call of a command recognised here, else None."""
    found = _globals(argv)
    if found is None:
        return None
    values, i = found
    if i >= len(argv) or argv[i] not in _TARGETS:
        return None
    command = argv[i]
    values.update(command=command, target=_TARGETS[command])
    values.update({name: list(v) if isinstance(v, list) else v for name, v in _COMMAND_DEFAULTS[command].items()})
    i += 1
    seen = set()
    while i < len(argv) and argv[i].startswith("-"):
        flag = _flag(argv, i, _FLAGS[command])
        if flag is None or flag[0] in seen:
            return None
        attribute, value, i = flag
        seen.add(attribute)
        values[attribute] = value
    positionals = argv[i:]
    least, most = _POSITIONALS[command]
    if not least <= len(positionals) <= most or any(p.startswith("-") for p in positionals):
        return None
    if command == "ps" and "format" not in values:
        return None
    if positionals:
        values["container_id"] = positionals[0]
    if len(positionals) == 2:
        values["signal"] = positionals[1]
    return Namespace(values)


def _read(values: dict[str, object]) -> str | None:
    """The text `state`, `ps` or `list` prints, when quickread.py can answer alone."""
    from corral.cli import quickread

    root = quickread.root_of(values["root"])  # type: ignore[arg-type]
    if values["command"] == "state":
        return quickread.state(root, str(values["container_id"]))
    if values["command"] == "ps":
        return quickread.ps_json(root, str(values["container_id"]))
    return quickread.list_(root, str(values["format"]), bool(values["quiet"]))


def main(argv: list[str] | None = None, *, parent: str = "monitor") -> int:
    """Run one command line (app.main's contract): the plain calls here, everything else through argparse."""
    given = sys.argv[1:] if argv is None else argv
    args = recognise(given)
    if args is not None and args.command in ("state", "ps", "list"):  # type: ignore[attr-defined]
        values = vars(args)
        try:  # a read writes nothing: whatever goes wrong, argparse's path reads again and reports it
            text = None if values["debug"] else _read(values)
        except (OSError, ValueError):
            text = None
        if text is not None:
            sys.stdout.write(text)
            return 0
        args = None  # the whole call is argparse's
    creating = _prestart(given)
    try:
        if args is None:
            from corral.cli.app import main as full

            return full(argv, parent=parent)
        from corral.cli.log import Log
        from corral.cli.runner import run

        values = vars(args)
        values["parent"] = parent  # app.main's default for a `--parent` not given
        log = Log(args.log, str(values["log_format"]), bool(values["debug"]))  # type: ignore[attr-defined]
        return run(args, log, argv)  # type: ignore[arg-type]
    finally:
        if creating:
            from corral.cli import early

            early.discard()  # a helper `create` did not take


def _prestart(argv: list[str]) -> bool:
    """For a `create`, start the spawn helper now (early.py): its start then overlaps the rest.
    Whether this is a create (whose helper, if nobody takes it, the caller then ends)."""
    found = _globals(argv)
    if found is None:
        return False
    values, i = found
    if i < len(argv) and argv[i] == "create" and "--help" not in argv and "-h" not in argv:
        from corral.cli import early
        from corral.cli.roots import root_of  # not quickread: sqlite3 can wait until the helper runs

        early.prestart(root_of(values["root"]))  # type: ignore[arg-type]
        return True
    return False


def entry(*, parent: str = "monitor") -> NoReturn:
    """The process's whole life: run the command line, then leave without teardown (early.exit_now)."""
    import gc

    from corral.cli import early

    # A one-shot call allocates ~27,000 objects while it imports (a create builds ~60 classes) and
    # frees almost none: the young generation's collections every 700 allocations are ~6 % of its
    # CPU for nothing. Rarer, not none: `run`, `exec` and `events` may stay for hours.
    gc.set_threshold(50_000, 20, 20)
    early.will_exit_now()
    early.exit_now(main(parent=parent))
