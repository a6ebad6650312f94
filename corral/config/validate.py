"""Validation: whether a configuration is one corral can honour exactly, and path resolution.

One function per OCI object, each given the JSON path of its object, so that
every error names the entry to fix whether the config came from JSON or from
Python. The checks across sections (user namespace and id mappings, hostname
and uts, sysctls and their namespaces) run once every section is well-formed.
Relative host paths are anchored at the bundle here too, before validation,
because only an absolute path can be checked.

Called from `Config.__post_init__` and `Process.__post_init__` (spec.py), so
that an invalid object never exists; it imports the parts (types.py) but not
those two classes, which sit above it.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from corral.config.checks import (
    check_abs_path,
    check_bool,
    check_instance,
    check_list,
    check_no_nul,
    check_paths,
    check_positive_or_unlimited,
    check_range,
    check_range_or_unlimited,
    check_string,
    check_string_map,
    check_strings,
    check_uint32,
    check_unique,
    fail,
    free_key,
)
from corral.config.linux import (
    BLKIO_WEIGHT_MAX,
    BLKIO_WEIGHT_MIN,
    CAPABILITIES,
    CAPABILITY_SETS,
    CFS_PERIOD_MAX_US,
    CFS_PERIOD_MIN_US,
    CFS_QUOTA_MAX_US,
    CPU_SHARES_MAX,
    CPU_SHARES_MIN,
    DEVICE_MAJOR_BITS,
    DEVICE_MINOR_BITS,
    DEVICE_RULE_TYPES,
    DEVICE_TYPES,
    HOST_NAME_MAX,
    INT64_MAX,
    IPC_SYSCTLS,
    MAX_ID_MAP_RANGES,
    NAMESPACE_TYPES,
    PID_MAX_LIMIT,
    RLIMITS,
    ROOTFS_PROPAGATIONS,
    UINT32_MAX,
    UINT64_MAX,
)
from corral.config.hooks import validate_hooks
from corral.config.seccomp import validate_seccomp
from corral.config.process_attrs import (
    validate_cpu_affinity,
    validate_io_priority,
    validate_personality,
    validate_scheduler,
    validate_time_offsets,
)
from corral.config.types import (
    BlockIOResources,
    Capabilities,
    ConsoleSize,
    CpuResources,
    Device,
    DeviceRule,
    HugepageLimit,
    IDMapping,
    MemoryResources,
    Mount,
    Namespace,
    PidsResources,
    Resources,
    Rlimit,
    Root,
    User,
)
from corral.records import replace

if TYPE_CHECKING:  # pragma: no cover
    from corral.config.spec import Config, Process

# --------------------------------------------------------------------------- validation

_OCI_VERSION = re.compile(r"1\.\d+(\.\d+)?([-+][0-9A-Za-z.+-]*)?")
_ENV = re.compile(r"[^=\0]+=[^\0]*")
_CPU_LIST = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*")
#: Linux numbers CPUs below NR_CPUS (at most 8192) and memory nodes below MAX_NUMNODES (1024):
#: a longer number is a mistake, and the kernel says only ERANGE.
_CPU_NUMBER_DIGITS = 5


def validate_process(p: Process, w: str) -> None:
    check_bool(p.terminal, f"{w}.terminal")
    if p.console_size is not None:
        check_instance(p.console_size, ConsoleSize, f"{w}.consoleSize")
        check_range(p.console_size.height, f"{w}.consoleSize.height", 0, 0xFFFF)  # struct winsize: unsigned short
        check_range(p.console_size.width, f"{w}.consoleSize.width", 0, 0xFFFF)
    if p.selinux_label is not None:
        check_string(p.selinux_label, f"{w}.selinuxLabel")
    if p.apparmor_profile is not None:
        check_string(p.apparmor_profile, f"{w}.apparmorProfile")
    if (
        not isinstance(p.args, tuple)
        or not p.args
        or not all(isinstance(arg, str) for arg in p.args)
    ):
        fail(f"{w}.args", "must be a non-empty list of strings")
    for i, arg in enumerate(p.args):
        check_no_nul(arg, f"{w}.args[{i}]")
    for i, var in enumerate(check_list(p.env, f"{w}.env", "strings of the form NAME=value")):
        if not isinstance(var, str) or not _ENV.fullmatch(var):
            fail(f"{w}.env[{i}]", "must be a string of the form NAME=value")
        check_no_nul(var, f"{w}.env[{i}]")
    check_abs_path(p.cwd, f"{w}.cwd")
    check_instance(p.user, User, f"{w}.user")
    _validate_user(p.user, f"{w}.user")
    _validate_rlimits(p.rlimits, f"{w}.rlimits")
    check_bool(p.no_new_privileges, f"{w}.noNewPrivileges")
    if p.capabilities is not None:
        check_instance(p.capabilities, Capabilities, f"{w}.capabilities")
        _validate_capabilities(p.capabilities, f"{w}.capabilities")
    if p.oom_score_adj is not None:
        check_range(p.oom_score_adj, f"{w}.oomScoreAdj", -1000, 1000)
    if p.io_priority is not None:
        validate_io_priority(p.io_priority, f"{w}.ioPriority")
    if p.scheduler is not None:
        validate_scheduler(p.scheduler, f"{w}.scheduler")
    if p.exec_cpu_affinity is not None:
        validate_cpu_affinity(p.exec_cpu_affinity, f"{w}.execCPUAffinity")


#: (uid_t)-1: setresuid/setresgid read it as "leave this id unchanged", so a process given
#: it would keep the ids (root's) of the process that set them (crun CVE-2026-30892's class).
NO_ID = 2**32 - 1


def _check_id(value: object, where: str) -> None:
    if check_uint32(value, where) == NO_ID:
        fail(where, f"must not be {NO_ID}: the kernel reads (uid_t)-1 as 'unchanged', and the process would stay root")


def _validate_user(u: User, w: str) -> None:
    _check_id(u.uid, f"{w}.uid")
    _check_id(u.gid, f"{w}.gid")
    for i, gid in enumerate(check_list(u.additional_gids, f"{w}.additionalGids", "integers")):
        _check_id(gid, f"{w}.additionalGids[{i}]")
    if u.umask is not None:
        check_range(u.umask, f"{w}.umask", 0, 0o777, "must be an integer from 0 to 511 (0o777)")


def _validate_rlimits(rlimits: object, w: str) -> None:
    seen: dict[int, str] = {}
    for i, r in enumerate(check_list(rlimits, w, "rlimit objects")):
        wi = f"{w}[{i}]"
        check_instance(r, Rlimit, wi)
        if not isinstance(r.type, str) or r.type not in RLIMITS:
            fail(f"{wi}.type", f"unknown rlimit {r.type!r}")
        check_range(r.soft, f"{wi}.soft", 0, UINT64_MAX)
        check_range(r.hard, f"{wi}.hard", 0, UINT64_MAX)
        if r.soft > r.hard:
            fail(wi, f"soft {r.soft} is above hard {r.hard}")
        earlier = seen.get(RLIMITS[r.type])
        if earlier == r.type:
            fail(w, f"{r.type!r} appears twice")
        if earlier is not None:  # RLIMIT_OFILE is RLIMIT_NOFILE under another name
            fail(wi, f"{r.type!r} is the same limit as {earlier!r}")
        seen[RLIMITS[r.type]] = r.type


def _validate_capabilities(c: Capabilities, w: str) -> None:
    for name in CAPABILITY_SETS:
        ws = f"{w}.{name}"
        for i, cap in enumerate(check_list(getattr(c, name), ws, "capability names")):
            if not isinstance(cap, str) or cap not in CAPABILITIES:
                fail(f"{ws}[{i}]", f"unknown capability {cap!r}")
    # capset(2) refuses this with a bare EPERM at start; saying so here names the
    # entry to fix. (Ambient capabilities missing from inheritable are not
    # refused: `runc spec` writes such sets, and runc only warns about them.)
    permitted = set(c.permitted)
    for i, cap in enumerate(c.effective):
        if cap not in permitted:
            fail(f"{w}.effective[{i}]", f"{cap} is not in permitted (the kernel refuses it)")


def validate_sections(c: Config) -> None:
    """Everything in a Config after its version and the class of its process.

    `Config.validate()` checks those two first (in that order, so that the first
    error is the same whichever way the config was built); the Process class is
    defined above this module, which is why the check is not made here.
    """
    validate_process(c.process, "process")
    _validate_root(c.root, c.bundle)
    if c.hostname is not None:
        _validate_hostname(c.hostname)
    if c.domainname is not None:
        _validate_hostname(c.domainname, "domainname")
    if c.personality is not None:
        validate_personality(c.personality, "linux.personality")
    validate_time_offsets(c.time_offsets, "linux.timeOffsets")
    for i, m in enumerate(check_list(c.mounts, "mounts", "mount objects")):
        check_instance(m, Mount, f"mounts[{i}]")
        _validate_mount(m, f"mounts[{i}]")
    check_string_map(c.annotations, "annotations")
    validate_hooks(c.hooks, "hooks")
    _validate_namespaces(c.namespaces)
    _validate_id_mappings(c.uid_mappings, "linux.uidMappings")
    _validate_id_mappings(c.gid_mappings, "linux.gidMappings")
    if c.resources is not None:
        check_instance(c.resources, Resources, "linux.resources")
        _validate_resources(c.resources, "linux.resources")
    if c.cgroups_path is not None:
        _validate_cgroups_path(c.cgroups_path)
    check_paths(c.masked_paths, "linux.maskedPaths")
    check_paths(c.readonly_paths, "linux.readonlyPaths")
    for i, d in enumerate(check_list(c.devices, "linux.devices", "device objects")):
        check_instance(d, Device, f"linux.devices[{i}]")
        _validate_device(d, f"linux.devices[{i}]")
    check_string_map(c.sysctl, "linux.sysctl")
    if c.rootfs_propagation is not None and c.rootfs_propagation not in ROOTFS_PROPAGATIONS:
        fail("linux.rootfsPropagation", f"must be one of {', '.join(ROOTFS_PROPAGATIONS)}")
    if c.seccomp is not None:
        validate_seccomp(c.seccomp, "linux.seccomp")
    if c.mount_label is not None:
        check_string(c.mount_label, "linux.mountLabel")
    if c.bundle is not None:
        check_abs_path(c.bundle, "bundle")
    _validate_cross_checks(c)


def validate_version(version: object) -> None:
    if not isinstance(version, str):
        fail("ociVersion", 'must be a string such as "1.0.2"')
    if not _OCI_VERSION.fullmatch(version):
        fail("ociVersion", f"unsupported version {version!r} (corral reads runtime-spec 1.x)")


def _validate_root(root: object, bundle: str | None) -> None:
    check_instance(root, Root, "root")
    assert isinstance(root, Root)
    if bundle is None:
        problem = "must be an absolute path (a relative one needs a bundle directory)"
    else:
        problem = "must be an absolute path or relative to the bundle"
    check_abs_path(root.path, "root.path", problem)
    check_bool(root.readonly, "root.readonly")


def _validate_hostname(hostname: object, w: str = "hostname") -> None:
    """Also `domainname`: the kernel keeps both in 64-byte fields of the UTS namespace."""
    if not isinstance(hostname, str):
        fail(w, "must be a string")
    check_no_nul(hostname, w)
    if len(hostname.encode()) > HOST_NAME_MAX:
        fail(w, f"must be at most {HOST_NAME_MAX} bytes long")


def _validate_mount(m: Mount, w: str) -> None:
    check_abs_path(m.destination, f"{w}.destination")
    if m.type is not None:
        check_string(m.type, f"{w}.type")
    if m.source is not None:
        check_string(m.source, f"{w}.source")
    check_strings(m.options, f"{w}.options")
    if m.uid_mappings or m.gid_mappings:
        # As runc: an idmapped mount is a bind mount, with both tables.
        if not m.is_bind:
            fail(f"{w}.uidMappings", "an idmapped mount must be a bind mount (options 'bind' or 'rbind')")
        for name, mappings in (("uidMappings", m.uid_mappings), ("gidMappings", m.gid_mappings)):
            if not mappings:
                fail(f"{w}.{name}", "required with the other table: an idmapped mount maps both uids and gids")
            _validate_id_mappings(mappings, f"{w}.{name}")
    if m.is_bind:
        if m.source is None:
            fail(f"{w}.source", "required for a bind mount")
        check_abs_path(
            m.source,
            f"{w}.source",
            "must be an absolute path for a bind mount (or relative to the bundle)",
        )


def _validate_namespaces(namespaces: object) -> None:
    types: list[str] = []
    for i, ns in enumerate(check_list(namespaces, "linux.namespaces", "namespace objects")):
        wi = f"linux.namespaces[{i}]"
        check_instance(ns, Namespace, wi)
        if not isinstance(ns.type, str) or ns.type not in NAMESPACE_TYPES:
            fail(
                f"{wi}.type",
                f"unknown namespace type {ns.type!r} "
                f"(expected one of {', '.join(NAMESPACE_TYPES)})",
            )
        if ns.path is not None:
            check_abs_path(ns.path, f"{wi}.path")
        types.append(ns.type)
    check_unique(types, "linux.namespaces")


def _validate_id_mappings(mappings: object, w: str) -> None:
    items = check_list(mappings, w, "mapping objects")
    if len(items) > MAX_ID_MAP_RANGES:
        fail(w, f"at most {MAX_ID_MAP_RANGES} ranges (the kernel's limit)")
    for i, m in enumerate(items):
        wi = f"{w}[{i}]"
        check_instance(m, IDMapping, wi)
        check_uint32(m.container_id, f"{wi}.containerID")
        check_uint32(m.host_id, f"{wi}.hostID")
        check_range(m.size, f"{wi}.size", 1, UINT32_MAX)
        for name, start in (("containerID", m.container_id), ("hostID", m.host_id)):
            if start + m.size - 1 > UINT32_MAX:
                fail(wi, f"{name} {start} + size {m.size} goes past {UINT32_MAX}")
        for j, other in enumerate(items[:i]):
            if _overlap(m.container_id, other.container_id, m.size, other.size) or _overlap(
                m.host_id, other.host_id, m.size, other.size
            ):
                fail(wi, f"overlaps {w}[{j}] (the kernel refuses overlapping ranges)")


def _overlap(a: int, b: int, a_size: int, b_size: int) -> bool:
    return a < b + b_size and b < a + a_size


def _validate_resources(r: Resources, w: str) -> None:
    if r.memory is not None:
        check_instance(r.memory, MemoryResources, f"{w}.memory")
        _validate_memory(r.memory, f"{w}.memory")
    if r.cpu is not None:
        check_instance(r.cpu, CpuResources, f"{w}.cpu")
        _validate_cpu(r.cpu, f"{w}.cpu")
    if r.pids is not None:
        check_instance(r.pids, PidsResources, f"{w}.pids")
        check_range_or_unlimited(
            r.pids.limit,
            f"{w}.pids.limit",
            1,
            PID_MAX_LIMIT,
            "the kernel's PID_MAX_LIMIT",
            "; 0 is ambiguous (runc reads it as unlimited)",
        )
    if r.block_io is not None:
        check_instance(r.block_io, BlockIOResources, f"{w}.blockIO")
        if r.block_io.weight is not None:
            check_range(
                r.block_io.weight, f"{w}.blockIO.weight", BLKIO_WEIGHT_MIN, BLKIO_WEIGHT_MAX
            )
    for i, rule in enumerate(check_list(r.devices, f"{w}.devices", "device rule objects")):
        check_instance(rule, DeviceRule, f"{w}.devices[{i}]")
        _validate_device_rule(rule, f"{w}.devices[{i}]")
    sizes: set[int] = set()
    limits = check_list(r.hugepage_limits, f"{w}.hugepageLimits", "hugepage limit objects")
    for i, h in enumerate(limits):
        wi = f"{w}.hugepageLimits[{i}]"
        check_instance(h, HugepageLimit, wi)
        size = page_size_bytes(h.page_size)
        if size is None:
            fail(f"{wi}.pageSize", "must be a size such as 2MB, 1GB or 64KB (<number><KB|MB|GB>)")
        if size in sizes:
            fail(f"{wi}.pageSize", f"{h.page_size} is limited twice")
        sizes.add(size)
        check_range(h.limit, f"{wi}.limit", 0, UINT64_MAX)
        if h.limit % size and h.limit != UINT64_MAX:  # the kernel would round it down without a word
            fail(f"{wi}.limit", f"must be a whole number of {h.page_size} pages (a multiple of {size})")


_PAGE_SIZE = re.compile(r"([1-9][0-9]{0,15})([KMG])B")


def page_size_bytes(page_size: object) -> int | None:
    """A hugepageLimits pageSize ("2MB") in bytes, or None if it is not one."""
    if not isinstance(page_size, str):
        return None
    match = _PAGE_SIZE.fullmatch(page_size)
    if match is None:
        return None
    return int(match.group(1)) << {"K": 10, "M": 20, "G": 30}[match.group(2)]


def _validate_memory(m: MemoryResources, w: str) -> None:
    for name in ("limit", "reservation", "swap"):
        value = getattr(m, name)
        if value is not None:
            check_positive_or_unlimited(value, f"{w}.{name}")
    if m.swap is None or m.swap == -1:
        return
    # OCI swap is memory plus swap (cgroup v1's memsw): the kernel (v1) and
    # runc's conversion for v2 both refuse these.
    if m.limit is None or m.limit == -1:
        fail(f"{w}.swap", f"cannot be limited without a memory limit ({w}.limit)")
    if m.swap < m.limit:
        fail(
            f"{w}.swap",
            f"{m.swap} is below limit {m.limit} (OCI swap counts memory plus swap, "
            "so it must be at least the limit, or -1)",
        )


def _validate_cpu(c: CpuResources, w: str) -> None:
    if c.shares is not None:
        check_range(
            c.shares, f"{w}.shares", CPU_SHARES_MIN, CPU_SHARES_MAX,
            f"must be an integer from {CPU_SHARES_MIN} to {CPU_SHARES_MAX} (the kernel's "
            "MIN_SHARES and MAX_SHARES: it would silently clamp any other value)",
        )
    if c.quota is not None:
        check_range_or_unlimited(
            c.quota, f"{w}.quota", CFS_PERIOD_MIN_US, CFS_QUOTA_MAX_US,
            "microseconds: at least 1 ms, the kernel's range for a CFS quota",
        )
    if c.period is not None:
        check_range(
            c.period, f"{w}.period", CFS_PERIOD_MIN_US, CFS_PERIOD_MAX_US,
            f"must be an integer from {CFS_PERIOD_MIN_US} to {CFS_PERIOD_MAX_US} "
            "(microseconds: 1 ms to 1 s, the kernel's range for a CFS period)",
        )
    for name, what in (("cpus", "CPU numbers"), ("mems", "memory node numbers")):
        value = getattr(c, name)
        if value is not None:
            _validate_cpu_list(value, f"{w}.{name}", what)


def _validate_cpu_list(value: object, where: str, what: str) -> None:
    problem = f"must be a string of {what} and ranges such as '0-2,4'"
    if not isinstance(value, str) or not _CPU_LIST.fullmatch(value):
        fail(where, problem)
    for part in value.split(","):
        low, _, high = part.partition("-")
        for number in (low, high):
            if len(number) > _CPU_NUMBER_DIGITS:  # also before int(), which refuses 4,300
                fail(where, f"{problem}: {number[:20]}... is longer than any {what[:-1]}")
        if high and int(high) < int(low):
            fail(where, f"{problem}: range {part!r} goes backwards")


def _validate_device_rule(rule: DeviceRule, w: str) -> None:
    check_bool(rule.allow, f"{w}.allow")
    if rule.type is not None and rule.type not in DEVICE_RULE_TYPES:
        fail(f"{w}.type", f"must be one of {', '.join(DEVICE_RULE_TYPES)}")
    for name in ("major", "minor"):
        value = getattr(rule, name)
        if value is not None:
            check_range(
                value, f"{w}.{name}", 0, INT64_MAX,
                "must be an integer of 0 or more (leave it out to mean any)",
            )
    if rule.access is not None:
        access = rule.access
        if (
            not isinstance(access, str)
            or not access
            or set(access) - set("rwm")
            or len(set(access)) != len(access)
        ):
            fail(f"{w}.access", "must be some of the letters r, w and m, each at most once")


def _validate_cgroups_path(path: object) -> None:
    """Absolute (from the hierarchy's root), or relative: the spec leaves where a relative
    path goes to the runtime, and the executor puts it under the store's own parent
    (``/corral/<store tag>/<path>``, linux.py)."""
    w = "linux.cgroupsPath"
    if isinstance(path, str) and ":" in path and not path.startswith("/"):
        fail(
            w,
            "systemd cgroup paths (slice:prefix:name) are not supported yet; "
            "give a cgroupfs path such as /corral/<id>",
        )
    check_string(path, w)
    assert isinstance(path, str)
    if not path.startswith("/") and os.path.normpath(path) == ".":
        fail(w, "must name a cgroup (a relative path is placed below corral's own cgroup)")
    if ".." in path.split("/"):
        fail(w, "must not contain '..' components")
    if not path.strip("/"):
        fail(w, "must name a cgroup below the root cgroup")


def _validate_device(d: Device, w: str) -> None:
    check_abs_path(d.path, f"{w}.path")
    if d.type not in DEVICE_TYPES:
        fail(f"{w}.type", f"must be one of {', '.join(DEVICE_TYPES)}")
    for name, bits in (("major", DEVICE_MAJOR_BITS), ("minor", DEVICE_MINOR_BITS)):
        check_range(
            getattr(d, name), f"{w}.{name}", 0, (1 << bits) - 1,
            f"must be an integer from 0 to {(1 << bits) - 1} (mknod takes {bits} bits of {name})",
        )
    if d.file_mode is not None:
        check_range(
            d.file_mode, f"{w}.fileMode", 0, 0o7777,
            "must be an integer from 0 to 4095 (permission bits: 0o666 is 438)",
        )
    if d.uid is not None:
        check_uint32(d.uid, f"{w}.uid")
    if d.gid is not None:
        check_uint32(d.gid, f"{w}.gid")


# ---- checks across sections (run once every section is well-formed)

_USER_NS_HINT = "linux.namespaces has 'user' without a path"


def _validate_cross_checks(c: Config) -> None:
    _check_user_namespace(c)
    if c.hostname is not None and c.namespace("uts") is None:
        # As runc: sethostname() outside a private UTS namespace renames the host.
        fail("hostname", "cannot be set without a uts namespace (linux.namespaces has no 'uts')")
    if c.domainname is not None and c.namespace("uts") is None:
        fail("domainname", "cannot be set without a uts namespace (linux.namespaces has no 'uts')")
    if c.time_offsets and not c.creates_namespace("time"):
        # As runc: offsets can be written only before a process runs in a new time namespace.
        fail("linux.timeOffsets", "need a new time namespace (linux.namespaces has no 'time' without a path)")
    for name, paths in (("maskedPaths", c.masked_paths), ("readonlyPaths", c.readonly_paths)):
        if paths and c.namespace("mount") is None:
            fail(
                f"linux.{name}",
                "need a mount namespace (linux.namespaces has no 'mount'): "
                "they would change the host's mounts",
            )
    for key in c.sysctl:
        _check_sysctl(c, key)


def _check_user_namespace(c: Config) -> None:
    new_user_ns = c.creates_namespace("user")
    for name, mappings in (("uidMappings", c.uid_mappings), ("gidMappings", c.gid_mappings)):
        if new_user_ns and not mappings:
            fail(f"linux.{name}", f"required when a user namespace is created ({_USER_NS_HINT})")
        if mappings and not new_user_ns:
            fail(
                f"linux.{name}",
                f"given, but no user namespace is created (only when {_USER_NS_HINT})",
            )
    if not new_user_ns:
        return
    user = c.process.user
    _check_mapped(user.uid, c.uid_mappings, "process.user.uid", "linux.uidMappings")
    _check_mapped(user.gid, c.gid_mappings, "process.user.gid", "linux.gidMappings")
    for i, gid in enumerate(user.additional_gids):
        _check_mapped(gid, c.gid_mappings, f"process.user.additionalGids[{i}]", "linux.gidMappings")


def _check_mapped(value: int, mappings: tuple[IDMapping, ...], where: str, table: str) -> None:
    """setuid()/setgroups() with an id the user namespace does not map fail with EINVAL."""
    if not any(m.container_id <= value < m.container_id + m.size for m in mappings):
        fail(where, f"{value} is not mapped by {table} (the kernel refuses to switch to it)")


def _check_sysctl(c: Config, key: str) -> None:
    """Only namespaced sysctls: writing any other one changes the host's value."""
    where = free_key("linux.sysctl", key)
    parts = re.split(r"[./]", key)
    if any(part in ("", "..") for part in parts) or "\0" in key or any(ch.isspace() for ch in key):
        fail(where, "is not a sysctl name")
    check_no_nul(c.sysctl[key], where)  # written to /proc/sys: a NUL would cut it short
    if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
        needed = "ipc"
    elif key.startswith("net."):
        needed = "network"
    elif key == "kernel.domainname":
        needed = "uts"
    elif key == "kernel.hostname":
        fail(where, "conflicts with the OCI 'hostname' field: set that instead")
    else:
        fail(where, "is not namespaced in the kernel: setting it would change the host's value")
    if c.namespace(needed) is None:
        fail(where, f"needs a {needed} namespace (linux.namespaces has no {needed!r})")


# --------------------------------------------------------------------------- path resolution


def resolve_paths(c: Config) -> None:
    """Anchor relative host paths (root, bind sources) at the bundle, as runc does."""
    bundle = c.bundle
    if not isinstance(bundle, str) or not bundle.startswith("/"):
        bundle = None
    root = c.root
    if isinstance(root, Root) and isinstance(root.path, str) and root.path:
        path = _anchor(root.path, bundle)
        if path != root.path:
            object.__setattr__(c, "root", Root(path, root.readonly))
    if bundle is None or not isinstance(c.mounts, tuple):
        return
    mounts = tuple(
        replace(m, source=_anchor(m.source, bundle))
        if isinstance(m, Mount) and m.is_bind and isinstance(m.source, str) and m.source
        else m
        for m in c.mounts
    )
    if mounts != c.mounts:
        object.__setattr__(c, "mounts", mounts)


def _anchor(path: str, bundle: str | None) -> str:
    """Absolute paths are kept as written; relative ones without a bundle are left
    for validation to report."""
    if path.startswith("/") or bundle is None:
        return path
    return os.path.normpath(os.path.join(bundle, path))

