"""Fast guards of two fixes the security suite found (its root-run attacks are in
tests/security/): masking binds the null device it checked, never what the image
put at /dev/null (CVE-2025-31133); sysctls are not written after pivot_root,
through a /proc the image or a volume may have replaced (CVE-2019-16884); a terminal is
bound over a /dev/console made new or checked, never through a symlink (CVE-2025-52565)."""

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
    the sysctls before it, through the host's procfs (`rootfs.write_sysctls`)."""
    kernel = RecordingSyscalls()
    kernel.add("/proc/sys/net/ipv4/ip_forward", "file")
    config = Config(process=Process(args=("sh",)), root=Root("/r"), sysctl={"net.ipv4.ip_forward": "1"})
    rootfs.finish(config, kernel=kernel)
    assert kernel.of("write_file") == []


@pytest.mark.parametrize("kind", [None, "file", "chr"])
def test_the_terminal_is_bound_over_a_new_or_plain_dev_console(kind: str | None) -> None:
    """CVE-2025-52565: /dev/console is made new (O_CREAT|O_EXCL|O_NOFOLLOW) or is the image's
    file or device; the slave's fd is bound over the target's fd."""
    kernel = RecordingSyscalls()
    kernel.add("/r/dev/pts/0", "chr")
    if kind is not None:
        kernel.add("/r/dev/console", kind)
    root = kernel.open("/r", os.O_PATH)
    slave = kernel.open("/r/dev/pts/0", os.O_RDWR)
    rootfs.mount_console(root, slave, kernel=kernel)
    assert kernel.mounts() == [MountCall("/r/dev/pts/0", "/r/dev/console", None, ("MS_BIND",))]
    assert set(kernel.fds) == {root, slave}, "/dev and /dev/console fds are closed"


@pytest.mark.parametrize("kind", ["symlink", "dir", "fifo"])
def test_anything_else_at_dev_console_is_refused_before_the_bind(kind: str) -> None:
    kernel = RecordingSyscalls()
    kernel.add("/r/dev/pts/0", "chr")
    kernel.add("/r/dev/console", kind)
    root = kernel.open("/r", os.O_PATH)
    slave = kernel.open("/r/dev/pts/0", os.O_RDWR)
    with pytest.raises(ExecutorError, match=r"/dev/console in the container is a .*CVE-2025-52565"):
        rootfs.mount_console(root, slave, kernel=kernel)
    assert kernel.mounts() == []
    assert set(kernel.fds) == {root, slave}
