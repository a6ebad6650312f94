"""Containers per second: one after another, and at once from threads and from processes (issue 15, item 4).

Run as root from the repository's root, after `bash scripts/install`:

    .venv/bin/python benchmarks/throughput.py                          # 50 in a row; 20 at once from 4
    .venv/bin/python benchmarks/throughput.py --sequential 5 --concurrent 4 --workers 2
    .venv/bin/python benchmarks/throughput.py --profile profile.txt    # and py-spy of the 4 processes

Each container is a whole lifecycle of `/bin/true` through the library: `create`,
`start`, `wait`, `destroy` (busybox rootfs, cgroups under
`/corral-tputbench-<pid>/`). Rows:

- **sequential**: `--sequential` lifecycles one after another in one `Runtime`;
- **1 process**: `--concurrent` lifecycles one after another in one `Runtime`
  (the baseline of the next two rows: same count, same store);
- **N threads**: the same count split over `--workers` threads sharing one `Runtime`;
- **N processes**: the same count split over `--workers` processes, each with its
  own `Runtime` on the same root (the store and the locks are shared through the
  file system, as several controllers on one node share them).

Every worker opens its Runtime and runs one unmeasured lifecycle first (imports,
the spawn helper), then waits at a barrier; the clock runs from the barrier to
the last worker's end. Throughput is containers per second; the ratios are to the
1-process row (issue 15's target: 4 processes >= 1.5x). With `--profile FILE`,
the process row runs again under `py-spy record` (if installed) of every worker,
and the flat profile of where the workers' time went is written to FILE.

Everything is destroyed at the end (each worker destroys its own containers in a
`finally`; the main process then force-destroys whatever any store still lists and
removes the cgroups and the temporary directory), also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.synchronize
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from corral import Config, Process, Root, Runtime  # noqa: E402
from benchmarks.teardown import destroy_all, on_sigterm, remove_cgroup_parent  # noqa: E402
from tests.rootfs import build_busybox_rootfs  # noqa: E402

PREFIX = "/corral-tputbench"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def lifecycle(runtime: Runtime, rootfs: Path, cgroup_parent: str, cid: str) -> None:
    """create + start + wait + destroy of /bin/true; destroyed also if a step fails."""
    config = Config(
        process=Process(args=("/bin/true",), env=(PATH_ENV,)),
        root=Root(str(rootfs), readonly=True),
        hostname="box",
        cgroups_path=f"{cgroup_parent}/{cid}",
    )
    box = runtime.create(cid, config)
    try:
        box.start()
        code = box.wait(30)
        if code != 0:
            raise RuntimeError(f"{cid}: /bin/true exited {code}")
    finally:
        box.destroy(force=True)


def run_many(runtime: Runtime, rootfs: Path, cgroup_parent: str, ids: list[str]) -> None:
    for cid in ids:
        lifecycle(runtime, rootfs, cgroup_parent, cid)


def process_worker(root: str, run_root: str, rootfs: str, cgroup_parent: str, name: str, ids: list[str],
                   barrier: multiprocessing.synchronize.Barrier, times: "multiprocessing.Queue[tuple[float, float]]") -> None:
    """One controller process: its own Runtime on the shared root; warm up, wait, run `ids`."""
    signal.signal(signal.SIGTERM, on_sigterm)
    runtime = Runtime(root, run_root=run_root)
    try:
        lifecycle(runtime, Path(rootfs), cgroup_parent, f"{name}-warm")
        barrier.wait(120)
        start = time.perf_counter()
        run_many(runtime, Path(rootfs), cgroup_parent, ids)
        times.put((start, time.perf_counter()))
    finally:
        runtime.close()


def timed_threads(runtime: Runtime, rootfs: Path, cgroup_parent: str, name: str, count: int, workers: int) -> float:
    """Seconds for `count` lifecycles split over `workers` threads sharing `runtime`."""
    chunks = [[f"{name}-{w}-{i}" for i in range(w, count, workers)] for w in range(workers)]
    errors: list[BaseException] = []

    def work(ids: list[str]) -> None:
        try:
            run_many(runtime, rootfs, cgroup_parent, ids)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(ids,)) for ids in chunks]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed


def timed_processes(work: Path, rootfs: Path, cgroup_parent: str, name: str, count: int, workers: int,
                    profile: Path | None = None) -> float:
    """Seconds for `count` lifecycles split over `workers` processes, each with its own Runtime."""
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding a Runtime and its helper
    barrier = ctx.Barrier(workers)
    times: multiprocessing.Queue[tuple[float, float]] = ctx.Queue()
    procs = [
        ctx.Process(target=process_worker, args=(str(work / "root"), str(work / "run"), str(rootfs), cgroup_parent,
                                                 f"{name}-{w}", [f"{name}-{w}-{i}" for i in range(w, count, workers)],
                                                 barrier, times))
        for w in range(workers)
    ]
    spies: list[subprocess.Popen[bytes]] = []
    try:
        for proc in procs:
            proc.start()
        if profile is not None:
            spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
            for i, proc in enumerate(procs):
                if spy:
                    spies.append(subprocess.Popen(
                        [spy, "record", "--pid", str(proc.pid), "--format", "raw", "--rate", "200",                          "--output", str(profile.with_suffix(f".{i}.raw")), "--nonblocking"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for proc in procs:
            proc.join()
        if any(proc.exitcode != 0 for proc in procs):
            raise RuntimeError(f"a worker failed: exit codes {[proc.exitcode for proc in procs]}")
        spans = [times.get(timeout=10) for _ in procs]
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()  # its finally closes its Runtime; the main process destroys what is left
                proc.join(30)
        for spy_proc in spies:
            spy_proc.send_signal(signal.SIGINT)
            try:
                spy_proc.wait(30)
            except subprocess.TimeoutExpired:
                spy_proc.kill()
                spy_proc.wait()
    return max(end for _, end in spans) - min(start for start, _ in spans)


def flat_profile(profile: Path, workers: int) -> str:
    """Where the workers' measured lifecycles spent their wall time, from py-spy's raw stacks.

    Only samples under `run_many` count (not the imports and warm-up before the barrier); each
    is attributed to its innermost corral function, so a wait (a lock, the helper's reply,
    SQLite's busy handler) shows as the corral call that waits.
    """
    leaves: dict[str, int] = {}
    total = 0
    for i in range(workers):
        raw = profile.with_suffix(f".{i}.raw")
        if not raw.exists():
            continue
        for line in raw.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if not n.isdigit() or "run_many" not in stack:
                continue
            frames = [re.sub(r":\d+\)$", ")", f.strip()) for f in stack.split(";")]
            ours = [f for f in frames if "corral/" in f]
            key = ours[-1] if ours else frames[-1]
            leaves[key] = leaves.get(key, 0) + int(n)
            total += int(n)
    lines = [f"{n:6d} {100 * n / max(1, total):5.1f}%  {k}" for k, n in sorted(leaves.items(), key=lambda kv: -kv[1])]
    return (f"{total} samples (wall time, idle included) of {workers} workers' measured lifecycles; "
            "innermost corral function of each\n" + "\n".join(lines[:30]))


def cleanup(work: Path, cgroup_parent: str) -> None:
    if (work / "root").exists():
        destroy_all(Runtime(work / "root", run_root=work / "run"))
    remove_cgroup_parent(cgroup_parent)
    shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=50, help="lifecycles one after another")
    parser.add_argument("--concurrent", type=int, default=20, help="lifecycles split over the workers")
    parser.add_argument("--workers", type=int, default=4, help="threads, and processes")
    parser.add_argument("--profile", type=Path, help="py-spy the process row (again) into this file")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    cgroup_parent = f"{PREFIX}-{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="corral-tputbench-"))
    rows: list[tuple[str, int, float]] = []
    profile_text = ""
    try:
        rootfs = build_busybox_rootfs(work / "rootfs")
        runtime = Runtime(work / "root", run_root=work / "run")
        try:
            lifecycle(runtime, rootfs, cgroup_parent, "warm")
            start = time.perf_counter()
            run_many(runtime, rootfs, cgroup_parent, [f"seq-{i}" for i in range(options.sequential)])
            rows.append(("sequential, 1 process", options.sequential, time.perf_counter() - start))
            start = time.perf_counter()
            run_many(runtime, rootfs, cgroup_parent, [f"one-{i}" for i in range(options.concurrent)])
            rows.append(("1 process (baseline)", options.concurrent, time.perf_counter() - start))
            elapsed = timed_threads(runtime, rootfs, cgroup_parent, "thr", options.concurrent, options.workers)
            rows.append((f"{options.workers} threads, one Runtime", options.concurrent, elapsed))
        finally:
            runtime.close()
        elapsed = timed_processes(work, rootfs, cgroup_parent, "proc", options.concurrent, options.workers)
        rows.append((f"{options.workers} processes, a Runtime each", options.concurrent, elapsed))
        if options.profile is not None:
            elapsed = timed_processes(work, rootfs, cgroup_parent, "spy", options.concurrent, options.workers,
                                      profile=options.profile)
            rows.append((f"{options.workers} processes under py-spy", options.concurrent, elapsed))
            profile_text = flat_profile(options.profile, options.workers)
            options.profile.write_text(profile_text + "\n")
    finally:
        cleanup(work, cgroup_parent)
    baseline = rows[1][1] / rows[1][2]
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}  {os.cpu_count()} CPUs  Python {sys.version.split()[0]}  "
          f"load {os.getloadavg()[0]:.2f}\n")
    print("| run | containers | seconds | containers/s | ms per container | vs 1 process |")
    print("|---|---|---|---|---|---|")
    for label, count, seconds in rows:
        rate = count / seconds
        print(f"| {label} | {count} | {seconds:.2f} | {rate:.1f} | {1000 * seconds / count:.1f} | {rate / baseline:.2f}x |")
    if profile_text:
        print(f"\n{profile_text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
