"""Fast guards of two fixes the security suite found (its root-run attacks are in
tests/security/): masking binds the null device it checked, never what the image
put at /dev/null (CVE-2025-31133); sysctls are not written after pivot_root,
through a /proc the image or a volume may have replaced (CVE-2019-16884), but
through the verified procfs; no mount covers anything of a procfs (CVE-2025-52881); a
terminal is bound over a /dev/console made new or checked, never through a symlink
(CVE-2025-52565)."""

from __future__ import annotations

import os

import pytest

from corral.config import Config, Mount, Process, Root
from corral.errors import ExecutorError, MountError
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


def test_sysctls_go_through_the_verified_procfs_not_a_path() -> None:
    """`write_sysctls` names the file from a procfs root (`procfs`), never a `/proc/...` path
    that the container's or a joined mount namespace resolves (CVE-2025-52881)."""
    kernel = RecordingSyscalls()
    rootfs.write_sysctls({"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}, kernel=kernel)
    assert [(c.name, *c.args) for c in kernel.calls] == [
        ("proc_write", "sys/net/ipv4/ip_forward", "1"),
        ("proc_write", "sys/kernel/shmmni", "1234"),
    ]


def _proc_kernel() -> tuple[RecordingSyscalls, int]:
    """A rootfs at /r with procfs mounted on /r/proc (the model's `proc` mount), and its fd."""
    kernel = RecordingSyscalls()
    for path in ("/r/proc/1/fd", "/r/proc/cpuinfo", "/r/data", "/host/volume"):
        kernel.add(path, "dir" if not path.endswith("cpuinfo") else "file")
    kernel.mount("proc", "/r/proc", "proc")
    kernel.calls.clear()
    return kernel, kernel.open("/r", os.O_PATH)


@pytest.mark.parametrize("destination", ["/proc/1/fd", "/proc", "/proc/cpuinfo/../1/fd"])
def test_nothing_but_proc_and_lxcfs_files_is_mounted_on_procfs(destination: str) -> None:
    """What the target *is* decides (fstatfs of the resolved fd), so an image symlink leading
    a volume onto procfs is refused as well (CVE-2025-52881)."""
    kernel, root_fd = _proc_kernel()
    config = Config(process=Process(args=("sh",)), root=Root("/r"))
    volume = Mount(destination, "bind", "/host/volume", ("rbind",))
    with pytest.raises(MountError, match="the target is on procfs"):
        rootfs.mount_one(root_fd, volume, config, {}, False, kernel=kernel)
    assert kernel.mounts() == []


@pytest.mark.parametrize(
    "mount",
    [Mount("/proc/cpuinfo", "bind", "/host/volume", ("bind",)), Mount("/proc", "proc", "proc"), Mount("/data", "bind", "/host/volume", ("rbind",))],
    ids=["lxcfs-file", "proc-again", "outside-proc"],
)
def test_proc_itself_lxcfs_files_and_other_targets_are_mounted(mount: Mount) -> None:
    kernel, root_fd = _proc_kernel()
    config = Config(process=Process(args=("sh",)), root=Root("/r"))
    rootfs.mount_one(root_fd, mount, config, {}, False, kernel=kernel)
    assert len(kernel.mounts()) == 1
