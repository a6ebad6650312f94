"""Hypothesis drives random event sequences through Runtime/Container over the fake executor.

The abstract model below is written independently of corral's lifecycle table
(it is the OCI/runc behaviour stated from scratch), so that a wrong row in the
table shows up as a disagreement. After every step: the state, the store row,
the journal and the model agree; an invalid event raised InvalidTransition and
changed nothing; a second Runtime on the same root sees the same containers.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from corral import Config, Process, Root, Runtime, State
from corral.errors import ContainerExists, InvalidTransition
from corral.statemachine.step import facts_of
from tests.fakes import FakeExecutor

IDS = st.sampled_from(["a", "b", "c"])

# state -> event -> next state; "destroy!" is destroy(force=True).
MODEL: dict[str, dict[str, str]] = {
    "created": {"start": "running", "signal": "created", "destroy!": "destroyed"},
    "running": {"pause": "paused", "exec": "running", "signal": "running", "destroy!": "destroyed"},
    "paused": {"resume": "running", "signal": "paused", "destroy!": "destroyed"},
    "stopped": {"destroy": "destroyed", "destroy!": "destroyed"},
    "destroyed": {},
}
LIVE = {"created", "running", "paused"}
# How a container that is absent or destroyed comes back, for the walks below (not a MODEL row:
# `create` makes a new incarnation).
RECREATE = {"destroyed": {"create": "created"}}


def path_to(state: str, target: str) -> list[str]:
    """The shortest walk of MODEL (and re-creation) from `state` to `target`."""
    moves = {**MODEL, **RECREATE}
    frontier: list[tuple[str, list[str]]] = [(state, [])]
    seen = {state}
    while frontier:
        here, walk = frontier.pop(0)
        if here == target:
            return walk
        for event, nxt in sorted(moves[here].items()):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append((nxt, walk + [event]))
    raise AssertionError(f"no walk from {state} to {target}")


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.base = Path(tempfile.mkdtemp(prefix="corral-hyp-"))
        (self.base / "rootfs").mkdir()
        (self.base / "boot_id").write_text("boot-1\n")
        self.runtime = self._open()
        self.model: dict[str, str] = {}
        self.config = Config(process=Process(args=("/bin/sh",)), root=Root(str(self.base / "rootfs")))

    def _open(self) -> Runtime:
        return Runtime(
            self.base / "root",
            FakeExecutor(self.base / "kernel"),
            run_root=self.base / "run",
            boot_id_file=self.base / "boot_id",
        )

    def teardown(self) -> None:
        self.runtime.close()
        shutil.rmtree(self.base, ignore_errors=True)

    @property
    def fake(self) -> FakeExecutor:
        return self.runtime.context.executor  # type: ignore[return-value]

    # -- rules ----------------------------------------------------------------

    @rule(cid=IDS)
    def create(self, cid: str) -> None:
        if self.model.get(cid, "destroyed") != "destroyed":
            with pytest.raises(ContainerExists):
                self.runtime.create(cid, self.config)
            return
        box = self.runtime.create(cid, self.config)
        assert box.recorded_state is State.CREATED
        self.model[cid] = "created"

    @rule(cid=IDS, event=st.sampled_from(["start", "pause", "resume", "exec", "signal", "destroy", "destroy!"]))
    def fire(self, cid: str, event: str) -> None:
        if cid not in self.model:
            return
        box = self.runtime.load(cid)
        state = self.model[cid]
        nxt = MODEL[state].get(event)
        before = box.record
        journal_before = box.history()
        try:
            self._call(box, event)
        except InvalidTransition as exc:
            assert nxt is None, f"{event} in {state} should be allowed, got {exc}"
            assert state in str(exc) and repr(cid) in str(exc)
            assert box.record == before, "an invalid event changed the record"
            assert box.history() == journal_before, "an invalid event wrote to the journal"
            return
        assert nxt is not None, f"{event} in {state} should have raised InvalidTransition"
        self.model[cid] = nxt

    @rule(cid=IDS, goal=st.sampled_from(["running", "paused", "paused", "created"]))
    def walk_to(self, cid: str, goal: str) -> None:
        """Uniform random events reach running and paused rarely: walk there, one checked step at a time.

        Without this rule a CI run reaches `paused` in 0-1 of its 60 examples, so
        a wrong row of the paused state went unnoticed.
        """
        for event in path_to(self.model.get(cid, "destroyed"), goal):
            if event == "create":
                self.create(cid)
            else:
                self.fire(cid, event)
        assert self.model[cid] == goal

    @rule(cid=IDS, data=st.data())
    def fire_allowed(self, cid: str, data: st.DataObject) -> None:
        """An event the model allows in the container's state: the lifecycle moves on instead of refusing."""
        allowed = sorted(MODEL[self.model.get(cid, "destroyed")])
        if allowed:
            self.fire(cid, data.draw(st.sampled_from(allowed), label="event"))

    def _call(self, box, event: str) -> None:
        if event == "exec":
            assert box.exec(Process(args=("true",))).wait() == 0
        elif event == "signal":
            box.signal(signal.SIGHUP)
        elif event == "destroy!":
            box.destroy(force=True)
        else:
            getattr(box, event)()

    @rule(cid=IDS, status=st.integers(0, 255))
    def init_exits(self, cid: str, status: int) -> None:
        if self.model.get(cid) not in LIVE:
            return
        self.fake.make_exit(cid, status)
        self.model[cid] = "stopped"
        box = self.runtime.load(cid)
        assert box.wait() == status

    @rule()
    def reopen(self) -> None:
        other = self._open()
        try:
            seen = {c.id: c.recorded_state.value for c in other.list(include_destroyed=True) if c.id in self.model}
            latest = {cid: other.load(cid).recorded_state.value for cid in self.model}
            assert latest == self.model
            assert set(seen) == set(self.model)
        finally:
            other.close()
        self.runtime.close()
        self.runtime = self._open()

    # -- invariants --------------------------------------------------------------

    @invariant()
    def record_kernel_journal_and_model_agree(self) -> None:
        for cid, expected in self.model.items():
            box = self.runtime.load(cid)
            assert box.state.value == expected
            record = box.record
            assert record.state == expected and record.pending_event is None
            journal = box.history()
            previous = None
            for entry in journal:
                assert entry.from_state == previous
                previous = entry.to_state
            assert previous == expected
            if expected == "destroyed":
                assert not self.fake.leaked(cid)
            if expected in LIVE:
                assert self.fake.status(facts_of(box.record, box.config)).alive


LifecycleMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLifecycle = LifecycleMachine.TestCase
