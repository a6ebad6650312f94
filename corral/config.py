"""The container configuration: the subset of the OCI runtime spec that corral honours.

Plain, frozen data. A `Config` is built in Python (with the defaults of `runc spec`,
so that `Config(process=Process(args=["sh"]), root=Root("/srv/rootfs"))` is a
usable container), or read from an OCI bundle with `Config.from_bundle()`.
Whatever corral cannot honour exactly is refused with a `ConfigError` naming the
JSON path; nothing is silently ignored, because a container that quietly runs
without the seccomp profile or the hook it was given is worse than one that
does not start.

Two sets of defaults exist on purpose. The dataclass defaults (namespaces, mounts,
masked paths, capabilities, PATH) are those of `runc spec`, for Python callers.
JSON follows OCI semantics instead: a section that is left out means "none" (no
mounts, no new namespaces, no capability changes), because that is what every
other OCI runtime reads into the same file. `to_dict()` therefore writes every
non-empty section, so that `Config.from_dict(c.to_dict()) == c` always holds.

Validation runs when a `Config` or a `Process` is constructed (in
`__post_init__`), whichever way it was built, so that an invalid object never
exists and errors always name the OCI JSON path (``mounts[2].destination``),
also for Python callers. The leaf dataclasses (Mount, Namespace, ...) only
normalise themselves: their JSON path (with its index) is known only to the
Config that holds them.

This module is imported by the container's init in a fresh interpreter, so it
uses the standard library only, and only modules that are cheap to import.
"""

from __future__ import annotations

import json
import os
import re
import resource
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Callable, Iterator, Literal, Mapping, NoReturn, TypeVar

from corral.errors import ConfigError

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Docker's default capability set: enough for a root process to behave as root
#: inside its rootfs, without the capabilities that reach the host.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

NAMESPACE_TYPES: tuple[str, ...] = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup")

#: Linux capability names and their bit numbers (linux/capability.h), for capset
#: and PR_CAPBSET_DROP. A name the running kernel does not know (a number above
#: /proc/sys/kernel/cap_last_cap) is the executor's to report, not the config's.
CAPABILITIES: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

#: The rlimits this Python can set (name -> resource number), so that a name in
#: the config is one the init can pass to resource.setrlimit() as it is.
RLIMITS: dict[str, int] = {
    name: getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")
}

#: "No limit" for an rlimit in OCI JSON (a uint64). Python's setrlimit() spells
#: it resource.RLIM_INFINITY (-1): the init must translate.
RLIMIT_UNLIMITED: int = 2**64 - 1

DEVICE_TYPES: tuple[str, ...] = ("c", "b", "u", "p")
DEVICE_RULE_TYPES: tuple[str, ...] = ("a", "c", "b")
ROOTFS_PROPAGATIONS: tuple[str, ...] = (
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
)

UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
INT64_MAX = 2**63 - 1
HOST_NAME_MAX = 64  # bytes, as sethostname(2) takes them
MAX_ID_MAP_RANGES = 340  # lines in /proc/<pid>/uid_map since Linux 4.15

#: sysctls that belong to the IPC namespace (runc's list); `net.*` belongs to the
#: network namespace, `kernel.domainname` to the UTS namespace; all others would
#: change the host's value and are refused.
_IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)


class FrozenMap(Mapping[str, str]):
    """An immutable mapping for `sysctl` and `annotations`.

    Not MappingProxyType, because a proxy is neither hashable nor picklable, and
    a Config is both hashed (frozen dataclass) and sent to other processes.
    Compares equal to any mapping with the same items.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[Any, Any] | None = None) -> None:
        self._data: dict[Any, Any] = dict(data) if data is not None else {}

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMap, (self._data,))


def _tuples(obj: object, *names: str) -> None:
    """Turn lists into tuples, so that configs built from lists compare equal and hash.

    Only lists: a string is iterable too, and turning "sh" into ("s", "h") would
    hide the caller's mistake that validation is there to report.
    """
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, list):
            object.__setattr__(obj, name, tuple(value))


@dataclass(frozen=True)
class User:
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    umask: int | None = None

    def __post_init__(self) -> None:
        _tuples(self, "additional_gids")


@dataclass(frozen=True)
class Rlimit:
    type: str  # "RLIMIT_NOFILE"
    soft: int
    hard: int


@dataclass(frozen=True)
class Capabilities:
    bounding: tuple[str, ...] = DEFAULT_CAPABILITIES
    effective: tuple[str, ...] = DEFAULT_CAPABILITIES
    permitted: tuple[str, ...] = DEFAULT_CAPABILITIES
    inheritable: tuple[str, ...] = ()
    ambient: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _tuples(self, "bounding", "effective", "permitted", "inheritable", "ambient")


@dataclass(frozen=True)
class Process:
    """The process to run: the container's own (in `Config.process`) or one to exec.

    Validated on construction, with errors under ``process.`` (the OCI name of
    this object), both for the container's process and for `exec`.
    """

    args: tuple[str, ...]
    env: tuple[str, ...] = (DEFAULT_PATH_ENV,)
    cwd: str = "/"
    user: User = User()
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = False
    capabilities: Capabilities | None = Capabilities()
    oom_score_adj: int | None = None
    terminal: bool = False

    def __post_init__(self) -> None:
        _tuples(self, "args", "env", "rlimits")
        _validate_process(self, "process")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> Process:
        """Read an OCI `process` object (as for `runc exec --process`).

        Left-out keys mean what they mean in OCI JSON, not the Python defaults:
        no `env` is an empty environment, no `capabilities` is None, no `user`
        is uid 0 / gid 0. `cwd` is required, as in OCI.
        """
        with _ErrorsFrom(source):
            return _parse_process(data, "process")

    def to_dict(self) -> dict[str, Any]:
        """The OCI `process` object; `Process.from_dict(p.to_dict()) == p`."""
        return _process_to_dict(self)

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str | None = None) -> Process:
        return cls.from_dict(_load_json(text, source), source=source)

    def to_json(self) -> str:
        """Compact and with sorted keys, so that equal processes give equal text."""
        return _dump_json(self.to_dict())


@dataclass(frozen=True)
class Root:
    path: str  # absolute once the config is loaded (relative paths resolve against the bundle)
    readonly: bool = False


@dataclass(frozen=True)
class Mount:
    destination: str
    type: str | None = None
    source: str | None = None
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _tuples(self, "options")

    @property
    def is_bind(self) -> bool:
        """Whether `source` is a host path (a bind mount) rather than a filesystem name."""
        options = self.options if isinstance(self.options, tuple) else ()
        return self.type == "bind" or "bind" in options or "rbind" in options


@dataclass(frozen=True)
class Namespace:
    type: str  # one of NAMESPACE_TYPES
    path: str | None = None  # join this namespace instead of creating one


@dataclass(frozen=True)
class IDMapping:
    container_id: int
    host_id: int
    size: int


@dataclass(frozen=True)
class Device:
    path: str
    type: str  # "c", "b", "u" or "p"
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@dataclass(frozen=True)
class MemoryResources:
    limit: int | None = None
    reservation: int | None = None
    swap: int | None = None


@dataclass(frozen=True)
class CpuResources:
    shares: int | None = None
    quota: int | None = None
    period: int | None = None
    cpus: str | None = None
    mems: str | None = None


@dataclass(frozen=True)
class PidsResources:
    limit: int


@dataclass(frozen=True)
class BlockIOResources:
    weight: int | None = None


@dataclass(frozen=True)
class DeviceRule:
    allow: bool
    type: str | None = None  # "a", "c" or "b"; None means all
    major: int | None = None  # None means any
    minor: int | None = None
    access: str | None = None  # some of "rwm"; None means "rwm"


@dataclass(frozen=True)
class Resources:
    memory: MemoryResources | None = None
    cpu: CpuResources | None = None
    pids: PidsResources | None = None
    block_io: BlockIOResources | None = None
    devices: tuple[DeviceRule, ...] = ()

    def __post_init__(self) -> None:
        _tuples(self, "devices")


def _default_mounts() -> tuple[Mount, ...]:
    return (
        Mount("/proc", "proc", "proc"),
        Mount("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
        Mount(
            "/dev/pts",
            "devpts",
            "devpts",
            ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"),
        ),
        Mount("/dev/shm", "tmpfs", "shm", ("nosuid", "noexec", "nodev", "mode=1777", "size=65536k")),
        Mount("/dev/mqueue", "mqueue", "mqueue", ("nosuid", "noexec", "nodev")),
        Mount("/sys", "sysfs", "sysfs", ("nosuid", "noexec", "nodev", "ro")),
    )


DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)

DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

DEFAULT_NAMESPACES: tuple[Namespace, ...] = (
    Namespace("pid"),
    Namespace("network"),
    Namespace("ipc"),
    Namespace("uts"),
    Namespace("mount"),
)


@dataclass(frozen=True)
class Config:
    """A container's configuration, valid by construction.

    Built in Python, the defaults are those of `runc spec`. Read from JSON
    (`from_dict`, `from_json`, `from_bundle`), a left-out section means "none",
    as OCI says: no `mounts` is no mounts, no `linux.namespaces` is no new
    namespaces, no `process.capabilities` is ``capabilities=None``.

    A relative `root.path` (or bind-mount source) resolves against `bundle`;
    without a bundle it must be absolute. Lists are stored as tuples, `sysctl`
    and `annotations` as `FrozenMap`, so that equal configs compare equal, hash
    alike, and cannot be changed after validation.
    """

    process: Process
    root: Root
    hostname: str | None = None
    mounts: tuple[Mount, ...] = field(default_factory=_default_mounts)
    namespaces: tuple[Namespace, ...] = DEFAULT_NAMESPACES
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()
    resources: Resources | None = None
    cgroups_path: str | None = None
    masked_paths: tuple[str, ...] = DEFAULT_MASKED_PATHS
    readonly_paths: tuple[str, ...] = DEFAULT_READONLY_PATHS
    devices: tuple[Device, ...] = ()
    sysctl: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    rootfs_propagation: str | None = None
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    oci_version: str = "1.0.2"
    bundle: str | None = None  # the directory it was read from, if any

    def __post_init__(self) -> None:
        _tuples(
            self,
            "mounts",
            "namespaces",
            "uid_mappings",
            "gid_mappings",
            "masked_paths",
            "readonly_paths",
            "devices",
        )
        for name in ("sysctl", "annotations"):
            value = getattr(self, name)
            if isinstance(value, Mapping) and not isinstance(value, FrozenMap):
                object.__setattr__(self, name, FrozenMap(value))
        _resolve_paths(self)
        self.validate()

    def namespace(self, ns_type: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None

    def creates_namespace(self, ns_type: str) -> bool:
        """Whether a new namespace of this type is created (listed, and without a path)."""
        ns = self.namespace(ns_type)
        return ns is not None and ns.path is None

    def validate(self) -> None:
        """Raise ConfigError for the first problem found; construction already calls it.

        Public so that a caller holding a Config can state the check explicitly;
        it is cheap and has no side effects.
        """
        _validate_config(self)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, bundle: str | None = None, source: str | None = None
    ) -> Config:
        """Read an OCI runtime-spec 1.x config.json object.

        OCI semantics, not the Python defaults: a section that is left out means
        "none" (no `mounts`, no `linux.namespaces`, no `linux.maskedPaths` are
        empty; no `process.capabilities` is None; no `process.env` is an empty
        environment). A key whose value is null counts as left out. Every key
        corral does not honour is refused, never ignored; only `annotations` is
        free-form. `bundle` (made absolute) is where a relative `root.path`
        resolves; it does not need to exist here (see `from_bundle`). `source`
        prefixes every error, usually the config.json path.
        """
        with _ErrorsFrom(source):
            return _parse_config(data, os.path.abspath(bundle) if bundle is not None else None)

    def to_dict(self) -> dict[str, Any]:
        """The OCI JSON form, with only what is set.

        Every non-empty section is written, the Python defaults included,
        because JSON reads a missing section as "none". `bundle` is not part of
        OCI JSON and is left out: ``Config.from_dict(c.to_dict(), bundle=c.bundle) == c``.
        """
        return _config_to_dict(self)

    @classmethod
    def from_json(
        cls, text: str | bytes, *, bundle: str | None = None, source: str | None = None
    ) -> Config:
        return cls.from_dict(_load_json(text, source), bundle=bundle, source=source)

    def to_json(self) -> str:
        """Compact, with sorted keys: stored in the database and sent to the init,
        where equal configs should give equal text."""
        return _dump_json(self.to_dict())

    @classmethod
    def from_bundle(cls, path: str | os.PathLike[str]) -> Config:
        """Read `<path>/config.json`, resolving `root.path` against the bundle.

        Unlike `from_dict`, it checks the filesystem: the bundle directory and
        the rootfs must exist. Errors are prefixed with the config.json path.
        """
        bundle = os.path.abspath(os.fspath(path))
        config_path = os.path.join(bundle, "config.json")
        text = _read_config_file(bundle, config_path)
        config = cls.from_json(text, bundle=bundle, source=config_path)
        if not os.path.isdir(config.root.path):
            raise ConfigError(
                "root.path",
                f"{config.root.path} does not exist or is not a directory",
                source=config_path,
            )
        return config


# --------------------------------------------------------------------------- errors


class _ErrorsFrom:
    """Prefix the ConfigErrors raised inside with `source` (the file they come from).

    Validation deep inside the dataclasses does not know the file; the entry
    points do.
    """

    def __init__(self, source: str | None) -> None:
        self.source = source

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if isinstance(exc, ConfigError) and self.source and not exc.source:
            raise ConfigError(exc.where, exc.problem, source=self.source) from None
        return False


def _fail(where: str, problem: str) -> NoReturn:
    raise ConfigError(where, problem)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _key(where: str, key: object) -> str:
    """Path of a free-form key (a sysctl name, an annotation): keys may contain dots."""
    return f"{where}[{json.dumps(key) if isinstance(key, str) else repr(key)}]"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


# --------------------------------------------------------------------------- value checks


def _is_int(value: object) -> bool:
    """JSON true is not 1: bools are ints in Python and must not pass as such."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_range(value: object, where: str, low: int, high: int, problem: str | None = None) -> int:
    if not _is_int(value) or not low <= value <= high:  # type: ignore[operator]
        _fail(where, problem or f"must be an integer from {low} to {high}")
    return value  # type: ignore[return-value]


def _check_uint32(value: object, where: str) -> int:
    return _check_range(value, where, 0, UINT32_MAX)


def _check_positive_or_unlimited(value: object, where: str, extra: str = "") -> None:
    """Kernel limits where 0 is not a limit but -1 spells "max"."""
    if not _is_int(value) or not (value == -1 or 0 < value <= INT64_MAX):  # type: ignore[operator]
        _fail(where, f"must be a positive integer or -1 (unlimited){extra}")


def _check_positive(value: object, where: str) -> None:
    _check_range(value, where, 1, UINT64_MAX, "must be a positive integer")


def _check_bool(value: object, where: str) -> None:
    if not isinstance(value, bool):
        _fail(where, "must be true or false")


def _check_no_nul(value: str, where: str) -> None:
    """C strings end at NUL: a path or argument with one would be cut short silently."""
    if "\0" in value:
        _fail(where, "must not contain a NUL character")


def _check_string(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        _fail(where, "must be a non-empty string")
    _check_no_nul(value, where)
    return value


def _check_abs_path(value: object, where: str, problem: str = "must be an absolute path") -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        _fail(where, problem)
    _check_no_nul(value, where)
    return value


def _check_list(value: object, where: str, what: str) -> tuple[Any, ...]:
    if not isinstance(value, tuple):
        _fail(where, f"must be a list of {what}")
    return value


def _check_strings(value: object, where: str) -> None:
    for i, item in enumerate(_check_list(value, where, "strings")):
        _check_string(item, f"{where}[{i}]")


def _check_paths(value: object, where: str) -> None:
    for i, item in enumerate(_check_list(value, where, "absolute paths")):
        _check_abs_path(item, f"{where}[{i}]")


def _check_instance(value: object, cls: type, where: str) -> None:
    """For Python callers only: JSON always yields the right class."""
    if not isinstance(value, cls):
        _fail(where, f"must be a corral.config.{cls.__name__}, not {type(value).__name__}")


def _check_string_map(value: object, where: str) -> None:
    if not isinstance(value, Mapping):
        _fail(where, "must be an object mapping strings to strings")
    for key, item in value.items():
        if not isinstance(key, str):
            _fail(_key(where, key), "keys must be strings")
        if not isinstance(item, str):
            _fail(_key(where, key), "must be a string")


def _duplicates(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            _fail(where, f"{name!r} appears twice")
        seen.add(name)


# --------------------------------------------------------------------------- validation

_OCI_VERSION = re.compile(r"1\.\d+(\.\d+)?([-+][0-9A-Za-z.+-]*)?")
_ENV = re.compile(r"[^=\0]+=[^\0]*")
_CPU_LIST = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*")


def _validate_process(p: Process, w: str) -> None:
    _check_bool(p.terminal, f"{w}.terminal")
    if p.terminal:
        _fail(f"{w}.terminal", "not supported yet (no console support); set it to false")
    if (
        not isinstance(p.args, tuple)
        or not p.args
        or not all(isinstance(arg, str) for arg in p.args)
    ):
        _fail(f"{w}.args", "must be a non-empty list of strings")
    for i, arg in enumerate(p.args):
        _check_no_nul(arg, f"{w}.args[{i}]")
    for i, var in enumerate(_check_list(p.env, f"{w}.env", "strings of the form NAME=value")):
        if not isinstance(var, str) or not _ENV.fullmatch(var):
            _fail(f"{w}.env[{i}]", "must be a string of the form NAME=value")
    _check_abs_path(p.cwd, f"{w}.cwd")
    _check_instance(p.user, User, f"{w}.user")
    _validate_user(p.user, f"{w}.user")
    _validate_rlimits(p.rlimits, f"{w}.rlimits")
    _check_bool(p.no_new_privileges, f"{w}.noNewPrivileges")
    if p.capabilities is not None:
        _check_instance(p.capabilities, Capabilities, f"{w}.capabilities")
        _validate_capabilities(p.capabilities, f"{w}.capabilities")
    if p.oom_score_adj is not None:
        _check_range(p.oom_score_adj, f"{w}.oomScoreAdj", -1000, 1000)


def _validate_user(u: User, w: str) -> None:
    _check_uint32(u.uid, f"{w}.uid")
    _check_uint32(u.gid, f"{w}.gid")
    for i, gid in enumerate(_check_list(u.additional_gids, f"{w}.additionalGids", "integers")):
        _check_uint32(gid, f"{w}.additionalGids[{i}]")
    if u.umask is not None:
        _check_range(u.umask, f"{w}.umask", 0, 0o777, "must be an integer from 0 to 511 (0o777)")


def _validate_rlimits(rlimits: object, w: str) -> None:
    seen: dict[int, str] = {}
    for i, r in enumerate(_check_list(rlimits, w, "rlimit objects")):
        wi = f"{w}[{i}]"
        _check_instance(r, Rlimit, wi)
        if not isinstance(r.type, str) or r.type not in RLIMITS:
            _fail(f"{wi}.type", f"unknown rlimit {r.type!r}")
        _check_range(r.soft, f"{wi}.soft", 0, UINT64_MAX)
        _check_range(r.hard, f"{wi}.hard", 0, UINT64_MAX)
        if r.soft > r.hard:
            _fail(wi, f"soft {r.soft} is above hard {r.hard}")
        earlier = seen.get(RLIMITS[r.type])
        if earlier == r.type:
            _fail(w, f"{r.type!r} appears twice")
        if earlier is not None:  # RLIMIT_OFILE is RLIMIT_NOFILE under another name
            _fail(wi, f"{r.type!r} is the same limit as {earlier!r}")
        seen[RLIMITS[r.type]] = r.type


_CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


def _validate_capabilities(c: Capabilities, w: str) -> None:
    for name in _CAPABILITY_SETS:
        ws = f"{w}.{name}"
        for i, cap in enumerate(_check_list(getattr(c, name), ws, "capability names")):
            if not isinstance(cap, str) or cap not in CAPABILITIES:
                _fail(f"{ws}[{i}]", f"unknown capability {cap!r}")
    # capset(2) refuses this with a bare EPERM at start; saying so here names the
    # entry to fix. (Ambient capabilities missing from inheritable are not
    # refused: `runc spec` writes such sets, and runc only warns about them.)
    permitted = set(c.permitted)
    for i, cap in enumerate(c.effective):
        if cap not in permitted:
            _fail(f"{w}.effective[{i}]", f"{cap} is not in permitted (the kernel refuses it)")


def _validate_config(c: Config) -> None:
    _validate_version(c.oci_version)
    _check_instance(c.process, Process, "process")
    _validate_process(c.process, "process")
    _validate_root(c.root, c.bundle)
    if c.hostname is not None:
        _validate_hostname(c.hostname)
    for i, m in enumerate(_check_list(c.mounts, "mounts", "mount objects")):
        _check_instance(m, Mount, f"mounts[{i}]")
        _validate_mount(m, f"mounts[{i}]")
    _check_string_map(c.annotations, "annotations")
    _validate_namespaces(c.namespaces)
    _validate_id_mappings(c.uid_mappings, "linux.uidMappings")
    _validate_id_mappings(c.gid_mappings, "linux.gidMappings")
    if c.resources is not None:
        _check_instance(c.resources, Resources, "linux.resources")
        _validate_resources(c.resources, "linux.resources")
    if c.cgroups_path is not None:
        _validate_cgroups_path(c.cgroups_path)
    _check_paths(c.masked_paths, "linux.maskedPaths")
    _check_paths(c.readonly_paths, "linux.readonlyPaths")
    for i, d in enumerate(_check_list(c.devices, "linux.devices", "device objects")):
        _check_instance(d, Device, f"linux.devices[{i}]")
        _validate_device(d, f"linux.devices[{i}]")
    _check_string_map(c.sysctl, "linux.sysctl")
    if c.rootfs_propagation is not None and c.rootfs_propagation not in ROOTFS_PROPAGATIONS:
        _fail("linux.rootfsPropagation", f"must be one of {', '.join(ROOTFS_PROPAGATIONS)}")
    if c.bundle is not None:
        _check_abs_path(c.bundle, "bundle")
    _validate_cross_checks(c)


def _validate_version(version: object) -> None:
    if not isinstance(version, str):
        _fail("ociVersion", 'must be a string such as "1.0.2"')
    if not _OCI_VERSION.fullmatch(version):
        _fail("ociVersion", f"unsupported version {version!r} (corral reads runtime-spec 1.x)")


def _validate_root(root: object, bundle: str | None) -> None:
    _check_instance(root, Root, "root")
    assert isinstance(root, Root)
    if bundle is None:
        problem = "must be an absolute path (a relative one needs a bundle directory)"
    else:
        problem = "must be an absolute path or relative to the bundle"
    _check_abs_path(root.path, "root.path", problem)
    _check_bool(root.readonly, "root.readonly")


def _validate_hostname(hostname: object) -> None:
    if not isinstance(hostname, str):
        _fail("hostname", "must be a string")
    _check_no_nul(hostname, "hostname")
    if len(hostname.encode()) > HOST_NAME_MAX:
        _fail("hostname", f"must be at most {HOST_NAME_MAX} bytes long")


def _validate_mount(m: Mount, w: str) -> None:
    _check_abs_path(m.destination, f"{w}.destination")
    if m.type is not None:
        _check_string(m.type, f"{w}.type")
    if m.source is not None:
        _check_string(m.source, f"{w}.source")
    _check_strings(m.options, f"{w}.options")
    if m.is_bind:
        if m.source is None:
            _fail(f"{w}.source", "required for a bind mount")
        _check_abs_path(
            m.source,
            f"{w}.source",
            "must be an absolute path for a bind mount (or relative to the bundle)",
        )


def _validate_namespaces(namespaces: object) -> None:
    types: list[str] = []
    for i, ns in enumerate(_check_list(namespaces, "linux.namespaces", "namespace objects")):
        wi = f"linux.namespaces[{i}]"
        _check_instance(ns, Namespace, wi)
        if ns.type == "time":
            _fail(f"{wi}.type", "'time' namespaces are not supported yet")
        if not isinstance(ns.type, str) or ns.type not in NAMESPACE_TYPES:
            _fail(
                f"{wi}.type",
                f"unknown namespace type {ns.type!r} "
                f"(expected one of {', '.join(NAMESPACE_TYPES)})",
            )
        if ns.path is not None:
            _check_abs_path(ns.path, f"{wi}.path")
        types.append(ns.type)
    _duplicates(types, "linux.namespaces")


def _validate_id_mappings(mappings: object, w: str) -> None:
    items = _check_list(mappings, w, "mapping objects")
    if len(items) > MAX_ID_MAP_RANGES:
        _fail(w, f"at most {MAX_ID_MAP_RANGES} ranges (the kernel's limit)")
    for i, m in enumerate(items):
        wi = f"{w}[{i}]"
        _check_instance(m, IDMapping, wi)
        _check_uint32(m.container_id, f"{wi}.containerID")
        _check_uint32(m.host_id, f"{wi}.hostID")
        _check_range(m.size, f"{wi}.size", 1, UINT32_MAX)
        for name, start in (("containerID", m.container_id), ("hostID", m.host_id)):
            if start + m.size - 1 > UINT32_MAX:
                _fail(wi, f"{name} {start} + size {m.size} goes past {UINT32_MAX}")
        for j, other in enumerate(items[:i]):
            if _overlap(m.container_id, other.container_id, m.size, other.size) or _overlap(
                m.host_id, other.host_id, m.size, other.size
            ):
                _fail(wi, f"overlaps {w}[{j}] (the kernel refuses overlapping ranges)")


def _overlap(a: int, b: int, a_size: int, b_size: int) -> bool:
    return a < b + b_size and b < a + a_size


def _validate_resources(r: Resources, w: str) -> None:
    if r.memory is not None:
        _check_instance(r.memory, MemoryResources, f"{w}.memory")
        _validate_memory(r.memory, f"{w}.memory")
    if r.cpu is not None:
        _check_instance(r.cpu, CpuResources, f"{w}.cpu")
        _validate_cpu(r.cpu, f"{w}.cpu")
    if r.pids is not None:
        _check_instance(r.pids, PidsResources, f"{w}.pids")
        _check_positive_or_unlimited(
            r.pids.limit, f"{w}.pids.limit", "; 0 is ambiguous (runc reads it as unlimited)"
        )
    if r.block_io is not None:
        _check_instance(r.block_io, BlockIOResources, f"{w}.blockIO")
        if r.block_io.weight is not None:
            _check_range(r.block_io.weight, f"{w}.blockIO.weight", 10, 1000)
    for i, rule in enumerate(_check_list(r.devices, f"{w}.devices", "device rule objects")):
        _check_instance(rule, DeviceRule, f"{w}.devices[{i}]")
        _validate_device_rule(rule, f"{w}.devices[{i}]")


def _validate_memory(m: MemoryResources, w: str) -> None:
    for name in ("limit", "reservation", "swap"):
        value = getattr(m, name)
        if value is not None:
            _check_positive_or_unlimited(value, f"{w}.{name}")
    if m.swap is None or m.swap == -1:
        return
    # OCI swap is memory plus swap (cgroup v1's memsw): the kernel (v1) and
    # runc's conversion for v2 both refuse these.
    if m.limit is None or m.limit == -1:
        _fail(f"{w}.swap", f"cannot be limited without a memory limit ({w}.limit)")
    if m.swap < m.limit:
        _fail(
            f"{w}.swap",
            f"{m.swap} is below limit {m.limit} (OCI swap counts memory plus swap, "
            "so it must be at least the limit, or -1)",
        )


def _validate_cpu(c: CpuResources, w: str) -> None:
    if c.shares is not None:
        _check_positive(c.shares, f"{w}.shares")
    if c.quota is not None:
        _check_positive_or_unlimited(c.quota, f"{w}.quota")
    if c.period is not None:
        _check_positive(c.period, f"{w}.period")
    for name, what in (("cpus", "CPU numbers"), ("mems", "memory node numbers")):
        value = getattr(c, name)
        if value is not None:
            _validate_cpu_list(value, f"{w}.{name}", what)


def _validate_cpu_list(value: object, where: str, what: str) -> None:
    problem = f"must be a string of {what} and ranges such as '0-2,4'"
    if not isinstance(value, str) or not _CPU_LIST.fullmatch(value):
        _fail(where, problem)
    for part in value.split(","):
        low, _, high = part.partition("-")
        if high and int(high) < int(low):
            _fail(where, f"{problem}: range {part!r} goes backwards")


def _validate_device_rule(rule: DeviceRule, w: str) -> None:
    _check_bool(rule.allow, f"{w}.allow")
    if rule.type is not None and rule.type not in DEVICE_RULE_TYPES:
        _fail(f"{w}.type", f"must be one of {', '.join(DEVICE_RULE_TYPES)}")
    for name in ("major", "minor"):
        value = getattr(rule, name)
        if value is not None:
            _check_range(
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
            _fail(f"{w}.access", "must be some of the letters r, w and m, each at most once")


def _validate_cgroups_path(path: object) -> None:
    w = "linux.cgroupsPath"
    if isinstance(path, str) and ":" in path and not path.startswith("/"):
        _fail(
            w,
            "systemd cgroup paths (slice:prefix:name) are not supported yet; "
            "give an absolute cgroupfs path such as /corral/<id>",
        )
    _check_abs_path(path, w)
    assert isinstance(path, str)
    if ".." in path.split("/"):
        _fail(w, "must not contain '..' components")
    if not path.strip("/"):
        _fail(w, "must name a cgroup below the root cgroup")


def _validate_device(d: Device, w: str) -> None:
    _check_abs_path(d.path, f"{w}.path")
    if d.type not in DEVICE_TYPES:
        _fail(f"{w}.type", f"must be one of {', '.join(DEVICE_TYPES)}")
    _check_uint32(d.major, f"{w}.major")
    _check_uint32(d.minor, f"{w}.minor")
    if d.file_mode is not None:
        _check_range(
            d.file_mode, f"{w}.fileMode", 0, 0o7777,
            "must be an integer from 0 to 4095 (permission bits: 0o666 is 438)",
        )
    if d.uid is not None:
        _check_uint32(d.uid, f"{w}.uid")
    if d.gid is not None:
        _check_uint32(d.gid, f"{w}.gid")


# ---- checks across sections (run once every section is well-formed)

_USER_NS_HINT = "linux.namespaces has 'user' without a path"


def _validate_cross_checks(c: Config) -> None:
    _check_user_namespace(c)
    if c.hostname is not None and c.namespace("uts") is None:
        # As runc: sethostname() outside a private UTS namespace renames the host.
        _fail("hostname", "cannot be set without a uts namespace (linux.namespaces has no 'uts')")
    for name, paths in (("maskedPaths", c.masked_paths), ("readonlyPaths", c.readonly_paths)):
        if paths and c.namespace("mount") is None:
            _fail(
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
            _fail(f"linux.{name}", f"required when a user namespace is created ({_USER_NS_HINT})")
        if mappings and not new_user_ns:
            _fail(
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
        _fail(where, f"{value} is not mapped by {table} (the kernel refuses to switch to it)")


def _check_sysctl(c: Config, key: str) -> None:
    """Only namespaced sysctls: writing any other one changes the host's value."""
    where = _key("linux.sysctl", key)
    parts = re.split(r"[./]", key)
    if any(part in ("", "..") for part in parts) or "\0" in key or any(ch.isspace() for ch in key):
        _fail(where, "is not a sysctl name")
    if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        needed = "ipc"
    elif key.startswith("net."):
        needed = "network"
    elif key == "kernel.domainname":
        needed = "uts"
    elif key == "kernel.hostname":
        _fail(where, "conflicts with the OCI 'hostname' field: set that instead")
    else:
        _fail(where, "is not namespaced in the kernel: setting it would change the host's value")
    if c.namespace(needed) is None:
        _fail(where, f"needs a {needed} namespace (linux.namespaces has no {needed!r})")


# --------------------------------------------------------------------------- path resolution


def _resolve_paths(c: Config) -> None:
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
        Mount(m.destination, m.type, _anchor(m.source, bundle), m.options)
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


# --------------------------------------------------------------------------- JSON -> dataclasses

_T = TypeVar("_T")


def _unsupported(known_to_oci: bool) -> str:
    if known_to_oci:
        return "not supported yet"
    return (
        "not supported yet (not a key corral knows from the OCI runtime spec; "
        "check its spelling)"
    )


def _object(
    value: object, where: str, keys: frozenset[str], oci_keys: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The object's non-null members, after refusing every key corral does not honour.

    Keys are checked before any value, so that an unsupported feature is named
    first rather than a detail of the object it sits in.
    """
    if not isinstance(value, Mapping):
        _fail(where or "(top level)", f"must be an object, not {_json_type(value)}")
    members: dict[str, Any] = {}
    for key, item in value.items():
        if item is None:
            continue
        if key not in keys:
            _fail(_join(where, str(key)), _unsupported(key in oci_keys))
        members[key] = item
    return members


def _required(members: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in members:
        _fail(_join(where, key), "required")
    return members[key]


def _objects(value: object, where: str, parse: Callable[[object, str], _T]) -> tuple[_T, ...]:
    if not isinstance(value, list):
        _fail(where, f"must be a list, not {_json_type(value)}")
    return tuple(parse(item, f"{where}[{i}]") for i, item in enumerate(value))


_CONFIG_KEYS = frozenset(
    {"ociVersion", "process", "root", "hostname", "mounts", "annotations", "linux"}
)
_CONFIG_OCI_KEYS = frozenset({"hooks", "domainname", "solaris", "windows", "vm", "zos"})


def _parse_config(data: object, bundle: str | None) -> Config:
    d = _object(data, "", _CONFIG_KEYS, _CONFIG_OCI_KEYS)
    _required(d, "ociVersion", "")
    _validate_version(d["ociVersion"])  # first: other keys mean nothing in another version
    process = _parse_process(_required(d, "process", ""), "process")
    root = _parse_root(_required(d, "root", ""), "root")
    linux = _parse_linux(d.get("linux", {}), "linux")
    return Config(
        process=process,
        root=root,
        hostname=d.get("hostname"),
        mounts=_objects(d.get("mounts", []), "mounts", _parse_mount),
        annotations=d.get("annotations", {}),
        oci_version=d["ociVersion"],
        bundle=bundle,
        **linux,
    )


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
    }
)
_PROCESS_OCI_KEYS = frozenset(
    {
        "consoleSize",
        "commandLine",
        "apparmorProfile",
        "selinuxLabel",
        "ioPriority",
        "scheduler",
        "execCPUAffinity",
    }
)


def _parse_process(value: object, w: str) -> Process:
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
    )


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
    d = _object(value, w, frozenset(_CAPABILITY_SETS))
    return Capabilities(**{name: d.get(name, ()) for name in _CAPABILITY_SETS})


def _parse_root(value: object, w: str) -> Root:
    d = _object(value, w, frozenset({"path", "readonly"}))
    return Root(_required(d, "path", w), d.get("readonly", False))


def _parse_mount(value: object, w: str) -> Mount:
    d = _object(
        value,
        w,
        frozenset({"destination", "type", "source", "options"}),
        frozenset({"uidMappings", "gidMappings"}),
    )
    return Mount(
        destination=_required(d, "destination", w),
        type=d.get("type"),
        source=d.get("source"),
        options=d.get("options", ()),
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
    }
)
_LINUX_OCI_KEYS = frozenset(
    {
        "seccomp",
        "mountLabel",
        "intelRdt",
        "personality",
        "timeOffsets",
        "memoryPolicy",
        "netDevices",
    }
)


def _parse_linux(value: object, w: str) -> dict[str, Any]:
    """The `linux` section as keyword arguments of Config."""
    d = _object(value, w, _LINUX_KEYS, _LINUX_OCI_KEYS)
    resources = d.get("resources")
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


_RESOURCES_KEYS = frozenset({"memory", "cpu", "pids", "blockIO", "devices"})
_RESOURCES_OCI_KEYS = frozenset({"hugepageLimits", "network", "rdma", "unified"})
_MEMORY_KEYS = frozenset({"limit", "reservation", "swap"})
_CPU_KEYS = frozenset({"shares", "quota", "period", "cpus", "mems"})
_MEMORY_OCI_KEYS = frozenset(
    {"kernel", "kernelTCP", "swappiness", "disableOOMKiller", "useHierarchy", "checkBeforeUpdate"}
)
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
        m = _object(d["memory"], f"{w}.memory", _MEMORY_KEYS, _MEMORY_OCI_KEYS)
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
    return Resources(**parts)


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


def _config_to_dict(c: Config) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ociVersion": c.oci_version,
        "process": _process_to_dict(c.process),
        "root": {"path": c.root.path},
    }
    if c.root.readonly:
        out["root"]["readonly"] = True
    _set(out, "hostname", c.hostname)
    if c.mounts:
        out["mounts"] = [_mount_to_dict(m) for m in c.mounts]
    if c.annotations:
        out["annotations"] = dict(c.annotations)
    linux = _linux_to_dict(c)
    if linux:
        out["linux"] = linux
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
    return out


def _process_to_dict(p: Process) -> dict[str, Any]:
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
            name: list(getattr(caps, name)) for name in _CAPABILITY_SETS if getattr(caps, name)
        }
    _set(out, "oomScoreAdj", p.oom_score_adj)
    if p.terminal:
        out["terminal"] = True
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
    return out


def _fields_to_dict(obj: Any) -> dict[str, Any]:
    """For the resource dataclasses, whose field names are their OCI keys."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        _set(out, f.name, getattr(obj, f.name))
    return out


# --------------------------------------------------------------------------- text and files


def _load_json(text: str | bytes, source: str | None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"line {e.lineno} column {e.colno}", f"invalid JSON: {e.msg}", source=source
        ) from None
    except UnicodeDecodeError as e:
        raise ConfigError("(file)", f"is not UTF-8 text ({e.reason})", source=source) from None


def _dump_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def _read_config_file(bundle: str, config_path: str) -> bytes:
    if not os.path.isdir(bundle):
        raise ConfigError(
            "bundle", f"{bundle} does not exist or is not a directory", source=config_path
        )
    try:
        with open(config_path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ConfigError(
            "bundle",
            f"{bundle} has no config.json (`runc spec` writes an example)",
            source=config_path,
        ) from None
    except OSError as e:
        raise ConfigError("(file)", f"cannot be read: {e.strerror}", source=config_path) from None
