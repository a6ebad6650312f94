"""Compare create's cost across checkouts: alternating `create_breakdown.py` runs, samples pooled.

Run as root from any directory, after `bash scripts/install` in the checkout whose
interpreter runs it:

    .venv/bin/python benchmarks/ab.py --rounds 10 --count 15 /path/to/checkout-a /path/to/checkout-b

Each checkout is a directory with corral's sources and its built extensions (a git
worktree after `scripts/install`, or `git archive` of a commit plus the `.so` files of
`corral/executor/`). Each round runs `benchmarks/create_breakdown.py COUNT --samples`
of this checkout once in each of them (cwd = that checkout, so its `corral` is the one
imported, and the spawn helper it starts runs it too), in alternating order; the samples
of all rounds are pooled. One run per checkout per round, interleaved, because a VM's
speed drifts over minutes (other load, the host): the drift then falls on both sides.
Prints, per checkout, the median and lower quartile of `create` and of `executor.spawn`
in milliseconds. `--nice` runs each under `nice -n -19`, which keeps other load on a
busy machine from dominating the numbers (it does not make an idle machine faster).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

BREAKDOWN = Path(__file__).resolve().parent / "create_breakdown.py"


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--count", type=int, default=15, help="measured lifecycles per run")
    parser.add_argument("--nice", action="store_true", help="run each under nice -n -19")
    args = parser.parse_args()
    pooled: dict[Path, dict[str, list[float]]] = {c: {} for c in args.checkouts}
    for n in range(args.rounds):
        for checkout in args.checkouts if n % 2 == 0 else args.checkouts[::-1]:
            command = [sys.executable, str(BREAKDOWN), str(args.count), "--samples"]
            if args.nice:
                command = ["nice", "-n", "-19", *command]
            done = subprocess.run(command, cwd=checkout, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{checkout}: create_breakdown failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                return 1
            for key, samples in json.loads(done.stdout.splitlines()[-1]).items():
                pooled[checkout].setdefault(key, []).extend(samples)
            print(f"round {n + 1}/{args.rounds}: {checkout}", file=sys.stderr)
    print(f"| checkout | samples | create, median | create, p25 | spawn, median | spawn, p25 |")
    print("|---|---|---|---|---|---|")
    for checkout, samples in pooled.items():
        create, spawn = samples["create"], samples["spawn"]
        print(
            f"| {checkout} | {len(create)} | {statistics.median(create):.1f} | {quantile(create, 0.25):.1f} "
            f"| {statistics.median(spawn):.1f} | {quantile(spawn, 0.25):.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
