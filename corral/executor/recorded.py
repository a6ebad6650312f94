"""The C waiter's recorder: one OOM row, or the exit's rows, as the monitor's Observer records them.

The waiter (waiter.c) runs this in a fresh `python -S`: for each growth of the
OOM kill count while the init runs (`oom COUNT`), and once, after it wrote the
exit file (`exited REPORTED STATUS SIGNAL REASON`, exec'd in its place, so the
exit file's lock is held until the row is written). A process per report costs
a start-up (~0.1 s) only when something happened; the waiting costs nothing.

SPEC (JSON): the request's recorder (module, arguments), its cgroup paths and
the init's PID. "none" stands for an unknown status or no signal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from corral.executor.interface import Recorder
from corral.executor.observer import Observer
from corral.executor.protocol import Exited


def _number(word: str) -> int | None:
    return None if word == "none" else int(word)


def main(argv: Sequence[str]) -> None:
    """SPEC oom COUNT | SPEC exited REPORTED STATUS SIGNAL REASON; never fails (see observer.py)."""
    try:
        spec = json.loads(argv[0])
        recorder = Recorder(spec["module"], spec["arguments"])
        if argv[1] == "oom":
            count = int(argv[2])
            Observer(recorder, spec["cgroup_paths"], spec["init_pid"], reported=count - 1).oom(count)
        elif argv[1] == "exited":
            observer = Observer(recorder, spec["cgroup_paths"], spec["init_pid"], reported=int(argv[2]))
            observer.exited(Exited(_number(argv[3]), _number(argv[4])), argv[5] or None)
    except Exception:  # noqa: BLE001 - nothing may fail loudly here: the exit file is written
        pass
    os._exit(0)
