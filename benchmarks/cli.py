"""Per-call time of corral's runc-compatible command line, beside runc's.

Run as root after `bash scripts/install` (runc from `apt-get install -y runc`):

    .venv/bin/python benchmarks/cli.py                   # 20 calls of each command
    .venv/bin/python benchmarks/cli.py --others 1000     # with 1,000 other records in the store

containerd runs one runtime process per call, so what counts is the whole
process: interpreter start-up, imports, the store, the kernel work. Each
command is run `--iterations` times as a subprocess against one running
container (`sleep`) of each runtime, and the medians are compared; then
`create` + `start` + `delete --force` of a new container, as containerd's shim
calls them. The import time of each corral command is the sum of the top-level
modules `python -X importtime` reports for one call.

`--others N` records N stopped containers in corral's store first (through the
library's Repository, without spawning anything), to show that the per-call
cost does not grow with the store.

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
            done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, timeout=120)
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


def add_other_records(root: Path, count: int) -> None:
    from corral.config import Config, Process, Root
    from corral.store.repository import Repository

    config = Config(process=Process(args=("true",)), root=Root("/nonexistent")).to_json()
    repo = Repository(root)
    try:
        for i in range(count):
            record = repo.insert(container_id=f"other-{i}", state="creating", pending_event=None, config=config,
                                 bundle=None, run_dir=f"/nonexistent/other-{i}", boot_id="other-boot",
                                 cgroup_paths={}, journal_event="create")
            repo.update(record.key, record.version, state="stopped", exit_status=0)
    finally:
        repo.close()


def import_ms(wrapper: Path, root: Path, args: list[str]) -> float:
    """Sum of the top-level modules' cumulative import time for one call (python -X importtime)."""
    command = [str(VENV_PYTHON), "-S", "-X", "importtime", str(wrapper), "--root", str(root), *args]
    err = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True, timeout=120).stderr
    total = 0
    for line in err.splitlines():
        if line.startswith("import time:") and "|" in line:
            _self, cumulative, name = line[len("import time:"):].split("|")
            if cumulative.strip().isdigit() and not name.startswith("  "):
                total += int(cumulative)
    return total / 1000


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--others", type=int, default=0, help="stopped records to add to corral's store first")
    parser.add_argument("--corral", default=str(REPO / ".venv" / "bin" / "corral-runc"))
    parser.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="corral-clibench-"))
    rootfs = build_busybox_rootfs(work / "rootfs")
    runtimes = [Runtime("corral", [options.corral], work / "corral-root")]
    if os.path.exists(options.runc):
        runtimes.append(Runtime("runc", [options.runc], work / "runc-root"))
    else:
        print(f"runc skipped: {options.runc} not found", file=sys.stderr)
    if options.others:
        add_other_records(runtimes[0].root, options.others)
    rows: dict[str, dict[str, list[float]]] = {}
    try:
        for rt in runtimes:
            bundle = make_bundle(work, rootfs, f"{rt.name}-sleeper", ["sleep", "100000"])
            rt.made.append("sleeper")
            rt.call("run", "--detach", "--bundle", str(bundle), "sleeper")
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
        imports = {label: import_ms(Path(options.corral), runtimes[0].root, args) for label, args in per_call}
    finally:
        for rt in runtimes:
            for cid in rt.made:
                rt.call("delete", "--force", cid, check=False)
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            parent = hierarchy / CGROUP_PARENT.lstrip("/")
            if parent.is_dir():
                for child in parent.iterdir():
                    if child.is_dir():
                        child.rmdir()
                parent.rmdir()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}  {os.cpu_count()} CPUs  Python {sys.version.split()[0]}  "
          f"{options.iterations} calls each, {options.others} other records in corral's store; ms, median (p90)\n")
    print("| command | corral | runc | corral/runc | corral imports |")
    print("|---|---|---|---|---|")
    for label, by_runtime in rows.items():
        cells = []
        for name in ("corral", "runc"):
            samples = by_runtime.get(name)
            cells.append("%.1f (%.1f)" % summary(samples) if samples else "-")
        ratio = (
            f"{summary(by_runtime['corral'])[0] / summary(by_runtime['runc'])[0]:.1f}x" if "runc" in by_runtime else "-"
        )
        imported = f"{imports[label]:.1f}" if label in imports else ""
        print(f"| {label} | {cells[0]} | {cells[1]} | {ratio} | {imported} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
