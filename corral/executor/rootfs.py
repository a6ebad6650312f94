"""The container's filesystem: mounts, /dev, pivot_root, masked and read-only paths.

Runs in the container's init, in its new mount namespace, before pivot_root.
Every mount target is resolved inside the rootfs with openat2(RESOLVE_IN_ROOT)
and mounted through its /proc/self/fd path, so that a symlink planted in the
rootfs (CVE-2021-30465) cannot send a mount outside it: an absolute symlink
resolves against the rootfs, `..` stops at it.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from corral.config import Config, Device, Mount
from corral.executor import syscalls as sc

#: option -> (clears the flag?, flag)
FLAG_OPTIONS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (False, sc.MS_RDONLY),
    "rw": (True, sc.MS_RDONLY),
    "nosuid": (False, sc.MS_NOSUID),
    "suid": (True, sc.MS_NOSUID),
    "nodev": (False, sc.MS_NODEV),
    "dev": (True, sc.MS_NODEV),
    "noexec": (False, sc.MS_NOEXEC),
    "exec": (True, sc.MS_NOEXEC),
    "sync": (False, sc.MS_SYNCHRONOUS),
    "async": (True, sc.MS_SYNCHRONOUS),
    "dirsync": (False, sc.MS_DIRSYNC),
    "remount": (False, sc.MS_REMOUNT),
    "mand": (False, sc.MS_MANDLOCK),
    "nomand": (True, sc.MS_MANDLOCK),
    "atime": (True, sc.MS_NOATIME),
    "noatime": (False, sc.MS_NOATIME),
    "diratime": (True, sc.MS_NODIRATIME),
    "nodiratime": (False, sc.MS_NODIRATIME),
    "relatime": (False, sc.MS_RELATIME),
    "norelatime": (True, sc.MS_RELATIME),
    "strictatime": (False, sc.MS_STRICTATIME),
    "nostrictatime": (True, sc.MS_STRICTATIME),
    "lazytime": (False, sc.MS_LAZYTIME),
    "nolazytime": (True, sc.MS_LAZYTIME),
    "bind": (False, sc.MS_BIND),
    "rbind": (False, sc.MS_BIND | sc.MS_REC),
}

PROPAGATION_OPTIONS: dict[str, int] = {
    "private": sc.MS_PRIVATE,
    "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED,
    "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE,
    "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE,
    "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}

#: The device nodes every container gets when its /dev is a fresh tmpfs (OCI spec).
DEFAULT_DEVICES: tuple[Device, ...] = (
    Device("/dev/null", "c", 1, 3, 0o666, 0, 0),
    Device("/dev/zero", "c", 1, 5, 0o666, 0, 0),
    Device("/dev/full", "c", 1, 7, 0o666, 0, 0),
    Device("/dev/random", "c", 1, 8, 0o666, 0, 0),
    Device("/dev/urandom", "c", 1, 9, 0o666, 0, 0),
    Device("/dev/tty", "c", 5, 0, 0o666, 0, 0),
)

DEV_SYMLINKS: tuple[tuple[str, str], ...] = (
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("/proc/kcore", "core"),
)

_STATVFS_TO_MS: tuple[tuple[int, int], ...] = (
    (os.ST_RDONLY, sc.MS_RDONLY),
    (os.ST_NOSUID, sc.MS_NOSUID),
    (os.ST_NODEV, sc.MS_NODEV),
    (os.ST_NOEXEC, sc.MS_NOEXEC),
    (os.ST_NOATIME, sc.MS_NOATIME),
    (os.ST_NODIRATIME, sc.MS_NODIRATIME),
    (os.ST_RELATIME, sc.MS_RELATIME),
)


@dataclass(frozen=True)
class MountOptions:
    flags: int
    propagation: tuple[int, ...]
    data: str | None


def parse_options(options: Iterable[str]) -> MountOptions:
    flags = 0
    propagation: list[int] = []
    data: list[str] = []
    for option in options:
        if option in FLAG_OPTIONS:
            clear, flag = FLAG_OPTIONS[option]
            flags = (flags & ~flag) if clear else (flags | flag)
        elif option in PROPAGATION_OPTIONS:
            propagation.append(PROPAGATION_OPTIONS[option])
        else:
            data.append(option)
    return MountOptions(flags, tuple(propagation), ",".join(data) or None)


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


_RESOLVE = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH) -> int:
    """Open `path` as if `root_fd` were `/`: symlinks and `..` cannot leave it."""
    relative = os.path.normpath("/" + path).lstrip("/") or "."
    return sc.openat2(root_fd, relative, flags, _RESOLVE)


def make_in_root(root_fd: int, path: str, *, directory: bool, mode: int = 0o755) -> int:
    """Create `path` (and missing parents) inside the rootfs; return an O_PATH fd to it."""
    parts = [p for p in os.path.normpath("/" + path).split("/") if p]
    for i in range(len(parts)):
        prefix = "/".join(parts[: i + 1])
        last = i == len(parts) - 1
        try:
            os.close(open_in_root(root_fd, prefix))
            continue
        except FileNotFoundError:
            pass
        parent = open_in_root(root_fd, "/".join(parts[:i]), os.O_PATH | os.O_DIRECTORY)
        try:
            if directory or not last:
                try:
                    os.mkdir(parts[i], mode, dir_fd=parent)
                except FileExistsError:
                    pass
            else:
                try:
                    os.close(os.open(parts[i], os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644, dir_fd=parent))
                except FileExistsError:
                    pass
        finally:
            os.close(parent)
    return open_in_root(root_fd, path)


def _mount_flags_of(path: str) -> int:
    """The flags a remount of `path` must keep (a user namespace locks them)."""
    f_flag = os.statvfs(path).f_flag
    return sum(ms for st, ms in _STATVFS_TO_MS if f_flag & st)


def remount(path: str, flags: int) -> None:
    """Remount a bind mount with `flags` added to the ones it has."""
    sc.mount(None, path, None, sc.MS_REMOUNT | sc.MS_BIND | _mount_flags_of(path) | flags)


def _source_path(mount: Mount, bundle: str | None) -> str | None:
    source = mount.source
    if source and not os.path.isabs(source) and bundle:
        source = os.path.join(bundle, source)
    return source


def _is_bind(options: MountOptions, mount: Mount) -> bool:
    return bool(options.flags & sc.MS_BIND) or mount.type == "bind"


def mount_one(root_fd: int, mount: Mount, config: Config, cgroup_paths: Mapping[str, str], new_cgroupns: bool) -> None:
    options = parse_options(mount.options)
    if mount.type == "cgroup":
        _mount_cgroup(root_fd, mount, options, cgroup_paths, new_cgroupns)
        return
    bind = _is_bind(options, mount)
    source = _source_path(mount, config.bundle) if bind else mount.source
    directory = True
    if bind and source is not None:
        try:
            directory = stat.S_ISDIR(os.stat(source).st_mode)
        except OSError as exc:
            raise OSError(exc.errno, f"mounts: bind source {source!r} for {mount.destination!r}: {exc.strerror}") from exc
    target_fd = make_in_root(root_fd, mount.destination, directory=directory)
    try:
        target = fd_path(target_fd)
        if bind:
            sc.mount(source, target, None, sc.MS_BIND | (options.flags & sc.MS_REC))
            extra = options.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
            if extra:
                _remount_new(root_fd, mount.destination, extra)
        else:
            sc.mount(source or mount.type, target, mount.type, options.flags & ~sc.MS_REMOUNT, options.data)
    finally:
        os.close(target_fd)
    for propagation in options.propagation:
        fd = open_in_root(root_fd, mount.destination)
        try:
            sc.mount(None, fd_path(fd), None, propagation)
        finally:
            os.close(fd)


def _remount_new(root_fd: int, destination: str, flags: int) -> None:
    fd = open_in_root(root_fd, destination)  # now the root of the new mount
    try:
        remount(fd_path(fd), flags)
    finally:
        os.close(fd)


def _mount_cgroup(
    root_fd: int, mount: Mount, options: MountOptions, cgroup_paths: Mapping[str, str], new_cgroupns: bool
) -> None:
    """A `cgroup` mount: the container sees its own cgroups, as runc arranges.

    v2 with a cgroup namespace mounts cgroup2 (the namespace makes it the
    container's subtree); otherwise the container's own directories are
    bind-mounted (v1: one per hierarchy, under a tmpfs).
    """
    flags = options.flags & ~sc.MS_RDONLY
    readonly = bool(options.flags & sc.MS_RDONLY)
    target_fd = make_in_root(root_fd, mount.destination, directory=True)
    try:
        if "" in cgroup_paths:
            if new_cgroupns:
                sc.mount("cgroup2", fd_path(target_fd), "cgroup2", options.flags)
            else:
                sc.mount(cgroup_paths[""], fd_path(target_fd), None, sc.MS_BIND)
                if readonly:
                    _remount_new(root_fd, mount.destination, sc.MS_RDONLY | flags)
            return
        sc.mount("tmpfs", fd_path(target_fd), "tmpfs", flags, "mode=755")
    finally:
        os.close(target_fd)
    for key, host_path in sorted(cgroup_paths.items()):
        destination = f"{mount.destination}/{key}"
        fd = make_in_root(root_fd, destination, directory=True)
        try:
            sc.mount(host_path, fd_path(fd), None, sc.MS_BIND)
        finally:
            os.close(fd)
        _remount_new(root_fd, destination, flags | (sc.MS_RDONLY if readonly else 0))
    if readonly:
        _remount_new(root_fd, mount.destination, flags | sc.MS_RDONLY)


def create_devices(root_fd: int, devices: Iterable[Device], in_user_namespace: bool) -> None:
    """Device nodes under the container's /dev: mknod, or bind the host's in a user namespace
    (mknod is not allowed there)."""
    for device in devices:
        parent = make_in_root(root_fd, os.path.dirname(device.path), directory=True)
        name = os.path.basename(device.path)
        try:
            if in_user_namespace:
                fd = make_in_root(root_fd, device.path, directory=False)
                try:
                    sc.mount(device.path, fd_path(fd), None, sc.MS_BIND)
                finally:
                    os.close(fd)
                continue
            kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[device.type]
            mode = device.file_mode if device.file_mode is not None else 0o666
            try:
                os.unlink(name, dir_fd=parent)
            except FileNotFoundError:
                pass
            try:
                os.mknod(name, kind | (mode & 0o7777), os.makedev(device.major, device.minor), dir_fd=parent)
            except OSError as exc:
                raise OSError(exc.errno, f"mknod {device.path} ({device.type} {device.major}:{device.minor}): {exc.strerror}") from exc
            os.chmod(name, mode & 0o7777, dir_fd=parent)  # mknod's mode went through the umask
            os.chown(name, device.uid or 0, device.gid or 0, dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(parent)


def create_dev_symlinks(root_fd: int, with_ptmx: bool) -> None:
    dev = open_in_root(root_fd, "/dev", os.O_PATH | os.O_DIRECTORY)
    try:
        links = list(DEV_SYMLINKS) + ([("pts/ptmx", "ptmx")] if with_ptmx else [])
        for target, name in links:
            try:
                os.symlink(target, name, dir_fd=dev)
            except FileExistsError:
                pass
    finally:
        os.close(dev)


def pivot(rootfs: str) -> None:
    """pivot_root into `rootfs` and detach the old root (the `pivot_root(".", ".")` idiom)."""
    os.chdir(rootfs)
    sc.pivot_root(".", ".")
    # The old root is now stacked under the new one: keep its unmount from
    # propagating anywhere, then drop it.
    sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")


def mask_paths(paths: Iterable[str]) -> None:
    for path in paths:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY, None)
        else:
            sc.mount("/dev/null", path, None, sc.MS_BIND)


def readonly_paths(paths: Iterable[str]) -> None:
    for path in paths:
        try:
            sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                continue
            raise
        remount(path, sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_REC)


def write_sysctls(sysctl: Mapping[str, str]) -> None:
    for key, value in sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        with open(path, "w") as f:
            f.write(value)


def prepare(config: Config, cgroup_paths: Mapping[str, str], *, in_user_namespace: bool, new_cgroupns: bool) -> None:
    """Everything before pivot_root: propagation, the rootfs bind, the config's mounts, /dev."""
    propagation = PROPAGATION_OPTIONS.get(config.rootfs_propagation or "rprivate", sc.MS_PRIVATE | sc.MS_REC)
    sc.mount(None, "/", None, propagation | sc.MS_REC)
    rootfs = config.root.path
    sc.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)  # pivot_root needs a mount point
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        dev_is_tmpfs = False
        has_pts = False
        for mount in config.mounts:
            mount_one(root_fd, mount, config, cgroup_paths, new_cgroupns)
            dest = os.path.normpath(mount.destination)
            if dest == "/dev" and mount.type == "tmpfs":
                dev_is_tmpfs = True
            if dest == "/dev/pts":
                has_pts = True
        devices = list(config.devices)
        if dev_is_tmpfs:
            configured = {os.path.normpath(d.path) for d in devices}
            devices = [d for d in DEFAULT_DEVICES if d.path not in configured] + devices
            create_dev_symlinks(root_fd, has_pts)
        if devices:
            create_devices(root_fd, devices, in_user_namespace)
        cwd = config.process.cwd
        os.close(make_in_root(root_fd, cwd, directory=True))
    finally:
        os.close(root_fd)


def finish(config: Config) -> None:
    """Everything after pivot_root: sysctls, read-only and masked paths, a read-only root."""
    write_sysctls(config.sysctl)
    readonly_paths(config.readonly_paths)
    mask_paths(config.masked_paths)
    if config.root.readonly:
        remount("/", sc.MS_RDONLY)
