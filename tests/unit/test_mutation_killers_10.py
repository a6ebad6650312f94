"""Tests written against mutants of statemachine/ that survived the unit suite (tests/README.md,
the fourth and fifth sessions' statemachine runs); each names what it kills.

They run on the fake executor, without root.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import selectors
import signal
import sqlite3
import time
import types
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from corral import Runtime, faults
from corral.config import Config, Hook, Hooks
from corral.config.network import Network
from corral.config.types import PidsResources, Resources
from corral.errors import (
    ConfigError,
    ExecutorError,
    InitError,
    InvalidTransition,
    LogsUnavailable,
    WaitTimeout,
)
from corral.executor import cgroups, logwriter, teardown
from corral.executor.hooks import HookOutcome
from corral.executor.interface import ContainerFacts, ContainerPlan, HostInterface
from corral.identity import ProcessIdentity
from corral.records import replace
from corral.statemachine import lifecycle, logs, output, quick, quick_create, quick_destroy
from corral.statemachine.events_stream import BATCH
from corral.statemachine.locks import Locks
from corral.statemachine.outcomes import KILL_TIMEOUT, REBOOTED
from corral.statemachine.quick import NeedsLibrary
from corral.store import repository
from corral.store.lean_durable import DurableLeanStore
from corral.types import Stdio
from tests.fakes import FakeSpawned
from tests.unit.conftest import make_runtime
from tests.unit.test_mutation_killers import _oom_runtime
from tests.unit.test_mutation_killers_9 import _reader_statements
from tests.unit.test_quick_create import BOOT, lean, lean_create, lean_delete  # noqa: F401  (`lean`: a fixture)


def _sql(runtime: Runtime, statement: str, *params: object) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(runtime.root / "corral.db")
    try:
        with con:
            return con.execute(statement, params).fetchall()
    finally:
        con.close()


def _last_journal(runtime: Runtime, cid: str) -> Any:
    return runtime.load(cid).history()[-1]


# -- quick_create.py -----------------------------------------------------------------------


def test_lean_create_hands_over_with_the_reason_it_logs(runtime: Runtime, config: Config) -> None:
    """Kills quick_create x_refuse__mutmut_1/_2/_3/_5/_6/_7: the reason a create takes the library's
    path, which `corral --debug create` logs (cli/fast_create.py), lost or changed."""
    hooked = dataclasses.replace(config, hooks=Hooks(poststop=(Hook(path="/bin/true"),)))
    with pytest.raises(NeedsLibrary) as caught:
        quick_create.refuse(hooked)
    assert str(caught.value) == "the config has hooks: the library runs them"
    with pytest.raises(NeedsLibrary) as caught:
        quick_create.refuse(dataclasses.replace(config, network=Network()))
    assert str(caught.value) == "the config has a network section: the library makes it (pyroute2)"
    quick_create.refuse(config)  # nothing to hand over


def test_lean_create_of_a_terminal_hands_back_its_master(
    runtime: Runtime, config: Config, lean: DurableLeanStore  # noqa: F811
) -> None:
    """Kills quick_create xǁCreatedǁ__init____mutmut_1/_3 (the id or the pty master lost from what
    `create` hands back) and x_create__mutmut_4 (console=True not passed to the check: a terminal
    refused although its master is taken)."""
    terminal = dataclasses.replace(config, process=dataclasses.replace(config.process, terminal=True))
    made = quick_create.create(
        lean, Locks(runtime.root), runtime.context.executor, BOOT, str(runtime.run_root), "c", terminal, console=True
    )
    try:
        assert made.id == "c"
        assert made.console_fd is not None and made.console_fd == runtime.context.executor.spawned[-1].console_fd
        assert made.pid == runtime.load("c").pid
    finally:
        if made.console_fd is not None:
            import os

            os.close(made.console_fd)


@pytest.mark.parametrize("case", ["terminal without console", "console without terminal", "stdio beside a terminal"])
def test_lean_create_refuses_consoles_as_the_library_does(
    case: str, runtime: Runtime, config: Config, lean: DurableLeanStore  # noqa: F811
) -> None:
    """Kills quick_create x_create__mutmut_3/_5/_6/_7/_13/_14/_15/_16/_17: the console check given
    another terminal flag, no stdio, or another field or call name in its message: the refusal must
    be the library's (Runtime.create's), word for word, with nothing written."""
    terminal = case != "console without terminal"
    wanted = dataclasses.replace(config, process=dataclasses.replace(config.process, terminal=terminal))
    console = case != "terminal without console"
    stdio = Stdio(stdout=1) if case == "stdio beside a terminal" else None
    with pytest.raises(ConfigError) as library:
        runtime.create("c", wanted, stdio=stdio, console=console)
    with pytest.raises(ConfigError) as leaned:
        quick_create.create(
            lean, Locks(runtime.root), runtime.context.executor, BOOT, str(runtime.run_root), "c", wanted,
            stdio=stdio, console=console,
        )
    assert str(leaned.value) == str(library.value)
    assert "Runtime.create" in str(leaned.value) or case == "stdio beside a terminal"
    assert runtime.list(include_destroyed=True) == []
    assert runtime.context.executor.spawned == []


def test_with_stdio_gives_a_console_no_stdio_but_keeps_extra_fds() -> None:
    """Kills quick_create x_with_stdio__mutmut_1.._5 ("no tests": the command line's create calls it):
    with a console, the terminal is 0, 1 and 2, so stdin, stdout and stderr are all dropped, the
    extra descriptors kept; without one, the stdio is handed on unchanged."""
    given = Stdio(stdin=0, stdout=1, stderr=2, extra_fds=(7,))
    assert quick_create.with_stdio(given, True) == Stdio(extra_fds=(7,))
    assert quick_create.with_stdio(given, False) is given


# -- quick_destroy.py ----------------------------------------------------------------------


def test_lean_destroy_refusals_are_the_library_s(
    runtime: Runtime, config: Config, lean: DurableLeanStore  # noqa: F811
) -> None:
    """Kills quick_destroy x_destroy__mutmut_11.._32: the InvalidTransition of a refused destroy with
    another id, state, event, allowed list or hint: "pass force=True" exactly when force would allow
    it (a running container), nothing after a tombstone's "none" (no row allows it at all)."""
    lean_create(runtime, lean, "c", config)
    runtime.load("c").start()
    running = lean.record("c")
    assert running is not None
    with pytest.raises(InvalidTransition) as library:
        runtime.load("c").destroy()
    with pytest.raises(InvalidTransition) as caught:
        quick_destroy.destroy(lean, runtime.context.executor, BOOT, running, force=False)
    assert str(caught.value) == str(library.value)
    assert str(caught.value).endswith("; pass force=True")
    error = caught.value
    assert (error.container_id, error.state, error.event) == ("c", "running", "destroy")
    assert error.allowed == ("pause", "exec", "signal", "update")
    assert lean.record("c") == running  # refused before anything was written
    lean_delete(runtime, lean, "c")
    tombstone = lean.record("c")
    assert tombstone is not None and tombstone.state == "destroyed"
    with pytest.raises(InvalidTransition) as caught:
        quick_destroy.destroy(lean, runtime.context.executor, BOOT, tombstone, force=True)
    assert str(caught.value) == "cannot destroy container 'c': it is destroyed; allowed in destroyed: none"


def test_lean_delete_hands_over_with_the_reason_it_logs(
    runtime: Runtime, config: Config, lean: DurableLeanStore  # noqa: F811
) -> None:
    """Kills quick_destroy x_destroy__mutmut_33/_34/_35 and x_teardown_of__mutmut_3/_4/_5: the reason
    `corral --debug delete` logs (cli/fast.py) for hooks and for network interfaces, lost or changed."""
    runtime.create("h", dataclasses.replace(config, hooks=Hooks(poststop=(Hook(path="/bin/true"),))))
    with pytest.raises(NeedsLibrary) as caught:
        lean_delete(runtime, lean, "h")
    assert str(caught.value) == "the config has hooks (poststop): the library runs them"
    lean_create(runtime, lean, "n", config)
    key = runtime.load("n").record.key
    _sql(runtime, "INSERT INTO network_interfaces (container_key, position, host_name, name, owner) "
         "VALUES (?, 0, 'crx0', 'eth0', 'corral test')", key)
    with pytest.raises(NeedsLibrary) as caught:
        lean_delete(runtime, lean, "n")
    assert str(caught.value) == "the container has network interfaces: the library removes them"
    assert runtime.load("n").record.state == "created"


def test_lean_delete_passes_its_fault_points_and_kills_under_the_intent(
    runtime: Runtime, config: Config, lean: DurableLeanStore, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """Kills quick_destroy x_destroy__mutmut_45 (the intent written without its event), _48/_64/_65/_66/_96
    and quick_create x_create__mutmut_76/_77/_78/_127 (the fault points tests/integration/test_faults.py
    kills at, renamed or dropped) and quick_destroy x_destroy__mutmut_63 (the kill given no timeout for
    KILL_TIMEOUT)."""

    reached: list[str] = []
    monkeypatch.setattr(faults, "point", reached.append)
    lean_create(runtime, lean, "c", config)
    executor = runtime.context.executor
    real_kill = executor.kill
    seen: list[tuple[object, ...]] = []

    def kill(facts: ContainerFacts, timeout: float) -> Any:
        seen.append((timeout, *_sql(runtime, "SELECT pending_event FROM containers WHERE id = 'c'")[0]))
        return real_kill(facts, timeout)

    monkeypatch.setattr(executor, "kill", kill)
    lean_delete(runtime, lean, "c")
    assert seen == [(KILL_TIMEOUT, "destroy")]
    assert reached == [
        "create.intent", "create.recorded", "destroy.intent", "destroy.run-dir-removed", "destroy.recorded"
    ]


def test_lean_destroy_of_another_boot_s_record_kills_nothing_and_says_why(
    runtime: Runtime, config: Config, lean: DurableLeanStore, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """Kills quick_destroy x_destroy__mutmut_52/_60 (a record of another boot killed: its PIDs are
    another boot's) and _62 (the journal's unknown-exit reason lost): after a reboot the exit is
    unknown, REBOOTED says why, and the executor's kill is never called."""
    lean_create(runtime, lean, "c", config)
    record = lean.record("c")
    assert record is not None
    kills: list[float] = []
    monkeypatch.setattr(runtime.context.executor, "kill", lambda facts, timeout: kills.append(timeout))
    quick_destroy.destroy(lean, runtime.context.executor, "boot-2", record, force=True)
    assert kills == []
    entry = _last_journal(runtime, "c")
    assert entry.event == "destroy"
    assert entry.detail["exit"] == "unknown"
    assert entry.detail["exit_unknown_reason"] == REBOOTED


def test_a_failed_lean_teardown_clears_the_intent_and_says_why(
    runtime: Runtime, config: Config, lean: DurableLeanStore  # noqa: F811
) -> None:
    """Kills quick_destroy x_destroy__mutmut_67.._72: the failed removal recorded for another record,
    event or error (or not at all): the intent is cleared, last_error says "destroy: <error>", the
    original error reaches the caller and the container stays as it was."""
    lean_create(runtime, lean, "c", config)
    runtime.context.executor.fail_next("destroy", ExecutorError("the cgroup is busy (fake)"))
    with pytest.raises(ExecutorError, match="the cgroup is busy"):
        lean_delete(runtime, lean, "c")
    record = runtime.load("c").record
    assert record.pending_event is None
    assert record.last_error == "destroy: the cgroup is busy (fake)"
    assert record.state == "created"


class _Seam:
    """Stands in for the executor: records the facts its kill and destroy are given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ContainerFacts, float | None]] = []

    def kill(self, facts: ContainerFacts, timeout: float) -> None:
        self.calls.append(("kill", facts, timeout))

    def destroy(self, facts: ContainerFacts) -> None:
        self.calls.append(("destroy", facts, None))


def _monitor(runtime: Runtime, key: int, pid: int | None, start_time: int | None) -> None:
    _sql(runtime, "UPDATE containers SET monitor_pid = ?, monitor_start_time = ? WHERE key = ?", pid, start_time, key)


def test_lean_teardown_through_an_executor_names_the_recorded_init_and_monitor(
    runtime: Runtime, config: Config, lean: DurableLeanStore  # noqa: F811
) -> None:
    """Kills quick_destroy x_teardown_of__mutmut_6.._15 (the init's identity dropped, half-made, or made
    of a record missing its PID or start time) and _18/_23 (the monitor's, likewise): a process is named
    by its PID and start time together, or not at all (never a bare PID that may be reused); and
    _60/_61/_66/_72/_73/_74/_77 (the facts' plan or init dropped, the plan's cgroups, run dir or created
    directories lost: the executor removes what the record names)."""
    lean_create(runtime, lean, "c", config)
    record = lean.record("c")
    assert record is not None and record.init_pid is not None and record.init_start_time is not None
    init = ProcessIdentity(record.init_pid, record.init_start_time)

    def facts_of(rec: Any) -> ContainerFacts:
        seam = _Seam()
        kill, remove = quick_destroy.teardown_of(lean, rec, seam)  # type: ignore[arg-type]
        kill(1.5)
        remove()
        assert [(c[0], c[2]) for c in seam.calls] == [("kill", 1.5), ("destroy", None)]
        assert seam.calls[0][1] is seam.calls[1][1]
        return seam.calls[0][1]

    facts = facts_of(record)
    assert (facts.id, facts.init, facts.monitor) == ("c", init, None)
    assert facts.plan == ContainerPlan(
        cgroup_paths=dict(record.cgroup_paths), run_dir=record.run_dir, created_cgroups=record.created_cgroups
    )
    assert facts.config == Config.from_json(runtime.load("c").record.config, bundle=config.bundle)
    assert facts_of(record._replace(init_start_time=None)).init is None
    assert facts_of(record._replace(init_pid=None)).init is None
    _monitor(runtime, record.key, 4242, 777)
    assert facts_of(record).monitor == ProcessIdentity(4242, 777)
    _monitor(runtime, record.key, 4242, None)
    assert facts_of(record).monitor is None
    _monitor(runtime, record.key, None, 777)
    assert facts_of(record).monitor is None


def test_lean_teardown_without_an_executor_goes_to_the_kernel_with_the_record(
    runtime: Runtime, config: Config, lean: DurableLeanStore, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """Kills quick_destroy x_teardown_of__mutmut_27.._47: the command line's `delete` (no executor)
    calls executor/teardown.py's kill and destroy with the record's id, init, monitor, run dir and
    cgroup (opened from its recorded paths and the directories corral created) and the timeout."""

    lean_create(runtime, lean, "c", config)
    record = lean.record("c")
    assert record is not None and record.init_pid is not None and record.init_start_time is not None
    _monitor(runtime, record.key, 4242, 777)
    cgroup = object()
    opened: list[tuple[object, ...]] = []
    calls: list[tuple[object, ...]] = []

    def open_cgroup(*args: object) -> object:
        opened.append(args)
        return cgroup

    def seam(name: str) -> Callable[..., None]:
        return lambda *args: calls.append((name, *args))

    monkeypatch.setattr(cgroups, "open_cgroup", open_cgroup)
    monkeypatch.setattr(teardown, "kill", seam("kill"))
    monkeypatch.setattr(teardown, "destroy", seam("destroy"))
    kill, remove = quick_destroy.teardown_of(lean, record, None)
    assert opened == [(dict(record.cgroup_paths), record.created_cgroups)]
    assert record.created_cgroups  # the fake's plan names the directories it made
    kill(2.5)
    remove()
    init, monitor = ProcessIdentity(record.init_pid, record.init_start_time), ProcessIdentity(4242, 777)
    assert calls == [
        ("kill", "c", init, monitor, record.run_dir, cgroup, 2.5),
        ("destroy", "c", init, monitor, record.run_dir, cgroup),
    ]


def test_lean_delete_hands_over_an_unobserved_state_with_the_reason_it_logs(
    runtime: Runtime, config: Config, lean: DurableLeanStore, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """Kills quick_destroy x_observed_state__mutmut_2/_11/_12/_13/_20/_21/_22 (the reasons `--debug`
    logs), _6 (a record with an init PID but no start time taken as having an init) and _15/_16/_17
    (another identity than the recorded init's asked about: a reused PID would pass for the init)."""
    lean_create(runtime, lean, "c", config)
    record = lean.record("c")
    assert record is not None and record.init_pid is not None and record.init_start_time is not None
    asked: list[object] = []
    monkeypatch.setattr(quick_destroy.proc, "alive", lambda init: asked.append(init) or True)
    assert quick_destroy.observed_state(record, BOOT).value == "created"
    assert asked == [ProcessIdentity(record.init_pid, record.init_start_time)]

    def reason(rec: Any, boot: str = BOOT) -> str:
        with pytest.raises(NeedsLibrary) as caught:
            quick_destroy.observed_state(rec, boot)
        return str(caught.value)

    assert reason(record._replace(pending_event="pause")) == "an intent (pause) is pending"
    no_init = "the record is of another boot, or has no init"
    assert reason(record, "boot-2") == no_init
    assert reason(record._replace(init_start_time=None)) == no_init
    assert reason(record._replace(init_pid=None)) == no_init
    monkeypatch.setattr(quick_destroy.proc, "alive", lambda init: False)
    assert reason(record) == "the init is gone: its exit must be recorded"


def test_lean_delete_of_no_container_names_it(runtime: Runtime, lean: DurableLeanStore) -> None:  # noqa: F811
    """Kills quick_destroy x_delete__mutmut_7/_8/_11: the ContainerNotFound of `delete` without the id
    asked for, or with another root text (the lean path knows no root: the text ends after "in ")."""
    with pytest.raises(quick_destroy.ContainerNotFound) as caught:
        lean_delete(runtime, lean, "nobody")
    assert caught.value.container_id == "nobody"
    assert str(caught.value) == "container 'nobody' does not exist in "


@pytest.mark.parametrize("table", ["no row", "no destination"])
def test_lean_create_refuses_when_the_table_has_no_create(
    table: str, runtime: Runtime, config: Config, lean: DurableLeanStore, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """Kills quick_create x_create__mutmut_27 and _30.._41: create asks the lifecycle table where it
    goes; a table without that answer refuses it with the table's InvalidTransition, nothing written."""

    row = lifecycle.find_transition(lifecycle.INITIAL_STATE, "create", force=False)
    assert row is not None
    monkeypatch.setattr(
        quick_create, "find_transition", lambda *a, **k: None if table == "no row" else row._replace(dest=None)
    )
    with pytest.raises(InvalidTransition) as caught:
        lean_create(runtime, lean, "c", config)
    assert str(caught.value) == "cannot create container 'c': it is creating; allowed in creating: create"
    assert (caught.value.container_id, caught.value.state, caught.value.event) == ("c", "creating", "create")
    assert runtime.list(include_destroyed=True) == []


def test_lean_create_hands_over_a_plan_with_interfaces_before_writing(
    runtime: Runtime, config: Config, lean: DurableLeanStore, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """Kills quick_create x_create__mutmut_58/_59/_60: the reason logged when the executor's plan has
    network interfaces (only the library makes them); nothing is written."""

    executor = runtime.context.executor
    real_plan = executor.plan

    def plan(*args: Any) -> ContainerPlan:
        made = real_plan(*args)
        return dataclasses.replace(made, interfaces=(HostInterface("crx0", "eth0", "corral test"),))

    monkeypatch.setattr(executor, "plan", plan)
    with pytest.raises(NeedsLibrary) as caught:
        lean_create(runtime, lean, "c", config)
    assert str(caught.value) == "the plan has network interfaces"
    assert runtime.list(include_destroyed=True) == []


def test_lean_create_spawns_with_the_plan_the_record_and_the_stdio(
    runtime: Runtime, config: Config, lean: DurableLeanStore, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """Kills quick_create x_create__mutmut_56/_57 (the run dir not `<run root>/<id>`), _82 (the facts
    spawned without the plan), _89 (the monitor's recorder without the record's key: its exit would be
    journalled for no container) and _99/_102 (the caller's stdio not handed on, or None for none)."""

    executor = runtime.context.executor
    real_spawn = executor.spawn
    spawned: list[tuple[ContainerFacts, Stdio]] = []

    def spawn(facts: ContainerFacts, stdio: Stdio) -> Any:
        spawned.append((facts, stdio))
        return real_spawn(facts, stdio)

    monkeypatch.setattr(executor, "spawn", spawn)
    lean_create(runtime, lean, "a", config)
    given = Stdio(stdout=1, stderr=2)
    quick_create.create(
        lean, Locks(runtime.root), executor, BOOT, str(runtime.run_root), "b", config, stdio=given
    )
    (facts_a, stdio_a), (facts_b, stdio_b) = spawned
    record = runtime.load("a").record
    assert record.run_dir == os.path.join(str(runtime.run_root), "a")
    assert facts_a.plan == executor.plan("a", config, record.run_dir, str(runtime.root))
    assert facts_a.recorder is not None and facts_a.recorder.arguments["key"] == record.key
    assert stdio_a == Stdio()
    assert stdio_b is given


def test_a_lean_create_that_fails_after_recording_kills_and_removes_through_its_executor(
    runtime: Runtime, config: Config, lean: DurableLeanStore, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """Kills quick_create x_create__mutmut_135 (the rollback's destroy not given the executor: the
    kernel path instead of the one that made the container) and _136 (not given this boot: the init
    just made would count as another boot's, recorded unknown and never killed)."""

    def confirm(self: FakeSpawned) -> None:
        raise ExecutorError("the monitor did not answer (fake)")

    monkeypatch.setattr(FakeSpawned, "confirm", confirm)
    executor = runtime.context.executor
    with pytest.raises(ExecutorError, match="did not answer"):
        lean_create(runtime, lean, "c", config)
    assert executor.calls[-2:] == ["kill", "destroy"]
    assert not executor.leaked("c")
    entry = _last_journal(runtime, "c")
    assert (entry.event, entry.detail["exit_status"], entry.detail["signal"]) == ("destroy", 137, 9)
    assert entry.detail["reason"] == "create failed: the monitor did not answer (fake)"


def test_a_failed_lean_create_whose_cleanup_fails_keeps_its_error_and_notes_the_cleanup(
    runtime: Runtime, config: Config, lean: DurableLeanStore  # noqa: F811
) -> None:
    """Kills quick_create x_create__mutmut_147: the note that the rollback failed too (and that
    Runtime.recover() retries) lost, or the spawn's error replaced."""

    executor = runtime.context.executor
    executor.fail_next("spawn", InitError("the init said no (fake)"))
    executor.fail_next("destroy", ExecutorError("the cgroup is busy (fake)"))
    with pytest.raises(InitError) as caught:
        lean_create(runtime, lean, "c", config)
    assert caught.value.__notes__ == [
        "cleaning up also failed: the cgroup is busy (fake); Runtime.recover() retries"
    ]


# -- output.py -----------------------------------------------------------------------------


class _Proc:
    """Stands in for an ExecProcess: `wait` answers from `exited`, and records each timeout it is given.

    `on_check` runs at the first look (`wait(0.0)`) and may end the process there; `exits_after`:
    a wait of at least that long (or for ever) sees the process end.
    """

    def __init__(
        self, exited: bool = True, on_check: Callable[[], None] | None = None, exits_after: float | None = None
    ) -> None:
        self.exited = exited
        self.on_check = on_check
        self.exits_after = exits_after
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> int:

        self.waits.append(timeout)
        if timeout == 0.0 and self.on_check is not None:
            check, self.on_check = self.on_check, None
            check()
        if self.exits_after is not None and (timeout is None or timeout >= self.exits_after):
            self.exited = True
        if not self.exited:
            raise WaitTimeout("the fake process", timeout or 0)
        return 3


def _writes(stdout: bytes = b"", stderr: bytes = b"") -> Callable[[Stdio], None]:
    def write(stdio: Stdio) -> None:
        for fd, data in ((stdio.stdout, stdout), (stdio.stderr, stderr)):
            if data:
                assert isinstance(fd, int)
                os.write(fd, data)

    return write


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_exec_run_collects_output_that_arrives_after_the_exit_until_the_pipes_close() -> None:
    """Kills output x_run__mutmut_39 (the linger ended at once: `now + exited_at`), _81/_83 (the chunks
    of stdout or stderr joined with something between them) and _21 (the deadline set in the past):
    output written by what the process left behind, just after it exited, is collected, in order."""

    held: list[int] = []

    def late() -> None:
        for fd in held:
            os.write(fd, b"-late")
            os.close(fd)

    process = _Proc(exited=False)

    def start(stdio: Stdio) -> Any:
        _writes(b"out", b"err")(stdio)
        held.extend(os.dup(fd) for fd in (stdio.stdout, stdio.stderr) if isinstance(fd, int))
        return process

    def check_then_exit() -> None:
        late()
        process.exited = True

    process.on_check = check_then_exit
    before = _open_fds()
    result = output.run(start, None, 60.0, "the fake process")
    assert (result.exit_status, result.stdout, result.stderr) == (3, b"out-late", b"err-late")
    assert _open_fds() == before


def test_exec_run_returns_once_the_exited_process_s_pipes_stay_open_past_the_linger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kills output x_run__mutmut_41 (`return` for `break`: no result), _56/_57/_58/_60 and
    x__exited__mutmut_4 (the exit never noticed, or noticed again and again, so a background child
    holding the pipes keeps exec_run waiting until its timeout), _44 and x__exited__mutmut_2 (the loop
    polls every 0.05 s and looks at the process without blocking: not 1.05 s, not 1 s)."""

    polls: list[float | None] = []

    class Selector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
        def select(self, timeout: float | None = None) -> Any:
            polls.append(timeout)
            return super().select(timeout)

    monkeypatch.setattr(output.selectors, "DefaultSelector", Selector)
    held: list[int] = []
    process = _Proc(exited=True)

    def start(stdio: Stdio) -> Any:
        _writes(b"out", b"err")(stdio)
        held.extend(os.dup(fd) for fd in (stdio.stdout, stdio.stderr) if isinstance(fd, int))
        return process

    try:
        result = output.run(start, None, 30.0, "the fake process")
    finally:
        for fd in held:
            os.close(fd)
    assert result is not None
    assert (result.exit_status, result.stdout, result.stderr) == (3, b"out", b"err")
    assert set(polls) == {0.05}
    assert process.waits[0] == 0.0 and set(process.waits[:-1]) == {0.0}


class _Clock:
    """A monotonic clock that moves only as told: `value`, then `step` more at each reading."""

    def __init__(self) -> None:
        self.value = 0.0
        self.step = 0.0

    def monotonic(self) -> float:
        now = self.value
        self.value += self.step
        return now


def test_exec_run_lingers_for_the_whole_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills output x_run__mutmut_40 (`>=` for `>`): what arrives exactly LINGER after the exit was
    seen is still collected (the clock is a stand-in, so that "exactly" is exact)."""

    clock = _Clock()
    monkeypatch.setattr(output, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    held: list[int] = []
    process = _Proc(exited=False)

    def exit_now() -> None:
        process.exited = True
        clock.value, clock.step = output.LINGER, 0.1  # the next reading is exactly LINGER later
        for fd in held:
            os.write(fd, b"-late")
            os.close(fd)

    process.on_check = exit_now

    def start(stdio: Stdio) -> Any:
        _writes(b"out")(stdio)
        held.extend(os.dup(fd) for fd in (stdio.stdout, stdio.stderr) if isinstance(fd, int))
        return process

    result = output.run(start, None, None, "the fake process")
    assert (result.stdout, result.stderr) == (b"out-late", b"-late")


def test_exec_run_times_out_at_its_deadline_and_says_after_how_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills output x_run__mutmut_30 (`>` for `>=`: a deadline reached is not yet passed) and _36 (the
    error says 1 s for a timeout of 0): with no time at all, exec_run raises WaitTimeout at once."""

    clock = _Clock()
    monkeypatch.setattr(output, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    with pytest.raises(WaitTimeout) as caught:
        output.run(lambda stdio: _Proc(exited=True), None, 0, "exec'd process 42")  # type: ignore[arg-type,return-value]
    assert str(caught.value) == "exec'd process 42: still running after 0 s"


def test_exec_run_waits_for_the_process_only_until_its_deadline() -> None:
    """Kills output x_run__mutmut_62/_64/_66.._71/_73: once the pipes are closed, the process is
    waited for with what is left of the timeout (never for ever, never at least 1 s): a process that
    closed its output and lives on raises WaitTimeout when the time is up."""

    process = _Proc(exited=False, exits_after=0.5)
    with pytest.raises(WaitTimeout):
        output.run(lambda stdio: process, None, 0.3, "the fake process")  # type: ignore[arg-type,return-value]
    remaining = process.waits[-1]
    assert remaining is not None and 0.0 <= remaining <= 0.3
    quick = _Proc(exited=False, exits_after=0.5)
    assert output.run(lambda stdio: quick, None, None, "the fake process").exit_status == 3  # type: ignore[arg-type,return-value]
    assert quick.waits[-1] is None


def test_exec_run_whose_start_fails_closes_its_pipes_and_raises_that_error() -> None:
    """Kills output x_run__mutmut_13: the read ends closed as None (a TypeError for the caller, both
    pipes leaked) when the process could not be started."""

    def start(stdio: Stdio) -> Any:
        raise ExecutorError("exec failed (fake)")

    before = _open_fds()
    with pytest.raises(ExecutorError, match="exec failed"):
        output.run(start, None, None, "the fake process")
    assert _open_fds() == before


# -- events_stream.py ----------------------------------------------------------------------


def test_fetch_hands_out_what_the_iterator_buffered_then_the_rest_once(runtime: Runtime, config: Config) -> None:
    """Kills events_stream xǁEventStreamǁfetch__mutmut_2/_4/_5 (the query after another buffered
    event than the last: events handed out twice), _8/_12 (the ids filter dropped), _20 (no events)
    and xǁEventǁof__mutmut_6/_8 (an event's time or incarnation lost)."""
    box = runtime.create("a", config)
    box.start()
    box.pause()
    box.resume()
    runtime.create("b", config)
    history = runtime.load("a").history()
    assert len(history) == 5
    with runtime.events(since=0, ids=["a"]) as stream:
        first = next(stream)
        rest = stream.fetch()
        assert stream.fetch() == []
        assert stream.position == history[-1].seq
    got = [first, *rest]
    assert [(e.seq, e.container_id, e.kind, e.at, e.container_key) for e in got] == [
        (h.seq, "a", h.event, h.at, box.record.key) for h in history
    ]


def test_fetch_reads_at_most_one_batch(runtime: Runtime, config: Config) -> None:
    """Kills events_stream xǁEventStreamǁfetch__mutmut_10/_14: one fetch reads BATCH rows at most
    (the rest on the next), not the repository's default or everything."""

    key = runtime.create("a", config).record.key
    rows = [(key, "signal", "created", "created", "2026-12-02 00:00:00.000000", '{"signal": 10}')] * (BATCH + 20)
    con = sqlite3.connect(runtime.root / "corral.db")
    with con:
        con.executemany(
            "INSERT INTO journal (container_key, event, from_state, to_state, at, detail) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    con.close()
    with runtime.events(since=0) as stream:
        first = stream.fetch()
        second = stream.fetch()
    assert len(first) == BATCH
    assert len(second) == 22  # create's two rows and BATCH + 20 signals, less the first batch
    assert [e.seq for e in first + second] == sorted({e.seq for e in first + second})


def test_every_query_of_a_stream_reads_one_batch_at_most(
    runtime: Runtime, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills events_stream xǁEventStreamǁ_refill_or_wait__mutmut_6/_10 and fetch__mutmut_10/_14: the
    iterator's and fetch's queries read BATCH rows at most (the store's LIMIT), never all of the
    journal or the repository's default."""

    runtime.create("a", config).start()
    store = runtime.context.store
    real = store.events_after
    limits: list[object] = []

    def events_after(seq: int, **kwargs: Any) -> Any:
        limits.append(kwargs.get("limit", "default"))
        return real(seq, **kwargs)

    monkeypatch.setattr(store, "events_after", events_after)
    with runtime.events(since=0, timeout=0.01) as stream:
        assert [e.kind for e in stream] == ["create", "create", "start"]
    with runtime.events(since=0) as stream:
        assert len(stream.fetch()) == 3
    assert limits and set(limits) == {BATCH}


def test_close_during_a_wait_interrupts_it_and_leaves_the_watch_to_the_waiter(runtime: Runtime) -> None:
    """Kills events_stream xǁEventStreamǁ_refill_or_wait__mutmut_18/_19: a close() while the
    iterating thread sleeps on the watch must not close the descriptors that thread waits on (their
    numbers may be reused under it): it interrupts the wait, and the waiter closes the watch."""
    stream = runtime.events()
    watch = stream._watch
    seen: list[bool] = []

    def wait(timeout: float | None) -> bool:
        stream.close()  # as another thread would, now
        seen.append(watch.closed)
        return False

    watch.wait = wait  # type: ignore[method-assign]
    assert list(stream) == []
    assert seen == [False]
    assert watch.closed and stream.closed


def test_a_stream_filters_by_one_id_given_as_a_string(runtime: Runtime, config: Config) -> None:
    """Kills events_stream xǁEventStreamǁ__init____mutmut_7: `ids="box"` is the id "box", not the
    ids "b", "o" and "x"."""
    runtime.create("box", config)
    runtime.create("b", config)
    with runtime.events(since=0, ids="box") as stream:
        assert {e.container_id for e in stream.fetch()} == {"box"}


def test_a_stream_is_open_until_closed_and_closing_releases_its_watch(runtime: Runtime) -> None:
    """Kills events_stream xǁEventStreamǁ__init____mutmut_19 (`closed` None, not False, while open),
    _22 (a stream never iterated taken as waiting: close() only interrupts, the inotify watch leaks)
    and xǁEventStreamǁ_refill_or_wait__mutmut_23 (likewise after its first wait)."""
    stream = runtime.events()
    assert stream.closed is False
    stream.close()
    assert stream.closed is True and stream._watch.closed
    waited = runtime.events(timeout=0.01)
    assert list(waited) == []
    assert waited.closed and waited._watch.closed


# -- logs.py -------------------------------------------------------------------------------


def _log(run_dir: Path, *records: tuple[bytes, bytes, int]) -> Path:
    """A container.log under `run_dir` holding `records` (stream, data, time in ns), as the monitor writes them."""

    path = run_dir / logwriter.LOG_NAME
    with open(path, "ab") as f:
        for stream, data, ns in records:
            f.write(logwriter.records(stream, data, ns))
    return path


T0 = 1_700_000_000 * 10**9  # 2023-11-14T22:13:20Z


def test_logs_since_a_line_s_exact_time_keep_that_line(tmp_path: Path) -> None:
    """Kills logs xǁ_Linesǁ_line__mutmut_1 (`<=` for `<`): `since` is inclusive, so a line written
    at exactly that time (to the microsecond the datetime carries) is kept."""

    _log(tmp_path, (b"stdout", b"before\n", T0), (b"stdout", b"at\n", T0 + 123_456_000), (b"stdout", b"after\n", T0 + 10**9))
    at = datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=timezone.utc)
    assert [line.text for line in logs.read(str(tmp_path), "c", since=at)] == ["at", "after"]
    assert [line.text for line in logs.read(str(tmp_path), "c", since=(T0 + 123_456_000) / 10**9)][-1] == "after"


def test_logs_end_with_the_unfinished_lines_oldest_first(tmp_path: Path) -> None:
    """Kills logs xǁ_Linesǁflush__mutmut_3/_5/_6/_7/_8 (the lines begun but not ended ordered by stream
    name, by when they were last continued, by their data, or not at all), _9.._14 (their time,
    stream or pieces lost) and x__generate__mutmut_14 (a reader that does not follow never given them)."""

    _log(
        tmp_path,
        (b"stdout", b"zz", T0),  # begun first, continued last, its data sorting last
        (b"stderr", b"aa", T0 + 10**9),
        (b"stdout", b"-more", T0 + 2 * 10**9),
    )
    lines = list(logs.read(str(tmp_path), "c"))
    assert [(line.stream, line.data, line.time) for line in lines] == [
        ("stdout", b"zz-more", datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)),
        ("stderr", b"aa", datetime(2023, 11, 14, 22, 13, 21, tzinfo=timezone.utc)),
    ]
    since = [line.text for line in logs.read(str(tmp_path), "c", since=T0 / 10**9 + 0.5)]
    assert since == ["aa"]  # a line's time is its first piece's


def test_logs_tail_of_one_is_the_last_line(tmp_path: Path) -> None:
    """Kills logs x__generate__mutmut_17 (`tail == 1` cleared as `tail == 0` is)."""

    _log(tmp_path, (b"stdout", b"one\ntwo\nthree\n", T0))
    assert [line.text for line in logs.read(str(tmp_path), "c", tail=1)] == ["three"]


def test_logs_keep_empty_lines_and_leading_blanks(tmp_path: Path) -> None:
    """Kills logs xǁ_Linesǁfeed__mutmut_2 (a record split at any run of whitespace: an empty line
    dropped as torn, a line's leading spaces or tab eaten)."""

    _log(tmp_path, (b"stdout", b"first\n\n  indented\n\ttabbed\nlast\n", T0))
    assert [line.data for line in logs.read(str(tmp_path), "c")] == [b"first", b"", b"  indented", b"\ttabbed", b"last"]


def test_follow_reads_what_was_written_just_before_a_rotation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer (logwriter.RotatingLog.write) appends the records that fill the file, then renames
    it and starts a new one. A follower that read the old file to its end just before that append,
    and then sees the new file, must read the rest of the old one before moving on: those records
    are in no other file. Here the append and the rotation happen inside the follower's look for a
    new file (the writer's interleaving, made deterministic): before the fix, "x" was lost."""

    path = _log(tmp_path, (b"stdout", b"a\n", T0))
    real_open = logs._open
    looks: list[str] = []

    def open_(name: str) -> Any:
        looks.append(name)
        if len(looks) == 3:  # read() opened the file and looked for the rotated one: the follower's first look
            _log(tmp_path, (b"stdout", b"x\n", T0 + 1))
            os.replace(path, str(path) + logwriter.ROTATED_SUFFIX)
            _log(tmp_path, (b"stdout", b"y\n", T0 + 2))
        return real_open(name)

    monkeypatch.setattr(logs, "_open", open_)
    followed = logs.read(str(tmp_path), "c", follow=True, running=lambda: False)
    assert [line.text for line in followed] == ["a", "x", "y"]


class _Script:
    """A log file as a follower sees it while the writer appends: each read returns the next chunk
    (b"": the end, for now); `fileno` is the real file's, for its inode."""

    def __init__(self, fd: int, chunks: list[bytes]) -> None:
        self._fd = fd
        self.chunks = chunks

    def fileno(self) -> int:
        return self._fd

    def read(self, size: int = -1) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""

    def close(self) -> None:

        os.close(self._fd)


def test_follow_reads_again_at_once_after_lines_and_sleeps_only_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills the logs x__generate mutants that drop `found = True` (None or False): a follower that
    found lines reads again before sleeping FOLLOW_INTERVAL, so that output the container keeps
    writing is handed on as it comes, not one poll interval per read later."""

    path = _log(tmp_path)
    one, two = (logwriter.records(b"stdout", text, T0) for text in (b"one\n", b"two\n"))
    real_open = logs._open
    opened: list[str] = []

    def open_(name: str) -> Any:
        opened.append(name)
        if len(opened) == 1:  # the file read() follows: the writer appends "one", then "two" after a look
            return logs._File(_Script(os.open(path, os.O_RDONLY), [b"", one, b"", two, b""]))  # type: ignore[arg-type]
        return real_open(name)

    got: list[str] = []
    slept_after: list[list[str]] = []
    monkeypatch.setattr(logs, "_open", open_)
    monkeypatch.setattr(logs, "time", types.SimpleNamespace(sleep=lambda s: slept_after.append(list(got))))
    answers = iter([True])
    for line in logs.read(str(tmp_path), "c", follow=True, running=lambda: next(answers, False)):
        got.append(line.text)
    assert got == ["one", "two"]
    assert slept_after == [["one", "two"]]


def test_logs_read_without_follow_by_default(tmp_path: Path) -> None:
    """Kills logs x_read__mutmut_1 (`follow=True` by default): a plain read ends with what there is,
    so `tail` counts the unfinished last line too (a follower hands it on only at the end)."""

    _log(tmp_path, (b"stdout", b"one\ntwo", T0))
    assert [line.text for line in logs.read(str(tmp_path), "c", tail=1)] == ["two"]


def test_logs_begin_with_the_rotated_file(tmp_path: Path) -> None:
    """Kills logs x_read__mutmut_22/_27/_34: the older half of the log (`container.log.1`) is read
    first, not dropped."""

    path = _log(tmp_path, (b"stdout", b"old\n", T0))
    os.replace(path, str(path) + logwriter.ROTATED_SUFFIX)
    _log(tmp_path, (b"stdout", b"new\n", T0 + 1))
    assert [line.text for line in logs.read(str(tmp_path), "c")] == ["old", "new"]


def test_logs_rotated_between_the_two_opens_are_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills logs x_read__mutmut_27/_28: when the file opened as the log is the one then found as the
    rotated file (the writer renamed it in between), it is read once (not twice, not as "")."""

    path = _log(tmp_path, (b"stdout", b"only\n", T0))
    real_open = logs._open

    def open_(name: str) -> Any:
        if name.endswith(logwriter.ROTATED_SUFFIX):
            return real_open(str(path))  # the same file, under its new name
        return real_open(name)

    monkeypatch.setattr(logs, "_open", open_)
    assert [line.text for line in logs.read(str(tmp_path), "c")] == ["only"]


def test_logs_wait_out_the_writer_s_rotation_gap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills logs x_read__mutmut_7/_8/_9/_13/_14/_15/_16: caught between the writer's rename and its
    new file (only container.log.1 there), the reader retries every 5 ms until the new file is
    there; with both files there it never sleeps."""

    path = _log(tmp_path, (b"stdout", b"old\n", T0))
    os.replace(path, str(path) + logwriter.ROTATED_SUFFIX)
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            _log(tmp_path, (b"stdout", b"new\n", T0 + 1))

    monkeypatch.setattr(logs, "time", types.SimpleNamespace(sleep=sleep))
    assert [line.text for line in logs.read(str(tmp_path), "c")] == ["old", "new"]
    assert naps == [0.005] * 3
    naps.clear()
    assert [line.text for line in logs.read(str(tmp_path), "c")] == ["old", "new"]
    assert naps == []


def test_logs_unavailable_names_the_file_looked_for(tmp_path: Path) -> None:
    """Kills logs x_read__mutmut_19: the error says where the log was looked for."""

    with pytest.raises(LogsUnavailable) as caught:
        logs.read(str(tmp_path), "c")
    assert f" at {tmp_path / logwriter.LOG_NAME}:" in str(caught.value)
    assert caught.value.container_id == "c"


def test_follow_closes_each_look_for_a_new_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills the logs x__generate mutant `if replaced is None:` (the file opened to look for a
    rotation left open while the follower sleeps: one more descriptor per poll until collected)."""

    path = _log(tmp_path, (b"stdout", b"a\n", T0))

    def open_on_log() -> int:
        return sum(
            1 for fd in os.listdir("/proc/self/fd")
            if os.path.realpath(f"/proc/self/fd/{fd}") == os.path.realpath(path)
        )

    held: list[int] = []
    monkeypatch.setattr(logs, "time", types.SimpleNamespace(sleep=lambda s: held.append(open_on_log())))
    answers = iter([True, True])
    lines = [line.text for line in logs.read(str(tmp_path), "c", follow=True, running=lambda: next(answers, False))]
    assert lines == ["a"]
    assert held == [1, 1]  # the followed file alone


# -- events.py -----------------------------------------------------------------------------


def test_update_passes_its_fault_points(runtime: Runtime, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills events x_update__mutmut_13/_14/_15: "update.written" (the cgroup files hold the new
    limits, the record the old ones), where tests/integration/test_faults.py kills a controller,
    renamed or dropped."""

    box = runtime.create("c", config)
    reached: list[str] = []
    monkeypatch.setattr(faults, "point", reached.append)
    box.update(Resources(pids=PidsResources(limit=64)))
    assert reached == ["update.intent", "update.written", "update.recorded"]


def test_an_oom_kill_after_another_signal_through_corral_is_kept(
    tmp_path: Path, config: Config, boot_id_file: Path
) -> None:
    """Kills events x__sigkilled_by_corral__mutmut_2 (`or` for `and`: any signal sent through corral,
    or any journal row whose detail names SIGKILL, taken as corral's own SIGKILL): the library
    observing the exit itself (no monitor recorded it) keeps the kernel's OOM kill."""

    rt = _oom_runtime(tmp_path, boot_id_file)
    try:
        box = rt.create("c", config)
        box.start()
        box.signal(signal.SIGUSR1)
        rt.context.executor.make_exit("c", 128 + signal.SIGKILL, signal.SIGKILL, monitor_records=False)  # type: ignore[attr-defined]
        assert box.state.value == "stopped"
        assert box.oom_killed is True
        assert box.history()[-1].event == "exited" and box.history()[-1].detail["oom_killed"] is True
    finally:
        rt.close()


def test_follow_ends_with_a_last_look_and_the_unfinished_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills the logs x__generate mutant `break` for `continue` after `last_look = True`: once the
    container no longer runs, the follower reads once more (what the monitor drained last) and then
    hands on the line the output ended without a newline, instead of stopping at once."""

    path = _log(tmp_path, (b"stdout", b"a\n", T0))
    monkeypatch.setattr(logs, "time", types.SimpleNamespace(sleep=lambda s: None))

    def running() -> bool:  # the monitor's last drain lands as it exits
        with open(path, "ab") as f:
            f.write(logwriter.records(b"stdout", b"b\nend", T0 + 1))
        return False

    lines = [line.text for line in logs.read(str(tmp_path), "c", follow=True, running=running)]
    assert lines == ["a", "b", "end"]


def test_destroy_after_a_reboot_kills_nothing_and_says_why(
    runtime: Runtime, config: Config, boot_id_file: Path
) -> None:
    """Kills events x_destroy__mutmut_10/_16 (a record of another boot killed: its PIDs are another
    boot's) and _18 (the journal's unknown-exit reason lost): the library's forced destroy after a
    reboot records the exit as unknown because of it, and never calls the executor's kill."""
    box = runtime.create("c", config)
    box.start()
    boot_id_file.write_text("boot-2\n")
    executor = runtime.context.executor
    executor.calls.clear()
    runtime.load("c").destroy(force=True)
    assert "kill" not in executor.calls
    entry = runtime.load("c").history()[-1]
    assert (entry.event, entry.detail["exit"], entry.detail["exit_unknown_reason"]) == ("destroy", "unknown", REBOOTED)


def test_destroy_kills_with_the_timeout_and_runs_poststop_hooks_warning_of_failures(
    runtime: Runtime, config: Config, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Kills events x_destroy__mutmut_20 (the kill given no timeout for KILL_TIMEOUT), _27/_31 (the
    poststop outcomes journalled or warned about for no step) and _35/_36/_37/_41/_42/_43 (the hooks
    run for other facts, another kind or another state): poststop runs with the container's facts,
    "poststop" and "stopped"; a failing hook is logged as a warning and journalled, and destroy still
    succeeds."""

    box = runtime.create("c", config)
    executor = runtime.context.executor
    real_kill = executor.kill
    kills: list[float] = []
    hooks: list[tuple[str, str, str]] = []

    def kill(facts: ContainerFacts, timeout: float) -> Any:
        kills.append(timeout)
        return real_kill(facts, timeout)

    failed = HookOutcome(kind="poststop", path="/bin/false", status=1, signal=None, timed_out=False, duration=0.25)

    def run_hooks(facts: ContainerFacts, kind: str, status: str) -> tuple[HookOutcome, ...]:
        hooks.append((facts.id, kind, status))
        return (failed,) if kind == "poststop" else ()

    monkeypatch.setattr(executor, "kill", kill)
    monkeypatch.setattr(executor, "run_hooks", run_hooks)
    with caplog.at_level(logging.WARNING, logger="corral"):
        box.destroy(force=True)
    assert kills == [KILL_TIMEOUT]
    assert hooks == [("c", "poststop", "stopped")]
    assert runtime.load("c").history()[-1].detail["hooks"] == [failed.record()]
    assert [r.getMessage() for r in caplog.records] == [
        f"container c: {failed.describe()} (ignored, as the runtime spec says)"
    ]
    assert runtime.load("c").record.state == "destroyed"


def test_start_journals_its_hooks_and_warns_of_a_failed_poststart(
    runtime: Runtime, config: Config, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Kills events x_start__mutmut_2/_8/_12 (the startContainer and poststart outcomes journalled
    for no step, or a failing poststart warned about for none) and _16/_17/_18/_22/_23 (poststart run
    for other facts, another kind or another state): both outcomes are in the start row, the
    failure is a warning, and start succeeds."""

    box = runtime.create("c", config)
    executor = runtime.context.executor
    real_start = executor.start
    inside = HookOutcome(kind="startContainer", path="/bin/true", status=0, signal=None, timed_out=False, duration=0.5)
    after = HookOutcome(kind="poststart", path="/bin/false", status=1, signal=None, timed_out=False, duration=0.125)

    def start(facts: ContainerFacts) -> tuple[HookOutcome, ...]:
        real_start(facts)
        return (inside,)

    asked: list[tuple[str, str, str]] = []

    def run_hooks(facts: ContainerFacts, kind: str, status: str) -> tuple[HookOutcome, ...]:
        asked.append((facts.id, kind, status))
        return (after,) if kind == "poststart" else ()

    monkeypatch.setattr(executor, "start", start)
    monkeypatch.setattr(executor, "run_hooks", run_hooks)
    with caplog.at_level(logging.WARNING, logger="corral"):
        box.start()
    assert asked == [("c", "poststart", "running")]
    assert runtime.load("c").history()[-1].detail["hooks"] == [inside.record(), after.record()]
    assert [r.getMessage() for r in caplog.records] == [
        f"container c: {after.describe()} (ignored, as the runtime spec says)"
    ]
    assert runtime.load("c").record.state == "running"


def test_create_attaches_the_network_to_its_init_journals_create_hooks_and_hands_back_the_pty(
    runtime: Runtime, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills events x_create__mutmut_19 (the network attached to no init: its veth would go into no
    namespace), _36 (the create hooks' outcomes journalled for no step) and _41 (the pty master of a
    terminal not handed back: Container.console_fd None, the only end of the terminal lost)."""

    executor = runtime.context.executor
    real_spawn = executor.spawn
    ran = HookOutcome(kind="createRuntime", path="/bin/true", status=0, signal=None, timed_out=False, duration=0.5)
    attached: list[tuple[str, object]] = []

    def spawn(facts: ContainerFacts, stdio: Stdio) -> Any:
        spawned = real_spawn(facts, stdio)
        spawned.facts = replace(spawned.facts, hooks=(ran,))
        return spawned

    monkeypatch.setattr(executor, "spawn", spawn)
    monkeypatch.setattr(executor, "attach_network", lambda facts, init: attached.append((facts.id, init)))
    terminal = dataclasses.replace(config, process=dataclasses.replace(config.process, terminal=True))
    box = runtime.create("c", terminal, console=True)
    try:
        record = runtime.load("c").record
        assert attached == [("c", ProcessIdentity(record.init_pid, record.init_start_time))]
        assert runtime.load("c").history()[-1].detail["hooks"] == [ran.record()]
        assert box.console_fd is not None and box.console_fd == executor.spawned[-1].console_fd
    finally:
        if box.console_fd is not None:
            os.close(box.console_fd)


# -- quick.py ------------------------------------------------------------------------------


def test_lean_fire_hands_over_with_the_reason_it_logs(
    runtime: Runtime, config: Config, lean: DurableLeanStore, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """Kills quick x_fire__mutmut_14/_24/_25/_26/_34/_35/_36/_73/_74/_75/_76 (the reasons `corral
    --debug start|kill|pause|resume` logs for taking the library's path, cli/fast.py) and _9/_12
    (ContainerNotFound's text: the lean path knows no root, the text ends after "in ")."""

    locks = Locks(runtime.root)

    def reason(cid: str, event: str, boot: str = BOOT) -> str:
        with pytest.raises(NeedsLibrary) as caught:
            quick.fire(lean, locks, boot, cid, event)
        return str(caught.value)

    with pytest.raises(quick.ContainerNotFound) as missing:
        quick.fire(lean, locks, BOOT, "nobody", "start")
    assert str(missing.value) == "container 'nobody' does not exist in "
    runtime.create("h", dataclasses.replace(config, hooks=Hooks(poststart=(Hook(path="/bin/true"),))))
    box = runtime.create("c", config)
    monkeypatch.setattr(quick.proc, "alive", lambda init: True)
    assert reason("h", "start") == "the config has hooks (startContainer, poststart): the library runs them"
    assert reason("c", "start", "boot-2") == "the record is of another boot, or has no init"
    record = runtime.context.store.get(box.record.key)
    runtime.context.store.update(record.key, record.version, pending_event="pause")
    assert reason("c", "start") == "an intent (pause) is pending"
    runtime.context.store.update(record.key, record.version + 1, pending_event=None)
    monkeypatch.setattr(quick.proc, "alive", lambda init: False)
    assert reason("c", "start") == "the init is gone: its exit must be recorded"


# -- runtime.py ----------------------------------------------------------------------------


def test_a_loaded_container_holds_the_record_load_read(
    runtime: Runtime, config: Config, tmp_path: Path, kernel_dir: Path, boot_id_file: Path
) -> None:
    """Kills runtime xǁRuntimeǁ_container__mutmut_7/_10 (the new Container's recipe made without the record
    just read: its first look at the state or config reads the store again). `load(id).state`-style
    loops in another process (the CLI's) cost one read each, not two."""
    runtime.create("c", config)
    other = make_runtime(tmp_path, kernel_dir, boot_id_file)  # another process: no Container of "c" yet
    try:
        reads = _reader_statements(other.context.store, upper=False)
        box = other.load("c")
        reads.clear()
        assert box.recorded_state is lifecycle.State.CREATED
        assert box.config.process.args == config.process.args
        assert reads == []
    finally:
        other.close()
