"""A controller in its own process, for crash tests: does one operation, and may die doing it.

    python -m tests.integration.fault_controller ROOT RUN_ROOT ID OP [CONFIG_JSON]

With CORRAL_FAULT set, the process SIGKILLs itself at that point (corral.faults).
Exit status 0: the operation completed; 3: it raised a CorralError (printed).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from corral import Config, Process, Runtime
from corral.config import PidsResources, Resources
from corral.errors import CorralError

#: What the `update` operation sets (tests/integration/test_update.py checks recovery undoes it).
UPDATED_PIDS_LIMIT = 77

OPS = ("create", "start", "pause", "resume", "exec", "signal", "update", "destroy", "destroy-force")


def main(argv: list[str]) -> int:
    root, run_root, cid, op = argv[:4]
    runtime = Runtime(root, run_root=run_root)
    try:
        if op == "create":
            config = Config.from_json(Path(argv[4]).read_text())
            runtime.create(cid, config)
            return 0
        box = runtime.load(cid)
        if op == "exec":
            box.exec(Process(args=("/bin/sleep", "1000"), env=("PATH=/bin",)))
        elif op == "signal":
            box.signal(signal.SIGUSR1)  # PID 1 without a handler: ignored, the container lives on
        elif op == "update":
            box.update(Resources(pids=PidsResources(UPDATED_PIDS_LIMIT)))
        elif op == "destroy-force":
            box.destroy(force=True)
        else:
            getattr(box, op)()
        return 0
    except CorralError as exc:
        print(f"{op}: {exc}", file=sys.stderr)
        return 3
    finally:
        runtime.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
