"""Parse, run one command, turn every error into runc's behaviour: message, log line, exit 1."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

from corral.cli.context import Context
from corral.cli.log import Log
from corral.cli.parser import UsageError, build_parser
from corral.errors import CorralError
from corral.version import __version__

#: runc exits 1 on every error, usage errors included.
EXIT_ERROR = 1
#: The runtime-spec version corral's configs and state follow.
OCI_SPEC_VERSION = "1.0.2"


def _command(target: str) -> Callable[[Context], int]:
    module_name, function = target.split(":")
    module = importlib.import_module(f"corral.cli.commands.{module_name}")
    return getattr(module, function)  # type: ignore[no-any-return]


def main(argv: list[str] | None = None, *, parent: str = "monitor") -> int:
    """Run one command. `parent` is the default of `--parent`: "caller" in the `corral-runc`
    wrapper (callers that take a runc binary reap the init themselves, as runc's callers do)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        # The log flags may not have been parsed: an error goes to stderr only.
        sys.stderr.write(f"{exc}\n")
        return EXIT_ERROR
    if args.parent is None:
        args.parent = parent
    log = Log(args.log, args.log_format, args.debug)
    if args.version:
        sys.stdout.write(f"corral version {__version__}\nspec: {OCI_SPEC_VERSION}\n")
        return 0
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        log.error("no command given (see --help)")
        return EXIT_ERROR
    ctx = Context(args, log)
    log.debug(f"{args.command}: {' '.join(sys.argv[1:] if argv is None else argv)}")
    try:
        if args.rootless == "true":
            raise CorralError("rootless mode is not supported by corral")
        return _command(args.target)(ctx)
    except CorralError as exc:
        log.error(str(exc))
        return EXIT_ERROR
    except OSError as exc:  # a file named on the command line, a pid file, a socket
        log.error(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    finally:
        ctx.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
