"""Thin wrappers over the kernel calls corral needs and Python's `os` lacks.

Each wrapper raises OSError with the errno and the call as it was made (its
arguments), because "EINVAL" alone does not say which of twenty mounts failed.
Constants come from the C headers at build time (see _build_syscalls.py).
"""

from __future__ import annotations

import errno
import os

from corral.executor._syscalls import ffi, lib

CLONE_NEWNS: int = lib.CLONE_NEWNS
CLONE_NEWUTS: int = lib.CLONE_NEWUTS
CLONE_NEWIPC: int = lib.CLONE_NEWIPC
CLONE_NEWUSER: int = lib.CLONE_NEWUSER
CLONE_NEWPID: int = lib.CLONE_NEWPID
CLONE_NEWNET: int = lib.CLONE_NEWNET
CLONE_NEWCGROUP: int = lib.CLONE_NEWCGROUP
CLONE_NEWTIME: int = lib.CLONE_NEWTIME

#: OCI namespace type -> (clone flag, name under /proc/<pid>/ns/)
NAMESPACES: dict[str, tuple[int, str]] = {
    "user": (CLONE_NEWUSER, "user"),
    "mount": (CLONE_NEWNS, "mnt"),
    "pid": (CLONE_NEWPID, "pid"),
    "network": (CLONE_NEWNET, "net"),
    "ipc": (CLONE_NEWIPC, "ipc"),
    "uts": (CLONE_NEWUTS, "uts"),
    "cgroup": (CLONE_NEWCGROUP, "cgroup"),
    "time": (CLONE_NEWTIME, "time"),
}

MS_RDONLY: int = lib.MS_RDONLY
MS_NOSUID: int = lib.MS_NOSUID
MS_NODEV: int = lib.MS_NODEV
MS_NOEXEC: int = lib.MS_NOEXEC
MS_SYNCHRONOUS: int = lib.MS_SYNCHRONOUS
MS_REMOUNT: int = lib.MS_REMOUNT
MS_MANDLOCK: int = lib.MS_MANDLOCK
MS_DIRSYNC: int = lib.MS_DIRSYNC
MS_NOATIME: int = lib.MS_NOATIME
MS_NODIRATIME: int = lib.MS_NODIRATIME
MS_BIND: int = lib.MS_BIND
MS_MOVE: int = lib.MS_MOVE
MS_REC: int = lib.MS_REC
MS_SILENT: int = lib.MS_SILENT
MS_UNBINDABLE: int = lib.MS_UNBINDABLE
MS_PRIVATE: int = lib.MS_PRIVATE
MS_SLAVE: int = lib.MS_SLAVE
MS_SHARED: int = lib.MS_SHARED
MS_RELATIME: int = lib.MS_RELATIME
MS_STRICTATIME: int = lib.MS_STRICTATIME
MS_LAZYTIME: int = lib.MS_LAZYTIME

MNT_DETACH: int = lib.MNT_DETACH
MNT_FORCE: int = lib.MNT_FORCE
UMOUNT_NOFOLLOW: int = lib.UMOUNT_NOFOLLOW

PR_SET_PDEATHSIG: int = lib.PR_SET_PDEATHSIG
PR_SET_DUMPABLE: int = lib.PR_SET_DUMPABLE
PR_SET_KEEPCAPS: int = lib.PR_SET_KEEPCAPS
PR_SET_NAME: int = lib.PR_SET_NAME
PR_SET_NO_NEW_PRIVS: int = lib.PR_SET_NO_NEW_PRIVS
PR_CAPBSET_READ: int = lib.PR_CAPBSET_READ
PR_CAPBSET_DROP: int = lib.PR_CAPBSET_DROP
PR_CAP_AMBIENT: int = lib.PR_CAP_AMBIENT
PR_CAP_AMBIENT_RAISE: int = lib.PR_CAP_AMBIENT_RAISE
PR_CAP_AMBIENT_CLEAR_ALL: int = lib.PR_CAP_AMBIENT_CLEAR_ALL
PR_SET_CHILD_SUBREAPER: int = lib.PR_SET_CHILD_SUBREAPER

RESOLVE_NO_XDEV: int = lib.RESOLVE_NO_XDEV
RESOLVE_NO_MAGICLINKS: int = lib.RESOLVE_NO_MAGICLINKS
RESOLVE_NO_SYMLINKS: int = lib.RESOLVE_NO_SYMLINKS
RESOLVE_BENEATH: int = lib.RESOLVE_BENEATH
RESOLVE_IN_ROOT: int = lib.RESOLVE_IN_ROOT

FSOPEN_CLOEXEC: int = lib.FSOPEN_CLOEXEC
FSMOUNT_CLOEXEC: int = lib.FSMOUNT_CLOEXEC
PROC_SUPER_MAGIC: int = lib.PROC_SUPER_MAGIC

BPF_PROG_TYPE_CGROUP_DEVICE: int = lib.BPF_PROG_TYPE_CGROUP_DEVICE
BPF_CGROUP_DEVICE: int = lib.BPF_CGROUP_DEVICE
BPF_F_ALLOW_MULTI: int = lib.BPF_F_ALLOW_MULTI
BPF_DEVCG_ACC_MKNOD: int = lib.BPF_DEVCG_ACC_MKNOD
BPF_DEVCG_ACC_READ: int = lib.BPF_DEVCG_ACC_READ
BPF_DEVCG_ACC_WRITE: int = lib.BPF_DEVCG_ACC_WRITE
BPF_DEVCG_DEV_BLOCK: int = lib.BPF_DEVCG_DEV_BLOCK
BPF_DEVCG_DEV_CHAR: int = lib.BPF_DEVCG_DEV_CHAR

#: Room for the verifier's log when a load fails (it is asked for only then).
BPF_LOG_SIZE = 1 << 20


def _fail(call: str) -> OSError:
    err = ffi.errno
    return OSError(err, f"{os.strerror(err)}: {call}")


def _c(value: str | None) -> object:
    return ffi.NULL if value is None else value.encode()


def unshare(flags: int) -> None:
    if lib.unshare(flags) == -1:
        raise _fail(f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0) -> None:
    if lib.setns(fd, nstype) == -1:
        raise _fail(f"setns(fd={fd}, nstype={nstype:#x})")


def mount(
    source: str | None,
    target: str,
    fstype: str | None = None,
    flags: int = 0,
    data: str | None = None,
) -> None:
    if lib.mount(_c(source), target.encode(), _c(fstype), flags, _c(data)) == -1:
        raise _fail(
            f"mount(source={source!r}, target={target!r}, type={fstype!r}, "
            f"flags={flags:#x}, data={data!r})"
        )


def umount2(target: str, flags: int = 0) -> None:
    if lib.umount2(target.encode(), flags) == -1:
        raise _fail(f"umount2({target!r}, {flags:#x})")


def pivot_root(new_root: str, put_old: str) -> None:
    if lib.corral_pivot_root(new_root.encode(), put_old.encode()) == -1:
        raise _fail(f"pivot_root({new_root!r}, {put_old!r})")


def sethostname(name: str) -> None:
    raw = name.encode()
    if lib.sethostname(raw, len(raw)) == -1:
        raise _fail(f"sethostname({name!r})")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    ret = lib.prctl(option, arg2, arg3, arg4, arg5)
    if ret == -1:
        raise _fail(f"prctl({option}, {arg2}, {arg3}, {arg4}, {arg5})")
    return int(ret)


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) as 64-bit masks."""
    data = ffi.new("uint32_t[6]")
    if lib.corral_capget(pid, data) == -1:
        raise _fail(f"capget(pid={pid})")
    return (
        data[0] | (data[3] << 32),
        data[1] | (data[4] << 32),
        data[2] | (data[5] << 32),
    )


def capset(effective: int, permitted: int, inheritable: int, pid: int = 0) -> None:
    data = ffi.new("uint32_t[6]")
    for word in (0, 1):
        shift = 32 * word
        data[word * 3 + 0] = (effective >> shift) & 0xFFFFFFFF
        data[word * 3 + 1] = (permitted >> shift) & 0xFFFFFFFF
        data[word * 3 + 2] = (inheritable >> shift) & 0xFFFFFFFF
    if lib.corral_capset(pid, data) == -1:
        raise _fail(
            f"capset(effective={effective:#x}, permitted={permitted:#x}, inheritable={inheritable:#x})"
        )


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    fd = lib.corral_openat2(dirfd, path.encode(), flags | os.O_CLOEXEC, mode, resolve)
    if fd == -1:
        raise _fail(f"openat2(dirfd={dirfd}, {path!r}, flags={flags:#x}, resolve={resolve:#x})")
    return int(fd)


def fsmount_new(fstype: str) -> int:
    """A new, detached instance of `fstype` with default options (fsopen, create, fsmount):
    an O_PATH-like, close-on-exec fd of its root, in no mount namespace, so nothing can be
    mounted over anything in it."""
    fsfd = lib.corral_fsopen(fstype.encode(), FSOPEN_CLOEXEC)
    if fsfd == -1:
        raise _fail(f"fsopen({fstype!r})")
    try:
        if lib.corral_fsconfig_create(fsfd) == -1:
            raise _fail(f"fsconfig(FSCONFIG_CMD_CREATE) of a new {fstype}")
        fd = lib.corral_fsmount(fsfd, FSMOUNT_CLOEXEC, 0)
        if fd == -1:
            raise _fail(f"fsmount() of a new {fstype}")
        return int(fd)
    finally:
        os.close(fsfd)


def fstatfs_type(fd: int) -> int:
    """The magic number of the filesystem `fd` is on (statfs's f_type; `os.fstatvfs` lacks it)."""
    kind = lib.corral_fstatfs_type(fd)
    if kind == -1:
        raise _fail(f"fstatfs(fd={fd})")
    return int(kind)


def bpf_prog_load(prog_type: int, insns: bytes, license: str = "Apache") -> int:
    """Load `insns` (struct bpf_insn, 8 bytes each) and return the program's fd (O_CLOEXEC).

    Loaded first without a log (cheap); on failure loaded again with one, so
    that the OSError's message ends with the verifier's reason.
    """
    if len(insns) % 8:
        raise ValueError(f"{len(insns)} bytes is not a whole number of 8-byte BPF instructions")
    buf = ffi.from_buffer(insns)
    lic = license.encode()
    fd = lib.corral_bpf_prog_load(prog_type, buf, len(insns) // 8, lic, 0, ffi.NULL, 0)
    if fd >= 0:
        return int(fd)
    log = ffi.new("char[]", BPF_LOG_SIZE)
    fd = lib.corral_bpf_prog_load(prog_type, buf, len(insns) // 8, lic, 1, log, BPF_LOG_SIZE)
    if fd >= 0:  # loaded on the second try: keep it
        return int(fd)
    err = ffi.errno
    text = ffi.string(log).decode(errors="replace").strip()
    call = f"bpf(BPF_PROG_LOAD, type={prog_type}, insns={len(insns) // 8})"
    why = f"; verifier log:\n{text}" if text else " (the verifier gave no log)"
    raise OSError(err, f"{os.strerror(err)}: {call}{why}")


def bpf_prog_attach(prog_fd: int, target_fd: int, attach_type: int, flags: int = 0) -> None:
    if lib.corral_bpf_prog_attach(prog_fd, target_fd, attach_type, flags) == -1:
        raise _fail(
            f"bpf(BPF_PROG_ATTACH, prog_fd={prog_fd}, target_fd={target_fd}, "
            f"attach_type={attach_type}, flags={flags:#x})"
        )


def bpf_prog_detach(prog_fd: int, target_fd: int, attach_type: int) -> None:
    if lib.corral_bpf_prog_detach(prog_fd, target_fd, attach_type) == -1:
        raise _fail(f"bpf(BPF_PROG_DETACH, prog_fd={prog_fd}, target_fd={target_fd}, attach_type={attach_type})")


def bpf_prog_query(target_fd: int, attach_type: int) -> list[int]:
    """The ids of the programs attached to `target_fd` itself (not inherited ones)."""
    room = 64
    while True:
        ids = ffi.new("uint32_t[]", room)
        count = ffi.new("uint32_t *", room)
        if lib.corral_bpf_prog_query(target_fd, attach_type, ids, count) == 0:
            return [int(ids[i]) for i in range(count[0])]
        if ffi.errno != errno.ENOSPC:
            raise _fail(f"bpf(BPF_PROG_QUERY, target_fd={target_fd}, attach_type={attach_type})")
        room = int(count[0])


def bpf_prog_get_fd_by_id(prog_id: int) -> int:
    fd = lib.corral_bpf_prog_get_fd_by_id(prog_id)
    if fd == -1:
        raise _fail(f"bpf(BPF_PROG_GET_FD_BY_ID, id={prog_id})")
    return int(fd)


def setdomainname(name: str) -> None:
    raw = name.encode()
    if lib.setdomainname(raw, len(raw)) == -1:
        raise _fail(f"setdomainname({name!r})")


def personality(persona: int) -> int:
    """Set the execution domain; 0xffffffff only reads it. Returns the previous one."""
    ret = lib.personality(persona)
    if ret == -1:
        raise _fail(f"personality({persona:#x})")
    return int(ret)


#: ioprio_set(2)'s `which` for one thread/process (IOPRIO_WHO_PROCESS) and the class shift.
IOPRIO_WHO_PROCESS = 1
IOPRIO_CLASS_SHIFT = 13


def ioprio_set(ioclass: int, level: int, pid: int = 0) -> None:
    value = (ioclass << IOPRIO_CLASS_SHIFT) | level
    if lib.corral_ioprio_set(IOPRIO_WHO_PROCESS, pid, value) == -1:
        raise _fail(f"ioprio_set(IOPRIO_WHO_PROCESS, {pid}, class={ioclass} level={level})")


def sched_setattr(
    policy: int,
    *,
    flags: int = 0,
    nice: int = 0,
    priority: int = 0,
    runtime: int = 0,
    deadline: int = 0,
    period: int = 0,
    pid: int = 0,
) -> None:
    if lib.corral_sched_setattr(pid, policy, flags, nice, priority, runtime, deadline, period) == -1:
        raise _fail(
            f"sched_setattr(pid={pid}, policy={policy}, flags={flags:#x}, nice={nice}, "
            f"priority={priority}, runtime={runtime}, deadline={deadline}, period={period})"
        )


#: open_tree(2), move_mount(2) and mount_setattr(2) (Linux 5.2 / 5.12); values of linux/mount.h.
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_IDMAP = 0x100000


def open_tree(dfd: int, path: str, flags: int) -> int:
    fd = lib.corral_open_tree(dfd, path.encode(), flags)
    if fd == -1:
        raise _fail(f"open_tree({dfd}, {path!r}, {flags:#x})")
    return int(fd)


def move_mount(from_dfd: int, from_path: str, to_dfd: int, to_path: str, flags: int) -> None:
    if lib.corral_move_mount(from_dfd, from_path.encode(), to_dfd, to_path.encode(), flags) == -1:
        raise _fail(f"move_mount({from_dfd}, {from_path!r}, {to_dfd}, {to_path!r}, {flags:#x})")


def mount_setattr(dfd: int, path: str, flags: int, attr_set: int, attr_clr: int = 0, userns_fd: int = 0) -> None:
    if lib.corral_mount_setattr(dfd, path.encode(), flags, attr_set, attr_clr, userns_fd) == -1:
        raise _fail(
            f"mount_setattr({dfd}, {path!r}, {flags:#x}, set={attr_set:#x}, clr={attr_clr:#x}, userns_fd={userns_fd})"
        )
