"""The exact mounts rootfs makes, in order, checked on a recording double (no root).

The order is part of the security of a container: the rootfs propagation
before any mount (so nothing leaks to the host), the remount that makes a bind
read-only right after the bind, masked and read-only paths after pivot_root
(so they cover the container's /proc, not the host's), the asked root
propagation after pivot_root (a shared `/` before it would reach the host), the
root made read-only last (everything else needs it writable).
"""

from __future__ import annotations

import errno
from typing import Any

import pytest

from corral.config import Config
from corral.errors import ExecutorError, MountError
from corral.executor import rootfs
from corral.executor import syscalls as sc
from tests.unit.syscall_double import MountCall, RecordingSyscalls

ROOT = "/bundle/rootfs"


def make_config(**linux: Any) -> Config:
    return Config.from_dict(
        {
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs", "readonly": True},
            "process": {"args": ["sh"], "cwd": "/work"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {
                    "destination": "/dev",
                    "type": "tmpfs",
                    "source": "tmpfs",
                    "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
                },
                {
                    "destination": "/dev/pts",
                    "type": "devpts",
                    "source": "devpts",
                    "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
                },
                {"destination": "/data", "type": "bind", "source": "/host/data", "options": ["rbind", "ro", "nosuid", "rslave"]},
                {"destination": "/etc/resolv.conf", "type": "bind", "source": "/host/resolv.conf", "options": ["bind", "ro"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "size=1m"]},
            ],
            "linux": {
                "namespaces": [{"type": "mount"}],
                "rootfsPropagation": "rslave",
                "maskedPaths": ["/proc/kcore", "/proc/acpi", "/proc/missing"],
                "readonlyPaths": ["/proc/sys", "/proc/absent"],
                **linux,
            },
        },
        bundle="/bundle",
    )


def make_kernel() -> RecordingSyscalls:
    kernel = RecordingSyscalls()
    kernel.add(f"{ROOT}/etc", "dir")
    kernel.add("/host/data", "dir")
    kernel.add("/host/resolv.conf", "file")
    return kernel


def after_proc_mounted(kernel: RecordingSyscalls) -> None:
    """What the proc mount shows in the container (the model has no procfs)."""
    kernel.add(f"{ROOT}/proc/kcore", "file")
    kernel.add(f"{ROOT}/proc/acpi", "dir")
    kernel.add(f"{ROOT}/proc/sys", "dir")


def run_all(config: Config, kernel: RecordingSyscalls, **prepare: Any) -> None:
    rootfs.prepare(config, {}, in_user_namespace=False, new_cgroupns=False, kernel=kernel, **prepare)
    after_proc_mounted(kernel)
    rootfs.pivot(config.root.path, kernel=kernel)
    rootfs.finish(config, kernel=kernel)


PREPARE_MOUNTS = [
    MountCall(None, "/", None, ("MS_REC", "MS_SLAVE")),
    MountCall(ROOT, ROOT, None, ("MS_BIND", "MS_REC")),
    # The rootfs's parent mount made private: /bundle is no mount point (EINVAL), / is.
    MountCall(None, "/bundle", None, ("MS_PRIVATE",)),
    MountCall(None, "/", None, ("MS_PRIVATE",)),
    MountCall("proc", f"{ROOT}/proc", "proc", ()),
    MountCall("tmpfs", f"{ROOT}/dev", "tmpfs", ("MS_NOSUID", "MS_STRICTATIME"), "mode=755,size=65536k"),
    MountCall("devpts", f"{ROOT}/dev/pts", "devpts", ("MS_NOEXEC", "MS_NOSUID"), "newinstance,ptmxmode=0666,mode=0620"),
    # rbind,ro,nosuid,rslave: the bind, then a remount for ro/nosuid, then the propagation.
    MountCall("/host/data", f"{ROOT}/data", None, ("MS_BIND", "MS_REC")),
    MountCall(None, f"{ROOT}/data", None, ("MS_BIND", "MS_NOSUID", "MS_RDONLY", "MS_REMOUNT")),
    MountCall(None, f"{ROOT}/data", None, ("MS_REC", "MS_SLAVE")),
    MountCall("/host/resolv.conf", f"{ROOT}/etc/resolv.conf", None, ("MS_BIND",)),
    MountCall(None, f"{ROOT}/etc/resolv.conf", None, ("MS_BIND", "MS_RDONLY", "MS_REMOUNT")),
    MountCall("tmpfs", f"{ROOT}/tmp", "tmpfs", ("MS_NODEV", "MS_NOSUID"), "size=1m"),
]

PIVOT_CALLS = [
    ("chdir", (ROOT,)),
    ("pivot_root", (".", ".")),
    ("mount", (None, ".", None, ("MS_REC", "MS_SLAVE"), None)),
    ("umount2", (".", ("MNT_DETACH",))),
    ("chdir", ("/",)),
]

FINISH_MOUNTS = [
    MountCall("/proc/sys", "/proc/sys", None, ("MS_BIND", "MS_REC")),
    MountCall(None, "/proc/sys", None, ("MS_BIND", "MS_NODEV", "MS_NOEXEC", "MS_NOSUID", "MS_RDONLY", "MS_REC", "MS_REMOUNT")),
    MountCall("/proc/absent", "/proc/absent", None, ("MS_BIND", "MS_REC")),  # ENOENT: skipped
    MountCall("/dev/null", "/proc/kcore", None, ("MS_BIND",)),  # a masked file
    MountCall("tmpfs", "/proc/acpi", "tmpfs", ("MS_RDONLY",)),  # a masked directory
    MountCall(None, "/", None, ("MS_REC", "MS_SLAVE")),  # rootfsPropagation, on the container's /
    MountCall(None, "/", None, ("MS_BIND", "MS_RDONLY", "MS_REMOUNT")),  # root.readonly, last
]


def test_the_whole_sequence_of_mounts_and_the_pivot() -> None:
    kernel = make_kernel()
    run_all(make_config(), kernel)
    assert kernel.mounts() == PREPARE_MOUNTS + [MountCall(None, ".", None, ("MS_REC", "MS_SLAVE"))] + FINISH_MOUNTS
    pivot = [(c.name, c.args) for c in kernel.calls if c.name in ("chdir", "pivot_root", "umount2")]
    assert pivot == [PIVOT_CALLS[0], PIVOT_CALLS[1], PIVOT_CALLS[3], PIVOT_CALLS[4]]
    # The pivot comes after the last config mount and before the first read-only path.
    names = [c.name for c in kernel.calls]
    first_finish = next(i for i, c in enumerate(kernel.calls) if c.name == "mount" and c.args[1] == "/proc/sys")
    assert names.index("pivot_root") < first_finish
    assert kernel.fds == {}, "every fd rootfs opened is closed"


def test_pivot_is_chdir_pivot_slave_detach_chdir() -> None:
    kernel = make_kernel()
    kernel.mount_flags[ROOT] = 0  # prepare's bind made it a mount point
    rootfs.pivot(ROOT, kernel=kernel)
    assert [(c.name, c.args) for c in kernel.calls] == PIVOT_CALLS


def test_mount_targets_are_reached_through_fds_opened_in_the_root() -> None:
    kernel = make_kernel()
    rootfs.prepare(make_config(), {}, in_user_namespace=False, new_cgroupns=False, kernel=kernel)
    raw = [c for c in kernel.calls if c.name == "openat2"]
    assert raw and all(c.args[0] == ROOT for c in raw), "no lookup starts outside the rootfs"
    assert kernel.paths[f"{ROOT}/etc/resolv.conf"] == "file"  # a file bind gets a file to cover
    assert kernel.paths[f"{ROOT}/data"] == "dir"
    assert kernel.paths[f"{ROOT}/work"] == "dir"  # the process's cwd is made


PARENT_PRIVATE = [MountCall(None, "/bundle", None, ("MS_PRIVATE",)), MountCall(None, "/", None, ("MS_PRIVATE",))]


@pytest.mark.parametrize(
    ("propagation", "first", "last"),
    [
        # asked for -> `/` before any mount (never shared) -> the container's `/` after pivot_root
        (None, ("MS_PRIVATE", "MS_REC"), None),
        ("private", ("MS_PRIVATE", "MS_REC"), ("MS_PRIVATE",)),
        ("rprivate", ("MS_PRIVATE", "MS_REC"), ("MS_PRIVATE", "MS_REC")),
        ("slave", ("MS_REC", "MS_SLAVE"), ("MS_SLAVE",)),
        ("rslave", ("MS_REC", "MS_SLAVE"), ("MS_REC", "MS_SLAVE")),
        ("shared", ("MS_REC", "MS_SLAVE"), ("MS_SHARED",)),
        ("rshared", ("MS_REC", "MS_SLAVE"), ("MS_REC", "MS_SHARED")),
        ("unbindable", ("MS_REC", "MS_SLAVE"), ("MS_UNBINDABLE",)),
        ("runbindable", ("MS_REC", "MS_SLAVE"), ("MS_REC", "MS_UNBINDABLE")),
    ],
)
def test_each_rootfs_propagation(propagation: str | None, first: tuple[str, ...], last: tuple[str, ...] | None) -> None:
    """`/` is cut off from the host (rslave/rprivate) by the very first call, the rootfs is
    bound, its parent made private, and only after pivot_root, the masked and read-only
    paths' binds (a runbindable root refuses binds) the asked propagation goes on `/`."""
    config = make_config(rootfsPropagation=propagation)
    kernel = make_kernel()
    run_all(config, kernel)
    mounts = kernel.mounts()
    assert kernel.calls[0].name == "mount"
    assert mounts[:4] == [MountCall(None, "/", None, first), MountCall(ROOT, ROOT, None, ("MS_BIND", "MS_REC"))] + PARENT_PRIVATE
    assert all("MS_SHARED" not in m.flags and "MS_UNBINDABLE" not in m.flags for m in mounts[: -2]), "nothing shared before the end"
    pivot_at = next(i for i, c in enumerate(kernel.calls) if c.name == "pivot_root")
    after_pivot = [MountCall(*c.args) for c in kernel.calls[pivot_at:] if c.name == "mount"]
    tail = [MountCall(None, "/", None, last)] if last is not None else []
    assert after_pivot[-1 - len(tail) :] == tail + [MountCall(None, "/", None, ("MS_BIND", "MS_RDONLY", "MS_REMOUNT"))]
    assert after_pivot[-2 - len(tail)] == MountCall("tmpfs", "/proc/acpi", "tmpfs", ("MS_RDONLY",)), "after the masked paths"


def test_the_parent_walk_stops_at_the_first_mount_point() -> None:
    kernel = make_kernel()
    kernel.mount_flags["/bundle"] = 0  # the bundle is a mount point of its own
    rootfs.prepare(make_config(), {}, in_user_namespace=False, new_cgroupns=False, kernel=kernel)
    assert kernel.mounts()[2:4] == [
        MountCall(None, "/bundle", None, ("MS_PRIVATE",)),
        MountCall("proc", f"{ROOT}/proc", "proc", ()),
    ]


def test_a_failed_parent_private_names_the_parent_and_stops() -> None:
    kernel = make_kernel()
    kernel.fail_next("mount", errno.EPERM, lambda call: call.args[1] == "/" and call.args[3] == ("MS_PRIVATE",))
    with pytest.raises(MountError, match="making private the rootfs's parent mount '/'") as info:
        rootfs.prepare(make_config(), {}, in_user_namespace=False, new_cgroupns=False, kernel=kernel)
    assert info.value.errno == errno.EPERM
    assert kernel.calls[-1].name == "mount" and kernel.fds == {}


def test_a_failed_root_propagation_names_it_and_leaves_the_root_writable() -> None:
    config = make_config(rootfsPropagation="rshared")
    kernel = make_kernel()
    rootfs.prepare(config, {}, in_user_namespace=False, new_cgroupns=False, kernel=kernel)
    after_proc_mounted(kernel)
    rootfs.pivot(config.root.path, kernel=kernel)
    kernel.fail_next("mount", errno.EINVAL, lambda call: call.args[3] == ("MS_REC", "MS_SHARED"))
    with pytest.raises(MountError, match="rootfsPropagation rshared of '/'"):
        rootfs.finish(config, kernel=kernel)
    assert MountCall(None, "/", None, ("MS_BIND", "MS_RDONLY", "MS_REMOUNT")) not in kernel.mounts()


def test_a_remount_keeps_the_flags_a_user_namespace_locks() -> None:
    kernel = make_kernel()
    kernel.mount_flags["/host/data"] = sc.MS_NODEV | sc.MS_NOEXEC
    rootfs.prepare(make_config(), {}, in_user_namespace=False, new_cgroupns=False, kernel=kernel)
    assert MountCall(
        None, f"{ROOT}/data", None, ("MS_BIND", "MS_NODEV", "MS_NOEXEC", "MS_NOSUID", "MS_RDONLY", "MS_REMOUNT")
    ) in kernel.mounts()


def test_devices_are_made_with_mknod_or_bound_in_a_user_namespace() -> None:
    kernel = make_kernel()
    rootfs.prepare(make_config(), {}, in_user_namespace=False, new_cgroupns=False, kernel=kernel)
    assert [c.args for c in kernel.of("mknod")][:2] == [(f"{ROOT}/dev/null", "chr", 1, 3), (f"{ROOT}/dev/zero", "chr", 1, 5)]
    symlinks = [c.args for c in kernel.of("symlink")]
    assert ("pts/ptmx", f"{ROOT}/dev/ptmx") in symlinks  # /dev/pts is mounted

    kernel = make_kernel()
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        kernel.add(f"/dev/{name}", "chr")
    rootfs.prepare(make_config(), {}, in_user_namespace=True, new_cgroupns=False, kernel=kernel)
    assert kernel.of("mknod") == []
    assert MountCall("/dev/null", f"{ROOT}/dev/null", None, ("MS_BIND",)) in kernel.mounts()


def test_cgroup_v1_mount_is_a_tmpfs_with_one_read_only_bind_per_hierarchy() -> None:
    config = Config.from_dict(
        {
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/"},
            "mounts": [{"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "ro"]}],
        },
        bundle="/bundle",
    )
    kernel = RecordingSyscalls()
    kernel.add(ROOT, "dir")
    kernel.add("/cg/cpu/c1", "dir")
    kernel.add("/cg/memory/c1", "dir")
    rootfs.prepare(config, {"memory": "/cg/memory/c1", "cpu": "/cg/cpu/c1"}, in_user_namespace=False, new_cgroupns=False, kernel=kernel)
    cg = f"{ROOT}/sys/fs/cgroup"
    assert kernel.mounts()[2 + len(PARENT_PRIVATE) :] == [
        MountCall("tmpfs", cg, "tmpfs", ("MS_NOSUID",), "mode=755"),
        MountCall("/cg/cpu/c1", f"{cg}/cpu", None, ("MS_BIND",)),
        MountCall(None, f"{cg}/cpu", None, ("MS_BIND", "MS_NOSUID", "MS_RDONLY", "MS_REMOUNT")),
        MountCall("/cg/memory/c1", f"{cg}/memory", None, ("MS_BIND",)),
        MountCall(None, f"{cg}/memory", None, ("MS_BIND", "MS_NOSUID", "MS_RDONLY", "MS_REMOUNT")),
        MountCall(None, cg, None, ("MS_BIND", "MS_NOSUID", "MS_RDONLY", "MS_REMOUNT")),
    ]


def _target_is(target: str):  # type: ignore[no-untyped-def]
    return lambda call: call.args[1] == target


@pytest.mark.parametrize(
    ("target", "nth", "destination", "message"),
    [
        (f"{ROOT}/proc", 0, "/proc", "mount '/proc'"),
        (f"{ROOT}/data", 0, "/data", "mount '/data'"),
        (f"{ROOT}/data", 1, "/data", "mount '/data'"),  # its read-only remount
        (f"{ROOT}/data", 2, "/data", "mount '/data'"),  # its propagation
        (f"{ROOT}/etc/resolv.conf", 1, "/etc/resolv.conf", "mount '/etc/resolv.conf'"),
        ("/", 0, "/", "rootfs propagation of '/'"),
        (ROOT, 0, ROOT, f"binding the rootfs '{ROOT}'"),
    ],
)
def test_a_failed_mount_in_the_middle_names_it_and_stops(target: str, nth: int, destination: str, message: str) -> None:
    kernel = make_kernel()
    seen = {"n": 0}

    def nth_on_target(call: Any) -> bool:
        if call.args[1] != target:
            return False
        seen["n"] += 1
        return seen["n"] == nth + 1

    kernel.fail_next("mount", errno.EPERM, nth_on_target)
    with pytest.raises(MountError) as info:
        rootfs.prepare(make_config(), {}, in_user_namespace=False, new_cgroupns=False, kernel=kernel)
    error = info.value
    assert isinstance(error, ExecutorError)
    assert error.destination == destination and error.errno == errno.EPERM
    assert str(error).startswith(message) and "Operation not permitted" in str(error)
    assert isinstance(error.__cause__, OSError)
    assert kernel.calls[-1].name == "mount" and kernel.calls[-1].args[1] == target, "nothing after the failure"
    assert kernel.fds == {}, "the failure leaks no fd"


def test_a_missing_bind_source_names_the_mount_and_the_source() -> None:
    kernel = make_kernel()
    del kernel.paths["/host/data"]
    with pytest.raises(MountError, match=r"mount '/data': .*bind source '/host/data'") as info:
        rootfs.prepare(make_config(), {}, in_user_namespace=False, new_cgroupns=False, kernel=kernel)
    assert info.value.errno == errno.ENOENT
    assert f"{ROOT}/data" not in kernel.paths, "nothing is created for a mount that cannot be made"


@pytest.mark.parametrize(
    ("call", "target", "message"),
    [
        ("mount", "/proc/kcore", "masking '/proc/kcore'"),
        ("mount", "/proc/acpi", "masking '/proc/acpi'"),
        ("mount", "/proc/sys", "read-only path '/proc/sys'"),
    ],
)
def test_a_failed_mount_after_the_pivot_names_the_path(call: str, target: str, message: str) -> None:
    config = make_config()
    kernel = make_kernel()
    rootfs.prepare(config, {}, in_user_namespace=False, new_cgroupns=False, kernel=kernel)
    after_proc_mounted(kernel)
    rootfs.pivot(config.root.path, kernel=kernel)
    kernel.fail_next(call, errno.EACCES, _target_is(target))
    with pytest.raises(MountError) as info:
        rootfs.finish(config, kernel=kernel)
    assert str(info.value).startswith(message) and info.value.errno == errno.EACCES
    assert MountCall(None, "/", None, ("MS_BIND", "MS_RDONLY", "MS_REMOUNT")) not in kernel.mounts()


def test_a_failed_pivot_root_names_the_rootfs() -> None:
    kernel = make_kernel()
    kernel.fail_next("pivot_root", errno.EINVAL)
    with pytest.raises(MountError, match=f"pivot_root into '{ROOT}'"):
        rootfs.pivot(ROOT, kernel=kernel)
    assert kernel.of("umount2") == []


def test_the_default_kernel_is_linux() -> None:
    """init.py calls rootfs without a kernel: the default must be the real one."""
    from corral.executor.kernel import LINUX, LinuxSyscalls

    assert isinstance(LINUX, LinuxSyscalls)
    assert LINUX.mount is sc.mount and LINUX.pivot_root is sc.pivot_root
    for function in (rootfs.prepare, rootfs.pivot, rootfs.finish, rootfs.mount_one, rootfs.remount):
        assert function.__kwdefaults__["kernel"] is LINUX
