"""The C waiter's journal writer (waiter_store.c) writes observed.py's rows, column for column.

Two stores made the same way (clock and fake PIDs pinned, as in
test_store_observed.py, which compares observed.py with the ORM's path): one
written through observed.py, one through `corral-waiter record`, must hold
identical containers and journal rows. What both writers must refuse or wait for is one
contract, tested against each in test_store_observed.py (its `writer` fixture).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from corral import Config, Runtime
from corral.executor import waiting
from corral.store import observed
from tests.unit.test_store_observed import _arguments, _c, _c_exited, _rows, _runtime, pinned  # noqa: F401 - a fixture

pytestmark = pytest.mark.skipif(not os.access(waiting.WAITER, os.X_OK), reason="scripts/install builds the waiter")

def _pair(tmp_path: Path, boot_id_file: Path) -> tuple[Runtime, Runtime]:
    return _runtime(tmp_path / "py", boot_id_file), _runtime(tmp_path / "c", boot_id_file)


CASES = {
    "exit code": (3, None, ""),
    "killed by a signal": (128 + signal.SIGTERM, signal.SIGTERM, ""),
    "oom-killed": (128 + signal.SIGKILL, signal.SIGKILL, ""),
    "unknown": (None, None, "the monitor could not reap the init (it was not its child)"),
    "unknown, no reason": (None, None, ""),
}


@pytest.mark.parametrize("case", CASES)
def test_exited_rows_are_observed_pys(case: str, tmp_path: Path, config: Config, boot_id_file: Path, pinned: None) -> None:
    status, sig, reason = CASES[case]
    py, c = _pair(tmp_path, boot_id_file)
    try:
        for rt in (py, c):
            rt.create("c", config).start()
        oom_killed = sig == signal.SIGKILL
        assert observed.exited(**_arguments(py, "c"), status=status, signal=sig, oom_killed=oom_killed, reason=reason or None)
        assert _c_exited(_arguments(c, "c"), status, sig, oom_killed, reason) == 0
        assert _rows(c.root) == _rows(py.root)
        assert _c_exited(_arguments(c, "c"), status, sig, oom_killed, reason) == 1, "an exit is recorded once"
        assert _rows(c.root) == _rows(py.root)
    finally:
        py.close()
        c.close()


@pytest.mark.parametrize(
    ("sent", "oom_killed"), [({"all": False, "signal": 9}, False), ({"signal": 15}, True), ({"signal": "9"}, True)]
)
def test_a_sigkill_sent_through_corral_is_not_an_oom_kill(
    sent: dict[str, Any], oom_killed: bool, tmp_path: Path, config: Config, boot_id_file: Path, pinned: None
) -> None:
    py, c = _pair(tmp_path, boot_id_file)
    try:
        for rt in (py, c):
            box = rt.create("c", config)
            box.start()
            store, record = box._recipe.context.store, box.record  # noqa: SLF001 - stage the journal row only
            store.update(record.key, record.version, journal=("signal", "running", "running", sent))
        assert observed.exited(**_arguments(py, "c"), status=137, signal=signal.SIGKILL, oom_killed=True)
        assert _c_exited(_arguments(c, "c"), 137, signal.SIGKILL, True) == 0
        assert _rows(c.root) == _rows(py.root)
        assert c.load("c").oom_killed is oom_killed
    finally:
        py.close()
        c.close()


def test_oom_rows_are_observed_pys(tmp_path: Path, config: Config, boot_id_file: Path, pinned: None) -> None:
    py, c = _pair(tmp_path, boot_id_file)
    try:
        for rt in (py, c):
            rt.create("c", config).start()
        for count, wrote in ((2, True), (2, False), (1, False), (3, True)):
            assert observed.oom(**_arguments(py, "c"), count=count) is wrote
            assert _c(_arguments(c, "c"), "oom", count) == (0 if wrote else 1), count
            assert _rows(c.root) == _rows(py.root)
        # then the exit, as the waiter writes both: `oom` first
        assert observed.exited(**_arguments(py, "c"), status=137, signal=signal.SIGKILL, oom_killed=True)
        assert _c_exited(_arguments(c, "c"), 137, signal.SIGKILL, True) == 0
        assert _rows(c.root) == _rows(py.root)
        assert [e.event for e in c.load("c").history()][-3:] == ["oom", "oom", "exited"]
        assert _c(_arguments(c, "c"), "oom", 4) == 1, "no row for a record that is not live"
    finally:
        py.close()
        c.close()


def test_the_clocks_timestamp_has_observed_pys_form(runtime: Runtime, config: Config) -> None:
    runtime.create("c", config).start()
    assert _c_exited(_arguments(runtime, "c"), 0, None, False, now="") == 0
    row = runtime.load("c").history()[-1]
    assert row.event == "exited" and abs((row.at - observed.utcnow()).total_seconds()) < 60
    assert runtime.load("c").record.updated_at == row.at


def test_it_rings_the_bell_after_writing(runtime: Runtime, config: Config) -> None:
    runtime.create("c", config).start()
    bell = runtime.root / "corral.events"
    if bell.exists():
        bell.unlink()
    assert _c_exited(_arguments(runtime, "c"), 0, None, False, now="") == 0
    assert bell.read_bytes() == b"\n"


def test_an_error_is_told_apart_from_nothing_to_write(tmp_path: Path, runtime: Runtime, config: Config) -> None:
    """2 (an error) sends the waiter to the Python recorder; 1 (nothing to write) does not."""
    runtime.create("c", config).start()
    arguments = {**_arguments(runtime, "c"), "root": str(tmp_path / "no-store")}
    assert _c_exited(arguments, 0, None, False) == 2
