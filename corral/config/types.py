"""The parts of a container's configuration, as plain frozen values, and their defaults.

Everything a `Config` is made of except the two objects that are validated on
construction (`Config` and `Process`, in spec.py): these parts only normalise
themselves (lists to tuples), because their OCI JSON path, which every error
names, is known only to the Config that holds them. Keeping them below
validation is what lets validate.py check their classes without an import cycle.

The defaults are those of `runc spec`, for Python callers; JSON reads a
left-out section as "none" instead (see oci.py).
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from corral.records import record

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


class Unset:
    """The value of a `Process` field the caller left out: "unset", as distinct from empty.

    Only ever a default in a signature: `Process` replaces it on construction
    (with the runc-spec default, noting the field in `Process.unset`), so no
    object ever holds it. One instance (`UNSET`), falsy, and the same instance
    again when unpickled.
    """

    _instance: Unset | None = None

    def __new__(cls) -> Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> tuple[Any, ...]:
        return (Unset, ())


#: Typed Any so that it can be the default of a field of any type.
UNSET: Any = Unset()


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


def lists_to_tuples(obj: object, *names: str) -> None:
    """Turn lists into tuples, so that configs built from lists compare equal and hash.

    Only lists: a string is iterable too, and turning "sh" into ("s", "h") would
    hide the caller's mistake that validation is there to report.
    """
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, list):
            object.__setattr__(obj, name, tuple(value))


@record
class User:
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    umask: int | None = None

    def __post_init__(self) -> None:
        lists_to_tuples(self, "additional_gids")


@record
class Rlimit:
    type: str  # "RLIMIT_NOFILE"
    soft: int
    hard: int


@record
class Capabilities:
    bounding: tuple[str, ...] = DEFAULT_CAPABILITIES
    effective: tuple[str, ...] = DEFAULT_CAPABILITIES
    permitted: tuple[str, ...] = DEFAULT_CAPABILITIES
    inheritable: tuple[str, ...] = ()
    ambient: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        lists_to_tuples(self, "bounding", "effective", "permitted", "inheritable", "ambient")




@record
class ConsoleSize:
    """`process.consoleSize`: the terminal's size in characters (TIOCSWINSZ), when `terminal` is true."""

    height: int
    width: int


@record
class Root:
    path: str  # absolute once the config is loaded (relative paths resolve against the bundle)
    readonly: bool = False


@record
class Mount:
    destination: str
    type: str | None = None
    source: str | None = None
    options: tuple[str, ...] = ()
    #: An idmapped bind mount (`uidMappings`/`gidMappings` of the mount): the source's
    #: ids seen through these mappings, made with mount_setattr(MOUNT_ATTR_IDMAP).
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()

    def __post_init__(self) -> None:
        lists_to_tuples(self, "options", "uid_mappings", "gid_mappings")

    @property
    def is_idmapped(self) -> bool:
        return bool(self.uid_mappings or self.gid_mappings)

    @property
    def is_bind(self) -> bool:
        """Whether `source` is a host path (a bind mount) rather than a filesystem name."""
        options = self.options if isinstance(self.options, tuple) else ()
        return self.type == "bind" or "bind" in options or "rbind" in options


@record
class Namespace:
    type: str  # one of NAMESPACE_TYPES
    path: str | None = None  # join this namespace instead of creating one


@record
class IDMapping:
    container_id: int
    host_id: int
    size: int


@record
class Device:
    path: str
    type: str  # "c", "b", "u" or "p"
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@record
class MemoryResources:
    limit: int | None = None
    reservation: int | None = None
    swap: int | None = None


@record
class CpuResources:
    shares: int | None = None
    quota: int | None = None
    period: int | None = None
    cpus: str | None = None
    mems: str | None = None


@record
class PidsResources:
    limit: int


@record
class BlockIOResources:
    weight: int | None = None


@record
class HugepageLimit:
    page_size: str  # "2MB", "1GB", "64KB": as the kernel names its hugetlb files
    limit: int  # bytes


@record
class DeviceRule:
    allow: bool
    type: str | None = None  # "a", "c" or "b"; None means all
    major: int | None = None  # None means any
    minor: int | None = None
    access: str | None = None  # some of "rwm"; None means "rwm"


@record
class Resources:
    memory: MemoryResources | None = None
    cpu: CpuResources | None = None
    pids: PidsResources | None = None
    block_io: BlockIOResources | None = None
    devices: tuple[DeviceRule, ...] = ()
    hugepage_limits: tuple[HugepageLimit, ...] = ()

    def __post_init__(self) -> None:
        lists_to_tuples(self, "devices", "hugepage_limits")


def default_mounts() -> tuple[Mount, ...]:
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

