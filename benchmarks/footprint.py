"""What corral costs at rest: memory per live container, database size, import time (issue 15, item 4).

Run as root from the repository's root, after `bash scripts/install`:

    .venv/bin/python benchmarks/footprint.py                       # 50 live, 1,000 stored records, 7 import runs
    .venv/bin/python benchmarks/footprint.py --live 5 --records 20 --imports 2

It prints four tables:

- **controller**: RSS and USS (private pages: `Private_Clean + Private_Dirty` of
  `/proc/self/smaps_rollup`) of this process, which holds one `Runtime`, after one
  warm-up container (imports done, helper started) and after `--live` more running
  `sleep` containers (held as `Container` objects, as a controller holds them); the
  growth per container. Also the spawn helper's USS.
- **per container, outside the controller**: the USS of each keeper and monitor
  (median over the live containers), for `parent="monitor"` (the default) and
  `parent="caller"` (no keeper; the monitor exits once the init is handed over).
- **where a monitor's private pages are**: one monitor's `/proc/<pid>/smaps`
  private pages grouped by mapping (heap, anonymous arenas, the interpreter, each
  shared object, stack).
- **store**: the database's size (`corral.db` + `-wal` after
  `PRAGMA wal_checkpoint(TRUNCATE)`) with one real stopped container, then with
  `--records` copies of its rows (record, cgroup paths, journal, as `scale.py` adds
  them), then with as many more journal rows: bytes per container and per journal row.
- **import time**: `import corral` and `import corral; corral.Runtime` (the lazy
  export resolved), each in `--imports` fresh `python -X importtime` processes:
  median wall time inside the process, and the top-level modules the statement
  imported (from `-X importtime`, median cumulative µs).

Everything it makes (containers, cgroups under `/corral-footbench-<pid>/`, one
temporary directory) is destroyed at the end, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.scale import add_stopped  # noqa: E402
from corral import Config, Process, Root, Runtime  # noqa: E402
from corral.executor.linux import LinuxExecutor  # noqa: E402
from benchmarks.teardown import destroy_all, on_sigterm, remove_cgroup_parent  # noqa: E402
from tests.rootfs import build_busybox_rootfs  # noqa: E402

CGROUP_PARENT = f"/corral-footbench-{os.getpid()}"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KIB = 1024
MIB = 1024 * 1024


def rollup(pid: int | str) -> dict[str, int]:
    """`/proc/<pid>/smaps_rollup` in bytes, plus `Uss` = private clean + private dirty."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        value = rest.split()
        if value and value[0].isdigit():
            fields[name] = int(value[0]) * KIB
    fields["Uss"] = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return fields


def private_by_mapping(pid: int) -> list[tuple[str, int]]:
    """Private bytes of `pid` grouped by what is mapped (file name, [heap], [stack], anon)."""
    totals: collections.Counter[str] = collections.Counter()
    name = "?"
    header = re.compile(r"^[0-9a-f]+-[0-9a-f]+ ")
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if header.match(line):
            parts = line.split(None, 5)
            name = parts[5].strip() if len(parts) > 5 else "[anonymous]"
            if "/" in name:
                name = os.path.basename(name.split(" (deleted)")[0]) + (" (deleted)" if "(deleted)" in name else "")
        elif line.startswith(("Private_Clean:", "Private_Dirty:")):
            totals[name] += int(line.split()[1]) * KIB
    return sorted(((n, b) for n, b in totals.items() if b), key=lambda item: -item[1])


def ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def config(rootfs: Path, cid: str, *args: str) -> Config:
    return Config(
        process=Process(args=args, env=(PATH_ENV,)),
        root=Root(str(rootfs), readonly=True),
        hostname="box",
        cgroups_path=f"{CGROUP_PARENT}/{cid}",
    )


def mib(n: float) -> str:
    return f"{n / MIB:.2f}"


def measure_memory(runtime: Runtime, rootfs: Path, live: int, prefix: str, caller: bool) -> dict[str, object]:
    """Controller growth over `live` running containers, and each one's keeper and monitor."""
    warm = runtime.create(f"{prefix}-warm", config(rootfs, f"{prefix}-warm", "sleep", "100000"))
    warm.start()
    before = rollup("self")
    boxes = []
    for i in range(live):
        box = runtime.create(f"{prefix}-{i}", config(rootfs, f"{prefix}-{i}", "sleep", "100000"))
        box.start()
        boxes.append(box)
    time.sleep(0.5)  # let the monitors settle (their first reads done)
    after = rollup("self")
    monitors, keepers = [], []
    for box in boxes:
        init_pid = box.pid
        assert init_pid is not None
        parent = ppid(init_pid)
        if parent in (1, os.getpid()) or caller:
            continue  # handed over: no corral process stays for this container
        monitors.append(parent)
        grand = ppid(parent)
        if grand not in (1, os.getpid()):
            keepers.append(grand)
    helper = runtime.context.executor._helper._process  # type: ignore[attr-defined]
    return {
        "before": before,
        "after": after,
        "monitors": [rollup(p) for p in monitors],
        "keepers": [rollup(p) for p in keepers],
        "one_monitor": private_by_mapping(monitors[0]) if monitors else [],
        "helper": rollup(helper.pid) if helper is not None else None,
        "boxes": boxes + [warm],
    }


def db_size(root: Path) -> int:
    con = sqlite3.connect(root / "corral.db")
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return sum(p.stat().st_size for p in root.iterdir() if p.name.startswith("corral.db"))


def count(root: Path, table: str) -> int:
    con = sqlite3.connect(root / "corral.db")
    try:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        con.close()


def measure_store(work: Path, rootfs: Path, records: int) -> list[tuple[str, int, int, int]]:
    """Sizes of a store with one container, then `records` copies, then as many more journal rows."""
    root = work / "dbroot"
    runtime = Runtime(root, run_root=work / "dbrun")
    try:
        box = runtime.create("template", config(rootfs, "template", "/bin/true"))
        box.start()
        box.wait(10)
        box.destroy()
    finally:
        runtime.close()
    rows = [("one stopped container", count(root, "containers"), count(root, "journal"), db_size(root))]
    add_stopped(root, records, "template", "copy")
    rows.append((f"+ {records} copies of its rows", count(root, "containers"), count(root, "journal"), db_size(root)))
    con = sqlite3.connect(root / "corral.db")
    try:
        with con:
            (key,) = con.execute("SELECT key FROM containers WHERE id = 'template'").fetchone()
            sample = con.execute(
                "SELECT event, from_state, to_state, at, detail FROM journal WHERE container_key = ? ORDER BY rowid DESC",
                (key,),
            ).fetchone()
            con.executemany(
                "INSERT INTO journal (container_key, event, from_state, to_state, at, detail) VALUES (?, ?, ?, ?, ?, ?)",
                [(key, *sample)] * records,
            )
    finally:
        con.close()
    rows.append((f"+ {records} journal rows", count(root, "containers"), count(root, "journal"), db_size(root)))
    return rows


IMPORT_SNIPPETS = {
    "import corral": "import corral",
    "import corral; corral.Runtime": "import corral; corral.Runtime",
}


def measure_imports(runs: int) -> list[tuple[str, float, list[tuple[str, float]]]]:
    """Median wall ms of each snippet in fresh processes, and its top-level imports (median cumulative ms)."""
    results = []
    for label, snippet in IMPORT_SNIPPETS.items():
        code = (
            "import sys, time; sys.stderr.write('@@MARK\\n'); sys.stderr.flush(); t = time.perf_counter(); "
            f"{snippet}; print(time.perf_counter() - t)"
        )
        walls: list[float] = []
        tops: dict[str, list[float]] = collections.defaultdict(list)
        for _ in range(runs):
            done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True,
                                  text=True, check=True, cwd="/", stdin=subprocess.DEVNULL)
            walls.append(float(done.stdout.strip()) * 1000)
            lines = done.stderr.split("@@MARK\n", 1)[1].splitlines()
            for line in lines:
                if not line.startswith("import time:") or "cumulative" in line:
                    continue
                _, cumulative, name = (part for part in line[len("import time:"):].split("|"))
                if not name.startswith("  ") and name.strip():  # a top-level import of the statement
                    tops[name.strip()].append(int(cumulative) / 1000)
        top = sorted(((n, statistics.median(v + [0.0] * (runs - len(v)))) for n, v in tops.items()), key=lambda x: -x[1])
        results.append((label, statistics.median(walls), top[:8]))
    return results


def cleanup(runtimes: list[Runtime], work: Path) -> None:
    for runtime in runtimes:
        destroy_all(runtime)
    remove_cgroup_parent(CGROUP_PARENT)
    shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--live", type=int, default=50, help="running containers for the memory tables")
    parser.add_argument("--records", type=int, default=1000, help="copies of a stopped container's rows in the store")
    parser.add_argument("--imports", type=int, default=7, help="fresh processes per import measurement")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    work = Path(tempfile.mkdtemp(prefix="corral-footbench-"))
    runtimes: list[Runtime] = []
    try:
        rootfs = build_busybox_rootfs(work / "rootfs")
        memory = {}
        for mode in ("monitor", "caller"):
            runtime = Runtime(work / f"root-{mode}", LinuxExecutor(parent=mode), run_root=work / f"run-{mode}")  # type: ignore[arg-type]  # mypy: HandedOffExecHandle vs ExecHandle (reported)
            runtimes.append(runtime)
            memory[mode] = measure_memory(runtime, rootfs, options.live, mode, caller=mode == "caller")
            # The next mode's growth is measured from its own warm-up on.
        store = measure_store(work, rootfs, options.records)
    finally:
        cleanup(runtimes, work)
    imports = measure_imports(options.imports)

    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}  {os.cpu_count()} CPUs  Python {sys.version.split()[0]}  "
          f"load {os.getloadavg()[0]:.2f}\n")
    print(f"controller (this process, one Runtime per mode), MiB, {options.live} live containers\n")
    print("| mode | RSS before | RSS after | USS before | USS after | USS growth per container (KiB) | helper USS |")
    print("|---|---|---|---|---|---|---|")
    for mode, m in memory.items():
        b, a = m["before"], m["after"]
        assert isinstance(b, dict) and isinstance(a, dict)
        helper = m["helper"]
        per = (a["Uss"] - b["Uss"]) / max(1, options.live) / KIB
        print(f"| {mode} | {mib(b['Rss'])} | {mib(a['Rss'])} | {mib(b['Uss'])} | {mib(a['Uss'])} | {per:.1f} | "
              f"{mib(helper['Uss']) if isinstance(helper, dict) else '-'} |")
    print("\nper container, outside the controller: private memory (USS) and PSS, MiB, median over the live ones\n")
    print("| mode | process | count | USS | PSS | RSS |")
    print("|---|---|---|---|---|---|")
    for mode, m in memory.items():
        for kind in ("keepers", "monitors"):
            procs = m[kind]
            assert isinstance(procs, list)
            if not procs:
                print(f"| {mode} | {kind[:-1]} | 0 | - | - | - |")
                continue
            med = {k: statistics.median(p[k] for p in procs) for k in ("Uss", "Pss", "Rss")}
            print(f"| {mode} | {kind[:-1]} | {len(procs)} | {mib(med['Uss'])} | {mib(med['Pss'])} | {mib(med['Rss'])} |")
    one = memory["monitor"]["one_monitor"]
    assert isinstance(one, list)
    print("\nwhere one monitor's private pages are (KiB)\n")
    print("| mapping | private KiB |")
    print("|---|---|")
    for name, size in one[:12]:
        print(f"| {name} | {size // KIB} |")
    print("\nstore: corral.db + WAL after a TRUNCATE checkpoint\n")
    print("| store | containers | journal rows | bytes | bytes per added container or row |")
    print("|---|---|---|---|---|")
    previous: tuple[int, int, int] | None = None
    for label, containers, journal, size in store:
        per = "-"
        if previous is not None:
            added = (containers - previous[0]) or (journal - previous[1])
            per = f"{(size - previous[2]) / max(1, added):.0f}"
        print(f"| {label} | {containers} | {journal} | {size} | {per} |")
        previous = (containers, journal, size)
    print(f"\nimport time, median of {options.imports} fresh processes (ms)\n")
    print("| statement | wall ms | top-level imports (median cumulative ms) |")
    print("|---|---|---|")
    for label, wall, top in imports:
        print(f"| {label} | {wall:.1f} | {', '.join(f'{n} {ms:.1f}' for n, ms in top)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
