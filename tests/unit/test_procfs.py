"""The verified procfs handle (corral/executor/procfs.py): what it opens and what it refuses.

Root makes a new procfs (fsopen/fsmount); without root the handle falls back
to the checked `/proc`. Either way nothing beneath it is reached through a
symlink, a `..` or another mount.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.errors import ExecutorError
from corral.executor import procfs


@pytest.fixture
def handle() -> Iterator[procfs.ProcFS]:
    h = procfs.ProcFS.open()
    yield h
    h.close()


def test_self_is_this_process_and_files_read(handle: procfs.ProcFS) -> None:
    status = handle.read("self/status")
    assert f"\nPid:\t{os.getpid()}\n" in status
    assert int(handle.read("sys/kernel/cap_last_cap")) > 30


@pytest.mark.parametrize(
    "name, error",
    [
        ("mounts", errno.ELOOP),  # a symlink to self/mounts
        ("self/cwd", errno.ELOOP),  # a magic link
        ("self/root/etc/passwd", errno.ELOOP),
        ("sys/../../etc/passwd", errno.EXDEV),  # `..` out of the procfs root
    ],
)
def test_symlinks_magic_links_and_dotdot_are_refused(handle: procfs.ProcFS, name: str, error: int) -> None:
    with pytest.raises(OSError) as info:
        handle.read(name)
    assert info.value.errno == error


def test_a_directory_that_is_not_procfs_is_refused(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(ExecutorError, match="not the root of a procfs"):
            procfs.ProcFS(fd)
    finally:
        os.close(fd)


def test_a_procfs_subdirectory_is_refused() -> None:
    fd = os.open("/proc/self", os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(ExecutorError, match="not the root of a procfs"):
            procfs.ProcFS(fd)
    finally:
        os.close(fd)


def test_reopen_opens_what_the_descriptor_names(handle: procfs.ProcFS, tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"")
    path_fd = os.open(target, os.O_PATH)
    try:
        fd = handle.reopen(path_fd, os.O_WRONLY)
        os.write(fd, b"through the handle")
        os.close(fd)
    finally:
        os.close(path_fd)
    assert target.read_bytes() == b"through the handle"


def test_a_handle_whose_descriptor_was_closed_is_replaced() -> None:
    first = procfs.acquire()
    os.close(first.fd)  # as an fd sweep after a fork would
    again = procfs.current()
    assert again is not first
    assert f"\nPid:\t{os.getpid()}\n" in again.read("self/status")


def test_without_the_new_mount_api_the_checked_proc_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fsmount(fstype: str) -> int:
        raise OSError(errno.ENOSYS, "fsopen")

    monkeypatch.setattr(procfs.sc, "fsmount_new", no_fsmount)
    handle = procfs.ProcFS.open()
    try:
        assert os.path.samestat(os.fstat(handle.fd), os.stat("/proc"))
        assert f"\nPid:\t{os.getpid()}\n" in handle.read("self/status")
    finally:
        handle.close()
