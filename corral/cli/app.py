"""Parse, run one command, turn every error into runc's behaviour: message, log line, exit 1."""

from __future__ import annotations

import sys

from corral.cli.log import Log
from corral.cli.parser import UsageError, build_parser
from corral.cli.runner import EXIT_ERROR, run
from corral.version import __version__

__all__ = ["EXIT_ERROR", "OCI_SPEC_VERSION", "main"]

#: The runtime-spec version corral's configs and state follow.
OCI_SPEC_VERSION = "1.0.2"


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
    return run(args, log, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
