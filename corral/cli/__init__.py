"""The `corral` command: a drop-in for runc's command line, over the corral library.

containerd, Podman and CRI-O drive a runtime through runc's command line, one
process per call. Each command lives in `corral.cli.commands.<group>` and is
imported only when called, and every heavy import (SQLAlchemy, the executor)
happens inside the command that needs it: `state` and `ps` read the store with
`sqlite3` alone (corral.store.readonly).
"""

from __future__ import annotations

__all__ = ["entry", "main"]


def main(argv: list[str] | None = None, *, parent: str = "monitor") -> int:
    """The `corral` command (corral.cli.app.main's contract), through the pre-argparse front
    (oneshot.py): importing app.py here would cost every call argparse."""
    from corral.cli.oneshot import main as front

    return front(argv, parent=parent)


def entry() -> None:
    """The `corral` console script: `main`, then leave without the interpreter's teardown."""
    from corral.cli.oneshot import entry as run

    run()
