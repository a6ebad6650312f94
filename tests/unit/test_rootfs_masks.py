"""Masking binds the null device it checked, never what the image put at /dev/null
(CVE-2025-31133); the root-run attack is tests/security/test_cve_2025_31133.py."""

from __future__ import annotations

import os

import pytest

from corral.errors import ExecutorError
from corral.executor import rootfs
from tests.unit.syscall_double import MountCall, RecordingSyscalls


def _kernel(null_kind: str, rdev: int = os.makedev(1, 3)) -> RecordingSyscalls:
    kernel = RecordingSyscalls()
    kernel.add("/proc/kcore", "file")
    kernel.add("/proc/acpi", "dir")
    kernel.add("/dev/null", null_kind)
    kernel.rdevs["/dev/null"] = rdev
    return kernel


def test_a_masked_file_gets_a_bind_of_the_checked_null_device() -> None:
    kernel = _kernel("chr")
    rootfs.mask_paths(["/proc/kcore", "/proc/acpi"], kernel=kernel)
    assert kernel.mounts() == [
        MountCall("/dev/null", "/proc/kcore", None, ("MS_BIND",)),  # through the O_PATH fd
        MountCall("tmpfs", "/proc/acpi", "tmpfs", ("MS_RDONLY",)),
    ]
    assert kernel.fds == {}, "the /dev/null fd is closed"


@pytest.mark.parametrize(
    ("kind", "rdev"), [("symlink", 0), ("file", 0), ("dir", 0), ("chr", os.makedev(1, 5)), ("blk", os.makedev(1, 3))]
)
def test_anything_else_at_dev_null_is_refused_before_any_mask(kind: str, rdev: int) -> None:
    kernel = _kernel(kind, rdev)
    with pytest.raises(ExecutorError, match="/dev/null"):
        rootfs.mask_paths(["/proc/kcore"], kernel=kernel)
    assert kernel.mounts() == []
    assert kernel.fds == {}


def test_only_directories_masked_needs_no_dev_null() -> None:
    kernel = RecordingSyscalls()
    kernel.add("/proc/acpi", "dir")
    rootfs.mask_paths(["/proc/acpi"], kernel=kernel)
    assert kernel.mounts() == [MountCall("tmpfs", "/proc/acpi", "tmpfs", ("MS_RDONLY",))]
