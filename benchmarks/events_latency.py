"""Latency from a container's exit to its `exited` event in `Runtime.events()`.

Run as root from the repository's root, after `bash scripts/install`:

    .venv/bin/python benchmarks/events_latency.py [--iterations 30] [--burst 10] [--json]

For each container (busybox `sh -c 'sleep 0.1; exit 3'`, started with nobody
waiting for it), a thread of this process watches a pidfd of its init, which
the kernel makes readable the moment the init exits; the main thread follows
`runtime.events(kinds=["exited"])`. The latency is the time between the two
(`time.perf_counter()` in one process): the monitor, another process, reaps
the init, writes the exit file, takes the container's lock, commits the
journal row with sqlite3 and rings the bell; this process's inotify watch
wakes and the stream reads the row. So every measured event crossed from one
process to another.

Rounds: `--iterations` containers one at a time (after 3 unmeasured), then one
burst of `--burst` containers (`sleep 1`, all started before the first exits)
exiting together. Prints the median, 90th
percentile and maximum, in ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import select
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import corral  # noqa: E402
from corral import Config, Process, Root  # noqa: E402
from tests.rootfs import build_busybox_rootfs  # noqa: E402

WARMUP = 3


def _watch_exit(pid: int, exits: dict[str, float], cid: str) -> threading.Thread:
    fd = os.pidfd_open(pid)

    def wait() -> None:
        try:
            select.select([fd], [], [])
            exits[cid] = time.perf_counter()
        finally:
            os.close(fd)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread


def _round(runtime: corral.Runtime, config: Config, ids: list[str]) -> list[float]:
    """Start `ids` together; the latency of each one's `exited` event, in ms."""
    exits: dict[str, float] = {}
    arrived: dict[str, float] = {}
    boxes = [runtime.create(cid, config) for cid in ids]
    with runtime.events(ids=ids, kinds=["exited"], timeout=30) as stream:
        watchers = []
        for box in boxes:
            box.start()
            assert box.pid is not None
            watchers.append(_watch_exit(box.pid, exits, box.id))
        for event in stream:
            arrived[event.container_id] = time.perf_counter()
            assert event.exit_status == 3, event
            if len(arrived) == len(ids):
                break
    for watcher in watchers:
        watcher.join(5)
    for box in boxes:
        box.destroy()
    return [(arrived[cid] - exits[cid]) * 1000 for cid in ids]


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(ordered[max(0, int(len(ordered) * 0.9) - 1)], 2),
        "max_ms": round(ordered[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="corral-events-latency-")
    runtime = None
    try:
        rootfs = build_busybox_rootfs(Path(tmp) / "rootfs")
        config = Config(
            process=Process(args=("/bin/sh", "-c", "sleep 0.1; exit 3")), root=Root(str(rootfs)), hostname="b"
        )
        runtime = corral.Runtime(os.path.join(tmp, "store"), run_root=os.path.join(tmp, "run"))
        single: list[float] = []
        for i in range(options.iterations + WARMUP):
            latency = _round(runtime, config, [f"s{i}"])
            if i >= WARMUP:
                single.extend(latency)
        # Long enough that every container of the burst is started before the first exits.
        together = dataclasses.replace(config, process=Process(args=("/bin/sh", "-c", "sleep 1; exit 3")))
        burst = _round(runtime, together, [f"b{i}" for i in range(options.burst)]) if options.burst else []
    finally:
        if runtime is not None:
            for box in runtime.list():
                box.destroy(force=True)
            runtime.close()
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"one at a time": _summary(single)}
    if burst:
        result[f"{len(burst)} exiting together"] = _summary(burst)
    if options.json:
        print(json.dumps(result))
        return
    print(f"{'exit -> event':<22} {'n':>4} {'median':>9} {'p90':>9} {'max':>9}")
    for name, row in result.items():
        print(f"{name:<22} {row['n']:>4} {row['median_ms']:>7.2f}ms {row['p90_ms']:>7.2f}ms {row['max_ms']:>7.2f}ms")


if __name__ == "__main__":
    main()
