"""Every procfs file corral writes (or trusts) during set-up, through a procfs it verified.

Why: runc and youki wrote LSM labels, sysctls and their own `/proc/self/...`
files by path (CVE-2019-16884, CVE-2025-52881, CVE-2025-62596). A path in the
container's `/proc` is whatever the image, a volume or a racing container put
there: a volume over `/proc`, a host file bound over
`/proc/self/oom_score_adj`, a fake `sys/kernel/cap_last_cap` reading `0` (and
then no capability would be dropped from the bounding set). The write then
lands in a host file, or the read lies.

So a process that sets a container up takes one `ProcFS` first (`acquire`),
while it still trusts its view:

- preferably a procfs it makes itself (fsopen/fsmount): a detached mount, in
  no mount namespace, that no one else can mount anything on; in the init it is
  the procfs of the container's PID namespace;
- else (no new mount API, or no right to make one: e.g. a joined PID namespace
  owned by another user namespace) the `/proc` it sees then, kept only if
  fstatfs says procfs and its inode is procfs's root.

Every file is then opened beneath that fd with openat2(RESOLVE_BENEATH |
RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS): no symlink, no `..` out, no crossing
into a mount over any part of the path. `self` (a symlink) is read and
replaced by the PID it names at each use, since a forked child uses its
parent's handle.
"""

from __future__ import annotations

import os

from corral.errors import ExecutorError
from corral.executor import syscalls as sc

#: The inode number of every procfs's root directory (PROC_ROOT_INO).
PROC_ROOT_INO = 1

_RESOLVE = sc.RESOLVE_BENEATH | sc.RESOLVE_NO_XDEV | sc.RESOLVE_NO_SYMLINKS | sc.RESOLVE_NO_MAGICLINKS


class ProcFS:
    """An O_PATH fd of the root of a procfs, checked, and the files beneath it."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        st = os.fstat(fd)
        self._identity = (st.st_dev, st.st_ino)
        self.check()

    @classmethod
    def open(cls) -> ProcFS:
        """A new procfs of this process's PID namespace, or else the verified `/proc`."""
        try:
            fd = sc.fsmount_new("proc")
        except OSError:
            fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            return cls(fd)
        except BaseException:
            os.close(fd)
            raise

    def check(self) -> None:
        """Still a procfs root, and still the one opened (the fd number was not reused)."""
        st = os.fstat(self.fd)
        if sc.fstatfs_type(self.fd) != sc.PROC_SUPER_MAGIC or st.st_ino != PROC_ROOT_INO:
            raise ExecutorError("the procfs handle is not the root of a procfs: refusing to write through it")
        if (st.st_dev, st.st_ino) != self._identity:
            raise ExecutorError("the procfs handle's descriptor now names another filesystem")

    def _path(self, name: str) -> str:
        """`name` relative to the procfs root, `self` replaced by the PID it names now."""
        parts = name.strip("/").split("/")
        if parts[0] == "self":
            pid = os.readlink("self", dir_fd=self.fd)
            if not pid.isdigit():
                raise ExecutorError(f"procfs's 'self' names {pid!r}, not a PID")
            parts[0] = pid
        return "/".join(parts)

    def open_file(self, name: str, flags: int) -> int:
        """Open `name` (e.g. 'sys/net/ipv4/ip_forward', 'self/oom_score_adj') beneath the root."""
        self.check()
        fd = sc.openat2(self.fd, self._path(name), flags | os.O_CLOEXEC | os.O_NOFOLLOW, _RESOLVE)
        try:
            if sc.fstatfs_type(fd) != sc.PROC_SUPER_MAGIC:
                raise ExecutorError(f"procfs file {name!r} is not on procfs")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def write(self, name: str, text: str) -> None:
        """One write(2) of `text`, as procfs wants (a partial write is an error there)."""
        fd = self.open_file(name, os.O_WRONLY)
        try:
            data = text.encode()
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"short write to procfs {name!r}: {written} of {len(data)} bytes")
        finally:
            os.close(fd)

    def read(self, name: str) -> str:
        fd = self.open_file(name, os.O_RDONLY)
        try:
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks).decode()
        finally:
            os.close(fd)

    def reopen(self, fd: int, flags: int) -> int:
        """Open what this process's descriptor `fd` names, anew with `flags` (an O_PATH fd
        reopened for writing): through `self/fd/N` of this procfs, never the container's."""
        self.check()
        fd_dir = sc.openat2(self.fd, self._path("self/fd"), os.O_PATH | os.O_DIRECTORY, _RESOLVE)
        try:
            # The last step follows the magic link on purpose, from a directory of a procfs
            # checked above (openat2 refuses magic links under RESOLVE_BENEATH).
            return os.open(str(fd), flags | os.O_CLOEXEC, dir_fd=fd_dir)
        finally:
            os.close(fd_dir)

    def open_root_of(self, pid: int) -> int:
        """An O_PATH fd of what process `pid` sees as `/` (its chroot): `<pid>/root`, the
        magic link followed from this procfs's `<pid>` directory only, as `reopen` does."""
        self.check()
        pid_dir = sc.openat2(self.fd, str(pid), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, _RESOLVE)
        try:
            return os.open("root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pid_dir)
        finally:
            os.close(pid_dir)

    def close(self) -> None:
        os.close(self.fd)


_current: ProcFS | None = None
_owner: int = 0  # the PID that opened `_current`: a forked child must not close its parent's


def acquire() -> ProcFS:
    """Take this process's procfs now, while its view can be trusted: before the init's
    mounts and pivot_root, before exec's setns. One inherited from a parent is dropped
    (not closed: after an fd sweep its number may be another file's)."""
    global _current, _owner
    if _current is not None and _owner == os.getpid():  # ours and checked: close it
        try:
            _current.close()
        except OSError:
            pass
    _current = None
    _current = ProcFS.open()
    _owner = os.getpid()
    return _current


def current() -> ProcFS:
    """The procfs `acquire` took (in this process or the parent it forked from); one is
    taken on first use in a process that took none (the monitor, in the host's namespaces)."""
    global _current
    if _current is not None:
        try:
            _current.check()
            return _current
        except (OSError, ExecutorError):
            _current = None  # closed, or its number reused: not ours to close nor trust
    return acquire()


def write(name: str, text: str) -> None:
    current().write(name, text)


def read(name: str) -> str:
    return current().read(name)


def reopen(fd: int, flags: int) -> int:
    return current().reopen(fd, flags)
