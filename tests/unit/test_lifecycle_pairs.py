"""Every (state, requestable event) pair, fired through the public API on the fake executor.

The expected outcome of each pair comes from ORACLE, a literal written from the
lifecycle as DESIGN.md states it, not computed from corral's table: a wrong or
missing row in corral/statemachine/lifecycle.py makes a pair below disagree,
and `test_the_oracle_and_the_table_agree` fails loudly when either one changes
without the other.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from corral import Config, Process, Runtime, State
from corral.config import PidsResources, Resources
from corral.errors import ExecutorError, InvalidTransition
from corral.statemachine import lifecycle
from tests.fakes import FakeExecutor
from tests.unit.conftest import simple_config

REFUSED = "refused"
STATES = ("creating", "created", "running", "paused", "stopped", "destroyed")
# Every requestable event; "destroy!" is destroy(force=True) and "exec!" exec(ignore_paused=True),
# the only events with a row that needs the caller's flag.
EVENTS = ("create", "start", "pause", "resume", "exec", "exec!", "signal", "update", "destroy", "destroy!")
FORCE_EVENTS = {"destroy", "exec"}

# (state, event) -> the state recorded afterwards, or REFUSED (InvalidTransition, nothing changed).
ORACLE: dict[tuple[str, str], str] = {
    ("creating", "create"): "created",
    ("creating", "start"): REFUSED,
    ("creating", "pause"): REFUSED,
    ("creating", "resume"): REFUSED,
    ("creating", "exec"): REFUSED,
    ("creating", "exec!"): REFUSED,
    ("creating", "signal"): REFUSED,
    ("creating", "update"): REFUSED,
    ("creating", "destroy"): REFUSED,
    ("creating", "destroy!"): "destroyed",
    ("created", "create"): REFUSED,
    ("created", "start"): "running",
    ("created", "pause"): REFUSED,
    ("created", "resume"): REFUSED,
    ("created", "exec"): REFUSED,
    ("created", "exec!"): REFUSED,
    ("created", "signal"): "created",
    ("created", "update"): "created",
    ("created", "destroy"): REFUSED,
    ("created", "destroy!"): "destroyed",
    ("running", "create"): REFUSED,
    ("running", "start"): REFUSED,
    ("running", "pause"): "paused",
    ("running", "resume"): REFUSED,
    ("running", "exec"): "running",
    ("running", "exec!"): "running",
    ("running", "signal"): "running",
    ("running", "update"): "running",
    ("running", "destroy"): REFUSED,
    ("running", "destroy!"): "destroyed",
    ("paused", "create"): REFUSED,
    ("paused", "start"): REFUSED,
    ("paused", "pause"): REFUSED,
    ("paused", "resume"): "running",
    ("paused", "exec"): REFUSED,
    ("paused", "exec!"): "paused",
    ("paused", "signal"): "paused",
    ("paused", "update"): "paused",
    ("paused", "destroy"): REFUSED,
    ("paused", "destroy!"): "destroyed",
    ("stopped", "create"): REFUSED,
    ("stopped", "start"): REFUSED,
    ("stopped", "pause"): REFUSED,
    ("stopped", "resume"): REFUSED,
    ("stopped", "exec"): REFUSED,
    ("stopped", "exec!"): REFUSED,
    ("stopped", "signal"): REFUSED,
    ("stopped", "update"): REFUSED,
    ("stopped", "destroy"): "destroyed",
    ("stopped", "destroy!"): "destroyed",
    ("destroyed", "create"): REFUSED,
    ("destroyed", "start"): REFUSED,
    ("destroyed", "pause"): REFUSED,
    ("destroyed", "resume"): REFUSED,
    ("destroyed", "exec"): REFUSED,
    ("destroyed", "exec!"): REFUSED,
    ("destroyed", "signal"): REFUSED,
    ("destroyed", "update"): REFUSED,
    ("destroyed", "destroy"): REFUSED,
    ("destroyed", "destroy!"): REFUSED,
}


def allowed_by_oracle(state: str) -> set[str]:
    """What an error message must offer: the events that fire in `state` without force."""
    return {e for e in EVENTS if not e.endswith("!") and ORACLE[(state, e)] != REFUSED}


def fire(runtime: Runtime, cid: str, event: str) -> None:
    box = runtime.load(cid)
    if event == "exec":
        assert box.exec(Process(args=("true",))).wait() == 0
    elif event == "exec!":
        box.exec(Process(args=("true",)), ignore_paused=True)  # paused: it runs only once resumed
    elif event == "signal":
        box.signal(signal.SIGHUP)
    elif event == "update":
        box.update(Resources(pids=PidsResources(100)))
    elif event == "destroy!":
        box.destroy(force=True)
    else:
        getattr(box, event)()


def bring_to(runtime: Runtime, cid: str, config: Config, state: str) -> None:
    """Drive a new container to `state` through the public API only."""
    box = runtime.create(cid, config)
    if state == "created":
        return
    box.start()
    if state == "running":
        return
    if state == "paused":
        box.pause()
        return
    box.signal(signal.SIGKILL)
    assert box.wait(5) == 128 + signal.SIGKILL
    if state == "destroyed":
        box.destroy()
    assert box.recorded_state.value == state


def check_refused(runtime: Runtime, cid: str, state: str, event: str) -> None:
    box = runtime.load(cid)
    before, journal = box.record, box.history()
    with pytest.raises(InvalidTransition) as raised:
        fire(runtime, cid, event)
    error = raised.value
    name = event.rstrip("!")
    assert (error.state, error.event, error.container_id) == (state, name, cid)
    assert set(error.allowed) == allowed_by_oracle(state)
    message = str(error)
    assert state in message and all(e in message for e in error.allowed)
    after = runtime.load(cid)
    assert after.record == before and after.record.version == before.version, "a refused event changed the record"
    assert len(after.history()) == len(journal), "a refused event wrote to the journal"


LIVE_PAIRS = [(s, e) for s in STATES if s != "creating" for e in EVENTS if e != "create"]


@pytest.mark.parametrize(("state", "event"), LIVE_PAIRS, ids=[f"{s}-{e}" for s, e in LIVE_PAIRS])
def test_every_event_in_every_state(runtime: Runtime, config: Config, state: str, event: str) -> None:
    bring_to(runtime, "c", config, state)
    expected = ORACLE[(state, event)]
    if expected == REFUSED:
        check_refused(runtime, "c", state, event)
        return
    journal = len(runtime.load("c").history())
    fire(runtime, "c", event)
    box = runtime.load("c")
    assert box.recorded_state.value == expected
    assert box.record.pending_event is None
    last = box.history()[-1]
    assert len(box.history()) == journal + 1
    assert (last.from_state, last.event, last.to_state) == (state, event.rstrip("!"), expected)


class SpawnHook(FakeExecutor):
    """A fake whose spawn first runs a callback: the record is `creating` and its lock is ours."""

    hook: Callable[[], None] | None = None

    def spawn(self, facts, stdio):  # type: ignore[no-untyped-def]
        if self.hook is not None:
            hook, self.hook = self.hook, None
            hook()
        return super().spawn(facts, stdio)


def test_every_event_while_creating(tmp_path: Path, boot_id_file: Path) -> None:
    """Fired from inside create (the lock is re-entrant within a thread), all but create are refused.

    `create` is not an event of an existing Container: its one source, creating,
    exists only inside Runtime.create, and destroy(force=True) from there is how a
    failed create rolls back.
    """
    executor = SpawnHook(tmp_path / "kernel")
    runtime = Runtime(tmp_path / "root", executor, run_root=tmp_path / "run", boot_id_file=boot_id_file)
    refused: list[str] = []

    def during_create() -> None:
        assert runtime.load("c").recorded_state is State.CREATING
        for event in EVENTS:
            if event != "create" and ORACLE[("creating", event)] == REFUSED:
                check_refused(runtime, "c", "creating", event)
                refused.append(event)

    executor.hook = during_create
    try:
        box = runtime.create("c", simple_config(tmp_path))
        assert sorted(refused) == sorted(e for e in EVENTS if ORACLE[("creating", e)] == REFUSED)
        steps = [(j.from_state, j.event, j.to_state) for j in box.history()]
        assert steps[-1] == ("creating", "create", ORACLE[("creating", "create")])
        # destroy(force=True) from creating is how a failed create rolls back
        executor.fail_next("spawn")
        with pytest.raises(ExecutorError):
            runtime.create("d", simple_config(tmp_path))
        failed = runtime.load("d")
        steps = [(j.from_state, j.event, j.to_state) for j in failed.history()]
        assert steps[-1] == ("creating", "destroy", ORACLE[("creating", "destroy!")])
        assert failed.recorded_state.value == "destroyed"
    finally:
        runtime.close()


def test_the_oracle_and_the_table_agree() -> None:
    """A change to the table, or to the oracle, alone fails here."""
    assert {s.value for s in lifecycle.State} == set(STATES)
    assert set(lifecycle.requestable_events()) | {e + "!" for e in FORCE_EVENTS} == set(EVENTS)
    assert {t.event for t in lifecycle.TRANSITIONS if t.requires_force} == FORCE_EVENTS
    assert set(ORACLE) == {(s, e) for s in STATES for e in EVENTS}
    table: dict[tuple[str, str], str] = {}
    for state in lifecycle.State:
        for event in EVENTS:
            row = lifecycle.find_transition(state, event.rstrip("!"), force=event.endswith("!"))
            table[(state.value, event)] = REFUSED if row is None else (row.dest or state).value
    disagree = {k: (ORACLE[k], table[k]) for k in ORACLE if ORACLE[k] != table[k]}
    assert not disagree, f"(state, event): (oracle, table) differ: {disagree}"
    for state in STATES:
        assert set(lifecycle.allowed_events(lifecycle.State(state))) == allowed_by_oracle(state)

