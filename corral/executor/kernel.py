"""The kernel calls the rootfs and credentials code makes, as one replaceable object.

Why a seam: the order and flags of twenty mounts, and the order of the
credential calls (groups before gid before uid, bounding set before capset),
are security properties; as direct calls they could only be checked as root on
a real kernel, after the fact. Passing a `Syscalls` object (youki's `Syscall`
trait) lets a unit test record the sequence and fail any call in it.

`LinuxSyscalls` is today's path: its methods are the `os`, `resource` and cffi
functions themselves (static attributes, no wrapper frame), so production pays
one attribute lookup per call, as it did through the `syscalls` module.
"""

from __future__ import annotations

import os
import resource
from typing import Protocol

from corral.executor import procfs
from corral.executor import syscalls as sc


class Syscalls(Protocol):
    """Exactly the calls `rootfs` and `credentials` make; nothing else goes to the kernel there."""

    # Mounts and the root switch.
    def mount(
        self, source: str | None, target: str, fstype: str | None = None, flags: int = 0, data: str | None = None
    ) -> None: ...

    def umount2(self, target: str, flags: int = 0) -> None: ...

    def pivot_root(self, new_root: str, put_old: str) -> None: ...

    def chdir(self, path: str) -> None: ...

    # Paths and file descriptors (mount targets are reached through fds).
    def openat2(self, dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int: ...

    def open(self, path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int: ...

    def close(self, fd: int) -> None: ...

    def mkdir(self, path: str, mode: int = 0o777, *, dir_fd: int | None = None) -> None: ...

    def stat(self, path: str) -> os.stat_result: ...

    def lstat(self, path: str) -> os.stat_result: ...

    def statvfs(self, path: str) -> os.statvfs_result: ...

    def fstatfs_type(self, fd: int) -> int: ...

    def unlink(self, path: str, *, dir_fd: int | None = None) -> None: ...

    def mknod(self, path: str, mode: int = 0o600, device: int = 0, *, dir_fd: int | None = None) -> None: ...

    def chmod(self, path: str, mode: int, *, dir_fd: int | None = None) -> None: ...

    def chown(
        self, path: str, uid: int, gid: int, *, dir_fd: int | None = None, follow_symlinks: bool = True
    ) -> None: ...

    def symlink(self, src: str, dst: str, *, dir_fd: int | None = None) -> None: ...

    def read_file(self, path: str) -> str: ...

    def write_file(self, path: str, text: str) -> None: ...

    # procfs files, named relative to a procfs root ('self/oom_score_adj', 'sys/...'):
    # through the procfs the process verified (`procfs`), never a path in the container.
    def proc_read(self, name: str) -> str: ...

    def proc_write(self, name: str, text: str) -> None: ...

    # Credentials.
    def setrlimit(self, resource: int, limits: tuple[int, int]) -> None: ...

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int: ...

    def capset(self, effective: int, permitted: int, inheritable: int, pid: int = 0) -> None: ...

    def setgroups(self, groups: list[int]) -> None: ...

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None: ...

    def setresuid(self, ruid: int, euid: int, suid: int) -> None: ...

    def umask(self, mask: int) -> int: ...

    def mount_setattr(self, dfd: int, path: str, flags: int, attr_set: int, attr_clr: int = 0) -> None: ...

    def move_mount(self, from_dfd: int, from_path: str, to_dfd: int, to_path: str, flags: int) -> None: ...


def _read_file(path: str) -> str:
    with open(path) as f:
        return f.read()


def _write_file(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


class LinuxSyscalls:
    """The real kernel: each method is the function rootfs and credentials called before the seam."""

    mount = staticmethod(sc.mount)
    umount2 = staticmethod(sc.umount2)
    pivot_root = staticmethod(sc.pivot_root)
    chdir = staticmethod(os.chdir)
    openat2 = staticmethod(sc.openat2)
    open = staticmethod(os.open)
    close = staticmethod(os.close)
    mkdir = staticmethod(os.mkdir)
    stat = staticmethod(os.stat)
    lstat = staticmethod(os.lstat)
    statvfs = staticmethod(os.statvfs)
    fstatfs_type = staticmethod(sc.fstatfs_type)
    unlink = staticmethod(os.unlink)
    mknod = staticmethod(os.mknod)
    chmod = staticmethod(os.chmod)
    chown = staticmethod(os.chown)
    symlink = staticmethod(os.symlink)
    read_file = staticmethod(_read_file)
    write_file = staticmethod(_write_file)
    proc_read = staticmethod(procfs.read)
    proc_write = staticmethod(procfs.write)
    setrlimit = staticmethod(resource.setrlimit)
    prctl = staticmethod(sc.prctl)
    capset = staticmethod(sc.capset)
    setgroups = staticmethod(os.setgroups)
    setresgid = staticmethod(os.setresgid)
    setresuid = staticmethod(os.setresuid)
    umask = staticmethod(os.umask)
    mount_setattr = staticmethod(sc.mount_setattr)
    move_mount = staticmethod(sc.move_mount)


#: The default every rootfs and credentials function uses when not given one.
LINUX: Syscalls = LinuxSyscalls()
