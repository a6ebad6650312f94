"""The identity file create writes, and the sweep handing forgotten run dirs to the executor (no root).

The kernel side (what is killed, what never is) is tests/integration/test_forgotten.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from corral import Runtime
from corral.errors import ExecutorError, RunDirError
from corral.executor import identity
from corral.executor.interface import ForgottenRemoval
from corral.types import ProcessIdentity
from tests.fakes import FakeExecutor


def test_an_identity_reads_back_as_written(tmp_path: Path) -> None:
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    identity.write(
        str(run_dir), "c1", ProcessIdentity(10, 20), ProcessIdentity(11, 21),
        {"pids": str(cgroup), "freezer": str(tmp_path / "not-made")}, {"pids": (str(cgroup),)},
    )
    found = identity.read(str(run_dir))
    assert found == identity.Identity(
        container_id="c1",
        boot_id=identity.kernel_boot_id(),
        init=ProcessIdentity(10, 20),
        monitor=ProcessIdentity(11, 21),
        cgroup_paths={"pids": str(cgroup), "freezer": str(tmp_path / "not-made")},
        created_cgroups={"pids": (str(cgroup),)},
        cgroup_inodes={"pids": cgroup.stat().st_ino},  # a directory not made has no inode to prove it
    )
    assert [p.name for p in run_dir.iterdir()] == [identity.IDENTITY_FILE]  # the temporary file is gone


def test_an_identity_without_a_monitor_reads_back(tmp_path: Path) -> None:
    identity.write(str(tmp_path), "c1", ProcessIdentity(10, 20), None, {}, None)
    found = identity.read(str(tmp_path))
    assert found is not None and found.monitor is None and found.cgroup_paths == {}


def test_an_unwritable_run_dir_is_a_run_dir_error(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="cannot write .*identity.json"):
        identity.write(str(tmp_path / "missing"), "c1", ProcessIdentity(10, 20), None, {}, None)


def _good() -> dict[str, Any]:
    return {
        "format": identity.FORMAT, "id": "c1", "boot_id": "b", "init": [10, 20], "monitor": None,
        "cgroup_paths": {}, "created_cgroups": {}, "cgroup_inodes": {},
    }


@pytest.mark.parametrize(
    "change",
    [
        {"format": 2},
        {"init": [10]},
        {"init": [True, 20]},
        {"init": [10, 0]},
        {"init": ["10", 20]},
        {"monitor": [-1, 3]},
        {"id": 5},
        {"cgroup_paths": {"pids": 5}},
        {"created_cgroups": {"pids": "/a"}},
        {"created_cgroups": {"pids": [1]}},
        {"cgroup_inodes": {"pids": "7"}},
        {"cgroup_paths": []},
    ],
)
def test_an_identity_corral_did_not_write_whole_is_none(tmp_path: Path, change: dict[str, Any]) -> None:
    (tmp_path / identity.IDENTITY_FILE).write_text(json.dumps(_good() | change))
    assert identity.read(str(tmp_path)) is None


@pytest.mark.parametrize("text", ["", "{", "[]", "null", "\x00"])
def test_a_garbled_identity_is_none(tmp_path: Path, text: str) -> None:
    (tmp_path / identity.IDENTITY_FILE).write_text(text)
    assert identity.read(str(tmp_path)) is None


def test_no_identity_is_none(tmp_path: Path) -> None:
    assert identity.read(str(tmp_path)) is None
    (tmp_path / identity.IDENTITY_FILE).write_text(json.dumps(_good()))
    assert identity.read(str(tmp_path)) is not None  # the control: the same file, whole


class _Recording(FakeExecutor):
    def __init__(self, kernel_dir: Path) -> None:
        super().__init__(kernel_dir)
        self.forgotten: list[tuple[str, str, frozenset[str]]] = []
        self.result = ForgottenRemoval(True, "killed the init 7; run dir removed")

    def remove_forgotten(self, container_id: str, run_dir: str, spare: Any) -> ForgottenRemoval:
        self.forgotten.append((container_id, run_dir, frozenset(spare)))
        self._maybe_fail("remove_forgotten")
        return self.result


def test_the_sweep_hands_each_forgotten_run_dir_to_the_executor_sparing_live_cgroups(
    tmp_path: Path, boot_id_file: Path, config: Any
) -> None:
    executor = _Recording(tmp_path / "kernel")
    with Runtime(tmp_path / "root", executor, run_root=tmp_path / "run", boot_id_file=boot_id_file) as rt:
        live = rt.create("live", config)
        (rt.run_root / "gone").mkdir(parents=True)
        (rt.run_root / "not an id").mkdir()
        report = rt.recover()
        assert executor.forgotten == [("gone", str(rt.run_root / "gone"), frozenset(live.record.cgroup_paths.values()))]
        assert [(o.container_id, o.done, o.detail) for o in report.orphans] == [
            ("gone", "removed", "killed the init 7; run dir removed")
        ]
        assert report.changed

        executor.result = ForgottenRemoval(False, "the init 7 survived SIGKILL: run dir kept for the next recovery")
        report = rt.recover()
        assert [(o.done, o.detail) for o in report.orphans] == [("could not be removed", executor.result.detail)]
        assert not report.changed

        executor.fail_next("remove_forgotten", ExecutorError("no"))
        report = rt.recover()
        assert [(o.container_id, o.path, o.done) for o in report.orphans] == [
            ("gone", str(rt.run_root / "gone"), "could not be removed: no")
        ]
        live.destroy(force=True)
