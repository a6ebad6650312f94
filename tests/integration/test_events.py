"""Runtime.events() on real containers (issue 13): exits and OOM kills reach the journal with
nobody waiting, survive the controller, and reach every process sharing the root.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corral import Runtime
from corral.config import MemoryResources, Resources
from tests.integration.conftest import make_config

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def _controller(*args: str, **kwargs: object) -> list[str]:
    return [sys.executable, "-m", "tests.integration.events_controller", *args]


def test_an_exit_nobody_waits_for_is_an_event(runtime: Runtime, bundle: Path) -> None:
    box = runtime.create("lone", make_config(bundle, "lone", "/bin/sh", "-c", "sleep 0.3; exit 3"))
    with runtime.events(ids=["lone"], timeout=30) as stream:
        box.start()
        kinds = []
        for event in stream:
            kinds.append(event.kind)
            if event.kind == "exited":
                break
    assert kinds == ["start", "exited"]
    assert event.exit_status == 3 and event.detail == {"exit_status": 3, "signal": None, "oom_killed": False}
    assert box.record.state == "stopped"  # recorded by the monitor: nobody called wait() or state
    assert box.wait(5) == 3
    assert [e.event for e in box.history()].count("exited") == 1


def test_exits_and_an_oom_after_the_controller_was_killed(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    """SIGKILL the controller while its containers run; a new process gets each exit and OOM once, in order."""
    specs = {
        "x1": make_config(bundle, "x1", "/bin/sh", "-c", "sleep 1; exit 1"),
        "x2": make_config(bundle, "x2", "/bin/sh", "-c", "sleep 2; exit 2"),
        "xoom": dataclasses.replace(
            make_config(bundle, "xoom", "/bin/sh", "-c", "sleep 3; exec dd if=/dev/zero of=/dev/null bs=64M count=1"),
            resources=Resources(memory=MemoryResources(limit=32 * MiB, swap=32 * MiB)),
        ),
        "x4": make_config(bundle, "x4", "/bin/sh", "-c", "sleep 4; exit 4"),
    }
    args = []
    for cid, config in specs.items():
        path = tmp_path / f"{cid}.json"
        path.write_text(config.to_json())
        args.append(f"{cid}={path}")
    controller = subprocess.Popen(
        _controller("start", str(runtime.root), str(runtime.run_root), *args),
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        line = controller.stdout.readline() if controller.stdout else ""
        assert line.startswith("ready "), line
        last_seen = int(line.split()[1])
        controller.send_signal(signal.SIGKILL)  # while every container still runs
        controller.wait(10)
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait()
    assert {box.id: box.record.state for box in runtime.list()} == dict.fromkeys(specs, "running")
    time.sleep(5)  # every container has exited by now; no process has waited for any of them
    follower = subprocess.run(
        _controller("follow", str(runtime.root), str(runtime.run_root), str(last_seen), "4"),
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert follower.returncode == 0, follower.stderr
    events = [json.loads(line) for line in follower.stdout.splitlines()]
    seen = [(e["id"], e["kind"]) for e in events]
    assert seen == [("x1", "exited"), ("x2", "exited"), ("xoom", "oom"), ("xoom", "exited"), ("x4", "exited")], seen
    exits = {e["id"]: e["detail"] for e in events if e["kind"] == "exited"}
    assert {cid: d["exit_status"] for cid, d in exits.items()} == {"x1": 1, "x2": 2, "xoom": 137, "x4": 4}
    assert exits["xoom"]["oom_killed"] is True and exits["xoom"]["signal"] == signal.SIGKILL
    assert [e["detail"] for e in events if e["kind"] == "oom"] == [{"oom_kills": 1}]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


def test_events_of_one_process_reach_another(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    path = tmp_path / "twin.json"
    path.write_text(make_config(bundle, "twin", "/bin/sh", "-c", "exit 5").to_json())
    with runtime.events(ids=["twin"], timeout=60) as stream:
        subprocess.run(
            _controller("lifecycle", str(runtime.root), str(runtime.run_root), "twin", str(path)),
            cwd=REPO, check=True, timeout=120,
        )
        got = []
        for event in stream:
            got.append(event)
            if event.kind == "destroy":
                break
    assert [e.kind for e in got] == ["create", "create", "start", "exited", "destroy"]
    assert got[3].exit_status == 5
    assert os.getpid() not in {e.detail.get("pid") for e in got}
