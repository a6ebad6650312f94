"""Run one parsed command and turn every error into runc's behaviour: message, log line, exit 1.

Shared by the argparse front (app.py) and the pre-argparse one (oneshot.py), so that a
command behaves the same whichever of them recognised its command line.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from corral.cli.context import Context
from corral.cli.log import Log
from corral.errors import CorralError

if TYPE_CHECKING:  # pragma: no cover
    import argparse

#: runc exits 1 on every error, usage errors included...
EXIT_ERROR = 1
#: ...but for these commands: (what the message starts with, the exit status). runc's exec.go
#: ends a failed exec with `fatalWithCode(fmt.Errorf("exec failed: %w", err), 255)`, so that its
#: status is never mistaken for the exec'd process's own.
FAILURES = {"exec": ("exec failed: ", 255)}


def _command(target: str) -> Callable[[Context], int]:
    module_name, function = target.split(":")
    module = importlib.import_module(f"corral.cli.commands.{module_name}")
    return getattr(module, function)  # type: ignore[no-any-return]


def run(args: argparse.Namespace, log: Log, argv: list[str] | None) -> int:
    """Run `args.target` (a command's "module:function") with the log and store of this call."""
    ctx = Context(args, log)
    log.debug(f"{args.command}: {' '.join(sys.argv[1:] if argv is None else argv)}")
    try:
        if args.rootless == "true":
            raise CorralError("rootless mode is not supported by corral")
        return _command(args.target)(ctx)
    except (CorralError, OSError) as exc:  # OSError: a file named on the command line, a pid file, a socket
        prefix, status = FAILURES.get(args.command, ("", EXIT_ERROR))
        log.error(f"{prefix}{exc}")
        return status
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    finally:
        ctx.close()
