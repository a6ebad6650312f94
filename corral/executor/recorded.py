"""The C waiter's recorder: one OOM row, or the exit's rows, as the monitor's Observer records them.

The waiter (waiter.c) runs this in a fresh `python -S` with the request's
recorder when it cannot write the rows itself (waiter_store.c writes those of
corral/store/observed.py, and falls back here on an error): for each growth of the OOM kill count while the init runs
(`SPEC oom COUNT`), and once, exec'd in the waiter's place after it wrote the
exit file (`SPEC exited REPORTED COUNT STATUS SIGNAL REASON`; the exit file's
lock is held until the rows are written). It reports what Observer.exited
reports, from the counts the waiter read: an OOM kill not yet reported, then the
exit, OOM-killed when the init died of SIGKILL while the cgroup counted a kill.

It imports only the recorder's module (the store's sqlite3-only writer): the
process is started once per report, and `Container.wait()` waits for it to end.
SPEC (JSON): the recorder's module and arguments and the init's PID. "none"
stands for an unknown status or no signal. Nothing here may fail loudly (see
observer.py): the exit file is written, and a controller records what this
could not.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
from collections.abc import Sequence


def _number(word: str) -> int | None:
    return None if word == "none" else int(word)


def main(argv: Sequence[str]) -> None:
    """Record what the waiter saw (argv as the module docstring says), then end this process."""
    try:
        spec = json.loads(argv[0])
        module = importlib.import_module(spec["module"])
        arguments = {**spec["arguments"], "init_pid": spec["init_pid"]}
        if argv[1] == "oom":
            module.oom(**arguments, count=int(argv[2]))
        elif argv[1] == "exited":
            reported, count = int(argv[2]), int(argv[3])
            status, sig = _number(argv[4]), _number(argv[5])
            if count > reported:
                try:
                    module.oom(**arguments, count=count)
                except Exception:  # noqa: BLE001 - the exit is still recorded
                    pass
            module.exited(
                **arguments,
                status=status,
                signal=sig,
                oom_killed=sig == signal.SIGKILL and count > 0,
                reason=argv[6] or None,
            )
    except Exception:  # noqa: BLE001 - see the module docstring
        pass
    os._exit(0)
