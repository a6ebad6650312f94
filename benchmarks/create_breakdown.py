"""Where one corral create spends its time: the library's create, and the executor calls inside it.

Run as root from the repository's root, after `bash scripts/install`:

    .venv/bin/python benchmarks/create_breakdown.py [N] [--samples]

It makes a busybox rootfs, runs N+3 lifecycles of /bin/true (create, start, wait,
destroy; the first 3 unmeasured) through one Runtime on a temporary store with the
default cgroup path, and prints the medians, in ms, of `create` and of the
executor's `plan`, `spawn`, `start` and `destroy`, as one JSON line (with
`--samples`, every measured sample instead of the medians: `ab.py` pools them). Run it from two
checkouts in turn (each with its own .venv) to compare versions on the same
machine; single medians drift on a VM, so compare several alternated runs.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.getcwd())

import corral  # noqa: E402
from corral import Config, Process, Root  # noqa: E402
from corral.executor import linux  # noqa: E402
from tests.rootfs import build_busybox_rootfs  # noqa: E402

WARMUP = 3


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--samples"]
    count = int(args[0]) if args else 30
    times: dict[str, list[float]] = {}

    def timed(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                times.setdefault(name, []).append((time.perf_counter() - start) * 1000)

        return wrapper

    for name in ("plan", "spawn", "start", "destroy"):
        setattr(linux.LinuxExecutor, name, timed(name, getattr(linux.LinuxExecutor, name)))
    tmp = tempfile.mkdtemp(prefix="corral-create-breakdown-")
    runtime = None
    try:
        rootfs = build_busybox_rootfs(Path(tmp) / "rootfs")
        config = Config(process=Process(args=("/bin/true",)), root=Root(str(rootfs)), hostname="b")
        runtime = corral.Runtime(os.path.join(tmp, "store"), run_root=os.path.join(tmp, "run"))
        create = timed("create", runtime.create)
        for i in range(count + WARMUP):
            box = create(f"b{i}", config)
            box.start()
            box.wait()
            box.destroy()
    finally:
        if runtime is not None:
            runtime.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if "--samples" in sys.argv:
        print(json.dumps({k: [round(x, 3) for x in v[WARMUP:]] for k, v in times.items() if len(v) > WARMUP}))
        return
    print(json.dumps({k: round(statistics.median(v[WARMUP:]), 2) for k, v in times.items() if len(v) > WARMUP}))


if __name__ == "__main__":
    main()
