"""Fast guards of two fixes the security suite found (its root-run attacks are in
tests/security/): masking binds the null device it checked, never what the image
put at /dev/null (CVE-2025-31133); sysctls are not written after pivot_root,
through a /proc the image or a volume may have replaced (CVE-2019-16884)."""

from __future__ import annotations

import os

import pytest

from corral.config import Config, Process, Root
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


def test_finish_writes_no_sysctl_through_the_container_s_proc() -> None:
    """After pivot_root `/proc/sys` may be a fake (a volume over /proc): the init writes
    the sysctls before it, through its verified procfs (`rootfs.write_sysctls`)."""
    kernel = RecordingSyscalls()
    kernel.add("/proc/sys/net/ipv4/ip_forward", "file")
    config = Config(process=Process(args=("sh",)), root=Root("/r"), sysctl={"net.ipv4.ip_forward": "1"})
    rootfs.finish(config, kernel=kernel)
    assert kernel.of("write_file") == [] and kernel.of("proc_write") == []


def test_sysctls_go_through_the_verified_procfs_not_a_path() -> None:
    """`write_sysctls` names the file from a procfs root (`procfs`), never a `/proc/...` path
    that the container's or a joined mount namespace resolves (CVE-2025-52881)."""
    kernel = RecordingSyscalls()
    rootfs.write_sysctls({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}, kernel=kernel)
    assert [(c.name, *c.args) for c in kernel.calls] == [
        ("proc_write", "sys/net/ipv4/ip_forward", "1"),
        ("proc_write", "sys/kernel/shmmni", "1234"),
    ]
