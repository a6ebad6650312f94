"""A recording stand-in for `corral.executor.kernel.Syscalls` (youki's test `Syscall`).

It keeps a small model of the filesystem (which paths exist and what they are,
which fds point where, the flags of each mount point, the process's root and
cwd) so that rootfs code takes the same branches it would on a kernel, and it
records every call with its arguments in readable form: mount targets reached
through `/proc/self/fd/N` are written as the path that fd was opened on, flags
as their `MS_*` / `PR_*` names. `fail_next` makes the next matching call raise
OSError with an errno, as the kernel would.

Paths are recorded as the process sees them when the call is made: host paths
before pivot_root, container paths after.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from corral.executor import syscalls as sc

MS_NAMES: dict[int, str] = {
    getattr(sc, name): name
    for name in (
        "MS_RDONLY", "MS_NOSUID", "MS_NODEV", "MS_NOEXEC", "MS_SYNCHRONOUS", "MS_REMOUNT",
        "MS_MANDLOCK", "MS_DIRSYNC", "MS_NOATIME", "MS_NODIRATIME", "MS_BIND", "MS_MOVE",
        "MS_REC", "MS_SILENT", "MS_UNBINDABLE", "MS_PRIVATE", "MS_SLAVE", "MS_SHARED",
        "MS_RELATIME", "MS_STRICTATIME", "MS_LAZYTIME",
    )
}
PR_NAMES: dict[int, str] = {
    getattr(sc, name): name
    for name in (
        "PR_SET_PDEATHSIG", "PR_SET_DUMPABLE", "PR_SET_KEEPCAPS", "PR_SET_NAME", "PR_SET_NO_NEW_PRIVS",
        "PR_CAPBSET_READ", "PR_CAPBSET_DROP", "PR_CAP_AMBIENT",
    )
}
AMBIENT_NAMES: dict[int, str] = {sc.PR_CAP_AMBIENT_RAISE: "RAISE", sc.PR_CAP_AMBIENT_CLEAR_ALL: "CLEAR_ALL"}

#: Per-mount flags that statvfs reports (and a remount of a locked mount must keep).
_MOUNT_FLAGS = sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_NOATIME | sc.MS_NODIRATIME | sc.MS_RELATIME
_PROPAGATION = sc.MS_SHARED | sc.MS_SLAVE | sc.MS_PRIVATE | sc.MS_UNBINDABLE
_MS_TO_ST = (
    (sc.MS_RDONLY, os.ST_RDONLY),
    (sc.MS_NOSUID, os.ST_NOSUID),
    (sc.MS_NODEV, os.ST_NODEV),
    (sc.MS_NOEXEC, os.ST_NOEXEC),
    (sc.MS_NOATIME, os.ST_NOATIME),
    (sc.MS_NODIRATIME, os.ST_NODIRATIME),
    (sc.MS_RELATIME, os.ST_RELATIME),
)
_KINDS = {"dir": stat.S_IFDIR, "file": stat.S_IFREG, "symlink": stat.S_IFLNK,
          "chr": stat.S_IFCHR, "blk": stat.S_IFBLK, "fifo": stat.S_IFIFO}


def flag_names(flags: int, names: dict[int, str] = MS_NAMES) -> tuple[str, ...]:
    """`flags` as sorted constant names; an unknown bit shows as hex so it cannot hide."""
    out = []
    for bit, name in names.items():
        if flags & bit:
            out.append(name)
            flags &= ~bit
    if flags:
        out.append(hex(flags))
    return tuple(sorted(out))


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class MountCall:
    """A mount as a test reads it: target is a path, flags are names."""

    source: str | None
    target: str
    fstype: str | None
    flags: tuple[str, ...]
    data: str | None = None


@dataclass
class _Failure:
    name: str
    errno: int
    match: Callable[[Call], bool] | None


@dataclass
class RecordingSyscalls:
    """Implements `Syscalls` on a model; `calls` is everything asked of it, in order."""

    paths: dict[str, str] = field(default_factory=lambda: {"/": "dir"})
    files: dict[str, str] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    mount_flags: dict[str, int] = field(default_factory=lambda: {"/": 0})
    root: str = "/"
    cwd: str = "/"
    fds: dict[int, str] = field(default_factory=dict)
    rdevs: dict[str, int] = field(default_factory=dict)  # device numbers that mknod made
    fstypes: dict[str, str] = field(default_factory=dict)  # mount point -> type of a new (not bind) mount
    _next_fd: int = 100
    _failures: list[_Failure] = field(default_factory=list)

    # -- set-up and inspection ------------------------------------------------

    def add(self, path: str, kind: str = "file") -> None:
        """Make `path` (a host path) exist, with its parent directories."""
        path = posixpath.normpath(path)
        parent = posixpath.dirname(path)
        if parent not in self.paths:
            self.add(parent, "dir")
        self.paths[path] = kind

    def fail_next(self, name: str, err: int, match: Callable[[Call], bool] | None = None) -> None:
        """The next call named `name` (and accepted by `match`, if given) raises OSError(err)."""
        self._failures.append(_Failure(name, err, match))

    def of(self, name: str) -> list[Call]:
        return [c for c in self.calls if c.name == name]

    def mounts(self) -> list[MountCall]:
        return [MountCall(*c.args) for c in self.calls if c.name == "mount"]

    def view(self, real: str) -> str:
        """A real (model) path as the process sees it, given its current root."""
        if self.root == "/":
            return real
        rel = posixpath.relpath(real, self.root)
        if rel.startswith(".."):
            return real  # outside the new root: only the detached old root is
        return "/" if rel == "." else "/" + rel

    # -- internals --------------------------------------------------------------

    def _real(self, path: str, dir_fd: int | None = None) -> str:
        if path.startswith("/proc/self/fd/"):
            return self._fd(int(path.rsplit("/", 1)[1]))
        if posixpath.isabs(path):
            return posixpath.normpath(posixpath.join(self.root, path.lstrip("/")))
        base = self.cwd if dir_fd is None else self._fd(dir_fd)
        return posixpath.normpath(posixpath.join(base, path))

    def _fd(self, fd: int) -> str:
        if fd not in self.fds:
            raise OSError(errno.EBADF, f"{os.strerror(errno.EBADF)}: fd {fd}")
        return self.fds[fd]

    def _record(self, name: str, *args: Any) -> None:
        call = Call(name, args)
        self.calls.append(call)
        for failure in self._failures:
            if failure.name == name and (failure.match is None or failure.match(call)):
                self._failures.remove(failure)
                raise OSError(failure.errno, f"{os.strerror(failure.errno)}: {name}{args!r}")

    def _new_fd(self, real: str) -> int:
        fd = self._next_fd
        self._next_fd += 1
        self.fds[fd] = real
        return fd

    def _exists(self, real: str) -> str:
        if real not in self.paths:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), self.view(real))
        return self.paths[real]

    def _create(self, real: str, kind: str) -> None:
        if real in self.paths:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), self.view(real))
        self._exists(posixpath.dirname(real))
        self.paths[real] = kind

    def _flags_at(self, real: str) -> int:
        while real not in self.mount_flags:
            real = posixpath.dirname(real)
        return self.mount_flags[real]

    def _stat(self, real: str) -> os.stat_result:
        fields = (_KINDS[self._exists(real)] | 0o755, 0, 0, 1, 0, 0, 0, 0, 0, 0)
        return os.stat_result(fields, {"st_rdev": self.rdevs.get(real, 0)})

    # -- Syscalls -----------------------------------------------------------------

    def mount(
        self, source: str | None, target: str, fstype: str | None = None, flags: int = 0, data: str | None = None
    ) -> None:
        real = self._real(target)
        shown = self.view(real) if target.startswith("/proc/self/fd/") else target
        shown_source = self.view(self._real(source)) if source and source.startswith("/proc/self/fd/") else source
        self._record("mount", shown_source, shown, fstype, flag_names(flags), data)
        self._exists(real)
        if flags & sc.MS_REMOUNT:
            self.mount_flags[real] = flags & _MOUNT_FLAGS
        elif flags & sc.MS_BIND:
            assert source is not None
            source_real = self._real(source)
            self._exists(source_real)
            self.mount_flags[real] = self._flags_at(source_real)
            self.fstypes[real] = "bind"
        elif not flags & _PROPAGATION:
            self.mount_flags[real] = flags & _MOUNT_FLAGS
            self.fstypes[real] = fstype or ""
        elif real not in self.mount_flags:  # a propagation change needs a mount point
            raise OSError(errno.EINVAL, f"{os.strerror(errno.EINVAL)}: {shown} is not a mount point")

    def umount2(self, target: str, flags: int = 0) -> None:
        self._record("umount2", target, flag_names(flags, {sc.MNT_DETACH: "MNT_DETACH", sc.MNT_FORCE: "MNT_FORCE"}))

    def pivot_root(self, new_root: str, put_old: str) -> None:
        self._record("pivot_root", new_root, put_old)
        self.root = self._real(new_root)

    def chdir(self, path: str) -> None:
        self._record("chdir", path)
        real = self._real(path)
        if self._exists(real) != "dir":
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        self.cwd = real

    def openat2(self, dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
        base = self._fd(dirfd)
        self._record("openat2", self.view(base), path)
        real = posixpath.normpath(posixpath.join(base, path))
        self._exists(real)
        return self._new_fd(real)

    def open(self, path: str, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        real = self._real(path, dir_fd)
        self._record("open", self.view(real))
        if flags & os.O_CREAT:
            try:
                self._create(real, "file")
            except FileExistsError:
                if flags & os.O_EXCL:
                    raise
        else:
            self._exists(real)
        return self._new_fd(real)

    def close(self, fd: int) -> None:
        self._fd(fd)
        del self.fds[fd]

    def mkdir(self, path: str, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        real = self._real(path, dir_fd)
        self._record("mkdir", self.view(real), oct(mode))
        self._create(real, "dir")

    def fstatfs_type(self, fd: int) -> int:
        """procfs's magic under a `proc` mount of the model, else tmpfs's (a query: not recorded)."""
        real = self._fd(fd)
        while real not in self.fstypes and real != "/":
            real = posixpath.dirname(real)
        return sc.PROC_SUPER_MAGIC if self.fstypes.get(real) == "proc" else 0x01021994

    def stat(self, path: str) -> os.stat_result:
        self._record("stat", path)
        return self._stat(self._real(path))

    def lstat(self, path: str) -> os.stat_result:
        self._record("lstat", path)
        return self._stat(self._real(path))

    def statvfs(self, path: str) -> os.statvfs_result:
        real = self._real(path)
        self._record("statvfs", self.view(real))
        flags = self._flags_at(real)
        f_flag = sum(st for ms, st in _MS_TO_ST if flags & ms)
        return os.statvfs_result((4096, 4096, 0, 0, 0, 0, 0, 0, f_flag, 255))

    def unlink(self, path: str, *, dir_fd: int | None = None) -> None:
        real = self._real(path, dir_fd)
        self._record("unlink", self.view(real))
        self._exists(real)
        del self.paths[real]

    def mknod(self, path: str, mode: int = 0o600, device: int = 0, *, dir_fd: int | None = None) -> None:
        real = self._real(path, dir_fd)
        kind = {stat.S_IFCHR: "chr", stat.S_IFBLK: "blk", stat.S_IFIFO: "fifo"}[stat.S_IFMT(mode)]
        self._record("mknod", self.view(real), kind, os.major(device), os.minor(device))
        self._create(real, kind)
        self.rdevs[real] = device

    def chmod(self, path: str, mode: int, *, dir_fd: int | None = None) -> None:
        real = self._real(path, dir_fd)
        self._record("chmod", self.view(real), oct(mode))
        self._exists(real)

    def chown(
        self, path: str, uid: int, gid: int, *, dir_fd: int | None = None, follow_symlinks: bool = True
    ) -> None:
        real = self._real(path, dir_fd)
        self._record("chown", self.view(real), uid, gid)
        self._exists(real)

    def symlink(self, src: str, dst: str, *, dir_fd: int | None = None) -> None:
        real = self._real(dst, dir_fd)
        self._record("symlink", src, self.view(real))
        self._create(real, "symlink")

    def read_file(self, path: str) -> str:
        self._record("read_file", path)
        if path not in self.files:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return self.files[path]

    def write_file(self, path: str, text: str) -> None:
        self._record("write_file", path, text)
        self.files[path] = text

    def proc_read(self, name: str) -> str:
        """A procfs file, named from the procfs root: modelled as `files['/proc/' + name]`."""
        self._record("proc_read", name)
        path = "/proc/" + name
        if path not in self.files:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return self.files[path]

    def proc_write(self, name: str, text: str) -> None:
        self._record("proc_write", name, text)
        self.files["/proc/" + name] = text

    def setrlimit(self, resource: int, limits: tuple[int, int]) -> None:
        self._record("setrlimit", resource, limits)

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        name = PR_NAMES.get(option, hex(option))
        if option == sc.PR_CAP_AMBIENT:
            self._record("prctl", name, AMBIENT_NAMES.get(arg2, arg2), *((arg3,) if arg3 else ()))
        else:
            self._record("prctl", name, arg2)
        return 0

    def capset(self, effective: int, permitted: int, inheritable: int, pid: int = 0) -> None:
        self._record("capset", effective, permitted, inheritable)

    def setgroups(self, groups: list[int]) -> None:
        self._record("setgroups", tuple(groups))

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        self._record("setresgid", rgid, egid, sgid)

    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        self._record("setresuid", ruid, euid, suid)

    def umask(self, mask: int) -> int:
        self._record("umask", oct(mask))
        return 0o022

    def mount_setattr(self, dfd: int, path: str, flags: int, attr_set: int, attr_clr: int = 0) -> None:
        self._record("mount_setattr", self._fd(dfd), path, hex(flags), hex(attr_set), hex(attr_clr))

    def move_mount(self, from_dfd: int, from_path: str, to_dfd: int, to_path: str, flags: int) -> None:
        self._record("move_mount", from_dfd, from_path, self._fd(to_dfd), to_path, hex(flags))
