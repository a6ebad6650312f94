"""benchmarks/timed_run.py: subprocess.run's contract, with a blocking wait and a killing timer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from timed_run import run  # noqa: E402


def test_it_returns_the_exit_status_and_what_was_captured() -> None:
    done = run([sys.executable, "-c", "import sys; print('out'); sys.exit(3)"], stdout=subprocess.PIPE, timeout=30)
    assert (done.returncode, done.stdout) == (3, b"out\n")


def test_a_child_that_outlives_the_timeout_is_killed_and_reported() -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        run(["sleep", "30"], stdout=subprocess.DEVNULL, timeout=0.2)


def test_it_waits_in_waitpid_not_by_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """subprocess's timeout polls with time.sleep: the reason this module exists."""
    slept: list[float] = []
    monkeypatch.setattr(subprocess.time, "sleep", lambda s: slept.append(s))  # type: ignore[attr-defined]
    assert run(["sleep", "0.05"], timeout=30).returncode == 0
    assert slept == []
