"""close_all_except: what a process keeps when it forks towards a container."""

from __future__ import annotations

import json
import os

from corral.executor import fds


def _in_child(keep_extra: bool) -> list[int]:
    """Open descriptors (inheritable or not) in a forked child, sweep, and report what is left."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(5)]
            os.set_inheritable(opened[0], True)
            high = os.dup2(opened[1], 900)
            keep = [0, 1, 2, write] + ([opened[2], high] if keep_extra else [])
            fds.close_all_except(keep)
            left = sorted(int(name) for name in os.listdir(f"/proc/{os.getpid()}/fd"))
            os.write(write, json.dumps({"left": left, "keep": sorted(keep)}).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        report = json.loads(f.read())
    os.waitpid(pid, 0)
    # listdir's own directory descriptor is the one extra entry, opened after the sweep
    extra = sorted(set(report["left"]) - set(report["keep"]))
    assert len(extra) <= 1, report
    assert set(report["keep"]) <= set(report["left"]), report
    return report["left"]


def test_only_the_keep_list_survives() -> None:
    left = _in_child(keep_extra=False)
    assert 900 not in left


def test_kept_descriptors_survive_even_high_ones() -> None:
    left = _in_child(keep_extra=True)
    assert 900 in left
