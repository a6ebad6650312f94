"""The lifecycle table: its shape, the guards it drives, and the README diagram made from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from corral.statemachine import lifecycle
from corral.statemachine.lifecycle import State

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_state_is_described_once() -> None:
    assert [info.state for info in lifecycle.STATES] == list(State)


def test_state_values_are_the_lowercase_names() -> None:
    assert [s.value for s in State] == ["creating", "created", "running", "paused", "stopped", "destroyed"]


def test_every_state_but_destroyed_can_reach_destroyed() -> None:
    for state in State:
        if state is State.DESTROYED:
            continue
        assert lifecycle.find_transition(state, "destroy", force=True) is not None, state


def test_destroyed_is_final() -> None:
    assert lifecycle.allowed_events(State.DESTROYED, force=True, include_observed=True) == ()


def test_destroy_of_a_live_container_needs_force() -> None:
    for state in (State.CREATED, State.RUNNING, State.PAUSED):
        assert lifecycle.find_transition(state, "destroy", force=False) is None
        assert lifecycle.needs_force(state, "destroy")
    assert lifecycle.find_transition(State.STOPPED, "destroy", force=False) is not None


def test_exited_is_observed_not_requested() -> None:
    assert "exited" not in lifecycle.requestable_events()
    assert "exited" not in lifecycle.allowed_events(State.RUNNING)
    assert "exited" in lifecycle.allowed_events(State.RUNNING, include_observed=True)


def test_event_between_uses_the_table() -> None:
    assert lifecycle.event_between(State.RUNNING, State.PAUSED) == "pause"
    assert lifecycle.event_between(State.PAUSED, State.RUNNING) == "resume"
    assert lifecycle.event_between(State.CREATED, State.RUNNING) == "start"
    assert lifecycle.event_between(State.PAUSED, State.STOPPED) == "exited"
    assert lifecycle.event_between(State.STOPPED, State.RUNNING) is None


def test_is_valid_step_accepts_exactly_the_table() -> None:
    assert lifecycle.is_valid_step(None, "create", State.CREATING)
    assert lifecycle.is_valid_step(State.RUNNING, "exec", State.RUNNING)
    assert lifecycle.is_valid_step(State.RUNNING, "destroy", State.DESTROYED)
    assert not lifecycle.is_valid_step(State.STOPPED, "start", State.RUNNING)
    assert not lifecycle.is_valid_step(State.RUNNING, "pause", State.STOPPED)


def test_machine_transitions_mirror_the_table() -> None:
    rows = lifecycle.machine_transitions()
    assert len(rows) == len(lifecycle.TRANSITIONS)
    for row, t in zip(rows, lifecycle.TRANSITIONS, strict=True):
        assert row["trigger"] == t.event
        assert row["source"] == [s.value for s in t.sources]
        assert row["conditions"] == (["_forced"] if t.requires_force else [])


def _readme_diagram() -> str:
    text = README.read_text()
    match = re.search(r"<!-- lifecycle:begin -->\s*```mermaid\n(.*?)```\s*<!-- lifecycle:end -->", text, re.S)
    assert match, "README.md must hold the lifecycle diagram between the lifecycle markers"
    return match.group(1).strip()


def test_readme_diagram_matches_the_table() -> None:
    assert _readme_diagram() == lifecycle.mermaid().strip(), (
        "README.md's lifecycle diagram is stale: paste the output of "
        "`python -c 'from corral.statemachine.lifecycle import mermaid; print(mermaid())'`"
    )


@pytest.mark.parametrize("t", lifecycle.TRANSITIONS, ids=lambda t: f"{t.event}-{t.dest}")
def test_diagram_has_every_transition(t: lifecycle.Transition) -> None:
    diagram = lifecycle.mermaid()
    for source in t.sources:
        assert f"{source.value} --> {(t.dest or source).value}: {t.event}" in diagram


def test_every_event_has_exactly_one_kernel_work_function() -> None:
    """The recipe finds an event's kernel work in one hop from the table's event name."""
    import inspect

    from corral.statemachine import events

    assert sorted(events.KERNEL_WORK) == sorted(lifecycle.events())
    functions = list(events.KERNEL_WORK.values())
    assert len(set(functions)) == len(functions)
    for name, function in events.KERNEL_WORK.items():
        assert inspect.isfunction(function) and function.__module__ == events.__name__
        assert function.__name__ == name
