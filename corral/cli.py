"""The `corral` command.

For now it only reports its version: the runc-compatible command line
(create, start, state, kill, delete, exec, pause, resume, events, ...) is the
subject of a later issue, and this stub does not pretend to be it.
"""

from __future__ import annotations

import argparse
import sys

from corral.version import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="corral",
        description="corral container runtime (library). The runc-compatible commands are not implemented yet.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    args = parser.parse_args(argv)
    if args.version:
        print(f"corral version {__version__}")
        return 0
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
