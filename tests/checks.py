"""Checks shared by unit and integration tests."""

from __future__ import annotations

from corral import State
from corral.statemachine import lifecycle


def assert_journal_is_a_walk(box, state: State | None = None) -> None:
    """Each row starts where the previous ended and is a step of the table; the last ends at the state."""
    entries = box.history()
    previous = None
    for entry in entries:
        assert entry.from_state == previous, entries
        assert lifecycle.is_valid_step(State(previous) if previous else None, entry.event, State(entry.to_state))
        previous = entry.to_state
    assert previous == (state.value if state is not None else box.record.state)
