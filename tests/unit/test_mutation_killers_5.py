"""Tests written against mutants of statemachine/runtime.py, locks.py, step.py, process.py and
consoles.py that survived the unit suite (tests/README.md, "Run of 2026-12-02"); each names
what it kills.

The locks are checked from outside, as another process sees them: which byte of which file is
locked (F_OFD_GETLK on a descriptor of our own), since every process sharing a root must
hash an id to the same byte of the same file.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import hashlib
import os
import stat
import struct
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from corral import Runtime, State
from corral.config import Config
from corral.errors import ConfigError, ExecutorError, LockError
from corral.executor.interface import ContainerFacts, ContainerPlan, Stdio
from corral.statemachine import locks as locks_module
from corral.statemachine.consoles import check_console
from corral.statemachine.locks import Locks, slot
from corral.statemachine.process import ExecProcess
from corral.statemachine.step import Step, facts_of
from corral.store.repository import ContainerRecord, NamespaceRecord
from corral.types import ExitStatus, HostInterface, ProcessIdentity
from tests.fakes import FakeExecutor

# -- locks.py --------------------------------------------------------------------------


def _lock_at(path: Path, start: int, length: int = 1) -> tuple[int, int, int]:
    """(type, start, length) of the first lock another open file description meets in [start, start+length)."""
    fd = os.open(path, os.O_RDWR)
    try:
        probe = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
        lock_type, _whence, found_start, found_length, _pid = struct.unpack(
            "hhqqi4x", fcntl.fcntl(fd, fcntl.F_OFD_GETLK, probe)
        )
        return lock_type, found_start, found_length
    finally:
        os.close(fd)


def test_an_id_hashes_to_its_slot_as_every_process_must() -> None:
    """Kills: mutations of `slot` (digest size, byte order, the +1, the modulus)."""
    for name in ("c", "my-container", "x" * 200):
        digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
        assert slot(name) == 1 + int.from_bytes(digest, "big") % (1 << 40)
    assert slot("c") == 432936528924  # pinned: a changed hash would split old and new holders
    assert 1 <= slot("c") <= 1 << 40


def test_holding_locks_one_byte_at_the_slot_of_root_corral_lock(tmp_path: Path) -> None:
    """Kills: `_flock_struct` mutations (whence, length, start) and the lock file's name."""
    locks = Locks(tmp_path)
    assert locks.path == str(tmp_path / "corral.lock")
    where = slot("c")
    with locks.hold("c") as got:
        assert got is True
        path = tmp_path / "corral.lock"
        assert _lock_at(path, where) == (fcntl.F_WRLCK, where, 1)
        assert _lock_at(path, where + 1)[0] == fcntl.F_UNLCK  # one byte only
        assert _lock_at(path, where - 1)[0] == fcntl.F_UNLCK
    assert _lock_at(tmp_path / "corral.lock", where)[0] == fcntl.F_UNLCK


def test_the_lock_file_is_private_and_its_descriptor_not_inherited(tmp_path: Path) -> None:
    """Kills: the lock file's mode 0o600 and O_CLOEXEC mutated or left out."""
    old = os.umask(0)
    try:
        locks = Locks(tmp_path)
        with locks.hold("c"):
            entry = locks._entries["c"]
            assert entry.fd is not None
            assert fcntl.fcntl(entry.fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
            assert os.fstat(entry.fd).st_mode & 0o7777 == 0o600
            assert fcntl.fcntl(entry.fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "corral.lock").stat().st_mode) == 0o600


def test_a_nested_hold_keeps_the_lock_until_the_outer_one_ends(tmp_path: Path) -> None:
    """Kills: the depth count mutated (the inner release dropping the outer hold), `_Entry`'s start values,
    and `_entry` handing out a new entry per call (`_entry_1`/`_2`: without the non-blocking try, a hang)."""
    locks = Locks(tmp_path)
    path = tmp_path / "corral.lock"
    where = slot("c")
    with locks.hold("c"):
        fd = locks._entries["c"].fd
        # first without blocking: a nested hold is never refused (and a mutant that hands out a
        # fresh entry per call fails here instead of waiting forever on its own lock below)
        with locks.hold("c", blocking=False) as nested_try:
            assert nested_try is True
        assert locks._entries["c"].depth == 1
        with locks.hold("c") as inner:
            assert inner is True
            assert locks._entries["c"].fd == fd and locks._entries["c"].depth == 2
        assert locks._entries["c"].depth == 1
        assert _lock_at(path, where)[0] == fcntl.F_WRLCK
    assert locks._entries["c"].depth == 0 and locks._entries["c"].fd is None
    assert _lock_at(path, where)[0] == fcntl.F_UNLCK


def test_each_name_has_its_own_entry(tmp_path: Path) -> None:
    """Kills: `_entry` handing out one entry for every name, or a new one each call."""
    locks = Locks(tmp_path)
    first = locks._entry("a")
    assert locks._entry("a") is first
    assert locks._entry("b") is not first
    assert set(locks._entries) == {"a", "b"}


def test_a_busy_lock_is_refused_without_blocking_and_waited_for_with(tmp_path: Path) -> None:
    """Kills: the non-blocking command (F_OFD_SETLK) and the busy errnos mutated."""
    other = Locks(tmp_path)  # another controller on the same root: its own open file description
    ready, release, done = threading.Event(), threading.Event(), threading.Event()

    def holder() -> None:
        with other.hold("c"):
            ready.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert ready.wait(10)
        locks = Locks(tmp_path)
        with locks.hold("c", blocking=False) as got:
            assert got is False
        assert locks._entries["c"].fd is None and locks._entries["c"].depth == 0
        with locks.hold("d", blocking=False) as got:  # another id: another byte
            assert got is True

        def waiter() -> None:
            with locks.hold("c"):
                done.set()

        second = threading.Thread(target=waiter)
        second.start()
        assert not done.wait(0.3)  # blocks while the other holds it
        release.set()
        assert done.wait(10)
        second.join(10)
    finally:
        release.set()
        thread.join(10)


def _failing_fcntl(errors: list[BaseException]) -> Any:
    real = fcntl.fcntl

    def fake(fd: int, command: int, arg: Any = 0) -> Any:
        if errors:
            raise errors.pop(0)
        return real(fd, command, arg)

    return fake


def test_an_interrupted_lock_call_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills: `continue` → `break` after InterruptedError (the lock would be reported busy or lost)."""
    monkeypatch.setattr(locks_module.fcntl, "fcntl", _failing_fcntl([InterruptedError(errno.EINTR, "Interrupted")]))
    locks = Locks(tmp_path)
    with locks.hold("c") as got:
        assert got is True
        assert _lock_at(tmp_path / "corral.lock", slot("c"))[0] == fcntl.F_WRLCK


@pytest.mark.parametrize("code", [errno.EAGAIN, errno.EACCES])
def test_a_lock_held_elsewhere_is_busy_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """Kills: either busy errno mutated, and the descriptor leaked when busy."""
    monkeypatch.setattr(locks_module.fcntl, "fcntl", _failing_fcntl([OSError(code, os.strerror(code))]))
    before = set(os.listdir("/proc/self/fd"))
    with Locks(tmp_path).hold("c", blocking=False) as got:
        assert got is False
    assert set(os.listdir("/proc/self/fd")) <= before


def test_a_failed_lock_call_is_a_lock_error_in_lower_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills: the error text of a failed fcntl (strerror, lower-cased; str(exc) without one)."""
    monkeypatch.setattr(
        locks_module.fcntl, "fcntl", _failing_fcntl([OSError(errno.ENOLCK, "No Locks Available"), OSError("Bare")])
    )
    before = set(os.listdir("/proc/self/fd"))
    locks = Locks(tmp_path)
    with pytest.raises(LockError) as info:
        with locks.hold("c"):
            pass
    assert info.value.path == str(tmp_path / "corral.lock")
    assert "(no locks available)" in str(info.value)
    with pytest.raises(LockError) as info:
        with locks.hold("c"):
            pass
    assert "(bare)" in str(info.value)
    assert set(os.listdir("/proc/self/fd")) <= before


def test_a_lock_file_that_cannot_be_opened_says_why_in_lower_case(tmp_path: Path) -> None:
    """Kills: the open error's text (strerror lower-cased)."""
    (tmp_path / "corral.lock").mkdir()
    with pytest.raises(LockError) as info:
        with Locks(tmp_path).hold("c"):
            pass
    assert info.value.path == str(tmp_path / "corral.lock")
    assert "(is a directory)" in str(info.value)


def test_an_open_error_without_strerror_says_what_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills: `str(exc)` mutated behind `exc.strerror or` for the open."""

    def refuse(*args: Any, **kwargs: Any) -> int:
        raise OSError("No Way")

    monkeypatch.setattr(locks_module.os, "open", refuse)
    with pytest.raises(LockError) as info:
        with Locks(tmp_path).hold("c"):
            pass
    assert "(no way)" in str(info.value)


# -- runtime.py ------------------------------------------------------------------------


def test_run_hands_its_stdio_to_the_spawn(tmp_path: Path, boot_id_file: Path, config: Config) -> None:
    """Kills runtime.run__mutmut_4/_7: `run` creating without the caller's stdio."""
    stdios: list[Stdio] = []

    class Witness(FakeExecutor):
        def spawn(self, facts: ContainerFacts, stdio: Stdio) -> Any:
            stdios.append(stdio)
            return super().spawn(facts, stdio)

    with Runtime(tmp_path / "root", Witness(tmp_path / "k"), run_root=tmp_path / "run", boot_id_file=boot_id_file) as rt:
        stdio = Stdio(stdout=1)
        assert rt.run("c", config, stdio=stdio).state is State.RUNNING
        assert stdios == [stdio]


def test_a_failed_cleanup_of_run_is_noted_on_the_start_error(runtime: Runtime, config: Config) -> None:
    """Kills runtime.run__mutmut_10 (and the note's text): the start error must carry the failed destroy."""
    fake = runtime.context.executor
    assert isinstance(fake, FakeExecutor)
    fake.fail_next("start", ExecutorError("no start"))
    fake.fail_next("destroy", ExecutorError("no kill"))
    with pytest.raises(ExecutorError, match="no start") as info:
        runtime.run("c", config)
    notes = getattr(info.value, "__notes__", [])
    assert len(notes) == 1 and notes[0].startswith("destroying it also failed: ")
    assert "no kill" in notes[0] and notes[0].endswith("; Runtime.recover() retries")


def test_list_returns_the_container_this_process_already_holds(runtime: Runtime, config: Config) -> None:
    """Kills runtime.list__mutmut_21/_22: `list` building a second Container beside the one held."""
    held = runtime.create("a", config)
    [listed] = runtime.list()
    assert listed is held
    assert runtime.load("a") is held


def test_list_keeps_the_newest_listed_containers_alive(runtime: Runtime, config: Config) -> None:
    """Kills runtime.list__mutmut_36–_39: the listed boxes kept recent under the wrong keys, or not at all."""
    import gc
    import weakref

    from corral.statemachine.runtime import RECENT_CONTAINERS

    count = RECENT_CONTAINERS + 3
    for i in range(count):
        runtime.context.store.insert(
            container_id=f"c{i}", state="created", pending_event=None, config=config.to_json(),
            bundle=None, run_dir=f"/run/c{i}", boot_id="boot-1", cgroup_paths={}, journal_event="create",
        )
    runtime._recent.clear()
    boxes = runtime.list()
    keys = [box._key for box in boxes]
    refs = [weakref.ref(box) for box in boxes]
    assert list(runtime._recent.items()) == list(zip(keys, boxes))[-RECENT_CONTAINERS:]
    del boxes
    gc.collect()
    assert [r() is None for r in refs] == [True] * 3 + [False] * RECENT_CONTAINERS


def test_create_records_the_interfaces_its_plan_makes(tmp_path: Path, boot_id_file: Path, config: Config) -> None:
    """Kills runtime.create__mutmut_62: the record made without the plan's interfaces (never attached, never removed)."""
    planned = (HostInterface("crv0", "eth0", "corral t/c"),)

    class Networked(FakeExecutor):
        def plan(self, container_id: str, config: Config, run_dir: str, store_root: str) -> ContainerPlan:
            return dataclasses.replace(super().plan(container_id, config, run_dir, store_root), interfaces=planned)

    executor = Networked(tmp_path / "k")
    with Runtime(tmp_path / "root", executor, run_root=tmp_path / "run", boot_id_file=boot_id_file) as rt:
        box = rt.create("c", config)
        assert box.record.interfaces == planned
        assert executor.kernel("c")["interfaces"] == ["crv0"]
        box.destroy(force=True)
        assert not executor.leaked("c")


# -- consoles.py -----------------------------------------------------------------------


def test_check_console_refusals_name_the_field_and_the_call() -> None:
    """Kills consoles.check_console mutants: each refusal's field, text and condition."""
    with pytest.raises(ConfigError) as info:
        check_console(True, False, None, where="process", call="Runtime.create")
    assert info.value.where == "process.terminal"
    assert info.value.problem == (
        "is true, so the process gets a new terminal: pass console=True to Runtime.create to receive its "
        "master as a file descriptor (.console_fd), or set terminal to false"
    )
    with pytest.raises(ConfigError) as info:
        check_console(False, True, None, where="exec", call="Container.exec")
    assert info.value.where == "exec.terminal"
    assert info.value.problem == (
        "is false, but console=True was passed to Container.exec: set terminal to true for a terminal"
    )
    with pytest.raises(ConfigError) as info:
        check_console(True, True, Stdio(stdout=1), where="process", call="Runtime.create")
    assert info.value.where == "stdio"
    assert info.value.problem == (
        "process.terminal is true: the terminal is the process's stdin, stdout and stderr; pass no stdio"
    )


@pytest.mark.parametrize(
    ("terminal", "console", "stdio"),
    [
        (False, False, None),
        (False, False, Stdio(stdout=1)),  # stdio without a terminal: the point of stdio
        (True, True, None),
        (True, True, Stdio()),
        (True, True, Stdio(extra_fds=(0,))),  # inherited descriptors beside a terminal are fine
    ],
)
def test_check_console_accepts_what_is_consistent(terminal: bool, console: bool, stdio: Stdio | None) -> None:
    """Kills consoles.check_console mutants that refuse a consistent call (conditions, the extra_fds comparison)."""
    check_console(terminal, console, stdio, where="process", call="Runtime.create")


# -- process.py ------------------------------------------------------------------------


class _Handle:
    def __init__(self, ended: ExitStatus | None, **attributes: Any) -> None:
        self.pid, self.start_time = 4242, 777
        self.ended = ended
        self.waited: list[float | None] = []
        self.__dict__.update(attributes)

    def wait(self, timeout: float | None = None) -> ExitStatus:
        self.waited.append(timeout)
        assert self.ended is not None
        return self.ended

    def poll(self) -> ExitStatus | None:
        return self.ended


class _Store:
    def __init__(self) -> None:
        self.finished: list[tuple[int, int | None, int | None]] = []

    def finish_process(self, key: int, status: int | None, signal: int | None) -> None:
        self.finished.append((key, status, signal))


def test_an_exec_process_shows_its_handle_s_identity_and_console() -> None:
    """Kills process.ExecProcess.__init__ mutants (pid, start time, console_fd; a handle without one)."""
    store = _Store()
    with_console = ExecProcess(store, _Handle(None, console_fd=9), 5)  # type: ignore[arg-type]
    assert (with_console.pid, with_console.start_time, with_console.console_fd) == (4242, 777, 9)

    class Bare:  # an ExecHandle of an executor that has no terminals
        pid, start_time = 1, 2

    assert ExecProcess(store, Bare(), 5).console_fd is None  # type: ignore[arg-type]


def test_an_exec_process_s_wait_passes_its_timeout_and_records_how_it_ended() -> None:
    """Kills process.ExecProcess.wait mutants: the timeout, the key, status and signal recorded, what it returns."""
    store, handle = _Store(), _Handle(ExitStatus(137, 9))
    process = ExecProcess(store, handle, 5)  # type: ignore[arg-type]
    assert process.wait(2.5) == 137
    assert handle.waited == [2.5]
    assert store.finished == [(5, 137, 9)]


def test_an_exec_process_s_poll_records_only_an_end() -> None:
    """Kills process.ExecProcess.poll mutants: recording a running process, or the wrong key, status or signal."""
    store, handle = _Store(), _Handle(None)
    process = ExecProcess(store, handle, 6)  # type: ignore[arg-type]
    assert process.poll() is None
    assert store.finished == []
    handle.ended = ExitStatus(130, 2)
    assert process.poll() == 130
    assert store.finished == [(6, 130, 2)]


# -- step.py ---------------------------------------------------------------------------


def _record(**fields: Any) -> ContainerRecord:
    now = datetime(2026, 12, 2, tzinfo=timezone.utc)
    values: dict[str, Any] = dict(
        key=7, id="c", state="running", pending_event=None, pending_since=None, init_pid=100,
        init_start_time=1000, boot_id="boot-1", monitor_pid=99, monitor_start_time=990, exit_status=None,
        exit_signal=None, oom_killed=False, bundle=None, config="{}", run_dir="/run/corral/c", last_error=None,
        created_at=now, updated_at=now, version=3, cgroup_paths={"unified": "/sys/fs/cgroup/corral/c"},
        namespaces={"pid": NamespaceRecord("/proc/100/ns/pid", 4026531836)},
        created_cgroups={"unified": ("/sys/fs/cgroup/corral", "/sys/fs/cgroup/corral/c")},
        interfaces=(HostInterface("crv0", "eth0", "corral t/c"),),
    )
    values.update(fields)
    return ContainerRecord(**values)


def test_facts_of_a_record_carry_every_recorded_fact(config: Config) -> None:
    """Kills step.facts_of mutants: each field of the facts, the plan and the identities."""
    record = _record()
    facts = facts_of(record, config)
    assert facts == ContainerFacts(
        id="c",
        config=config,
        plan=ContainerPlan(
            cgroup_paths={"unified": "/sys/fs/cgroup/corral/c"},
            run_dir="/run/corral/c",
            created_cgroups={"unified": ("/sys/fs/cgroup/corral", "/sys/fs/cgroup/corral/c")},
            interfaces=(HostInterface("crv0", "eth0", "corral t/c"),),
        ),
        init=ProcessIdentity(100, 1000),
        monitor=ProcessIdentity(99, 990),
        namespaces={"pid": "/proc/100/ns/pid"},
    )
    assert facts.config is config
    assert facts.plan.cgroup_paths is not record.cgroup_paths  # the executor gets its own copy


@pytest.mark.parametrize(
    ("pid", "start_time"), [(None, None), (100, None), (None, 1000)]
)
def test_an_identity_without_pid_or_start_time_is_no_identity(config: Config, pid: int | None, start_time: int | None) -> None:
    """Kills step.facts_of mutants of the init and monitor conditions: a PID without its start time is never acted on."""
    facts = facts_of(_record(init_pid=pid, init_start_time=start_time, monitor_pid=pid, monitor_start_time=start_time), config)
    assert facts.init is None
    assert facts.monitor is None


def test_a_step_s_facts_are_its_record_s_with_its_config(runtime: Runtime, config: Config) -> None:
    """Kills step.Step.facts mutants: the record or the config it reads."""
    record = _record()
    seen: list[ContainerRecord] = []

    def config_of(r: ContainerRecord) -> Config:
        seen.append(r)
        return config

    step = Step("start", runtime.context, record, config_of)
    assert step.facts() == facts_of(record, config)
    assert seen == [record]


def test_a_container_recovery_acted_on_is_kept_among_the_recent(runtime: Runtime, config: Config, tmp_path: Path) -> None:
    """Kills runtime._recipe__mutmut_1: recovery's recipe made without its Container (nothing keeps it for the next use)."""
    record = runtime.context.store.insert(
        container_id="half", state="creating", pending_event="create", config=config.to_json(),
        bundle=None, run_dir=str(tmp_path / "run" / "half"), boot_id="boot-1",
        cgroup_paths={"fake": "/fake-cgroup/corral/half"}, journal_event="create",
    )
    runtime._recent.clear()
    report = runtime.recover()
    assert [a.container_id for a in report.actions] == ["half"]
    kept = runtime._recent[record.key]
    assert runtime.load("half") is kept
    assert kept.state is State.DESTROYED


def test_recovery_of_a_listed_container_that_has_no_recipe_yet(runtime: Runtime, config: Config, tmp_path: Path) -> None:
    """Kills runtime._recipe__mutmut_7: the recipe of a listed Container (made on first use) given the record as its id."""
    runtime.context.store.insert(
        container_id="half", state="creating", pending_event="create", config=config.to_json(),
        bundle=None, run_dir=str(tmp_path / "run" / "half"), boot_id="boot-1",
        cgroup_paths={"fake": "/fake-cgroup/corral/half"}, journal_event="create",
    )
    [listed] = runtime.list()  # holds only its key and id: no recipe yet
    report = runtime.recover()
    assert report.failed == [] and [a.container_id for a in report.actions] == ["half"]
    assert listed.state is State.DESTROYED
    assert runtime.load("half") is listed


def test_a_runtime_without_an_executor_drives_the_kernel(tmp_path: Path, boot_id_file: Path) -> None:
    """Kills runtime.__init__mutmut_11: no executor given → none at all, instead of the LinuxExecutor."""
    from corral.executor.linux import LinuxExecutor

    with Runtime(tmp_path / "root", run_root=tmp_path / "run", boot_id_file=boot_id_file, recover=False) as rt:
        assert isinstance(rt.context.executor, LinuxExecutor)
