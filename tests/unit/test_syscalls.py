"""The cffi syscall wrappers and the in-rootfs path resolution (no root needed)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from corral.executor import rootfs
from corral.executor import syscalls as sc


def test_errors_carry_errno_and_the_call(tmp_path: Path) -> None:
    with pytest.raises(OSError) as info:
        sc.umount2(str(tmp_path / "not-a-mount-point"))
    assert info.value.errno in (errno.EINVAL, errno.EPERM, errno.ENOENT)
    assert "umount2(" in str(info.value) and "not-a-mount-point" in str(info.value)


def test_capget_reads_this_process() -> None:
    effective, permitted, _ = sc.capget()
    assert effective & ~permitted == 0
    if os.geteuid() == 0:
        assert effective & (1 << 21)  # CAP_SYS_ADMIN


def test_symlinks_cannot_leave_the_rootfs(tmp_path: Path) -> None:
    """CVE-2021-30465's trick: a symlink in the rootfs pointing at the host's /."""
    root = tmp_path / "rootfs"
    (root / "inside").mkdir(parents=True)
    (root / "escape").symlink_to("/")
    (root / "dotdot").symlink_to("../../..")
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        for link in ("escape", "dotdot"):
            fd = rootfs.open_in_root(root_fd, link)
            try:
                assert os.path.samestat(os.fstat(fd), os.stat(root))  # resolved to the rootfs itself
            finally:
                os.close(fd)
        fd = rootfs.make_in_root(root_fd, "/escape/etc/made-here", directory=True)
        os.close(fd)
        assert (root / "etc" / "made-here").is_dir()  # created inside, not in the host's /etc
        assert not Path("/etc/made-here").exists()
    finally:
        os.close(root_fd)


def test_mount_options_are_split_into_flags_propagation_and_data() -> None:
    parsed = rootfs.parse_options(["nosuid", "ro", "rw", "rslave", "size=65536k", "mode=755", "noexec"])
    assert parsed.flags == sc.MS_NOSUID | sc.MS_NOEXEC
    assert parsed.propagation == (sc.MS_SLAVE | sc.MS_REC,)
    assert parsed.data == "size=65536k,mode=755"


def test_recursive_options_become_mount_setattr_attributes() -> None:
    parsed = rootfs.parse_options(["rbind", "rro", "rnosuid", "rsuid", "rnoexec", "rdev"])
    assert parsed.flags == sc.MS_BIND | sc.MS_REC
    assert parsed.attr_set == sc.MOUNT_ATTR_RDONLY | 0x8  # MOUNT_ATTR_NOEXEC
    assert parsed.attr_clr == 0x2 | 0x4  # MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV
    assert parsed.data is None
