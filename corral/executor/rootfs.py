"""The container's filesystem: mounts, /dev, pivot_root, masked and read-only paths.

Runs in the container's init, in its new mount namespace, before pivot_root.
Every mount target is resolved inside the rootfs with openat2(RESOLVE_IN_ROOT)
and mounted through its /proc/self/fd path, so that a symlink planted in the
rootfs (CVE-2021-30465) cannot send a mount outside it: an absolute symlink
resolves against the rootfs, `..` stops at it.

Every kernel call goes through a `Syscalls` object (`kernel=`, the real one by
default) so that unit tests can check the sequence without root. A failed mount
raises MountError naming the configured destination, not the fd path.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Mapping

from corral.config import Config, Device, Mount
from corral.config.linux import FLAG_OPTIONS, PROPAGATION_OPTIONS, RECURSIVE_OPTIONS
from corral.errors import ExecutorError, MountError
from corral.executor import syscalls as sc
from corral.executor.kernel import LINUX, Syscalls
from corral.records import record

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


@record
class MountOptions:
    flags: int
    propagation: tuple[int, ...]
    data: str | None
    #: mount_setattr attributes to set and clear on the whole tree (`rro`, `rnosuid` ...).
    attr_set: int = 0
    attr_clr: int = 0


def parse_options(options: Iterable[str]) -> MountOptions:
    flags = 0
    propagation: list[int] = []
    data: list[str] = []
    attr_set = attr_clr = 0
    for option in options:
        if option in RECURSIVE_OPTIONS:
            clear, attr = RECURSIVE_OPTIONS[option]
            attr_set, attr_clr = (attr_set & ~attr, attr_clr | attr) if clear else (attr_set | attr, attr_clr & ~attr)
        elif option in FLAG_OPTIONS:
            clear, flag = FLAG_OPTIONS[option]
            flags = (flags & ~flag) if clear else (flags | flag)
        elif option in PROPAGATION_OPTIONS:
            propagation.append(PROPAGATION_OPTIONS[option])
        else:
            data.append(option)
    return MountOptions(flags, tuple(propagation), ",".join(data) or None, attr_set, attr_clr)


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


_RESOLVE = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH, *, kernel: Syscalls = LINUX) -> int:
    """Open `path` as if `root_fd` were `/`: symlinks and `..` cannot leave it."""
    relative = os.path.normpath("/" + path).lstrip("/") or "."
    return kernel.openat2(root_fd, relative, flags, _RESOLVE)


def make_in_root(
    root_fd: int, path: str, *, directory: bool, mode: int = 0o755, kernel: Syscalls = LINUX
) -> int:
    """Create `path` (and missing parents) inside the rootfs; return an O_PATH fd to it."""
    parts = [p for p in os.path.normpath("/" + path).split("/") if p]
    for i in range(len(parts)):
        prefix = "/".join(parts[: i + 1])
        last = i == len(parts) - 1
        try:
            kernel.close(open_in_root(root_fd, prefix, kernel=kernel))
            continue
        except FileNotFoundError:
            pass
        parent = open_in_root(root_fd, "/".join(parts[:i]), os.O_PATH | os.O_DIRECTORY, kernel=kernel)
        try:
            if directory or not last:
                try:
                    kernel.mkdir(parts[i], mode, dir_fd=parent)
                except FileExistsError:
                    pass
            else:
                try:
                    kernel.close(
                        kernel.open(parts[i], os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644, dir_fd=parent)
                    )
                except FileExistsError:
                    pass
        finally:
            kernel.close(parent)
    return open_in_root(root_fd, path, kernel=kernel)


#: The only files under /proc a mount may cover (the ones lxcfs emulates; runc's list).
PROC_MOUNT_ALLOWED = frozenset({
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev", "/proc/sys/kernel/ns_last_pid",
})


def refuse_procfs_target(target_fd: int, mount: Mount, *, kernel: Syscalls = LINUX) -> None:
    """A mount may not cover anything of a procfs (but proc itself, and lxcfs's files).

    Judged by what the target *is* (fstatfs of the resolved fd), not by its path: an
    image whose `/data` is a symlink to `/proc/self/fd` would otherwise have a volume
    at `/data` bound over the init's own fd directory, and every later step that goes
    through the container's `/proc/self/fd` (masks, the exec fifo) would reach the
    volume's files instead (CVE-2025-52881; runc's checkProcMount).
    """
    if mount.type == "proc" or os.path.normpath(mount.destination) in PROC_MOUNT_ALLOWED:
        return
    if kernel.fstatfs_type(target_fd) == sc.PROC_SUPER_MAGIC:
        raise OSError(errno.EPERM, "the target is on procfs: only proc itself and lxcfs's files may be mounted there")


def _mount_flags_of(path: str, kernel: Syscalls) -> int:
    """The flags a remount of `path` must keep (a user namespace locks them)."""
    f_flag = kernel.statvfs(path).f_flag
    return sum(ms for st, ms in _STATVFS_TO_MS if f_flag & st)


def remount(path: str, flags: int, *, kernel: Syscalls = LINUX) -> None:
    """Remount a bind mount with `flags` added to the ones it has."""
    kernel.mount(None, path, None, sc.MS_REMOUNT | sc.MS_BIND | _mount_flags_of(path, kernel) | flags)


def _source_path(mount: Mount, bundle: str | None) -> str | None:
    source = mount.source
    if source and not os.path.isabs(source) and bundle:
        source = os.path.join(bundle, source)
    return source


def _is_bind(options: MountOptions, mount: Mount) -> bool:
    return bool(options.flags & sc.MS_BIND) or mount.type == "bind"


def mount_one(
    root_fd: int,
    mount: Mount,
    config: Config,
    cgroup_paths: Mapping[str, str],
    new_cgroupns: bool,
    *,
    kernel: Syscalls = LINUX,
    tree_fd: int | None = None,
) -> None:
    """One of the config's mounts, with its remount and propagation calls; MountError names it.

    `tree_fd`: an idmapped bind's detached tree (executor/idmap.py), attached instead of a bind."""
    try:
        _mount_one(root_fd, mount, config, cgroup_paths, new_cgroupns, kernel, tree_fd)
    except OSError as exc:
        raise MountError(mount.destination, exc) from exc


def _mount_one(
    root_fd: int,
    mount: Mount,
    config: Config,
    cgroup_paths: Mapping[str, str],
    new_cgroupns: bool,
    kernel: Syscalls,
    tree_fd: int | None = None,
) -> None:
    options = parse_options(mount.options)
    if mount.type == "cgroup":
        _mount_cgroup(root_fd, mount, options, cgroup_paths, new_cgroupns, kernel)
        return
    bind = _is_bind(options, mount)
    source = _source_path(mount, config.bundle) if bind else mount.source
    directory = True
    if bind and source is not None:
        try:
            directory = stat.S_ISDIR(kernel.stat(source).st_mode)
        except OSError as exc:
            raise OSError(exc.errno, f"bind source {source!r}: {exc.strerror}") from exc
    target_fd = make_in_root(root_fd, mount.destination, directory=directory, kernel=kernel)
    try:
        refuse_procfs_target(target_fd, mount, kernel=kernel)
        target = fd_path(target_fd)
        if bind and tree_fd is not None:
            kernel.move_mount(tree_fd, "", target_fd, "", sc.MOVE_MOUNT_F_EMPTY_PATH | sc.MOVE_MOUNT_T_EMPTY_PATH)
            extra = options.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
            if extra:
                _remount_new(root_fd, mount.destination, extra, kernel)
        elif bind:
            kernel.mount(source, target, None, sc.MS_BIND | (options.flags & sc.MS_REC))
            extra = options.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
            if extra:
                _remount_new(root_fd, mount.destination, extra, kernel)
        else:
            kernel.mount(source or mount.type, target, mount.type, options.flags & ~sc.MS_REMOUNT, options.data)
    finally:
        kernel.close(target_fd)
    for propagation in options.propagation:
        fd = open_in_root(root_fd, mount.destination, kernel=kernel)
        try:
            kernel.mount(None, fd_path(fd), None, propagation)
        finally:
            kernel.close(fd)
    if options.attr_set or options.attr_clr:  # `rro` and co: the mount and every mount below it
        fd = open_in_root(root_fd, mount.destination, kernel=kernel)
        try:
            kernel.mount_setattr(fd, "", sc.AT_EMPTY_PATH | sc.AT_RECURSIVE, options.attr_set, options.attr_clr)
        finally:
            kernel.close(fd)


def _remount_new(root_fd: int, destination: str, flags: int, kernel: Syscalls) -> None:
    fd = open_in_root(root_fd, destination, kernel=kernel)  # now the root of the new mount
    try:
        remount(fd_path(fd), flags, kernel=kernel)
    finally:
        kernel.close(fd)


def _mount_cgroup(
    root_fd: int,
    mount: Mount,
    options: MountOptions,
    cgroup_paths: Mapping[str, str],
    new_cgroupns: bool,
    kernel: Syscalls,
) -> None:
    """A `cgroup` mount: the container sees its own cgroups, as runc arranges.

    v2 with a cgroup namespace mounts cgroup2 (the namespace makes it the
    container's subtree); otherwise the container's own directories are
    bind-mounted (v1: one per hierarchy, under a tmpfs).
    """
    flags = options.flags & ~sc.MS_RDONLY
    readonly = bool(options.flags & sc.MS_RDONLY)
    target_fd = make_in_root(root_fd, mount.destination, directory=True, kernel=kernel)
    try:
        refuse_procfs_target(target_fd, mount, kernel=kernel)
        if "" in cgroup_paths:
            if new_cgroupns:
                kernel.mount("cgroup2", fd_path(target_fd), "cgroup2", options.flags)
            else:
                kernel.mount(cgroup_paths[""], fd_path(target_fd), None, sc.MS_BIND)
                if readonly:
                    _remount_new(root_fd, mount.destination, sc.MS_RDONLY | flags, kernel)
            return
        kernel.mount("tmpfs", fd_path(target_fd), "tmpfs", flags, "mode=755")
    finally:
        kernel.close(target_fd)
    for key, host_path in sorted(cgroup_paths.items()):
        destination = f"{mount.destination}/{key}"
        fd = make_in_root(root_fd, destination, directory=True, kernel=kernel)
        try:
            kernel.mount(host_path, fd_path(fd), None, sc.MS_BIND)
        finally:
            kernel.close(fd)
        _remount_new(root_fd, destination, flags | (sc.MS_RDONLY if readonly else 0), kernel)
    if readonly:
        _remount_new(root_fd, mount.destination, flags | sc.MS_RDONLY, kernel)


def create_devices(
    root_fd: int, devices: Iterable[Device], in_user_namespace: bool, *, kernel: Syscalls = LINUX
) -> None:
    """Device nodes under the container's /dev: mknod, or bind the host's in a user namespace
    (mknod is not allowed there)."""
    for device in devices:
        parent = make_in_root(root_fd, os.path.dirname(device.path), directory=True, kernel=kernel)
        name = os.path.basename(device.path)
        try:
            if in_user_namespace:
                fd = make_in_root(root_fd, device.path, directory=False, kernel=kernel)
                try:
                    try:
                        kernel.mount(device.path, fd_path(fd), None, sc.MS_BIND)
                    except OSError as exc:
                        raise MountError(device.path, exc, what="binding the device") from exc
                finally:
                    kernel.close(fd)
                continue
            kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[device.type]
            mode = device.file_mode if device.file_mode is not None else 0o666
            try:
                kernel.unlink(name, dir_fd=parent)
            except FileNotFoundError:
                pass
            try:
                kernel.mknod(name, kind | (mode & 0o7777), os.makedev(device.major, device.minor), dir_fd=parent)
            except OSError as exc:
                raise OSError(exc.errno, f"mknod {device.path} ({device.type} {device.major}:{device.minor}): {exc.strerror}") from exc
            kernel.chmod(name, mode & 0o7777, dir_fd=parent)  # mknod's mode went through the umask
            kernel.chown(name, device.uid or 0, device.gid or 0, dir_fd=parent, follow_symlinks=False)
        finally:
            kernel.close(parent)


def create_dev_symlinks(root_fd: int, with_ptmx: bool, *, kernel: Syscalls = LINUX) -> None:
    dev = open_in_root(root_fd, "/dev", os.O_PATH | os.O_DIRECTORY, kernel=kernel)
    try:
        links = list(DEV_SYMLINKS) + ([("pts/ptmx", "ptmx")] if with_ptmx else [])
        for target, name in links:
            try:
                kernel.symlink(target, name, dir_fd=dev)
            except FileExistsError:
                pass
    finally:
        kernel.close(dev)


def pivot(rootfs: str, *, kernel: Syscalls = LINUX) -> None:
    """pivot_root into `rootfs` and detach the old root (the `pivot_root(".", ".")` idiom)."""
    try:
        kernel.chdir(rootfs)
        kernel.pivot_root(".", ".")
        # The old root is now stacked under the new one: keep its unmount from
        # propagating anywhere, then drop it.
        kernel.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
        kernel.umount2(".", sc.MNT_DETACH)
        kernel.chdir("/")
    except OSError as exc:
        raise MountError(rootfs, exc, what="pivot_root into") from exc


def mount_console(root_fd: int, slave_fd: int, *, kernel: Syscalls = LINUX) -> None:
    """Bind the terminal's slave over the container's /dev/console (runc's `mountConsole`).

    Safely (CVE-2025-52565): the image may have put a symlink at /dev/console (to a
    host path, to /proc/sys/kernel/core_pattern, to /proc/self/fd/N) or race one in.
    So /dev is opened inside the rootfs without following any symlink, the target
    is created there as a new regular file (O_CREAT|O_EXCL|O_NOFOLLOW: never through a
    link) or, if the image has one, opened without following it and accepted only as
    a regular file or a character device; the bind goes from the slave's fd to the
    target's fd, so nothing can be swapped between the check and the mount. Called
    before pivot_root, so before `finish` may make the root unbindable.
    """
    try:
        dev = kernel.openat2(
            root_fd, "dev", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC,
            sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_SYMLINKS | sc.RESOLVE_NO_MAGICLINKS,
        )
    except OSError as exc:
        raise MountError("/dev", exc, what="binding the terminal under (it must be a directory, not a symlink)") from exc
    try:
        target = _console_target(dev, kernel)
        try:
            kernel.mount(fd_path(slave_fd), fd_path(target), None, sc.MS_BIND)
        except OSError as exc:
            raise MountError("/dev/console", exc, what="binding the terminal to") from exc
        finally:
            kernel.close(target)
    finally:
        kernel.close(dev)


def _console_target(dev: int, kernel: Syscalls) -> int:
    """An fd of /dev/console under `dev`: made new, or the image's if it is a file or a device."""
    try:
        try:
            return kernel.open("console", os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY | os.O_CLOEXEC, 0o666, dir_fd=dev)
        except FileExistsError:
            target = kernel.open("console", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dev)
        mode = kernel.stat(fd_path(target)).st_mode
    except OSError as exc:
        raise MountError("/dev/console", exc, what="making the terminal's mount point") from exc
    if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
        kernel.close(target)
        raise ExecutorError(
            "process.terminal: /dev/console in the container is a "
            f"{'symlink' if stat.S_ISLNK(mode) else 'special file'}, not a file or a character device: "
            "the terminal is not bound over it (CVE-2025-52565); remove it from the image"
        )
    return target


NULL_DEVICE = os.makedev(1, 3)


def open_dev_null(*, kernel: Syscalls = LINUX) -> int:
    """An O_PATH fd of the container's /dev/null, checked to be the null device.

    The image may have put anything at /dev/null when the config does not mount
    a fresh /dev: a symlink to /proc/sys/kernel/core_pattern or to a file, which
    a mask binding the path would put, writable, over the masked file
    (CVE-2025-31133, youki CVE-2025-62161). The fd is opened without following a
    final symlink and checked through itself, so nothing can swap it after.
    """
    try:
        fd = kernel.open("/dev/null", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise MountError("/dev/null", exc, what="masking with") from exc
    try:
        st = kernel.stat(fd_path(fd))
    except OSError as exc:
        kernel.close(fd)
        raise MountError("/dev/null", exc, what="masking with") from exc
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != NULL_DEVICE:
        kernel.close(fd)
        raise ExecutorError(
            "masking paths: /dev/null in the container is not the null device (char 1:3); "
            "a symlink or file there would be bound over the masked paths"
        )
    return fd


def mask_paths(paths: Iterable[str], *, kernel: Syscalls = LINUX) -> None:
    null: int | None = None
    try:
        for path in paths:
            try:
                st = kernel.lstat(path)
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(st.st_mode) and null is None:
                null = open_dev_null(kernel=kernel)
            try:
                if stat.S_ISDIR(st.st_mode):
                    kernel.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY, None)
                else:
                    kernel.mount(fd_path(null), path, None, sc.MS_BIND)  # type: ignore[arg-type]
            except OSError as exc:
                raise MountError(path, exc, what="masking") from exc
    finally:
        if null is not None:
            kernel.close(null)


def readonly_paths(paths: Iterable[str], *, kernel: Syscalls = LINUX) -> None:
    for path in paths:
        try:
            kernel.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                continue
            raise MountError(path, exc, what="read-only path") from exc
        try:
            remount(path, sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_REC, kernel=kernel)
        except OSError as exc:
            raise MountError(path, exc, what="read-only path") from exc


def write_sysctls(sysctl: Mapping[str, str], *, kernel: Syscalls = LINUX) -> None:
    """Write the config's sysctls through the init's verified procfs (`procfs`), before pivot_root.

    Never through `/proc/sys/...` in the container: there `/proc` is whatever the
    image or a volume put there, and a write may land in a fake file, on the host
    if it is a volume (CVE-2019-16884, CVE-2025-52881, CVE-2025-62596); nor by path
    in the host's view, which a joined mount namespace makes someone else's. The
    sysctls a config may set are namespaced (validation refuses others), and the
    kernel picks the namespace of the writer, not of the procfs: the init is
    already in the container's.
    """
    for key, value in sysctl.items():
        kernel.proc_write("sys/" + key.replace(".", "/"), value)


def isolating_propagation(requested: str | None) -> int:
    """What `/` becomes before any mount: rprivate if a private root was asked
    (or nothing), else rslave (the host's later mounts still reach a slave or
    shared root, as asked, but nothing flows back)."""
    if PROPAGATION_OPTIONS.get(requested or "rprivate", 0) & sc.MS_PRIVATE:
        return sc.MS_REC | sc.MS_PRIVATE
    return sc.MS_REC | sc.MS_SLAVE


def make_parent_private(rootfs: str, *, kernel: Syscalls = LINUX) -> None:
    """Make the mount the rootfs bind sits on private (runc's `rootfsParentMountPrivate`).

    pivot_root refuses a new root whose parent mount is shared; `prepare`'s first
    call already left nothing shared, this makes sure of it for the one mount that
    matters. Unlike runc it comes after the bind, so that the bind kept the
    parent's slave link (an `rslave` root then shows `master:N`). The parent is
    the closest ancestor that is a mount point: changing the propagation of a
    directory that is not one is EINVAL, so walk up until it is one (`/` always
    is). A rootfs that was a mount point itself (an overlay) is covered by the
    bind and keeps the rslave or rprivate that `prepare` gave it.
    """
    path = os.path.dirname(os.path.normpath(rootfs))
    while True:
        try:
            kernel.mount(None, path, None, sc.MS_PRIVATE)
            return
        except OSError as exc:
            if exc.errno != errno.EINVAL or path == "/":
                raise MountError(path, exc, what="making private the rootfs's parent mount") from exc
        path = os.path.dirname(path)


def apply_root_propagation(requested: str | None, *, kernel: Syscalls = LINUX) -> None:
    """The `rootfsPropagation` asked for, on the container's `/` (after pivot_root, so
    it is the container's root that becomes shared, not the host's)."""
    if requested is None:
        return  # the default, rprivate, is what `prepare` left
    try:
        kernel.mount(None, "/", None, PROPAGATION_OPTIONS[requested])
    except OSError as exc:
        raise MountError("/", exc, what=f"rootfsPropagation {requested} of") from exc


def prepare(
    config: Config,
    cgroup_paths: Mapping[str, str],
    *,
    in_user_namespace: bool,
    new_cgroupns: bool,
    kernel: Syscalls = LINUX,
    idmapped: Mapping[int, int] | None = None,
) -> None:
    """Everything before pivot_root: cut `/` off from the host, the rootfs bind, the config's mounts, /dev.

    The first call makes every mount of the new namespace a slave (private if
    private was asked) of the host's: from then on no mount made here reaches
    the host's namespace, so a failure anywhere after it leaves nothing behind
    (the namespace dies with the init). The propagation asked for is applied to
    the new `/` only after pivot_root (`finish`): a shared `/` before it would
    send every mount back to the host's peers and make pivot_root fail.
    """
    rootfs = config.root.path
    try:
        kernel.mount(None, "/", None, isolating_propagation(config.rootfs_propagation))
    except OSError as exc:
        raise MountError("/", exc, what="rootfs propagation of") from exc
    try:
        kernel.mount(rootfs, rootfs, None, sc.MS_BIND | sc.MS_REC)  # pivot_root needs a mount point
    except OSError as exc:
        raise MountError(rootfs, exc, what="binding the rootfs") from exc
    make_parent_private(rootfs, kernel=kernel)
    root_fd = kernel.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        dev_is_tmpfs = False
        has_pts = False
        for i, mount in enumerate(config.mounts):
            tree_fd = (idmapped or {}).get(i)
            mount_one(root_fd, mount, config, cgroup_paths, new_cgroupns, kernel=kernel, tree_fd=tree_fd)
            dest = os.path.normpath(mount.destination)
            if dest == "/dev" and mount.type == "tmpfs":
                dev_is_tmpfs = True
            if dest == "/dev/pts":
                has_pts = True
        devices = list(config.devices)
        if dev_is_tmpfs:
            configured = {os.path.normpath(d.path) for d in devices}
            devices = [d for d in DEFAULT_DEVICES if d.path not in configured] + devices
            create_dev_symlinks(root_fd, has_pts, kernel=kernel)
        if devices:
            create_devices(root_fd, devices, in_user_namespace, kernel=kernel)
        cwd = config.process.cwd
        try:
            kernel.close(make_in_root(root_fd, cwd, directory=True, kernel=kernel))
        except OSError as exc:  # e.g. /proc/self/fd/N (CVE-2024-21626): say which setting it is
            raise ExecutorError(f"process.cwd {cwd!r} cannot be made in the rootfs: {exc}") from exc
    finally:
        kernel.close(root_fd)


def finish(config: Config, *, kernel: Syscalls = LINUX) -> None:
    """Everything after pivot_root: read-only and masked paths, the root's
    propagation, a read-only root (the sysctls come before pivot_root: `write_sysctls`).

    The propagation comes after the binds of read-only and masked paths: a
    `runbindable` root would refuse them.
    """
    readonly_paths(config.readonly_paths, kernel=kernel)
    mask_paths(config.masked_paths, kernel=kernel)
    apply_root_propagation(config.rootfs_propagation, kernel=kernel)
    if config.root.readonly:
        try:
            remount("/", sc.MS_RDONLY, kernel=kernel)
        except OSError as exc:
            raise MountError("/", exc, what="read-only remount of") from exc
