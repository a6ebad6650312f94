"""The container lifecycle as one declarative table.

Everything that knows about states and events reads these two tables: the
`transitions` machine each Container runs, the guards and their error messages,
recovery (which maps what the kernel says back onto an event of the table), the
Mermaid diagram in README.md, and the tests. Nothing restates them.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple  # not dataclasses: a one-shot `start` would import `inspect` for these two


class State(str, Enum):
    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    DESTROYED = "destroyed"

    def __str__(self) -> str:
        return self.value


class StateInfo(NamedTuple):
    state: State
    meaning: str
    init_alive: bool  # the kernel should hold a live init in this state
    has_resources: bool  # cgroups and the run dir may exist in this state


class Transition(NamedTuple):
    event: str
    sources: tuple[State, ...]
    dest: State | None  # None: the state does not change (an internal transition)
    requires_force: bool = False
    observed: bool = False  # noticed in the kernel, never requested through the API
    meaning: str = ""
    #: The caller's argument that allows a `requires_force` row (destroy's `force`, exec's `ignore_paused`).
    force_flag: str = "force"


S = State

STATES: tuple[StateInfo, ...] = (
    StateInfo(S.CREATING, "intent recorded, init being spawned", False, True),
    StateInfo(S.CREATED, "init is PID 1 in its namespaces, blocked on the exec fifo", True, True),
    StateInfo(S.RUNNING, "the user's process runs", True, True),
    StateInfo(S.PAUSED, "frozen by the cgroup freezer", True, True),
    StateInfo(S.STOPPED, "init has exited; cgroups and record remain", False, True),
    StateInfo(S.DESTROYED, "everything removed; the record is a tombstone", False, False),
)

TRANSITIONS: tuple[Transition, ...] = (
    Transition("create", (S.CREATING,), S.CREATED, meaning="spawn init in new namespaces and cgroups"),
    Transition("start", (S.CREATED,), S.RUNNING, meaning="open the exec fifo: init execs the process"),
    Transition("pause", (S.RUNNING,), S.PAUSED, meaning="freeze the cgroup"),
    Transition("resume", (S.PAUSED,), S.RUNNING, meaning="thaw the cgroup"),
    Transition("exec", (S.RUNNING,), None, meaning="run another process in the namespaces"),
    Transition(
        "exec",
        (S.PAUSED,),
        None,
        requires_force=True,
        force_flag="ignore_paused",
        meaning="run another process in the frozen cgroup: it runs once resumed (runc's --ignore-paused)",
    ),
    Transition("signal", (S.CREATED, S.RUNNING, S.PAUSED), None, meaning="signal the init"),
    Transition(
        "update", (S.CREATED, S.RUNNING, S.PAUSED), None, meaning="change the cgroup limits (linux.resources)"
    ),
    Transition(
        "oom", (S.CREATED, S.RUNNING, S.PAUSED), None, observed=True, meaning="the kernel OOM-killed a process"
    ),
    Transition(
        "exited", (S.CREATED, S.RUNNING, S.PAUSED), S.STOPPED, observed=True, meaning="init is gone"
    ),
    Transition("destroy", (S.STOPPED,), S.DESTROYED, meaning="remove cgroups and run dir"),
    Transition(
        "destroy",
        (S.CREATING, S.CREATED, S.RUNNING, S.PAUSED),
        S.DESTROYED,
        requires_force=True,
        meaning="kill, wait, then remove",
    ),
)

INITIAL_STATE = S.CREATING


def state_info(state: State) -> StateInfo:
    for info in STATES:
        if info.state is state:
            return info
    raise KeyError(state)


def events() -> tuple[str, ...]:
    """Every event name, in table order, once."""
    return tuple(dict.fromkeys(t.event for t in TRANSITIONS))


def requestable_events() -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.event for t in TRANSITIONS if not t.observed))


def transitions_for(state: State, event: str) -> tuple[Transition, ...]:
    return tuple(t for t in TRANSITIONS if t.event == event and state in t.sources)


def allowed_events(state: State, *, force: bool = False, include_observed: bool = False) -> tuple[str, ...]:
    """The events that may fire in `state` (for error messages and the CLI)."""
    names = [
        t.event
        for t in TRANSITIONS
        if state in t.sources
        and (force or not t.requires_force)
        and (include_observed or not t.observed)
    ]
    return tuple(dict.fromkeys(names))


def find_transition(state: State, event: str, *, force: bool) -> Transition | None:
    """The row that fires `event` in `state`, preferring one that needs no force."""
    rows = transitions_for(state, event)
    for row in rows:
        if not row.requires_force:
            return row
    for row in rows:
        if force:
            return row
    return None


def needs_force(state: State, event: str) -> bool:
    rows = transitions_for(state, event)
    return bool(rows) and all(r.requires_force for r in rows)


def force_hint(state: State, event: str) -> str:
    """What a refusal adds when the caller's flag would allow `event` ("pass force=True"), else ""."""
    rows = transitions_for(state, event)
    if not rows or not all(r.requires_force for r in rows):
        return ""
    return f"pass {rows[0].force_flag}=True"


def event_between(source: State, dest: State) -> str | None:
    """The unforced event that moves `source` to `dest`, if the table has one.

    Recovery uses it to write what it found in the kernel as an ordinary step
    of the lifecycle, so that every journal is a walk of this table.
    """
    for t in TRANSITIONS:
        if source in t.sources and t.dest is dest and not t.requires_force:
            return t.event
    for t in TRANSITIONS:
        if source in t.sources and t.dest is dest:
            return t.event
    return None


def is_valid_step(source: State | None, event: str, dest: State) -> bool:
    """Whether one journal row (`source` --event--> `dest`) is a step of the table."""
    if source is None:
        return event == "create" and dest is INITIAL_STATE
    for t in TRANSITIONS:
        if t.event == event and source in t.sources and (t.dest or source) is dest:
            return True
    return False


def machine_transitions() -> list[dict[str, object]]:
    """The table in the form `transitions.Machine` takes (conditions added by the caller)."""
    return [
        {
            "trigger": t.event,
            "source": [s.value for s in t.sources],
            "dest": t.dest.value if t.dest is not None else None,
            "conditions": ["_forced"] if t.requires_force else [],
        }
        for t in TRANSITIONS
    ]


def mermaid() -> str:
    """The lifecycle diagram (Mermaid), as README.md shows it."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL_STATE.value}: create"]
    for t in TRANSITIONS:
        label = t.event + (f" ({t.force_flag})" if t.requires_force else "") + (" (observed)" if t.observed else "")
        for source in t.sources:
            dest = t.dest or source
            lines.append(f"    {source.value} --> {dest.value}: {label}")
    lines.append(f"    {S.DESTROYED.value} --> [*]")
    return "\n".join(lines)
