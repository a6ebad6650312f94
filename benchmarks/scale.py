"""The library at scale: a store of 1,000 and 10,000 records, most stopped, some live (issue 15, item 3).

Run as root after `bash scripts/install`:

    .venv/bin/python benchmarks/scale.py                          # 1,000 and 10,000 records, 200 live
    .venv/bin/python benchmarks/scale.py --records 1000 --live 20 # smaller

For each store size it measures, medians of `--repeat` runs:

- open: `Runtime(root)` as a controller opens it (interrupted intents only:
  the boot was recovered already), then closed;
- recover: the full `Runtime.recover()` over every record;
- list(): `Runtime.list()` (every record not destroyed: one query);
- .state of the live: `.state` of each running container, held as a controller holds
  them (one /proc read each; the record is re-read only if anything committed);
- list() + .state of every record, stopped ones included.

The live containers are real (`sleep`, busybox rootfs, cgroups under
`/corral-scalebench-<pid>/`), created once and reused by both sizes; the
stopped records are written straight into the store in one transaction
(the rows a stopped container has: record, cgroup paths, journal), which is
what a long-running node accumulates. Everything is destroyed and removed at
the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from corral import Config, Process, Root, Runtime  # noqa: E402
from tests.rootfs import build_busybox_rootfs  # noqa: E402

CGROUP_PARENT = f"/corral-scalebench-{os.getpid()}"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def add_stopped(root: Path, count: int, template_id: str, prefix: str) -> None:
    """`count` stopped records like `template_id`'s (which is stopped), in one transaction."""
    con = sqlite3.connect(root / "corral.db")
    try:
        with con:
            (key,) = con.execute("SELECT key FROM containers WHERE id = ?", (template_id,)).fetchone()
            columns = [r[1] for r in con.execute("PRAGMA table_info(containers)") if r[1] != "key"]
            row = dict(zip(columns, con.execute(f"SELECT {', '.join(columns)} FROM containers WHERE key = ?", (key,)).fetchone()))
            paths = con.execute("SELECT hierarchy, path FROM cgroup_paths WHERE container_key = ?", (key,)).fetchall()
            journal = con.execute(
                "SELECT event, from_state, to_state, at, detail FROM journal WHERE container_key = ?", (key,)
            ).fetchall()
            for i in range(count):
                cid = f"{prefix}-{i}"
                values = dict(row, id=cid, live_id=cid, run_dir=str(Path(row["run_dir"]).parent / cid))
                cursor = con.execute(
                    f"INSERT INTO containers ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                    tuple(values.values()),
                )
                new = cursor.lastrowid
                con.executemany(
                    "INSERT INTO cgroup_paths (container_key, hierarchy, path) VALUES (?, ?, ?)",
                    [(new, h, p.replace(template_id, cid)) for h, p in paths],
                )
                con.executemany(
                    "INSERT INTO journal (container_key, event, from_state, to_state, at, detail) VALUES (?, ?, ?, ?, ?, ?)",
                    [(new, *j) for j in journal],
                )
    finally:
        con.close()


def config(rootfs: Path, cid: str, *args: str) -> Config:
    return Config(
        process=Process(args=args, env=(PATH_ENV,)),
        root=Root(str(rootfs), readonly=True),
        hostname="box",
        cgroups_path=f"{CGROUP_PARENT}/{cid}",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[1000, 10000], help="store sizes (records in all)")
    parser.add_argument("--live", type=int, default=200, help="running containers among them")
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="corral-scalebench-"))
    root, run_root = work / "root", work / "run"
    rootfs = build_busybox_rootfs(work / "rootfs")
    results: list[tuple[int, int, float, float, float, float, float]] = []
    runtime = Runtime(root, run_root=run_root)
    try:
        template = runtime.create("template", config(rootfs, "template", "/bin/true"))
        template.start()
        template.wait(10)
        for i in range(options.live):
            runtime.create(f"live-{i}", config(rootfs, f"live-{i}", "sleep", "100000")).start()
        records = 1 + options.live
        for size in sorted(options.records):
            add_stopped(root, max(0, size - records), "template", f"old{size}")
            records = max(records, size)

            def open_close() -> None:
                Runtime(root, run_root=run_root).close()

            def list_and_state() -> None:
                states = [box.state for box in rt.list()]
                assert sum(s.value == "running" for s in states) == options.live

            open_ms = median_ms(open_close, options.repeat)
            rt = Runtime(root, run_root=run_root)
            try:
                recover_ms = median_ms(rt.recover, max(1, options.repeat // 2))
                list_ms = median_ms(rt.list, options.repeat)
                boxes = [box for box in rt.list() if box.id.startswith("live-")]  # as a controller holds them
                live_ms = median_ms(lambda: [box.state for box in boxes], options.repeat)
                all_ms = median_ms(list_and_state, options.repeat)
            finally:
                rt.close()
            results.append((records, options.live, open_ms, recover_ms, list_ms, live_ms, all_ms))
    finally:
        for box in runtime.list():
            try:
                box.destroy(force=True)
            except Exception as exc:  # noqa: BLE001 - report and go on cleaning
                print(f"cleanup of {box.id}: {exc}", file=sys.stderr)
        runtime.close()
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            parent = hierarchy / CGROUP_PARENT.lstrip("/")
            if parent.is_dir():
                for child in sorted(parent.rglob("*"), reverse=True):
                    if child.is_dir():
                        child.rmdir()
                parent.rmdir()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}  {os.cpu_count()} CPUs  Python {sys.version.split()[0]}  "
          f"ms, median of {options.repeat} (recover: of {max(1, options.repeat // 2)})\n")
    print("| records | live | open | recover() | list() | .state of the live | list() + .state of every record |")
    print("|---|---|---|---|---|---|---|")
    for records, live, open_ms, recover_ms, list_ms, live_ms, all_ms in results:
        print(f"| {records} | {live} | {open_ms:.1f} | {recover_ms:.0f} | {list_ms:.1f} | {live_ms:.1f} | {all_ms:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
