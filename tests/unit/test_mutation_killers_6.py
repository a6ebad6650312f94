"""Tests written against mutants of statemachine/ that survived the unit suite
(tests/README.md, "Run of 2026-12-02, second session"); each names what it kills.

They run on the fake executor, without root.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from corral import Process, Runtime, State
from corral.config import Config
from corral.errors import LogsUnavailable, WaitTimeout
from corral.executor import logwriter
from corral.executor.interface import ContainerFacts, Stdio
from corral.statemachine.locks import Locks
from corral.types import ExecResult
from tests.fakes import FakeExecutor
from tests.unit.conftest import make_runtime


def _fake(runtime: Runtime) -> FakeExecutor:
    executor = runtime.context.executor
    assert isinstance(executor, FakeExecutor)
    return executor


def _other_holder(runtime: Runtime) -> Locks:
    """The locks of the same root as another process opens them (its own open file description)."""
    return Locks(Path(runtime.context.locks.path).parent)


def _finishes_while(hold: Locks, name: str, call: Callable[[], Any], timeout: float = 10) -> tuple[bool, list[Any]]:
    """Run `call` in a thread while `hold` holds `name`: whether it finished before `timeout`, and its result."""
    with hold.hold(name):
        finished, result, worker = _finishes(call, timeout)
    worker.join(30)  # the lock is free now: a blocked call ends too
    return finished, result


def _finishes(call: Callable[[], Any], timeout: float) -> tuple[bool, list[Any], threading.Thread]:
    """Run `call` in a thread: whether it finished within `timeout`, its result, the thread."""
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(call()), daemon=True)
    worker.start()
    worker.join(timeout)
    return not worker.is_alive(), result, worker


# -- transition.py -----------------------------------------------------------------------


def test_the_state_of_a_live_container_takes_no_lock(runtime: Runtime, config: Config) -> None:
    """Kills Recipe.alive_as_recorded__mutmut_4/_5: an init alive as recorded (no intent, a recorded PID)
    judged not so, so `.state` queues behind a transition holding the container's lock."""
    box = runtime.create("c", config)
    box.start()
    finished, result = _finishes_while(_other_holder(runtime), "c", lambda: box.state, timeout=5)
    assert finished, "Container.state waited for the container's lock"
    assert result == [State.RUNNING]


def test_the_state_of_a_container_with_an_intent_waits_for_its_lock(runtime: Runtime, config: Config) -> None:
    """The other side of the above: an intent pending (a transition under way) is only judged under the lock."""
    box = runtime.create("c", config)
    record = box.record
    runtime.context.store.update(record.key, record.version, pending_event="start")
    finished, result = _finishes_while(_other_holder(runtime), "c", lambda: box.state, timeout=1)
    assert not finished
    assert result == [State.CREATED]


def test_a_container_s_config_is_parsed_once_per_text(runtime: Runtime, config: Config) -> None:
    """Kills Recipe.config_of__mutmut_2: the record's config parsed again on every read (`is not None`)."""
    from corral.config import PidsResources, Resources

    box = runtime.create("c", config)
    first = box.config
    assert box.config is first  # the same text: the parse is kept
    box.update(Resources(pids=PidsResources(10)))
    changed = box.config
    assert changed is not first and changed.resources is not None
    assert changed.resources.pids == PidsResources(10)
    assert box.config is changed


def test_recorded_state_is_the_last_read_not_the_store_s(
    runtime: Runtime, config: Config, tmp_path: Path, kernel_dir: Path, boot_id_file: Path
) -> None:
    """Kills Recipe.adopt__mutmut_4: a record adopted as None, so every use reads the store again
    (`recorded_state` would then show what another process wrote, not what this one last read)."""
    box = runtime.create("c", config)
    other = make_runtime(tmp_path, kernel_dir, boot_id_file)
    try:
        other.load("c").start()
    finally:
        other.close()
    assert box.recorded_state is State.CREATED  # as this process last read it
    assert box.state is State.RUNNING  # read again (and checked with the kernel)
    assert box.recorded_state is State.RUNNING


# -- container.py: exec_run (no test of the selection called it) --------------------------


class _EchoExecutor(FakeExecutor):
    """The fake, whose exec'd process writes its args to its stdout (`cat`: its stdin), and `err` to its stderr."""

    def __init__(self, kernel_dir: Path) -> None:
        super().__init__(kernel_dir)
        self.held: list[int] = []  # a `sleep`'s copies of its pipes, as a live process holds them

    def exec(self, facts: ContainerFacts, process: Process, stdio: Stdio) -> Any:
        handle = super().exec(facts, process, stdio)
        if process.args[:1] == ("sleep",):
            self.held.extend(os.dup(fd) for fd in (stdio.stdout, stdio.stderr) if isinstance(fd, int))
            return handle
        if isinstance(stdio.stdout, int):
            if process.args[:1] == ("cat",) and isinstance(stdio.stdin, int):
                os.write(stdio.stdout, os.read(stdio.stdin, 4096))
            else:
                os.write(stdio.stdout, " ".join(process.args).encode())
        if isinstance(stdio.stderr, int):
            os.write(stdio.stderr, b"err")
        return handle


@pytest.fixture
def echo_runtime(tmp_path: Path, kernel_dir: Path, boot_id_file: Path) -> Iterator[Runtime]:
    rt = Runtime(tmp_path / "root", _EchoExecutor(kernel_dir), run_root=tmp_path / "run", boot_id_file=boot_id_file)
    yield rt
    rt.close()


def test_exec_run_collects_what_the_command_writes_and_its_status(echo_runtime: Runtime, config: Config) -> None:
    """Kills Container.exec_run__mutmut_1/_3-_6/_10/_14-_18: the command, its process or its pipes lost."""
    box = echo_runtime.create("c", config)
    box.start()
    assert box.exec_run(["echo", "hi"]) == ExecResult(0, b"echo hi", b"err")
    assert box.exec_run(("false",)) == ExecResult(1, b"false", b"err")


def test_exec_run_takes_a_whole_process(echo_runtime: Runtime, config: Config) -> None:
    """Kills Container.exec_run__mutmut_2: a Process given is taken as the command's args."""
    box = echo_runtime.create("c", config)
    box.start()
    assert box.exec_run(Process(args=("echo", "whole"))) == ExecResult(0, b"echo whole", b"err")


def test_exec_run_hands_its_stdin_to_the_process(echo_runtime: Runtime, config: Config, tmp_path: Path) -> None:
    """Kills Container.exec_run__mutmut_7/_11: `stdin` dropped (or shifted into the timeout)."""
    box = echo_runtime.create("c", config)
    box.start()
    source = tmp_path / "input"
    source.write_bytes(b"from stdin")
    fd = os.open(source, os.O_RDONLY)
    try:
        assert box.exec_run(["cat"], stdin=fd) == ExecResult(0, b"from stdin", b"err")
    finally:
        os.close(fd)


def test_exec_run_gives_up_after_its_timeout_naming_the_container(echo_runtime: Runtime, config: Config) -> None:
    """Kills Container.exec_run__mutmut_8/_9/_12/_13: the timeout or the text of its WaitTimeout lost
    (the process outlives it, holding its pipes)."""
    box = echo_runtime.create("c", config)
    box.start()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            box.exec_run(["sleep", "100"], timeout=0.3)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            errors.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(10)
    hung = worker.is_alive()
    box.destroy(force=True)  # ends the sleep (and a hung call)
    executor = echo_runtime.context.executor
    assert isinstance(executor, _EchoExecutor)
    for fd in executor.held:
        os.close(fd)
    worker.join(10)
    assert not hung, "exec_run waited past its timeout"
    [error] = errors
    assert isinstance(error, WaitTimeout)
    assert str(error) == "exec in container 'c': still running after 0.3 s"


# -- container.py: logs (the selection read logs.read directly, and Container.logs only without a log) --


T0 = 1_700_000_000 * 10**9


def _log_of(box: Any) -> Path:
    """The container's log, as its monitor would have written it: two lines, then one 2 s later."""
    run_dir = Path(box.record.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = Path(logwriter.log_path(str(run_dir)))
    path.write_bytes(
        logwriter.records(b"stdout", b"one\n", T0)
        + logwriter.records(b"stderr", b"two\n", T0 + 1)
        + logwriter.records(b"stdout", b"three\n", T0 + 2 * 10**9)
    )
    return path


def test_logs_hands_since_and_tail_to_the_reader(runtime: Runtime, config: Config) -> None:
    """Kills Container.logs__mutmut_7/_8/_13/_14: `since` or `tail` dropped."""
    box = runtime.create("c", config)
    box.start()
    _fake(runtime).make_exit("c")  # stopped: even a follow would end
    _log_of(box)
    assert [line.text for line in box.logs()] == ["one", "two", "three"]
    assert [line.text for line in box.logs(since=1_700_000_001)] == ["three"]
    assert [line.text for line in box.logs(tail=2)] == ["two", "three"]


def test_logs_of_a_running_container_do_not_follow_unless_asked(runtime: Runtime, config: Config) -> None:
    """Kills Container.logs__mutmut_1: `follow` True by default (a running container's logs() never ends)."""
    box = runtime.create("c", config)
    box.start()
    _log_of(box)
    finished, result, worker = _finishes(lambda: [line.text for line in box.logs()], 5)
    _fake(runtime).make_exit("c")  # ends a follow
    worker.join(10)
    assert finished, "logs() followed a running container"
    assert result == [["one", "two", "three"]]


def test_following_logs_waits_for_lines_until_the_container_exits(runtime: Runtime, config: Config) -> None:
    """Kills Container.logs__mutmut_3/_6/_9/_12/_15: `follow` or the check that the container still
    runs lost (a follow that ends at the first pause misses the later line, or fails)."""
    box = runtime.create("c", config)
    box.start()
    path = _log_of(box)

    def write_later() -> None:
        time.sleep(0.5)
        with open(path, "ab") as log:
            log.write(logwriter.records(b"stdout", b"later\n", T0 + 3 * 10**9))
        time.sleep(0.3)
        _fake(runtime).make_exit("c")

    writer = threading.Thread(target=write_later)
    writer.start()
    try:
        texts = [line.text for line in box.logs(follow=True)]
    finally:
        writer.join()
    assert texts == ["one", "two", "three", "later"]


def test_logs_without_a_log_name_the_container(runtime: Runtime, config: Config) -> None:
    """Kills Container.logs__mutmut_5: the id given to the reader (its LogsUnavailable) lost."""
    box = runtime.create("quiet", config)
    with pytest.raises(LogsUnavailable) as caught:
        box.logs()
    assert caught.value.container_id == "quiet"
    assert "container 'quiet' has no log" in str(caught.value)
