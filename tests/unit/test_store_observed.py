"""The monitor's sqlite3-only journal writer (corral/store/observed.py) against the Repository's path.

The rows it writes must be the very rows the recipe writes through SQLAlchemy
for the same observation: two stores, made the same way with the clock and the
fake PIDs pinned, one observing through the ORM and one through observed.py,
must hold identical containers and journal rows.
"""

from __future__ import annotations

import inspect
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from collections.abc import Callable
from typing import Any

import pytest

from corral import Config, Runtime
from corral.executor import waiting
from corral.executor.interface import ContainerFacts, ExitStatus
from corral.statemachine import events, locks
from corral.store import observed, repository
from tests.fakes import FakeExecutor
import tests.fakes as fakes

NOW = datetime(2026, 12, 1, 12, 0, 0, 123456)
REPO = Path(__file__).resolve().parents[2]


class _OOMJudgingExecutor(FakeExecutor):
    """A SIGKILLed init counts as OOM-killed, as the real executor judges it with a non-zero kill count."""

    def exit_status(self, facts: ContainerFacts) -> ExitStatus:
        status = super().exit_status(facts)
        return ExitStatus(status.status, status.signal, oom_killed=status.signal == signal.SIGKILL)


def _runtime(base: Path, boot_id_file: Path) -> Runtime:
    return Runtime(base / "root", _OOMJudgingExecutor(base / "kernel"), run_root=base.parent / "run", boot_id_file=boot_id_file)


def _rows(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = sqlite3.connect(root / "corral.db")
    try:
        columns = [r[1] for r in con.execute("PRAGMA table_info(containers)") if r[1] != "created_cgroups"]
        return {
            "containers": con.execute(f"SELECT {', '.join(columns)} FROM containers ORDER BY key").fetchall(),
            "journal": con.execute("SELECT * FROM journal ORDER BY seq").fetchall(),
        }
    finally:
        con.close()


def _arguments(rt: Runtime, cid: str) -> dict[str, Any]:
    record = rt.load(cid).record
    return {
        "root": str(rt.root),
        "key": record.key,
        "init_pid": record.init_pid,
        "lock_file": str(rt.context.locks.path),
        "lock_slot": locks.slot(cid),
    }


NOW_TEXT = NOW.strftime("%Y-%m-%d %H:%M:%S.%f")


def _c(arguments: dict[str, Any], *row: object, now: str = NOW_TEXT) -> int:
    """`corral-waiter record ...` (the C port of this module, waiter_store.c): 0 written, 1 nothing
    to write, 2 an error; `now` empty: the waiter's own clock."""
    a = arguments
    argv = [waiting.WAITER, "record", a["root"], str(a["key"]), a["lock_file"], str(a["lock_slot"]), str(a["init_pid"])]
    return subprocess.run([*argv, now, *map(str, row)], timeout=60).returncode


def _c_exited(
    arguments: dict[str, Any], status: int | None, sig: int | None, oom_killed: bool, reason: str = "", now: str = NOW_TEXT
) -> int:
    none = lambda value: "none" if value is None else value  # noqa: E731
    return _c(arguments, "exited", none(status), none(sig), int(oom_killed), reason, now=now)


class _Writer:
    """One of the two writers of the monitor's rows, as the contract tests below call them:
    True written, False nothing to write (an error of the C writer fails the test)."""

    def __init__(self, exited: Callable[[dict[str, Any], int], object], oom: Callable[[dict[str, Any], int], object]) -> None:
        self._exited, self._oom = exited, oom

    def exited(self, arguments: dict[str, Any], status: int) -> bool:
        return self._answer(self._exited(arguments, status))

    def oom(self, arguments: dict[str, Any], count: int) -> bool:
        return self._answer(self._oom(arguments, count))

    @staticmethod
    def _answer(result: object) -> bool:
        if isinstance(result, bool):
            return result
        assert result in (0, 1), f"corral-waiter record failed with {result}"
        return result == 0


@pytest.fixture(params=["observed.py", "corral-waiter"])
def writer(request: pytest.FixtureRequest) -> _Writer:
    """observed.py and the C waiter's port of it (waiter_store.c) keep the same contract."""
    if request.param == "observed.py":
        return _Writer(lambda a, status: observed.exited(**a, status=status), lambda a, count: observed.oom(**a, count=count))
    if not os.access(waiting.WAITER, os.X_OK):
        pytest.skip("scripts/install builds the waiter")
    return _Writer(lambda a, status: _c_exited(a, status, None, False, now=""), lambda a, count: _c(a, "oom", count, now=""))


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    """One clock and one PID for every store, so that two stores can be compared row by row."""
    monkeypatch.setattr(repository, "utcnow", lambda: NOW)
    monkeypatch.setattr(observed, "utcnow", lambda: NOW)
    monkeypatch.setattr(fakes, "_new_identity", lambda: (4242, 777))
    monkeypatch.setattr(events, "monitor_recorder", lambda context, record: None)  # only what each path writes


CASES = {
    "exit code": (3, None),
    "oom-killed": (128 + signal.SIGKILL, signal.SIGKILL),
    "unknown": (None, None),
}


@pytest.mark.parametrize("case", CASES)
def test_exited_rows_are_the_orm_paths(
    case: str, tmp_path: Path, config: Config, boot_id_file: Path, pinned: None
) -> None:
    status, sig = CASES[case]
    orm, raw = _runtime(tmp_path / "orm", boot_id_file), _runtime(tmp_path / "raw", boot_id_file)
    try:
        for rt in (orm, raw):
            rt.create("c", config).start()
        orm.context.executor.make_exit("c", status, sig)  # type: ignore[attr-defined]
        assert orm.load("c").state.value == "stopped"  # the recipe observes it
        wrote = observed.exited(**_arguments(raw, "c"), status=status, signal=sig, oom_killed=sig == signal.SIGKILL)
        assert wrote
        assert _rows(raw.root) == _rows(orm.root)
        last = raw.load("c").history()[-1]
        assert last.event == "exited" and last.to_state == "stopped"
        if case == "oom-killed":
            assert raw.load("c").oom_killed is True
        if case == "unknown":
            assert last.detail["exit"] == "unknown"
    finally:
        orm.close()
        raw.close()


def test_a_sigkill_sent_through_corral_is_not_an_oom_kill_on_either_path(
    tmp_path: Path, config: Config, boot_id_file: Path, pinned: None
) -> None:
    orm, raw = _runtime(tmp_path / "orm", boot_id_file), _runtime(tmp_path / "raw", boot_id_file)
    try:
        for rt in (orm, raw):
            box = rt.create("c", config)
            box.start()
            # a SIGKILL journalled by corral; the fake's init survives it here (as if it were still dying)
            box._recipe.context.store.update(  # noqa: SLF001 - stage the journal row only
                box.record.key, box.record.version, journal=("signal", "running", "running", {"all": False, "signal": 9})
            )
        orm.context.executor.make_exit("c", 137, signal.SIGKILL)  # type: ignore[attr-defined]
        assert orm.load("c").state.value == "stopped"
        assert observed.exited(**_arguments(raw, "c"), status=137, signal=signal.SIGKILL, oom_killed=True)
        assert _rows(raw.root) == _rows(orm.root)
        assert raw.load("c").oom_killed is False
    finally:
        orm.close()
        raw.close()


def test_oom_rows_are_the_orm_paths(tmp_path: Path, config: Config, boot_id_file: Path, pinned: None) -> None:
    orm, raw = _runtime(tmp_path / "orm", boot_id_file), _runtime(tmp_path / "raw", boot_id_file)
    try:
        for rt in (orm, raw):
            rt.create("c", config).start()
        orm.load("c")._recipe.fire("oom", count=2)  # noqa: SLF001 - what Container.oom_events fires
        assert observed.oom(**_arguments(raw, "c"), count=2)
        assert _rows(raw.root) == _rows(orm.root)
        assert not observed.oom(**_arguments(raw, "c"), count=2), "the same kill count twice"
        assert not observed.oom(**_arguments(raw, "c"), count=1)
        assert observed.oom(**_arguments(raw, "c"), count=3)
        assert [e.detail for e in raw.load("c").history() if e.event == "oom"] == [{"oom_kills": 2}, {"oom_kills": 3}]
    finally:
        orm.close()
        raw.close()


def test_an_exit_is_recorded_once(runtime: Runtime, config: Config) -> None:
    runtime.create("c", config).start()
    arguments = _arguments(runtime, "c")
    assert observed.exited(**arguments, status=0)
    assert not observed.exited(**arguments, status=0)
    box = runtime.load("c")
    assert box.wait(1) == 0
    assert [e.event for e in box.history()].count("exited") == 1


def test_nothing_is_written_for_another_init_or_a_record_that_is_not_live(runtime: Runtime, config: Config, writer: _Writer) -> None:
    box = runtime.create("c", config)
    box.start()
    arguments = _arguments(runtime, "c")
    before = box.history()
    other = {**arguments, "init_pid": arguments["init_pid"] + 1}
    assert not writer.exited(other, 0)
    assert not writer.oom(other, 1)
    box.destroy(force=True)
    assert not writer.exited(arguments, 0)
    assert not writer.oom(arguments, 1)
    assert [e.event for e in box.history()] == [e.event for e in before] + ["destroy"]


def test_it_waits_for_the_containers_lock(runtime: Runtime, config: Config, writer: _Writer) -> None:
    runtime.create("c", config).start()
    arguments = _arguments(runtime, "c")
    result: list[bool] = []
    with runtime.context.locks.hold("c"):
        thread = threading.Thread(target=lambda: result.append(writer.exited(arguments, 4)))
        thread.start()
        time.sleep(0.3)
        assert thread.is_alive() and runtime.load("c").recorded_state.value == "running"
    thread.join(10)
    assert result == [True]
    assert runtime.load("c").exit_status == 4


def test_it_gives_up_on_a_locked_container_being_destroyed(runtime: Runtime, config: Config, writer: _Writer) -> None:
    """A forced destroy holds the lock and waits for the monitor: the monitor must not wait for it."""
    box = runtime.create("c", config)
    box.start()
    arguments = _arguments(runtime, "c")
    with runtime.context.locks.hold("c"):
        record = box.record
        runtime.context.store.update(record.key, record.version, pending_event="destroy")
        started = time.monotonic()
        assert not writer.exited(arguments, 0)
        assert time.monotonic() - started < 5


def test_the_wal_files_outlive_a_lone_recorder_connection(
    tmp_path: Path, config: Config, boot_id_file: Path, writer: _Writer
) -> None:
    """SQLite deletes -wal and -shm when the last connection closes; a monitor is often the last."""
    rt = _runtime(tmp_path / "a", boot_id_file)
    rt.create("c", config).start()
    arguments = _arguments(rt, "c")
    rt.close()  # now nobody else has the store open
    assert writer.exited(arguments, 0)
    assert (rt.root / "corral.db-shm").exists() and (rt.root / "corral.db-wal").exists()


def test_the_writer_imports_no_sqlalchemy() -> None:
    code = "import sys, corral.store.observed; print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'alembic'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_the_monitor_is_told_to_call_this_module(runtime: Runtime, config: Config) -> None:
    """What the monitor is given binds to these functions, with what it adds itself (executor/observer.py)."""
    box = runtime.create("c", config)
    recorder = events.monitor_recorder(runtime.context, box.record)
    assert recorder.module == observed.__name__
    expected = _arguments(runtime, "c")
    del expected["init_pid"]
    assert dict(recorder.arguments) == expected
    inspect.signature(observed.exited).bind(
        **recorder.arguments, init_pid=1, status=0, signal=None, oom_killed=False, reason=None
    )
    inspect.signature(observed.oom).bind(**recorder.arguments, init_pid=1, count=1)
