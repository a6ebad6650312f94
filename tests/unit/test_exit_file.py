"""The exit file's placeholder protocol (protocol.py): what the reader makes of each state of the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from corral.executor import protocol
from corral.executor.protocol import Exited, ExitUnknown


def test_the_placeholder_reads_as_pending_until_overwritten_in_place(tmp_path: Path) -> None:
    path = str(tmp_path / "init.exit")
    protocol.create_exit_file(path)
    assert os.path.getsize(path) == protocol.EXIT_FILE_SIZE
    assert protocol.read_exit_record(path) == ExitUnknown("the monitor has not recorded the init's exit", pending=True)
    assert protocol.read_exit_file(path) is None
    fd = protocol.open_exit_file(path)
    assert fd is not None
    try:
        inode = os.stat(path).st_ino
        protocol.overwrite_exit_file(fd, Exited(7, None))
    finally:
        os.close(fd)
    assert os.stat(path).st_ino == inode and os.path.getsize(path) == protocol.EXIT_FILE_SIZE  # in place
    assert json.loads(open(path).read()) == {"status": 7, "signal": None}  # the format readers know
    assert protocol.read_exit_record(path) == Exited(7, None)


def test_a_status_the_monitor_could_not_observe_keeps_its_reason_even_when_long(tmp_path: Path) -> None:
    path = str(tmp_path / "init.exit")
    protocol.create_exit_file(path)
    fd = protocol.open_exit_file(path)
    assert fd is not None
    try:
        protocol.overwrite_exit_file(fd, Exited(None, None), "x" * 5000)
    finally:
        os.close(fd)
    record = protocol.read_exit_record(path)
    assert isinstance(record, ExitUnknown) and not record.pending
    assert record.reason.startswith("xxx") and len(record.reason) < protocol.EXIT_FILE_SIZE


def test_a_missing_file_or_run_dir_is_named(tmp_path: Path) -> None:
    run_dir = tmp_path / "box"
    run_dir.mkdir()
    record = protocol.read_exit_record(str(run_dir / "init.exit"))
    assert isinstance(record, ExitUnknown) and "exit file" in record.reason and "missing" in record.reason
    run_dir.rmdir()
    record = protocol.read_exit_record(str(run_dir / "init.exit"))
    assert isinstance(record, ExitUnknown)
    assert record.reason.startswith(f"its run directory {run_dir} is gone")


def test_no_placeholder_means_no_fd_and_the_old_path_write(tmp_path: Path) -> None:
    path = str(tmp_path / "init.exit")
    assert protocol.open_exit_file(path) is None
    protocol.write_exit_file(path, Exited(137, 9))
    assert protocol.read_exit_record(path) == Exited(137, 9)


def test_a_reader_waits_while_a_writer_holds_the_file_and_not_after(tmp_path: Path) -> None:
    path = str(tmp_path / "init.exit")
    protocol.create_exit_file(path)
    fd = protocol.open_exit_file(path)
    assert fd is not None
    protocol.hold_exit_file(fd)
    try:
        assert protocol.wait_for_writers(path, 0.05) is False
    finally:
        os.close(fd)  # as a dying writer's fds are closed: the kernel drops the lock
    assert protocol.wait_for_writers(path, 0.05) is True
