"""The lifecycle of `/bin/true` with one veth: corral beside runc with the same interface made by hand.

Run as root from the repository's root, after `bash scripts/install`:

    .venv/bin/python benchmarks/network.py [--iterations 20] [--warmup 3] [--json]

Rows, interleaved round by round after a warm-up, medians (and p90s) in ms:

- corral: create, start, wait, destroy through one long-lived Runtime, the config
  of benchmarks/lifecycle.py without a network section (the reference) and with one
  veth (192.0.2.2/24, MTU 1400, the host name derived from the id, no bridge);
- runc (if installed): its split lifecycle without a veth (`create`, `start`, wait,
  `delete`, as benchmarks/lifecycle.py times it), and `create`, then the same veth made by hand for its init (the
  peer created in the init's network namespace through its PID, the same netlink
  requests corral makes: corral.executor.network.links, so only the runtime around
  it differs), `start`, wait for the init, `delete`, then the host side removed
  (already gone with the namespace, usually), as corral's destroy does.

Only 192.0.2.0/24 on the containers' own interfaces; no bridge, no route off the
veth: no traffic leaves. Every container and veth it made is removed at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import select
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.getcwd())
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lifecycle as bench  # noqa: E402  benchmarks/lifecycle.py: the bundle, runc's driver, the statistics

ADDRESS = "192.0.2.2/24"
MTU = 1400


def network_section() -> Any:
    from corral import Interface, Network

    return Network((Interface(addresses=(ADDRESS,), mtu=MTU),))


class CorralRows:
    def __init__(self, work: Path, rootfs: Path) -> None:
        self.inner = bench.Corral(work, rootfs)
        self.network = network_section()

    def lifecycle(self, cid: str, veth: bool) -> float:
        config = self.inner._config(cid, ["/bin/true"])
        if veth:
            config = dataclasses.replace(config, network=self.network)
        self.inner.ids.append(cid)
        t0 = time.perf_counter()
        box = self.inner.runtime.create(cid, config, stdio=self.inner._stdio)
        box.start()
        status = box.wait(bench.TIMEOUT)
        box.destroy()
        elapsed = time.perf_counter() - t0
        if status != 0:
            raise RuntimeError(f"/bin/true in {cid} exited with {status}")
        return elapsed

    def cleanup(self) -> list[str]:
        return self.inner.cleanup()


class RuncRow:
    """runc's split lifecycle with the veth made by hand between create and start."""

    def __init__(self, work: Path, rootfs: Path) -> None:
        from corral import Config, Process, Root
        from corral.executor.network import links

        self.links = links
        self.runc = bench.OCIRuntime("runc", shutil.which("runc") or "runc", work, rootfs)
        # Only the network section matters to links.set_up: the rest is never run.
        self.config = Config(process=Process(args=("/bin/true",)), root=Root(str(rootfs)), network=network_section())
        self.made: list[Any] = []

    def lifecycle(self, cid: str) -> float:
        bundle = self.runc._bundle(cid, ["/bin/true"])
        pid_file = bundle / "init.pid"
        self.runc.ids.append(cid)
        host = self.links.HostInterface(self.links.derived_host_name("runc", cid, 0), "eth0", f"bench {cid}")
        t0 = time.perf_counter()
        self.runc._call("create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid)
        pid = int(pid_file.read_text())
        self.made.append(host)
        self.links.set_up(cid, self.config, (host,), pid)
        pidfd = os.pidfd_open(pid)
        try:
            self.runc._call("start", cid)
            if not select.select([pidfd], [], [], bench.TIMEOUT)[0]:
                raise RuntimeError(f"runc: /bin/true in {cid} did not exit in {bench.TIMEOUT} s")
        finally:
            os.close(pidfd)
        self.runc._call("delete", cid)
        self.links.tear_down(cid, (host,))
        return time.perf_counter() - t0

    def cleanup(self) -> list[str]:
        problems = self.runc.cleanup()
        try:
            self.links.tear_down("bench", self.made)
        except Exception as exc:  # noqa: BLE001 - report, go on
            problems.append(f"runc veths: {exc}")
        return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: containers need namespaces, cgroups and mounts")
    work = Path(tempfile.mkdtemp(prefix=f"{bench.PREFIX}-net-"))
    os.chmod(work, 0o755)
    samples: dict[str, list[float]] = {"corral": [], "corral + veth": [], "runc": [], "runc + veth (by hand)": []}
    corral_rows: CorralRows | None = None
    runc_row: RuncRow | None = None
    notes: list[str] = []
    problems: list[str] = []
    try:
        with bench.signals_unwind():
            rootfs = bench.build_rootfs(work / "shared")
            corral_rows = CorralRows(work, rootfs)
            if shutil.which("runc"):
                runc_row = RuncRow(work, rootfs)
            else:
                notes.append("runc is not installed: its row is skipped")
                del samples["runc"], samples["runc + veth (by hand)"]
            for i in range(args.warmup + args.iterations):
                measured = i >= args.warmup
                rows: list[tuple[str, Callable[[], float]]] = [
                    ("corral", lambda: corral_rows.lifecycle(f"n{i}", veth=False)),
                    ("corral + veth", lambda: corral_rows.lifecycle(f"v{i}", veth=True)),
                ]
                if runc_row is not None:
                    rows.append(("runc", lambda: runc_row.runc.lifecycle_split(f"p{i}")["total"]))
                    rows.append(("runc + veth (by hand)", lambda: runc_row.lifecycle(f"r{i}")))
                # Each row in turn goes first: the kernel tears a network namespace down after
                # the container is gone, in the background, and that work lands on the next row.
                shift = i % len(rows)
                got = {key: run() for key, run in rows[shift:] + rows[:shift]}
                if measured:
                    for key, value in got.items():
                        samples[key].append(value)
    finally:
        with bench.signals_ignored():
            for rows in (corral_rows, runc_row):
                if rows is not None:
                    problems += rows.cleanup()
            problems += bench.remove_cgroups()
            shutil.rmtree(work, ignore_errors=True)
    stats = {key: bench.summary(values) for key, values in samples.items() if values}
    if args.json:
        json.dump({"unit": "ms", "iterations": args.iterations, "results": stats, "notes": notes}, sys.stdout, indent=2)
        print()
    else:
        print(f"lifecycle of /bin/true, {args.iterations} rounds after {args.warmup}; median (p90) ms")
        for key, value in stats.items():
            print(f"  {key:<24} {bench.fmt(value)}")
        veth, plain, runc = stats.get("corral + veth"), stats.get("corral"), stats.get("runc + veth (by hand)")
        if veth and plain:
            print(f"  the veth costs corral {veth['median'] - plain['median']:.1f} ms")
        runc_plain = stats.get("runc")
        if runc and runc_plain:
            print(f"  the veth costs runc {runc['median'] - runc_plain['median']:.1f} ms")
        if veth and runc:
            print(f"  corral + veth / runc + veth: {bench.ratio(veth, runc)}")
        for note in notes:
            print(f"  note: {note}")
    for problem in problems:
        print(f"cleanup: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
