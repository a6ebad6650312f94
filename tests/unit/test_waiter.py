"""The C waiter (corral-waiter) writes the exit file byte for byte as protocol.py does.

No root needed: a forked child execs the waiter after forking the process it is
to wait for, as the monitor does with the init.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from corral import Config, Runtime
from corral.executor import protocol, waiting
from corral.executor.protocol import Exited

pytestmark = pytest.mark.skipif(not os.access(waiting.WAITER, os.X_OK), reason="scripts/install builds the waiter")


def _run_waiter(tmp_path: Path, mode: str, child_exit: int | None, placeholder: bool) -> Path:
    """Fork W; W forks C (which exits with `child_exit`, or dies of SIGTERM for None) and execs the waiter."""
    path = tmp_path / "init.exit"
    if placeholder:
        protocol.create_exit_file(str(path))
    waiter = os.fork()
    if waiter == 0:  # pragma: no cover - the child process
        try:
            fd = protocol.open_exit_file(str(path)) if placeholder else None
            if fd is not None:
                protocol.hold_exit_file(fd)
                os.set_inheritable(fd, True)
            child = os.fork()
            if child == 0:
                if child_exit is None:
                    os.kill(os.getpid(), signal.SIGTERM)
                os._exit(child_exit or 0)
            number = str(-1 if fd is None else fd)
            if mode == "monitor":
                os.execv(waiting.WAITER, ["corral-mon:t", "monitor", str(child), number, str(path), "", "-1", "none", "0"])
            os.execv(waiting.WAITER, ["corral-keep:t", "keep", "999999999", number, str(path)])
        finally:
            os._exit(99)
    _, status = os.waitpid(waiter, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    return path


def _expected(tmp_path: Path, exited: Exited, placeholder: bool) -> bytes:
    path = tmp_path / "expected"
    if placeholder:
        protocol.create_exit_file(str(path))
        fd = os.open(path, os.O_WRONLY)
        try:
            protocol.overwrite_exit_file(fd, exited)
        finally:
            os.close(fd)
    else:
        protocol.write_exit_file(str(path), exited)
    return path.read_bytes()


@pytest.mark.parametrize("placeholder", [True, False])
@pytest.mark.parametrize(("child_exit", "exited"), [(7, Exited(7, None)), (None, Exited(128 + 15, 15))])
def test_the_monitor_waiter_writes_what_protocol_writes(
    tmp_path: Path, placeholder: bool, child_exit: int | None, exited: Exited
) -> None:
    path = _run_waiter(tmp_path, "monitor", child_exit, placeholder)
    assert path.read_bytes() == _expected(tmp_path, exited, placeholder)
    assert protocol.read_exit_record(str(path)) == exited


def test_the_keeper_waiter_writes_the_orphan_status_when_the_monitor_vanished(tmp_path: Path) -> None:
    """MONITOR_PID never reaped (not its child): the child it did reap counts as the orphaned init."""
    path = _run_waiter(tmp_path, "keep", 7, True)
    assert path.read_bytes() == _expected(tmp_path, Exited(7, None), True)


def _monitor_into_store(tmp_path: Path, runtime: Runtime, store: list[str], exit_code: int) -> Path:
    """Fork W; W forks C (exit `exit_code`), the record is made to name C, then W execs the monitor waiter with
    `store` and a recorder that only leaves a mark (the Python recorder the waiter falls back to)."""
    box = runtime.load("c")
    mark = tmp_path / "recorder-ran"
    path = tmp_path / "init.exit"
    protocol.create_exit_file(str(path))
    pids_r, pids_w = os.pipe()
    go_r, go_w = os.pipe()
    waiter = os.fork()
    if waiter == 0:  # pragma: no cover - the child process
        try:
            os.close(pids_r)
            os.close(go_w)
            child = os.fork()
            if child == 0:
                os.read(go_r, 1)
                os._exit(exit_code)
            os.write(pids_w, f"{child}\n".encode())
            fd = protocol.open_exit_file(str(path))
            assert fd is not None
            protocol.hold_exit_file(fd)
            os.set_inheritable(fd, True)
            os.read(go_r, 1)  # the record names the child now
            recorder = ["/bin/sh", "sh", "-c", f'echo "$@" >> {mark}', "sh"]
            os.execv(
                waiting.WAITER,
                ["corral-mon:t", "monitor", str(child), str(fd), str(path), "", "-1", "none", "0", *store, "--", *recorder],
            )
        finally:
            os._exit(99)
    os.close(pids_w)
    os.close(go_r)
    child = int(os.read(pids_r, 32))
    os.close(pids_r)
    record = box.record
    runtime.context.store.update(record.key, record.version, init_pid=child)
    os.write(go_w, b"gg")
    os.close(go_w)
    _, status = os.waitpid(waiter, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    return mark


def _store_argv(runtime: Runtime, root: str | None = None) -> list[str]:
    from corral.statemachine import locks

    record = runtime.load("c").record
    return ["--store", root or str(runtime.root), str(record.key), str(runtime.context.locks.path), str(locks.slot("c"))]


def test_the_monitor_waiter_writes_the_exited_row_itself(tmp_path: Path, runtime: Runtime, config: Config) -> None:
    """With --store, no Python recorder runs for the exit: its start was what wait() and destroy waited for."""
    runtime.create("c", config).start()
    mark = _monitor_into_store(tmp_path, runtime, _store_argv(runtime), 7)
    box = runtime.load("c")
    assert box.recorded_state.value == "stopped" and box.exit_status == 7
    rows = [e for e in box.history() if e.event == "exited"]
    assert len(rows) == 1 and dict(rows[0].detail) == {"exit_status": 7, "signal": None, "oom_killed": False}
    assert not mark.exists(), mark.read_text()


def test_the_monitor_waiter_falls_back_to_the_recorder_when_it_cannot_write(
    tmp_path: Path, runtime: Runtime, config: Config
) -> None:
    runtime.create("c", config).start()
    mark = _monitor_into_store(tmp_path, runtime, _store_argv(runtime, str(tmp_path / "no-store")), 7)
    assert mark.read_text().split() == ["exited", "0", "0", "7", "none"]
    assert runtime.load("c").recorded_state.value == "running"  # the mark wrote nothing


def test_the_exit_file_is_written_as_the_init_is_reaped_while_an_oom_recorder_still_runs(tmp_path: Path) -> None:
    """A controller may hold the container's lock while it waits for the exit file (teardown.exit_status,
    called by observe_exit), and an OOM recorder waits for that lock: the file must not wait for the
    recorder. (It did: 10 s later both gave up, and the status was recorded unknown.)"""
    path = tmp_path / "init.exit"
    protocol.create_exit_file(str(path))
    oom_file = tmp_path / "memory.oom_control"
    oom_file.write_text("oom_kill 0\n")
    started, release = tmp_path / "recorder-started", tmp_path / "release"
    os.mkfifo(release)
    # The recorder of `oom` rows stands in for one blocked on the container's lock: it waits on a fifo.
    script = f'if [ "$1" = oom ]; then : > {started}; read x < {release}; fi'
    recorder = ["/bin/sh", "sh", "-c", script, "sh"]
    waiter = os.fork()
    if waiter == 0:  # pragma: no cover - the child process
        try:
            fd = protocol.open_exit_file(str(path))
            assert fd is not None
            protocol.hold_exit_file(fd)
            os.set_inheritable(fd, True)
            wake = os.eventfd(0)
            os.set_inheritable(wake, True)
            child = os.fork()
            if child == 0:  # the init: OOM-killed once (as the kernel counts it), then it ends
                oom_file.write_text("oom_kill 1\n")
                os.eventfd_write(wake, 1)
                for _ in range(1000):
                    if started.exists():
                        break
                    time.sleep(0.01)
                os._exit(7)
            os.execv(waiting.WAITER, ["corral-mon:t", "monitor", str(child), str(fd), str(path), str(oom_file),
                                      str(wake), "eventfd", "0", "--", *recorder])
        finally:
            os._exit(99)
    try:
        deadline = time.monotonic() + 10
        while not (started.exists() and isinstance(protocol.read_exit_record(str(path)), Exited)):
            assert time.monotonic() < deadline, "the exit file waited for the OOM recorder"
            time.sleep(0.01)
        assert protocol.read_exit_record(str(path)) == Exited(7, None)  # while the recorder still waits
    finally:
        with open(release, "w") as fifo:  # let the recorder end, then the waiter
            fifo.write("go\n")
        _, status = os.waitpid(waiter, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
