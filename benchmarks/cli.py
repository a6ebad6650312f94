"""Per-call time of corral's runc-compatible command line, beside runc's and crun's.

Run as root after `bash scripts/install` (runc and crun from `apt-get install -y runc crun`;
a runtime that is missing is skipped):

    .venv/bin/python benchmarks/cli.py                   # 20 calls of each command
    .venv/bin/python benchmarks/cli.py --others 1000     # with 1,000 other containers in the stores

containerd runs one runtime process per call, so what counts is the whole
process: interpreter start-up, imports, the store, the kernel work. Each
command is run `--iterations` times as a subprocess against one running
container (`sleep`) of each runtime, and the medians are compared; then
`create` + `start` + `delete --force` of a new container, as containerd's shim
calls them. The import time of each corral command is the sum of the top-level
modules `python -X importtime` reports for one call.

`--others N` puts N other containers in each runtime's store first: for corral,
N - `--live` tombstones (destroyed records with their journal, written through
the library's Repository without spawning anything) and `--live` (default 3)
running containers; for runc and crun only the live ones (they keep nothing of
a deleted container). That shows the per-call cost does not grow with the store.

Everything lives in a temporary directory (corral's `--root`, runc's `--root`,
the bundles and the rootfs), cgroups under `/corral-clibench-<pid>/`; at the end
every container made is force-deleted by id and both are removed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.rootfs import build_busybox_rootfs  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from timed_run import run  # noqa: E402  (subprocess.run's timeout polls: it would round every call up)

CGROUP_PARENT = f"/corral-clibench-{os.getpid()}"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"


class Runtime:
    def __init__(self, name: str, argv: list[str], root: Path) -> None:
        self.name = name
        self.argv = argv
        self.root = root
        self.made: list[str] = []

    def call(self, *args: str, check: bool = True) -> float:
        command = [*self.argv, "--root", str(self.root), *args]
        # stderr to a file, not a pipe: a container keeps the pipe it inherited open.
        with tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            done = run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, timeout=120)
            elapsed = (time.perf_counter() - start) * 1000
            if check and done.returncode != 0:
                err.seek(0)
                raise SystemExit(f"{self.name} {' '.join(args)}: exit {done.returncode}: {err.read().decode().strip()}")
        return elapsed


def make_bundle(work: Path, rootfs: Path, name: str, args: list[str]) -> Path:
    bundle = work / f"bundle-{name}"
    bundle.mkdir()
    subprocess.run([str(VENV_PYTHON), "-m", "corral.cli", "spec", "--bundle", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["root"]["path"] = str(rootfs)
    config["process"]["args"] = args
    config["process"]["terminal"] = False  # `corral spec` writes true, as runc does
    config["linux"]["cgroupsPath"] = f"{CGROUP_PARENT}/{name}"
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def add_tombstones(root: Path, count: int) -> None:
    """`count` destroyed containers' records, as a node keeps them after create, start, exit, delete."""
    from corral.config import Config, Process, Root
    from corral.store.repository import Repository

    config = Config(process=Process(args=("true",)), root=Root("/nonexistent")).to_json()
    repo = Repository(root)
    try:
        for i in range(count):
            record = repo.insert(container_id=f"other-{i}", state="creating", pending_event=None, config=config,
                                 bundle=None, run_dir=f"/nonexistent/other-{i}", boot_id="other-boot",
                                 cgroup_paths={}, journal_event="create")
            record = repo.update(record.key, record.version, base=record, state="stopped", exit_status=0,
                                 journal=("exited", "creating", "stopped", {"exit_status": 0}))
            repo.update(record.key, record.version, base=record, state="destroyed",
                        journal=("destroy", "stopped", "destroyed", {"force": False}))
    finally:
        repo.close()


#: Packages a one-shot command must not import (issue 12, item 4).
HEAVY = ("sqlalchemy", "alembic", "pyroute2", "transitions")


def import_ms(wrapper: Path, root: Path, args: list[str]) -> tuple[float, list[str]]:
    """Sum of the top-level modules' cumulative import time for one call (python -X importtime),
    and which of the HEAVY packages it imported."""
    command = [str(VENV_PYTHON), "-S", "-X", "importtime", str(wrapper), "--root", str(root), *args]
    with tempfile.TemporaryFile("w+") as file:  # not a pipe: a container created keeps its stderr
        subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=file, timeout=120)
        file.seek(0)
        err = file.read()
    total = 0
    heavy: set[str] = set()
    for line in err.splitlines():
        if line.startswith("import time:") and "|" in line:
            _self, cumulative, name = line[len("import time:"):].split("|")
            if name.strip().split(".")[0] in HEAVY:
                heavy.add(name.strip().split(".")[0])
            if cumulative.strip().isdigit() and not name.startswith("  "):
                total += int(cumulative)
    return total / 1000, sorted(heavy)


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--others", type=int, default=0, help="other containers in each store (tombstones + --live)")
    parser.add_argument("--live", type=int, default=3, help="how many of --others run (sleep)")
    parser.add_argument("--corral", default=str(REPO / ".venv" / "bin" / "corral-runc"))
    parser.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    parser.add_argument("--crun", default=shutil.which("crun") or "/usr/bin/crun")
    parser.add_argument("--crun-hybrid", action="store_true",
                        help="on a hybrid cgroup host, mount what crun needs as lifecycle.py does (else crun is skipped)")
    options = parser.parse_args(argv)
    # Each call is a new interpreter: it must find corral's bytecode compiled, as an installed
    # package has it (pip compiles at install; an editable checkout compiles on first use,
    # unless PYTHONDONTWRITEBYTECODE is set, when every call would compile every module).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([str(VENV_PYTHON), "-m", "compileall", "-q", str(REPO / "corral")], check=True,
                   stdout=subprocess.DEVNULL)
    hybrid = None
    if options.crun_hybrid and os.path.exists(options.crun):
        from lifecycle import HybridForCrun

        hybrid = HybridForCrun()
        for note in hybrid.prepare():
            print(note, file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="corral-clibench-"))
    rootfs = build_busybox_rootfs(work / "rootfs")
    runtimes = [Runtime("corral", [options.corral], work / "corral-root")]
    for name in ("runc", "crun"):
        binary = getattr(options, name)
        if os.path.exists(binary):
            runtimes.append(Runtime(name, [binary], work / f"{name}-root"))
        else:
            print(f"{name} skipped: {binary} not found", file=sys.stderr)
    live = min(options.live, options.others)
    if options.others > live:
        add_tombstones(runtimes[0].root, options.others - live)
    names = [rt.name for rt in runtimes]
    rows: dict[str, dict[str, list[float]]] = {}
    imports: dict[str, tuple[float, list[str]]] = {}
    try:
        for rt in list(runtimes):
            bundle = make_bundle(work, rootfs, f"{rt.name}-sleeper", ["sleep", "100000"])
            rt.made.append("sleeper")
            try:
                rt.call("run", "--detach", "--bundle", str(bundle), "sleeper")
            except SystemExit as exc:
                if rt.name != "crun" or "hybrid" not in str(exc):
                    raise
                print(f"crun skipped: {exc} (--crun-hybrid mounts what it needs)", file=sys.stderr)
                runtimes.remove(rt)
                names.remove(rt.name)
                continue
            for i in range(live):
                bundle = make_bundle(work, rootfs, f"{rt.name}-live{i}", ["sleep", "100000"])
                rt.made.append(f"live{i}")
                rt.call("run", "--detach", "--bundle", str(bundle), f"live{i}")
        per_call = [
            ("state", ["state", "sleeper"]),
            ("ps --format json", ["ps", "--format", "json", "sleeper"]),
            ("kill SIGCONT", ["kill", "sleeper", "SIGCONT"]),
            ("pause", ["pause", "sleeper"]),
            ("resume", ["resume", "sleeper"]),
            ("list", ["list", "--quiet"]),
        ]
        for _ in range(options.iterations):
            for rt in runtimes:
                for label, args in per_call:
                    rows.setdefault(label, {}).setdefault(rt.name, []).append(rt.call(*args))
        corral = runtimes[0]
        for label, args in per_call:
            imports[label] = import_ms(Path(options.corral), corral.root, args)
        for i in range(max(3, options.iterations // 4)):
            for rt in runtimes:
                cid = f"cycle{i}"
                bundle = make_bundle(work, rootfs, f"{rt.name}-{cid}", ["sleep", "100000"])
                rt.made.append(cid)
                steps = [rt.call("create", "--bundle", str(bundle), "--pid-file", str(bundle / "init.pid"), cid),
                         rt.call("start", cid), rt.call("delete", "--force", cid)]
                rt.made.remove(cid)
                for label, ms in zip(("create", "start", "delete --force"), steps):
                    rows.setdefault(label, {}).setdefault(rt.name, []).append(ms)
                rows.setdefault("create + start + delete", {}).setdefault(rt.name, []).append(sum(steps))
        # The imports of create, start and delete, on a container made for it.
        bundle = make_bundle(work, rootfs, "corral-imports", ["sleep", "100000"])
        corral.made.append("imports")
        imports["create"] = import_ms(Path(options.corral), corral.root, ["create", "--bundle", str(bundle), "imports"])
        imports["start"] = import_ms(Path(options.corral), corral.root, ["start", "imports"])
        imports["delete --force"] = import_ms(Path(options.corral), corral.root, ["delete", "--force", "imports"])
        corral.made.remove("imports")
    finally:
        for rt in runtimes:
            for cid in rt.made:
                rt.call("delete", "--force", cid, check=False)
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            parent = hierarchy / CGROUP_PARENT.lstrip("/")
            if parent.is_dir():
                for child in sorted(parent.rglob("*"), reverse=True):
                    if child.is_dir():
                        child.rmdir()
                parent.rmdir()
        shutil.rmtree(work, ignore_errors=True)
        if hybrid is not None:
            for note in hybrid.restore():
                print(note, file=sys.stderr)
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}  {os.cpu_count()} CPUs  Python {sys.version.split()[0]}  "
          f"{options.iterations} calls each; {options.others} other containers in corral's store "
          f"({live} live); ms, median (p90)\n")
    others = [n for n in names if n != "corral"]
    print("| command | " + " | ".join(names) + " | " + " | ".join(f"corral/{n}" for n in others)
          + " | corral imports (ms) | heavy imports |")
    print("|---" * (len(names) + len(others) + 3) + "|")
    for label, by_runtime in rows.items():
        cells = []
        for name in names:
            samples = by_runtime.get(name)
            cells.append("%.1f (%.1f)" % summary(samples) if samples else "-")
        ratios = [
            f"{summary(by_runtime['corral'])[0] / summary(by_runtime[n])[0]:.2f}x" if n in by_runtime else "-"
            for n in others
        ]
        imported, heavy = imports.get(label, (None, []))
        imported_text = f"{imported:.1f}" if imported is not None else ""
        heavy_text = ", ".join(heavy) if imported is not None and heavy else ("none" if imported is not None else "")
        print(f"| {label} | " + " | ".join(cells + ratios) + f" | {imported_text} | {heavy_text} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
