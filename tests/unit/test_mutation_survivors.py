"""Tests for mutations mutmut found surviving the fast suite (see tests/README.md).

Each test pins down one behaviour a surviving mutant changed: what exec hands
the executor and records, how an exec'd process's end is recorded (once),
how recovery and a failed kernel step clear an intent, the journal stream's
order, the lifecycle helpers recovery and the journal check rely on, and how
database errors are classified.
"""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from corral import Process, Runtime, State
from corral.config import Config
from corral.errors import ExecutorError, StoreError, StoreUnreadable
from corral.executor.interface import ContainerFacts, ExitStatus, Stdio
from corral.statemachine.lifecycle import INITIAL_STATE, allowed_events, event_between, is_valid_step
from corral.store.failures import store_error
from tests.fakes import FakeExecHandle, FakeExecutor
from tests.unit.conftest import make_runtime


class _ExecRecorder(FakeExecutor):
    """Records what exec was given, and hands out a handle whose status is chosen by the test."""

    exec_calls: list[tuple[ContainerFacts, Process, Stdio]]
    next_status: ExitStatus = ExitStatus(0)

    def exec(self, facts: ContainerFacts, process: Process, stdio: Stdio) -> Any:
        self.exec_calls.append((facts, process, stdio))
        handle = super().exec(facts, process, stdio)
        return _Handle(handle.pid, handle.start_time, self.next_status, self)


class _Handle(FakeExecHandle):
    def __init__(self, pid: int, start_time: int, status: ExitStatus, executor: FakeExecutor) -> None:
        super().__init__(pid, start_time, executor)
        self.exit = status
        self.timeouts: list[float | None] = []

    def wait(self, timeout: float | None = None) -> ExitStatus:
        self.timeouts.append(timeout)
        return self.exit


@pytest.fixture
def exec_runtime(tmp_path: Path, boot_id_file: Path) -> Any:
    executor = _ExecRecorder(tmp_path / "kernel")
    executor.exec_calls = []
    rt = Runtime(tmp_path / "root", executor, run_root=tmp_path / "run", boot_id_file=boot_id_file)
    yield rt, executor
    rt.close()


def test_exec_hands_the_executor_the_container_process_and_stdio(exec_runtime: Any, config: Config) -> None:
    rt, executor = exec_runtime
    box = rt.create("c", config)
    box.start()
    stdio = Stdio(stdout=1)
    process = Process(args=("echo", "hi"))
    handle = box.exec(process, stdio=stdio)
    [(facts, given, given_stdio)] = executor.exec_calls
    assert facts.id == "c" and facts.init is not None and facts.init.pid == box.pid
    assert given == process and given_stdio is stdio
    entry = box.history()[-1]
    assert entry.event == "exec" and entry.detail == {"pid": handle.pid, "args": ["echo", "hi"]}
    [row] = box.exec_processes()
    assert (row.pid, row.start_time, row.args, row.boot_id) == (handle.pid, handle.start_time, ("echo", "hi"), "boot-1")
    assert row.container_key == box.record.key and row.started_at is not None and row.ended_at is None


def test_an_exec_d_process_end_is_recorded_once(exec_runtime: Any, config: Config) -> None:
    rt, executor = exec_runtime
    box = rt.create("c", config)
    box.start()
    executor.next_status = ExitStatus(128 + signal.SIGTERM, signal.SIGTERM)
    handle = box.exec(Process(args=("sleep", "1")))
    assert handle.wait(1.5) == 128 + signal.SIGTERM
    assert handle._handle.timeouts == [1.5]
    [row] = box.exec_processes()
    assert (row.exit_status, row.exit_signal) == (128 + signal.SIGTERM, signal.SIGTERM)
    assert row.ended_at is not None
    handle._handle.exit = ExitStatus(0)  # a second wait must not rewrite the recorded end
    handle.wait()
    [again] = box.exec_processes()
    assert (again.exit_status, again.exit_signal, again.ended_at) == (row.exit_status, row.exit_signal, row.ended_at)


def test_finishing_a_vanished_process_record_names_it(runtime: Runtime) -> None:
    with pytest.raises(StoreError, match="process record 999 vanished"):
        runtime.context.store.finish_process(999, 0, None)


def test_a_failed_kernel_step_clears_its_intent_and_says_why(runtime: Runtime, config: Config) -> None:
    box = runtime.create("c", config)
    box.start()
    runtime.context.executor.fail_next("freeze", ExecutorError("the freezer is stuck"))  # type: ignore[attr-defined]
    with pytest.raises(ExecutorError):
        box.pause()
    record = box.record
    assert record.state == "running"
    assert (record.pending_event, record.pending_since) == (None, None)
    assert record.last_error == "pause: the freezer is stuck"


def test_recovery_clears_an_interrupted_intent_and_says_why(
    runtime: Runtime, config: Config, tmp_path: Path, kernel_dir: Path, boot_id_file: Path
) -> None:
    box = runtime.create("c", config)
    box.start()
    record = box.record
    from corral.store.repository import utcnow

    runtime.context.store.update(record.key, record.version, pending_event="signal", pending_since=utcnow())
    other = make_runtime(tmp_path, kernel_dir, boot_id_file)
    try:
        after = other.context.store.get(record.key)
        assert (after.pending_event, after.pending_since, after.state) == (None, None, "running")
        assert after.last_error == "signal interrupted (its controller died); recovery found the kernel running"
        assert other.last_recovery is not None
        [action] = other.last_recovery.for_container("c")
        assert action.done == "cleared the signal intent"
    finally:
        other.close()


def test_the_journal_stream_is_in_order_with_container_ids(runtime: Runtime, config: Config) -> None:
    a = runtime.create("a", config)
    b = runtime.create("b", config)
    a.start()
    b.start()
    stream = runtime.journal()
    events = [(cid, e.event) for cid, e in stream]
    assert events == [*[("a", "create")] * 2, *[("b", "create")] * 2, ("a", "start"), ("b", "start")]
    seqs = [e.seq for _, e in stream]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [(cid, e.event) for cid, e in runtime.journal(since=seqs[3])] == [("a", "start"), ("b", "start")]


def test_event_between_prefers_the_unforced_event() -> None:
    assert event_between(State.RUNNING, State.STOPPED) == "exited"  # not a (forced) signal or kill
    assert event_between(State.RUNNING, State.PAUSED) == "pause"
    assert event_between(State.STOPPED, State.RUNNING) is None


def test_is_valid_step_from_nothing_is_only_create_to_the_initial_state() -> None:
    assert is_valid_step(None, "create", INITIAL_STATE)
    assert not is_valid_step(None, "start", INITIAL_STATE)
    assert not is_valid_step(None, "create", State.RUNNING)


def _sqlite(text: str, name: str = "", code: int = 0) -> sqlite3.Error:
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorname = name  # type: ignore[attr-defined]
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (_sqlite("database disk image is malformed", "SQLITE_CORRUPT", 11), StoreUnreadable, "malformed"),
        (_sqlite("file is not a database", "SQLITE_NOTADB", 26), StoreUnreadable, "not a database"),
        (_sqlite("database disk image is malformed"), StoreUnreadable, "malformed"),
        (_sqlite("file is not a database"), StoreUnreadable, "not a database"),
        (_sqlite("database is locked", "SQLITE_BUSY", 5), StoreError, "busy timeout"),
        (_sqlite("database table is locked", "SQLITE_LOCKED", 6), StoreError, "fuser"),
        (_sqlite("database or disk is full", "SQLITE_FULL", 13), StoreError, "filesystem is full"),
        (_sqlite("database or disk is full", "", 13), StoreError, "free space"),
        (_sqlite("disk I/O error", "SQLITE_IOERR", 10), StoreError, "SQLITE_IOERR: disk I/O error"),
        (_sqlite("disk I/O error"), StoreError, "failed (disk I/O error)"),
        (sqlite3.OperationalError("disk I/O error"), StoreError, "failed (disk I/O error)"),  # no name at all
        (ValueError("boom"), StoreError, "the store failed (ValueError: boom)"),
    ],
)
def test_database_errors_are_classified(tmp_path: Path, exc: BaseException, kind: type, words: str) -> None:
    db = tmp_path / "corral.db"
    error = store_error(db, exc)
    assert type(error) is kind
    assert words in str(error) and str(db) in str(error)
    if kind is StoreError and not isinstance(exc, ValueError) and "SQLITE_BUSY" not in repr(exc):
        assert "nothing was committed" in str(error)


class _OOMExecutor(FakeExecutor):
    """Reports two more OOM kills each time (the kernel's count only grows); the init dies of the second if `fatal`."""

    fatal = False
    count = 0

    def oom_events(self, facts: ContainerFacts, stop: Any = None) -> Any:
        from corral.types import OOMEvent

        self.count += 1
        yield OOMEvent(facts.id, self.count)
        if self.fatal:
            self.make_exit(facts.id, 137, signal.SIGKILL)
        self.count += 1
        yield OOMEvent(facts.id, self.count)


def test_oom_events_are_journalled_while_the_init_lives(tmp_path: Path, config: Config, boot_id_file: Path) -> None:
    executor = _OOMExecutor(tmp_path / "kernel")
    rt = Runtime(tmp_path / "root", executor, run_root=tmp_path / "run", boot_id_file=boot_id_file)
    try:
        box = rt.create("c", config)
        box.start()
        assert [e.count for e in box.oom_events()] == [1, 2]
        ooms = [e for e in box.history() if e.event == "oom"]
        assert [e.detail for e in ooms] == [{"oom_kills": 1}, {"oom_kills": 2}]
        assert all(e.from_state == e.to_state == "running" for e in ooms)
        executor.fatal = True
        assert [e.count for e in box.oom_events()] == [3, 4]  # the second one finds the init gone
        assert box.state is State.STOPPED
        assert [e.detail for e in box.history() if e.event == "oom"][2:] == [{"oom_kills": 3}]
    finally:
        rt.close()


def test_kernel_reads_need_a_container_with_resources(runtime: Runtime, config: Config) -> None:
    from corral.errors import InvalidTransition
    from corral.types import Stats

    box = runtime.create("c", config)
    box.start()
    assert box.processes() == [box.pid]
    assert isinstance(box.stats(), Stats)
    box.destroy(force=True)
    for read in (box.processes, box.stats, lambda: list(box.oom_events())):
        with pytest.raises(InvalidTransition, match="destroyed"):
            read()
    assert box.exec_processes() == []


@pytest.mark.parametrize(
    ("name", "kind"),
    [("SQLITE_CORRUPT_VTAB", StoreUnreadable), ("SQLITE_NOTADB", StoreUnreadable), ("SQLITE_FULL", StoreError)],
)
def test_database_errors_are_classified_by_sqlites_name(tmp_path: Path, name: str, kind: type) -> None:
    error = store_error(tmp_path / "corral.db", _sqlite("some other text", name, 0))
    assert type(error) is kind
    if name == "SQLITE_FULL":
        assert "filesystem is full" in str(error)


@pytest.mark.parametrize("name", ["SQLITE_READONLY_DIRECTORY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH"])
def test_access_errors_ask_which_file_corral_may_not_use(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The access check itself is tested in test_store.py; here, that these errors are routed to it."""
    from corral.errors import StoreAccessDenied
    from corral.store import failures

    asked: list[tuple[Path, Path]] = []

    def check_access(root: Path, db: Path) -> None:
        asked.append((root, db))
        if db.name == "denied.db":
            raise StoreAccessDenied(str(db), "permission denied")

    monkeypatch.setattr(failures, "check_access", check_access)
    denied = tmp_path / "denied.db"
    error = store_error(denied, _sqlite("unable to open database file", name, 14))
    assert type(error) is StoreAccessDenied and str(denied) in str(error)
    healthy = tmp_path / "corral.db"  # access is fine: some other failure, said as such
    assert type(store_error(healthy, _sqlite("unable to open database file", name, 14))) is StoreError
    assert asked == [(tmp_path, denied), (tmp_path, healthy)]


def test_waiting_for_a_container_still_being_created_is_refused(runtime: Runtime, config: Config, tmp_path: Path) -> None:
    from corral.errors import InvalidTransition

    runtime.context.store.insert(
        container_id="half", state="creating", pending_event="create", config=config.to_json(),
        bundle=None, run_dir=str(tmp_path / "run" / "half"), boot_id="boot-1",
        cgroup_paths={"fake": "/fake-cgroup/corral/half"}, journal_event="create",
    )
    with pytest.raises(InvalidTransition) as refused:
        runtime.load("half").wait(0)
    assert (refused.value.container_id, refused.value.state, refused.value.event) == ("half", "creating", "wait for")
    assert refused.value.allowed == ("create",) and refused.value.allowed == tuple(allowed_events(State.CREATING))
    assert str(refused.value).startswith("cannot wait for container 'half': it is creating")


def test_reading_processes_of_a_destroyed_container_says_what_was_refused(runtime: Runtime, config: Config) -> None:
    from corral.errors import InvalidTransition

    box = runtime.create("c", config)
    box.destroy(force=True)
    with pytest.raises(InvalidTransition, match="^cannot list the processes of container 'c': it is destroyed"):
        box.processes()


class _ReadRecorder(FakeExecutor):
    """Records the facts and the stop callable the kernel reads were given."""

    reads: list[tuple[str, Any]]

    def processes(self, facts: ContainerFacts) -> list[int]:
        self.reads.append(("processes", facts))
        return super().processes(facts)

    def stats(self, facts: ContainerFacts) -> Any:
        self.reads.append(("stats", facts))
        return super().stats(facts)

    def oom_events(self, facts: ContainerFacts, stop: Any = None) -> Any:
        self.reads.append(("oom_events", (facts, stop)))
        return super().oom_events(facts, stop)


def test_kernel_reads_get_the_containers_facts_and_refuse_with_their_name(
    tmp_path: Path, config: Config, boot_id_file: Path
) -> None:
    from corral.errors import InvalidTransition

    executor = _ReadRecorder(tmp_path / "kernel")
    executor.reads = []
    rt = Runtime(tmp_path / "root", executor, run_root=tmp_path / "run", boot_id_file=boot_id_file)
    try:
        box = rt.create("c", config)
        box.start()
        stop = lambda: True  # noqa: E731
        box.processes()
        box.stats()
        list(box.oom_events(stop))
        assert [name for name, _ in executor.reads] == ["processes", "stats", "oom_events"]
        assert executor.reads[0][1].init.pid == box.pid and executor.reads[1][1].init.pid == box.pid
        facts, given_stop = executor.reads[2][1]
        assert facts.init.pid == box.pid and given_stop is stop
        box.destroy(force=True)
        for read, what in (
            (box.stats, "read the stats of"),
            (lambda: list(box.oom_events()), "watch the OOM events of"),
        ):
            with pytest.raises(InvalidTransition, match=f"^cannot {what} container 'c': it is destroyed") as refused:
                read()
            assert refused.value.allowed == tuple(allowed_events(State.DESTROYED))
    finally:
        rt.close()


def test_polling_an_exec_d_process_records_its_end(exec_runtime: Any, config: Config) -> None:
    rt, executor = exec_runtime
    box = rt.create("c", config)
    box.start()
    executor.next_status = ExitStatus(128 + signal.SIGKILL, signal.SIGKILL)
    handle = box.exec(Process(args=("sleep", "1")))
    handle._handle.poll = lambda: None  # still running
    assert handle.poll() is None
    assert box.exec_processes()[0].ended_at is None
    handle._handle.poll = lambda: ExitStatus(128 + signal.SIGKILL, signal.SIGKILL)
    assert handle.poll() == 128 + signal.SIGKILL
    [row] = box.exec_processes()
    assert (row.exit_status, row.exit_signal) == (128 + signal.SIGKILL, signal.SIGKILL) and row.ended_at is not None
