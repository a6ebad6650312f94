"""Hypothesis over real containers, with "the controller crashed here" and "recover" steps.

Events run in this process; a crash step runs the event in a child controller
that SIGKILLs itself at one of the event's fault points, and a new Runtime then
recovers. After every step the record, the kernel and the model must agree. The
model is the independent one of test_lifecycle_fake.py; after a crash it allows
either side of the interrupted event (or the rollback of a create).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from corral import Config, Process, Root, Runtime, faults
from corral.errors import InvalidTransition
from tests.integration.conftest import leaks_of
from tests.integration.test_recovery import assert_record_matches_kernel
from tests.rootfs import BUSYBOX, build_busybox_rootfs
from tests.stateful.test_lifecycle_fake import LIVE, MODEL

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="needs Debian's busybox-static"),
]

REPO = Path(__file__).resolve().parents[2]
IDS = st.sampled_from(["h1", "h2"])
EVENTS = ("create", "start", "pause", "resume", "exec", "signal", "destroy!")
CGROUP_PARENT = f"/corral-hyp-{os.getpid()}"
#: Reached only by a container with a network section (these have none): tests/integration/test_network.py.
NETWORK_POINTS = frozenset({"create.interface"})


def points_of(event: str) -> list[str]:
    name = "destroy" if event == "destroy!" else event
    return [p for p in faults.POINTS if p.startswith(name + ".") and p not in NETWORK_POINTS]


class RealLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.base = Path(tempfile.mkdtemp(prefix="corral-hyp-"))
        build_busybox_rootfs(self.base / "rootfs")
        self.runtime = Runtime(self.base / "root", run_root=self.base / "run")
        self.model: dict[str, str] = {}

    def config(self, cid: str) -> Config:
        return Config(
            process=Process(args=("/bin/sleep", "1000"), env=("PATH=/bin",)),
            root=Root(str(self.base / "rootfs")),
            cgroups_path=f"{CGROUP_PARENT}/{cid}",
        )

    def teardown(self) -> None:
        try:
            leaks = leaks_of(self.runtime, self.base)
        finally:
            self.runtime.close()
            for hierarchy in Path("/sys/fs/cgroup").iterdir():
                parent = hierarchy / CGROUP_PARENT.lstrip("/")
                if parent.is_dir():
                    parent.rmdir()
            shutil.rmtree(self.base, ignore_errors=True)
        assert leaks == []

    def _do(self, cid: str, event: str) -> None:
        if event == "create":
            self.runtime.create(cid, self.config(cid))
            return
        box = self.runtime.load(cid)
        if event == "exec":
            box.exec(Process(args=("/bin/true",), env=("PATH=/bin",))).wait(10)
        elif event == "signal":
            box.signal(signal.SIGUSR1)
        elif event == "destroy!":
            box.destroy(force=True)
        else:
            getattr(box, event)()

    @staticmethod
    def _allowed(state: str | None, event: str) -> str | None:
        if event == "create":
            return "created" if state in (None, "destroyed") else None
        return MODEL.get(state or "destroyed", {}).get(event)

    @rule(cid=IDS, event=st.sampled_from(EVENTS))
    def fire(self, cid: str, event: str) -> None:
        state = self.model.get(cid)
        nxt = self._allowed(state, event)
        if nxt is None:
            if state is None:
                return
            before = self.runtime.load(cid).record
            with pytest.raises(Exception) as info:
                self._do(cid, event)
            assert isinstance(info.value, (InvalidTransition,)) or event == "create", info.value
            assert self.runtime.load(cid).record == before
            return
        self._do(cid, event)
        self.model[cid] = nxt

    @precondition(lambda self: any(s in LIVE for s in self.model.values()))
    @rule(cid=IDS)
    def kill(self, cid: str) -> None:
        if self.model.get(cid) not in LIVE:
            return
        box = self.runtime.load(cid)
        box.signal(signal.SIGKILL)
        assert box.wait(10) == 137
        self.model[cid] = "stopped"

    @rule(cid=IDS, event=st.sampled_from(EVENTS), data=st.data())
    def crash_during(self, cid: str, event: str, data: st.DataObject) -> None:
        state = self.model.get(cid)
        nxt = self._allowed(state, event)
        if nxt is None:
            return
        point = data.draw(st.sampled_from(points_of(event)), label="fault point")
        args = [sys.executable, "-m", "tests.integration.fault_controller", str(self.runtime.root),
                str(self.runtime.run_root), cid, "destroy-force" if event == "destroy!" else event]
        if event == "create":
            config_file = self.base / f"{cid}.json"
            config_file.write_text(self.config(cid).to_json())
            args.append(str(config_file))
        env = {**os.environ, faults.ENV: point}
        done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == -signal.SIGKILL, (point, done.returncode, done.stderr)
        self.runtime.close()
        self.runtime = Runtime(self.base / "root", run_root=self.base / "run")
        report = self.runtime.last_recovery
        assert report is not None and report.failed == []
        box = self.runtime.load(cid)
        if point == "create.recorded":  # the monitor kills the unconfirmed init: let it finish
            box.wait(10)
        outcome = box.state.value
        possible = {state or "destroyed", nxt}
        if event == "create":
            possible |= {"stopped"}
        assert outcome in possible, (point, state, outcome)
        self.model[cid] = outcome

    @rule()
    def reopen(self) -> None:
        self.runtime.close()
        self.runtime = Runtime(self.base / "root", run_root=self.base / "run")
        report = self.runtime.last_recovery
        assert report is not None and report.actions == [] and report.failed == []

    @invariant()
    def record_kernel_and_model_agree(self) -> None:
        for cid, expected in self.model.items():
            box = self.runtime.load(cid)
            assert assert_record_matches_kernel(box).value == expected


RealLifecycle.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
TestRealLifecycle = RealLifecycle.TestCase
