"""A one-shot `create` starts the spawn helper before anything else, and leaves without teardown.

Two costs of a one-shot command are the interpreter's, not the work's:

- **The helper's start.** A `create` waits for the spawn helper (a new
  interpreter from a sealed copy, importing what a monitor and an init need:
  ~100 ms). Started first, before argparse and the config are even imported,
  it runs on the other core while this process parses the command line and
  the bundle and writes the record; `EarlyHelper.for_create` then adopts it.
- **The interpreter's teardown.** After the command has returned, CPython frees
  every module it imported (30-40 ms for a create, which imported the config
  and the executor). Nothing corral holds needs it: the log writes each line
  with one `os.write`, pid files are written and renamed before the command
  returns, a store's connection is closed or its transaction already ended (an
  uncommitted one is rolled back by SQLite on the next open, as after a crash).
  `exit_now` flushes stdout and stderr and ends the process.

Only the entry points call `exit_now` (`corral`, `corral-runc`, `python -m
corral.cli`); `corral.cli.main` itself returns, for callers in-process.
"""

from __future__ import annotations

import os
import sys
TYPE_CHECKING = False  # not `from typing import TYPE_CHECKING`: a `state` that ends here imports no typing
if TYPE_CHECKING:  # pragma: no cover
    from typing import NoReturn

    from corral.executor.launch import Started  # the helper's process and our end of its socket (an fd)

_started: Started | None = None
_exits_now = False


def exits_now() -> bool:
    """Whether this process ends in `exit_now` (an entry point runs it), not in a caller's process."""
    return _exits_now


def will_exit_now() -> None:
    """Said by the entry points, first: work that outlives the command can be left to the exit."""
    global _exits_now
    _exits_now = True


def prestart(root: str) -> None:
    """Start the helper for a `create` into the store at `root`, if the store is there (else the
    library's path runs, which starts its own)."""
    global _started
    if _started is not None or not os.path.isfile(os.path.join(root, "corral.db")):
        return
    from corral.executor.launch import start_helper

    _started = start_helper()


def take() -> Started | None:
    """The helper `prestart` started, now the caller's to adopt or close."""
    global _started
    started, _started = _started, None
    return started


def discard() -> None:
    """End a helper nobody took (the command failed before create, or took the library's path)."""
    started = take()
    if started is not None:
        end(started)


def end(started: Started) -> None:
    """Close our end of a helper's socket (it exits on its end of file) and reap it (killed after 5 s)."""
    process, fd = started
    os.close(fd)
    process.stop()


def exit_now(code: int) -> NoReturn:
    """Leave with `code` once stdout and stderr are flushed, without the interpreter's teardown."""
    discard()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe or stream: nothing more can reach it
    os._exit(code)
