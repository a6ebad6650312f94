"""The `parent` option (no root): how the command line chooses it, and what the library refuses.

The kernel side (who really is the init's parent) is in tests/integration/test_parent_caller.py
and, through containerd, tests/integration/test_containerd.py.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
from typing import Any

import pytest

from corral.cli.context import Context
from corral.cli.log import Log
from corral.cli.parser import build_parser
from corral.errors import ExecutorError, WaitTimeout
from corral.executor import proc, protocol
from corral.executor.linux import LinuxExecutor
from corral.executor.spawn import HandedOffExecHandle


def test_the_flag_is_unset_unless_given() -> None:
    parser = build_parser()
    assert parser.parse_args(["create", "c1"]).parent is None
    assert parser.parse_args(["--parent", "caller", "create", "c1"]).parent == "caller"


def test_an_unknown_parent_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from corral.cli.app import main

    assert main(["--parent", "shim", "state", "c1"]) == 1
    assert "--parent" in capsys.readouterr().err


def test_requests_default_to_the_monitor() -> None:
    assert protocol.CreateRequest._field_defaults["parent"] == protocol.PARENT_MONITOR
    assert protocol.ExecRequest._field_defaults["parent"] == protocol.PARENT_MONITOR


def test_the_executor_refuses_an_unknown_parent() -> None:
    with pytest.raises(ExecutorError, match="parent='shim'"):
        LinuxExecutor(parent="shim")


class _Recorder:
    """Stands for Runtime and LinuxExecutor: records how the command line built them."""

    made: list[tuple[str, dict[str, Any]]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.made.append((type(self).__name__, kwargs))


class _Runtime(_Recorder):
    pass


class _Executor(_Recorder):
    pass


@pytest.mark.parametrize(
    ("parent", "detached", "expected"),
    [
        ("caller", True, "caller"),  # create, run --detach, exec --detach under corral-runc
        ("caller", False, None),  # run or exec in the foreground wait for the status: the monitor
        ("monitor", True, None),  # corral's default
        (None, True, None),
    ],
)
def test_the_executor_is_chosen_from_the_flag_and_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, parent: str | None, detached: bool, expected: str | None
) -> None:
    import corral.executor.linux as linux
    import corral.statemachine.runtime as runtime

    _Recorder.made = []
    monkeypatch.setattr(runtime, "Runtime", _Runtime)
    monkeypatch.setattr(linux, "LinuxExecutor", _Executor)
    args = argparse.Namespace(root=str(tmp_path), parent=parent, container_id="c1")
    Context(args, Log(None, "text", False)).runtime(recover=False, detached=detached)
    executors = [kwargs for name, kwargs in _Recorder.made if name == "_Executor"]
    (runtime_kwargs,) = [kwargs for name, kwargs in _Recorder.made if name == "_Runtime"]
    if expected is None:
        assert executors == [] and runtime_kwargs["executor"] is None  # the library's default
    else:
        assert executors == [{"parent": expected}] and isinstance(runtime_kwargs["executor"], _Executor)


def test_a_handed_off_exec_waits_for_the_process_and_says_why_its_status_is_unknown() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        identity = proc.identity(child.pid)
        assert identity is not None
        handle = HandedOffExecHandle(identity.pid, identity.start_time)
        assert handle.poll() is None
        with pytest.raises(WaitTimeout):
            handle.wait(0.05)
        child.send_signal(signal.SIGKILL)
        status = handle.wait(10)
        assert status.status is None and "subreaper" in (status.reason or "")
    finally:
        child.kill()
        child.wait()
