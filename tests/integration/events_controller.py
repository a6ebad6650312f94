"""Controllers in their own processes, for the event-stream tests.

    python -m tests.integration.events_controller start ROOT RUN_ROOT ID=CONFIG_JSON ...
        create and start each container, print "ready <journal position>", then sleep
        until killed (the test SIGKILLs it while the containers run)
    python -m tests.integration.events_controller lifecycle ROOT RUN_ROOT ID CONFIG_JSON
        create, start, wait and destroy one container, then exit
    python -m tests.integration.events_controller follow ROOT RUN_ROOT SINCE EXITS
        print (JSON lines) every `exited` and `oom` event after SINCE until EXITS exits
        were seen, then any more that arrive within a second, then exit
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from corral import Config, Runtime


def main(argv: list[str]) -> int:
    mode, root, run_root = argv[:3]
    runtime = Runtime(root, run_root=run_root)
    try:
        if mode == "start":
            for spec in argv[3:]:
                cid, path = spec.split("=", 1)
                runtime.create(cid, Config.from_json(Path(path).read_text())).start()
            print("ready", max((e.seq for _, e in runtime.journal(0)), default=0), flush=True)
            while True:
                time.sleep(60)
        if mode == "lifecycle":
            cid, path = argv[3:5]
            box = runtime.create(cid, Config.from_json(Path(path).read_text()))
            box.start()
            box.wait(30)
            box.destroy()
            return 0
        if mode == "follow":
            since, wanted = int(argv[3]), int(argv[4])
            exits = 0
            with runtime.events(since, kinds=["exited", "oom"], timeout=60) as stream:
                for event in stream:
                    print(json.dumps({"seq": event.seq, "id": event.container_id, "kind": event.kind,
                                      "detail": dict(event.detail)}), flush=True)
                    exits += event.kind == "exited"
                    if exits == wanted:
                        break
            with runtime.events(stream.position, kinds=["exited", "oom"], timeout=1.0) as late:
                for event in late:
                    print(json.dumps({"seq": event.seq, "id": event.container_id, "kind": event.kind,
                                      "detail": dict(event.detail)}), flush=True)
            return 0
        raise SystemExit(f"unknown mode {mode!r}")
    finally:
        runtime.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
