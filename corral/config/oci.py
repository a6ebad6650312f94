"""OCI runtime-spec JSON in and out: config.json (and an exec process) to the dataclasses and back.

The counterpart of runc's specconv. JSON follows OCI semantics, not the Python
defaults: a section that is left out means "none" (no mounts, no new
namespaces, no capability changes), because that is what every other OCI
runtime reads into the same file; `to_dict` therefore writes every non-empty
section, so that `Config.from_dict(c.to_dict()) == c` always holds.

A key the OCI spec defines but corral cannot honour exactly is refused with a
ConfigError naming the JSON path, because a container that quietly runs without
the hook it was given is worse than one that does not start (the `linux.seccomp`
section is read and written by seccomp.py). A key the spec does not define is ignored, as the spec requires ("MUST
NOT generate an error ... MUST ignore it"), with a warning that names its path
and hints at a misspelling: logged once on the ``corral`` logger and kept on
`Config.warnings`. ``strict=True`` refuses it instead. The deprecated
kernel-memory limits (`memory.kernel`, `memory.kernelTCP`) are ignored with a
warning too, in either mode, as runc >= 1.1 does: Linux 6.x removed them and
cgroup v2 never had them. Values are checked by the dataclasses themselves as
they are built (validate.py).
"""

from __future__ import annotations

import itertools
import json
import os
import re
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Iterator, Mapping, NoReturn, TypeVar

from corral.config.checks import fail, free_key, join, json_type
from corral.config.hooks import HOOK_KINDS, Hook, Hooks
from corral.config.linux import CAPABILITY_SETS
from corral.config.network import NETWORK_ANNOTATION, Network, network_to_annotation, parse_annotation
from corral.config.process_attrs import (
    CPUAffinity,
    IOPriority,
    Personality,
    Scheduler,
    TimeOffset,
    cpu_affinity_to_dict,
    io_priority_to_dict,
    personality_to_dict,
    scheduler_to_dict,
    time_offsets_to_dict,
)
from corral.config.seccomp import parse_seccomp, seccomp_to_dict
from corral.config.spec import Config, Process
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
from corral.config.validate import validate_version
from corral.errors import ConfigError
from corral.records import field_names

# --------------------------------------------------------------------------- limits on the text

#: Bounds on what a config.json may be, so that reading one takes bounded time and memory
#: and ends in a ConfigError, whatever the file holds. A valid OCI config is a few kilobytes,
#: five levels deep, with numbers of at most 20 digits: the limits are far above any real
#: config, and only decide which error an absurd file gets.
#:
#: Size: runc has none. Python's objects take up to ~22 bytes per byte of JSON (a file of
#: ``[[],[],...]``), so 16 MiB of text costs at most ~400 MB while it is read.
MAX_CONFIG_BYTES = 16 * 1024 * 1024
#: Nesting: the config object is level 1. Go's encoding/json (runc) stops at 10,000; Python's
#: parser recurses once per level and would raise RecursionError at about 1,000 minus the
#: caller's stack, so corral counts the levels itself before parsing, with room to spare.
MAX_JSON_DEPTH = 100
#: Digits of one integer: Python's int() refuses more than 4,300 (a ValueError), or whatever
#: the process set with sys.set_int_max_str_digits(); corral's own bound does not depend on it.
MAX_NUMBER_DIGITS = 100

# --------------------------------------------------------------------------- JSON -> dataclasses

_T = TypeVar("_T")


UNKNOWN_KEY = "not a key of the OCI runtime spec; check its spelling"


class _Reading:
    """One parse's leniency and the warnings it gave (ignored keys), in the order met."""

    def __init__(self, strict: bool, source: str | None) -> None:
        self.strict = strict
        self.source = source
        self.warnings: list[str] = []

    def warn(self, where: str, problem: str) -> None:
        message = f"{where}: {problem}"
        if message in self.warnings:
            return
        self.warnings.append(message)
        import logging  # here: a CLI create would pay ~2-4 ms to import it for a warning seldom given

        logging.getLogger("corral").warning("%s%s", f"{self.source}: " if self.source else "", message)


#: The parse in progress (one per thread or task); outside `reading()`, a lenient one that
#: only logs, for parse functions called on their own.
_READING: ContextVar[_Reading | None] = ContextVar("corral_config_reading", default=None)


@contextmanager
def reading(strict: bool = False, source: str | None = None) -> Iterator[_Reading]:
    """Parse inside this to collect the warnings of ignored keys (and refuse them if `strict`)."""
    current = _Reading(strict, source)
    token = _READING.set(current)
    try:
        yield current
    finally:
        _READING.reset(token)


def _current() -> _Reading:
    current = _READING.get()
    return current if current is not None else _Reading(False, None)


def _object(
    value: object,
    where: str,
    keys: frozenset[str],
    oci_keys: frozenset[str] = frozenset(),
    ignored: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The object's non-null members corral honours.

    A key the spec knows but corral does not honour is refused; one in `ignored`
    (key -> why) is dropped with a warning; one the spec does not know is
    dropped with a warning, or refused in strict mode. Keys are checked before
    any value, so that an unsupported feature is named first rather than a
    detail of the object it sits in.
    """
    if not isinstance(value, Mapping):
        fail(where or "(top level)", f"must be an object, not {json_type(value)}")
    members: dict[str, Any] = {}
    for key, item in value.items():
        if item is None:
            continue
        if key not in keys:
            path = join(where, str(key))
            if key in oci_keys:
                fail(path, "not supported yet")
            if ignored is not None and key in ignored:
                _current().warn(path, ignored[key])
                continue
            if _current().strict:
                fail(path, UNKNOWN_KEY)
            _current().warn(path, f"{UNKNOWN_KEY}; ignored")
            continue
        members[key] = item
    return members


def _required(members: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in members:
        fail(join(where, key), "required")
    return members[key]


def _objects(value: object, where: str, parse: Callable[[object, str], _T]) -> tuple[_T, ...]:
    if not isinstance(value, list):
        fail(where, f"must be a list, not {json_type(value)}")
    return tuple(parse(item, f"{where}[{i}]") for i, item in enumerate(value))


_CONFIG_KEYS = frozenset(
    {"ociVersion", "process", "root", "hostname", "domainname", "mounts", "annotations", "linux", "hooks"}
)
_CONFIG_OCI_KEYS = frozenset({"solaris", "windows", "vm", "zos"})


def parse_config(data: object, bundle: str | None) -> Config:
    """Inside `reading()` to choose strictness; the Config carries the warnings given so far."""
    d = _object(data, "", _CONFIG_KEYS, _CONFIG_OCI_KEYS)
    _required(d, "ociVersion", "")
    validate_version(d["ociVersion"])  # first: other keys mean nothing in another version
    process = parse_process(_required(d, "process", ""), "process")
    root = _parse_root(_required(d, "root", ""), "root")
    linux = _parse_linux(d.get("linux", {}), "linux")
    annotations, network = _split_network(d.get("annotations", {}))
    return Config(
        process=process,
        root=root,
        hostname=d.get("hostname"),
        domainname=d.get("domainname"),
        mounts=_objects(d.get("mounts", []), "mounts", _parse_mount),
        annotations=annotations,
        network=network,
        hooks=_parse_hooks(d.get("hooks", {}), "hooks"),
        oci_version=d["ociVersion"],
        bundle=bundle,
        warnings=tuple(_current().warnings),
        **linux,
    )


def _parse_hooks(value: object, w: str) -> Hooks:
    d = _object(value, w, frozenset(HOOK_KINDS))
    return Hooks(
        **{field: _objects(d.get(kind, []), f"{w}.{kind}", _parse_hook) for kind, field in HOOK_KINDS.items()}
    )


def _parse_hook(value: object, w: str) -> Hook:
    d = _object(value, w, frozenset({"path", "args", "env", "timeout"}))
    return Hook(
        path=_required(d, "path", w), args=d.get("args", ()), env=d.get("env", ()), timeout=d.get("timeout")
    )


def _split_network(annotations: object) -> tuple[object, Network | None]:
    """The annotations without corral's network section, and that section (config/network.py)."""
    if not isinstance(annotations, Mapping) or NETWORK_ANNOTATION not in annotations:
        return annotations, None
    text = annotations[NETWORK_ANNOTATION]
    if not isinstance(text, str):
        fail(free_key("annotations", NETWORK_ANNOTATION), f"must be a string (the network section as JSON), not {json_type(text)}")
    rest = {k: v for k, v in annotations.items() if k != NETWORK_ANNOTATION}
    return rest, parse_annotation(text)


_PROCESS_KEYS = frozenset(
    {
        "args",
        "env",
        "cwd",
        "user",
        "rlimits",
        "noNewPrivileges",
        "capabilities",
        "oomScoreAdj",
        "terminal",
        "consoleSize",
        "selinuxLabel",
        "apparmorProfile",
        "ioPriority",
        "scheduler",
        "execCPUAffinity",
    }
)
_PROCESS_OCI_KEYS = frozenset({"commandLine"})


def parse_process(value: object, w: str) -> Process:
    d = _object(value, w, _PROCESS_KEYS, _PROCESS_OCI_KEYS)
    capabilities = d.get("capabilities")
    return Process(
        args=d.get("args", ()),
        env=d.get("env", ()),
        cwd=_required(d, "cwd", w),
        user=_parse_user(d["user"], f"{w}.user") if "user" in d else User(),
        rlimits=_objects(d.get("rlimits", []), f"{w}.rlimits", _parse_rlimit),
        no_new_privileges=d.get("noNewPrivileges", False),
        capabilities=None
        if capabilities is None
        else _parse_capabilities(capabilities, f"{w}.capabilities"),
        oom_score_adj=d.get("oomScoreAdj"),
        terminal=d.get("terminal", False),
        console_size=_parse_console_size(d["consoleSize"], f"{w}.consoleSize") if "consoleSize" in d else None,
        selinux_label=d.get("selinuxLabel"),
        apparmor_profile=d.get("apparmorProfile"),
        io_priority=_parse_io_priority(d["ioPriority"], f"{w}.ioPriority") if "ioPriority" in d else None,
        scheduler=_parse_scheduler(d["scheduler"], f"{w}.scheduler") if "scheduler" in d else None,
        exec_cpu_affinity=_parse_affinity(d["execCPUAffinity"], f"{w}.execCPUAffinity")
        if "execCPUAffinity" in d
        else None,
    )


def _parse_io_priority(value: object, w: str) -> IOPriority:
    d = _object(value, w, frozenset({"class", "priority"}))
    return IOPriority(_required(d, "class", w), d.get("priority", 0))


_SCHEDULER_KEYS = frozenset({"policy", "nice", "priority", "flags", "runtime", "deadline", "period"})


def _parse_scheduler(value: object, w: str) -> Scheduler:
    d = _object(value, w, _SCHEDULER_KEYS)
    _required(d, "policy", w)
    return Scheduler(**d)


def _parse_affinity(value: object, w: str) -> CPUAffinity:
    return CPUAffinity(**_object(value, w, frozenset({"initial", "final"})))


def _parse_personality(value: object, w: str) -> Personality:
    d = _object(value, w, frozenset({"domain", "flags"}))
    return Personality(_required(d, "domain", w), d.get("flags", ()))


def _parse_time_offsets(value: object, w: str) -> dict[str, TimeOffset]:
    if not isinstance(value, Mapping):
        fail(w, f"must be an object, not {json_type(value)}")
    return {
        clock: TimeOffset(**_object(offset, join(w, str(clock)), frozenset({"secs", "nanosecs"})))
        for clock, offset in value.items()
    }


def _parse_console_size(value: object, w: str) -> ConsoleSize:
    d = _object(value, w, frozenset({"height", "width"}))
    return ConsoleSize(height=_required(d, "height", w), width=_required(d, "width", w))


def _parse_user(value: object, w: str) -> User:
    d = _object(
        value, w, frozenset({"uid", "gid", "additionalGids", "umask"}), frozenset({"username"})
    )
    return User(
        uid=_required(d, "uid", w),
        gid=_required(d, "gid", w),
        additional_gids=d.get("additionalGids", ()),
        umask=d.get("umask"),
    )


def _parse_rlimit(value: object, w: str) -> Rlimit:
    d = _object(value, w, frozenset({"type", "soft", "hard"}))
    return Rlimit(_required(d, "type", w), _required(d, "soft", w), _required(d, "hard", w))


def _parse_capabilities(value: object, w: str) -> Capabilities:
    d = _object(value, w, frozenset(CAPABILITY_SETS))
    return Capabilities(**{name: d.get(name, ()) for name in CAPABILITY_SETS})


def _parse_root(value: object, w: str) -> Root:
    d = _object(value, w, frozenset({"path", "readonly"}))
    return Root(_required(d, "path", w), d.get("readonly", False))


def _parse_mount(value: object, w: str) -> Mount:
    d = _object(value, w, frozenset({"destination", "type", "source", "options", "uidMappings", "gidMappings"}))
    return Mount(
        destination=_required(d, "destination", w),
        type=d.get("type"),
        source=d.get("source"),
        options=d.get("options", ()),
        uid_mappings=_objects(d.get("uidMappings", []), f"{w}.uidMappings", _parse_mapping),
        gid_mappings=_objects(d.get("gidMappings", []), f"{w}.gidMappings", _parse_mapping),
    )


_LINUX_KEYS = frozenset(
    {
        "namespaces",
        "uidMappings",
        "gidMappings",
        "resources",
        "cgroupsPath",
        "maskedPaths",
        "readonlyPaths",
        "devices",
        "sysctl",
        "rootfsPropagation",
        "seccomp",
        "mountLabel",
        "personality",
        "timeOffsets",
    }
)
_LINUX_OCI_KEYS = frozenset(
    {
        "intelRdt",
        "memoryPolicy",
        "netDevices",
    }
)


def _parse_linux(value: object, w: str) -> dict[str, Any]:
    """The `linux` section as keyword arguments of Config."""
    d = _object(value, w, _LINUX_KEYS, _LINUX_OCI_KEYS)
    resources = d.get("resources")
    seccomp = d.get("seccomp")
    return {
        "namespaces": _objects(d.get("namespaces", []), f"{w}.namespaces", _parse_namespace),
        "uid_mappings": _objects(d.get("uidMappings", []), f"{w}.uidMappings", _parse_mapping),
        "gid_mappings": _objects(d.get("gidMappings", []), f"{w}.gidMappings", _parse_mapping),
        "resources": None if resources is None else _parse_resources(resources, f"{w}.resources"),
        "cgroups_path": d.get("cgroupsPath"),
        "masked_paths": d.get("maskedPaths", ()),
        "readonly_paths": d.get("readonlyPaths", ()),
        "devices": _objects(d.get("devices", []), f"{w}.devices", _parse_device),
        "sysctl": d.get("sysctl", {}),
        "rootfs_propagation": d.get("rootfsPropagation"),
        "seccomp": None if seccomp is None else parse_seccomp(seccomp, f"{w}.seccomp"),
        "mount_label": d.get("mountLabel"),
        "personality": _parse_personality(d["personality"], f"{w}.personality") if "personality" in d else None,
        "time_offsets": _parse_time_offsets(d.get("timeOffsets", {}), f"{w}.timeOffsets"),
    }


def _parse_namespace(value: object, w: str) -> Namespace:
    d = _object(value, w, frozenset({"type", "path"}))
    return Namespace(_required(d, "type", w), d.get("path"))


def _parse_mapping(value: object, w: str) -> IDMapping:
    d = _object(value, w, frozenset({"containerID", "hostID", "size"}))
    return IDMapping(
        _required(d, "containerID", w), _required(d, "hostID", w), _required(d, "size", w)
    )


def _parse_device(value: object, w: str) -> Device:
    d = _object(
        value, w, frozenset({"path", "type", "major", "minor", "fileMode", "uid", "gid"})
    )
    kind = _required(d, "type", w)
    if kind in ("c", "b", "u"):
        _required(d, "major", w)
        _required(d, "minor", w)
    return Device(
        path=_required(d, "path", w),
        type=kind,
        major=d.get("major", 0),
        minor=d.get("minor", 0),
        file_mode=d.get("fileMode"),
        uid=d.get("uid"),
        gid=d.get("gid"),
    )


_RESOURCES_KEYS = frozenset({"memory", "cpu", "pids", "blockIO", "devices", "hugepageLimits"})
_RESOURCES_OCI_KEYS = frozenset({"network", "rdma", "unified"})
_MEMORY_KEYS = frozenset({"limit", "reservation", "swap"})
_CPU_KEYS = frozenset({"shares", "quota", "period", "cpus", "mems"})
_MEMORY_OCI_KEYS = frozenset(
    {"swappiness", "disableOOMKiller", "useHierarchy", "checkBeforeUpdate"}
)
#: Deprecated by runtime-spec 1.2; Linux 6.x has no kernel-memory limit to write (and cgroup v2
#: never had one): runc >= 1.1 ignores both, whatever the kernel.
_KMEM_IGNORED = "deprecated by the OCI runtime spec and ignored (Linux no longer has kernel-memory limits)"
_MEMORY_IGNORED = {"kernel": _KMEM_IGNORED, "kernelTCP": _KMEM_IGNORED}
_CPU_OCI_KEYS = frozenset({"realtimeRuntime", "realtimePeriod", "idle", "burst"})
_BLOCK_IO_OCI_KEYS = frozenset(
    {
        "leafWeight",
        "weightDevice",
        "throttleReadBpsDevice",
        "throttleWriteBpsDevice",
        "throttleReadIOPSDevice",
        "throttleWriteIOPSDevice",
    }
)


def _parse_resources(value: object, w: str) -> Resources:
    d = _object(value, w, _RESOURCES_KEYS, _RESOURCES_OCI_KEYS)
    parts: dict[str, Any] = {}
    if "memory" in d:
        m = _object(d["memory"], f"{w}.memory", _MEMORY_KEYS, _MEMORY_OCI_KEYS, _MEMORY_IGNORED)
        parts["memory"] = MemoryResources(**m)
    if "cpu" in d:
        parts["cpu"] = CpuResources(**_object(d["cpu"], f"{w}.cpu", _CPU_KEYS, _CPU_OCI_KEYS))
    if "pids" in d:
        p = _object(d["pids"], f"{w}.pids", frozenset({"limit"}))
        parts["pids"] = PidsResources(_required(p, "limit", f"{w}.pids"))
    if "blockIO" in d:
        b = _object(d["blockIO"], f"{w}.blockIO", frozenset({"weight"}), _BLOCK_IO_OCI_KEYS)
        parts["block_io"] = BlockIOResources(**b)
    parts["devices"] = _objects(d.get("devices", []), f"{w}.devices", _parse_device_rule)
    parts["hugepage_limits"] = _objects(
        d.get("hugepageLimits", []), f"{w}.hugepageLimits", _parse_hugepage_limit
    )
    return Resources(**parts)


#: A LinuxResources object alone (`runc update --resources`), its errors under `w`.
parse_resources = _parse_resources


def _parse_hugepage_limit(value: object, w: str) -> HugepageLimit:
    d = _object(value, w, frozenset({"pageSize", "limit"}))
    return HugepageLimit(_required(d, "pageSize", w), _required(d, "limit", w))


def _parse_device_rule(value: object, w: str) -> DeviceRule:
    d = _object(value, w, frozenset({"allow", "type", "major", "minor", "access"}))
    return DeviceRule(
        allow=_required(d, "allow", w),
        type=d.get("type"),
        major=d.get("major"),
        minor=d.get("minor"),
        access=d.get("access"),
    )


# --------------------------------------------------------------------------- dataclasses -> JSON


def _set(out: dict[str, Any], key: str, value: Any) -> None:
    """Write only what is set: None is absent in OCI JSON."""
    if value is not None:
        out[key] = value


def config_to_dict(c: Config) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ociVersion": c.oci_version,
        "process": process_to_dict(c.process),
        "root": {"path": c.root.path},
    }
    if c.root.readonly:
        out["root"]["readonly"] = True
    _set(out, "hostname", c.hostname)
    _set(out, "domainname", c.domainname)
    if c.mounts:
        out["mounts"] = [_mount_to_dict(m) for m in c.mounts]
    if c.annotations or c.network is not None:
        out["annotations"] = dict(c.annotations)
    if c.network is not None:
        out["annotations"][NETWORK_ANNOTATION] = network_to_annotation(c.network)
    if c.hooks:
        out["hooks"] = _hooks_to_dict(c.hooks)
    linux = _linux_to_dict(c)
    if linux:
        out["linux"] = linux
    return out


def _hooks_to_dict(hooks: Hooks) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in HOOK_KINDS:
        if hooks.of(kind):
            out[kind] = [_hook_to_dict(h) for h in hooks.of(kind)]
    return out


def _hook_to_dict(h: Hook) -> dict[str, Any]:
    out: dict[str, Any] = {"path": h.path}
    if h.args:
        out["args"] = list(h.args)
    if h.env:
        out["env"] = list(h.env)
    _set(out, "timeout", h.timeout)
    return out


def _linux_to_dict(c: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if c.namespaces:
        out["namespaces"] = [_namespace_to_dict(ns) for ns in c.namespaces]
    if c.uid_mappings:
        out["uidMappings"] = [_mapping_to_dict(m) for m in c.uid_mappings]
    if c.gid_mappings:
        out["gidMappings"] = [_mapping_to_dict(m) for m in c.gid_mappings]
    if c.resources is not None:
        out["resources"] = _resources_to_dict(c.resources)
    _set(out, "cgroupsPath", c.cgroups_path)
    if c.masked_paths:
        out["maskedPaths"] = list(c.masked_paths)
    if c.readonly_paths:
        out["readonlyPaths"] = list(c.readonly_paths)
    if c.devices:
        out["devices"] = [_device_to_dict(d) for d in c.devices]
    if c.sysctl:
        out["sysctl"] = dict(c.sysctl)
    _set(out, "rootfsPropagation", c.rootfs_propagation)
    if c.seccomp is not None:
        out["seccomp"] = seccomp_to_dict(c.seccomp)
    _set(out, "mountLabel", c.mount_label)
    if c.personality is not None:
        out["personality"] = personality_to_dict(c.personality)
    if c.time_offsets:
        out["timeOffsets"] = time_offsets_to_dict(c.time_offsets)
    return out


def process_to_dict(p: Process) -> dict[str, Any]:
    out: dict[str, Any] = {"args": list(p.args), "cwd": p.cwd, "user": _user_to_dict(p.user)}
    if p.env:
        out["env"] = list(p.env)
    if p.rlimits:
        out["rlimits"] = [{"type": r.type, "soft": r.soft, "hard": r.hard} for r in p.rlimits]
    if p.no_new_privileges:
        out["noNewPrivileges"] = True
    if p.capabilities is not None:
        caps = p.capabilities
        out["capabilities"] = {
            name: list(getattr(caps, name)) for name in CAPABILITY_SETS if getattr(caps, name)
        }
    _set(out, "oomScoreAdj", p.oom_score_adj)
    if p.terminal:
        out["terminal"] = True
    if p.console_size is not None:
        out["consoleSize"] = {"height": p.console_size.height, "width": p.console_size.width}
    _set(out, "selinuxLabel", p.selinux_label)
    _set(out, "apparmorProfile", p.apparmor_profile)
    if p.io_priority is not None:
        out["ioPriority"] = io_priority_to_dict(p.io_priority)
    if p.scheduler is not None:
        out["scheduler"] = scheduler_to_dict(p.scheduler)
    if p.exec_cpu_affinity is not None:
        out["execCPUAffinity"] = cpu_affinity_to_dict(p.exec_cpu_affinity)
    return out


def _user_to_dict(u: User) -> dict[str, Any]:
    out: dict[str, Any] = {"uid": u.uid, "gid": u.gid}
    if u.additional_gids:
        out["additionalGids"] = list(u.additional_gids)
    _set(out, "umask", u.umask)
    return out


def _mount_to_dict(m: Mount) -> dict[str, Any]:
    out: dict[str, Any] = {"destination": m.destination}
    _set(out, "type", m.type)
    _set(out, "source", m.source)
    if m.options:
        out["options"] = list(m.options)
    if m.uid_mappings:
        out["uidMappings"] = [_mapping_to_dict(x) for x in m.uid_mappings]
    if m.gid_mappings:
        out["gidMappings"] = [_mapping_to_dict(x) for x in m.gid_mappings]
    return out


def _namespace_to_dict(ns: Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"type": ns.type}
    _set(out, "path", ns.path)
    return out


def _mapping_to_dict(m: IDMapping) -> dict[str, Any]:
    return {"containerID": m.container_id, "hostID": m.host_id, "size": m.size}


def _device_to_dict(d: Device) -> dict[str, Any]:
    out: dict[str, Any] = {"path": d.path, "type": d.type, "major": d.major, "minor": d.minor}
    _set(out, "fileMode", d.file_mode)
    _set(out, "uid", d.uid)
    _set(out, "gid", d.gid)
    return out


def _resources_to_dict(r: Resources) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.memory is not None:
        out["memory"] = _fields_to_dict(r.memory)
    if r.cpu is not None:
        out["cpu"] = _fields_to_dict(r.cpu)
    if r.pids is not None:
        out["pids"] = {"limit": r.pids.limit}
    if r.block_io is not None:
        out["blockIO"] = _fields_to_dict(r.block_io)
    if r.devices:
        out["devices"] = [_fields_to_dict(rule) for rule in r.devices]
    if r.hugepage_limits:
        out["hugepageLimits"] = [
            {"pageSize": h.page_size, "limit": h.limit} for h in r.hugepage_limits
        ]
    return out


def _fields_to_dict(obj: Any) -> dict[str, Any]:
    """For the resource dataclasses, whose field names are their OCI keys."""
    out: dict[str, Any] = {}
    for name in field_names(obj):
        _set(out, name, getattr(obj, name))
    return out


# --------------------------------------------------------------------------- text and files


def load_json(text: str | bytes, source: str | None) -> Any:
    """Parse config JSON within the limits above (MAX_CONFIG_BYTES, MAX_JSON_DEPTH,
    MAX_NUMBER_DIGITS): whatever the text, a value or a ConfigError."""
    text = _decode(text, source)
    if _too_deep(text):
        _refuse_depth(source)
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"line {e.lineno} column {e.colno}", f"invalid JSON: {e.msg}", source=source
        ) from None
    except _LongNumber:
        raise ConfigError(
            _where_long_number(text),
            f"a number with more than {MAX_NUMBER_DIGITS} digits "
            "(no field of an OCI config takes one that long)",
            source=source,
        ) from None
    except RecursionError:  # only if the caller's own stack was nearly full already
        _refuse_depth(source)


def _decode(text: object, source: str | None) -> str:
    """As json.loads() decodes bytes (UTF-8, -16 or -32), after checking the size."""
    if not isinstance(text, (str, bytes, bytearray)):
        raise ConfigError(
            "(file)", f"must be JSON text (str or bytes), not {type(text).__name__}", source=source
        )
    if len(text) > MAX_CONFIG_BYTES:
        _refuse_size(source)
    if isinstance(text, str):
        return text
    try:
        return text.decode(json.detect_encoding(text), "surrogatepass")
    except UnicodeDecodeError as e:
        raise ConfigError("(file)", f"is not UTF-8 text ({e.reason})", source=source) from None


def _refuse_size(source: str | None) -> NoReturn:
    raise ConfigError(
        "(file)",
        f"is larger than {MAX_CONFIG_BYTES} bytes ({MAX_CONFIG_BYTES >> 20} MiB), corral's limit "
        "for a config.json; an OCI config is a few kilobytes: check that this is the right file",
        source=source,
    )


def _refuse_depth(source: str | None) -> NoReturn:
    raise ConfigError(
        "(file)",
        f"is nested deeper than {MAX_JSON_DEPTH} levels, corral's limit (no OCI config needs "
        "more than a few): check that this is the right file",
        source=source,
    )


#: A JSON string, escapes included (unrolled, so that a long string costs no backtracking).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: A string (skipped), or an integer token with too many digits (group 1): not the fraction
#: or exponent of a float.
_STRING_OR_LONG_INT = re.compile(
    _STRING.pattern + r"|((?<![\d.eE+-])-?\d{%d,}(?![\d.eE]))" % (MAX_NUMBER_DIGITS + 1),
    re.DOTALL,
)


def _too_deep(text: str) -> bool:
    """Whether brackets outside strings nest deeper than MAX_JSON_DEPTH.

    Counted before parsing, because Python's parser recurses once per level and its
    RecursionError depends on how deep the caller's stack already is. A text with no
    more opening brackets than the limit cannot exceed it: the usual config costs two
    str.count() calls. Otherwise the running depth is summed over the brackets alone
    (about a second for 16 MiB of them, less than parsing them would take).
    """
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return False
    stripped = _STRING.sub("", text).encode("utf-8", "surrogatepass")
    brackets = stripped.translate(None, _NOT_BRACKETS)
    steps = map(_STEP.__getitem__, brackets)
    return max(itertools.accumulate(steps), default=0) > MAX_JSON_DEPTH


_NOT_BRACKETS = bytes(set(range(256)) - set(b"[{]}"))
#: +1 for an opening bracket, -1 for a closing one, by byte value.
_STEP = [1 if c in b"[{" else -1 for c in range(256)]


class _LongNumber(Exception):
    """Raised inside json.loads() for an integer beyond MAX_NUMBER_DIGITS; never escapes."""


def _parse_int(digits: str) -> int:
    if len(digits) - digits.startswith("-") > MAX_NUMBER_DIGITS:
        raise _LongNumber
    return int(digits)


def _where_long_number(text: str) -> str:
    """The line and column of the first too-long integer outside strings, as JSON errors say."""
    for match in _STRING_OR_LONG_INT.finditer(text):
        if match.group(1) is not None:
            pos = match.start(1)
            line = text.count("\n", 0, pos) + 1
            column = pos - text.rfind("\n", 0, pos)
            return f"line {line} column {column}"
    return "(file)"


def dump_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def read_config_file(bundle: str, config_path: str) -> bytes:
    if not os.path.isdir(bundle):
        raise ConfigError(
            "bundle", f"{bundle} does not exist or is not a directory", source=config_path
        )
    try:
        # Non-blocking, so that a FIFO without a writer reads as empty instead of hanging;
        # one byte past the limit, so that a larger file (or /dev/zero) is refused unread.
        fd = os.open(config_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            text = _read_at_most(fd, MAX_CONFIG_BYTES + 1)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise ConfigError(
            "bundle",
            f"{bundle} has no config.json (`runc spec` writes an example)",
            source=config_path,
        ) from None
    except OSError as e:
        raise ConfigError("(file)", f"cannot be read: {e.strerror}", source=config_path) from None
    if len(text) > MAX_CONFIG_BYTES:
        _refuse_size(config_path)
    return text


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(1 << 20, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
