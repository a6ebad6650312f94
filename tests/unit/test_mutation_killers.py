"""Tests that kill mutations which used to survive the whole suite (issue 10).

Each test names the mutation it kills. They run on the fake executor, without
root: the fake's kernel is changed directly where the real kernel would be.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from corral import Runtime, State
from corral.config import Config
from corral.executor.interface import ContainerFacts, ExitStatus
from corral.store.repository import Repository
from tests.fakes import FakeExecutor
from tests.unit.conftest import make_runtime


class _OOMCountingExecutor(FakeExecutor):
    """A cgroup whose OOM-kill counter is above 0: every SIGKILL looks like an OOM kill.

    That is what the real kernel reports when a child was OOM-killed earlier and
    the init then dies of SIGKILL: the statemachine must tell corral's own
    SIGKILL apart from the OOM killer's.
    """

    def exit_status(self, facts: ContainerFacts) -> ExitStatus:
        status = super().exit_status(facts)
        return ExitStatus(status.status, status.signal, oom_killed=status.signal == signal.SIGKILL)


def _oom_runtime(tmp_path: Path, boot_id_file: Path) -> Runtime:
    return Runtime(
        tmp_path / "root", _OOMCountingExecutor(tmp_path / "kernel"), run_root=tmp_path / "run", boot_id_file=boot_id_file
    )


def test_corrals_own_sigkill_is_not_an_oom_kill(tmp_path: Path, config: Config, boot_id_file: Path) -> None:
    """Kills: `exited` ignoring that corral itself sent SIGKILL (`_sigkilled_by_corral`)."""
    rt = _oom_runtime(tmp_path, boot_id_file)
    try:
        box = rt.create("c", config)
        box.start()
        box.signal(signal.SIGKILL)
        assert box.state is State.STOPPED
        assert box.exit_status == 128 + signal.SIGKILL
        assert box.oom_killed is False
        assert box.history()[-1].detail["oom_killed"] is False
    finally:
        rt.close()


def test_an_oom_kill_nobody_asked_for_is_recorded(tmp_path: Path, config: Config, boot_id_file: Path) -> None:
    """Kills: `exited` never recording an OOM kill (the counterpart of the test above)."""
    rt = _oom_runtime(tmp_path, boot_id_file)
    try:
        box = rt.create("c", config)
        box.start()
        box.signal(signal.SIGUSR1)  # a signal through corral, but not SIGKILL
        rt.context.executor.make_exit("c", 128 + signal.SIGKILL, signal.SIGKILL)  # type: ignore[attr-defined]
        assert box.state is State.STOPPED
        assert box.oom_killed is True
    finally:
        rt.close()


def test_an_init_from_another_boot_is_not_alive(runtime: Runtime, config: Config, boot_id_file: Path) -> None:
    """Kills: `observe_exit` ignoring the boot id.

    After a reboot a new process can have the recorded PID and even the same
    start time (both count from boot): the fake kernel keeps the recorded
    identity "alive" to show that only the boot id can tell.
    """
    box = runtime.create("c", config)
    box.start()
    boot_id_file.write_text("boot-2\n")  # the host restarted; the fake kernel was not told
    assert runtime.context.executor.alive(box._recipe.facts())  # type: ignore[attr-defined]
    assert box.state is State.STOPPED
    assert box.exit_status is None
    assert box.history()[-1].event == "exited"
    assert box.history()[-1].detail.get("exit") == "unknown"
    assert "another boot id" in box.history()[-1].detail.get("exit_unknown_reason", "")


def test_recovery_tells_a_reboot_by_the_boot_id(
    runtime: Runtime, config: Config, tmp_path: Path, kernel_dir: Path, boot_id_file: Path
) -> None:
    """Kills: recovery ignoring the boot id (seen in its report and the record, not a side effect)."""
    box = runtime.create("c", config)
    box.start()
    boot_id_file.write_text("boot-2\n")  # again the fake kernel still shows the recorded init alive
    other = make_runtime(tmp_path, kernel_dir, boot_id_file)
    try:
        assert other.last_recovery is not None
        actions = other.last_recovery.for_container("c")
        assert len(actions) == 1, other.last_recovery
        assert "host restarted since" in actions[0].found
        assert "stopped (exit status unknown)" in actions[0].done
        record = other.context.store.find("c")
        assert record is not None and record.state == "stopped" and record.exit_status is None
        assert record.boot_id == "boot-1"  # the record is about the old boot
    finally:
        other.close()


class _IntentWitness(FakeExecutor):
    """Reads the store through its own connection from inside each kernel-work call."""

    root: Path
    seen: list[tuple[str, str | None, str]]

    def _witness(self, operation: str, facts: ContainerFacts) -> None:
        store = Repository(self.root)
        try:
            record = store.find(facts.id)
            assert record is not None
            self.seen.append((operation, record.pending_event, record.state))
        finally:
            store.close()

    def start(self, facts: ContainerFacts) -> None:
        self._witness("start", facts)
        super().start(facts)

    def freeze(self, facts: ContainerFacts) -> None:
        self._witness("freeze", facts)
        super().freeze(facts)

    def thaw(self, facts: ContainerFacts) -> None:
        self._witness("thaw", facts)
        super().thaw(facts)

    def signal(self, facts: ContainerFacts, sig: int, all_processes: bool = False) -> None:
        self._witness("signal", facts)
        super().signal(facts, sig, all_processes)

    def exec(self, facts: ContainerFacts, *args: Any) -> Any:
        self._witness("exec", facts)
        return super().exec(facts, *args)

    def kill(self, facts: ContainerFacts, timeout: float) -> ExitStatus:
        self._witness("kill", facts)
        return super().kill(facts, timeout)


def test_the_intent_is_recorded_before_the_kernel_work(tmp_path: Path, config: Config, boot_id_file: Path) -> None:
    """Kills: doing the kernel work before (or without) recording the intent."""
    from corral import Process

    executor = _IntentWitness(tmp_path / "kernel")
    executor.root, executor.seen = tmp_path / "root", []
    rt = Runtime(tmp_path / "root", executor, run_root=tmp_path / "run", boot_id_file=boot_id_file)
    try:
        box = rt.create("c", config)
        box.start()
        box.pause()
        box.resume()
        box.exec(Process(args=("true",)))
        box.signal(signal.SIGUSR1)
        box.destroy(force=True)
    finally:
        rt.close()
    assert executor.seen == [
        ("start", "start", "created"),
        ("freeze", "pause", "running"),
        ("thaw", "resume", "paused"),
        ("exec", "exec", "running"),
        ("signal", "signal", "running"),
        ("kill", "destroy", "running"),
    ]
