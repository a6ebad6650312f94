"""The container configuration: the subset of the OCI runtime spec that corral honours.

Plain, frozen data, valid by construction, with errors that name the OCI JSON
path. The package is split the way runc splits the same ground (configs/,
configs/validate/, specconv/), each module importing only those before it:

    linux.py     the kernel's names and numbers (capabilities, rlimits, namespaces, sysctls)
    checks.py    error paths and one-line value checks
    types.py     the parts of a config (User, Mount, Resources, ...) and their defaults
    hooks.py     the hooks section: Hook, Hooks and their validation
    seccomp.py   the linux.seccomp section: its parts, validation and JSON
    validate.py  validation, cross-checks and path resolution
    spec.py      Config and Process, which validate themselves on construction
    oci.py       OCI JSON in and out

Two sets of defaults exist on purpose: the dataclass defaults are those of
`runc spec`, for Python callers; JSON reads a left-out section as "none", as
every other OCI runtime does (see oci.py).

The container's init imports this package in a fresh interpreter, so it uses
the standard library only, and only modules that are cheap to import. oci.py is
imported here too, although nothing below re-exports it: the zygote imports
this package once for all the inits it forks, and every init reads JSON.
"""

from __future__ import annotations

from corral.config import oci  # noqa: F401
from corral.config.linux import (
    CAPABILITIES,
    CAPABILITY_SETS,
    DEVICE_RULE_TYPES,
    DEVICE_TYPES,
    HOST_NAME_MAX,
    INT64_MAX,
    IPC_SYSCTLS,
    MAX_ID_MAP_RANGES,
    NAMESPACE_TYPES,
    RLIMIT_UNLIMITED,
    RLIMITS,
    ROOTFS_PROPAGATIONS,
    UINT32_MAX,
    UINT64_MAX,
)
from corral.config.hooks import HOOK_KINDS, Hook, Hooks
from corral.config.network import NETWORK_ANNOTATION, Interface, Network, Route
from corral.config.process_attrs import CPUAffinity, IOPriority, Personality, Scheduler, TimeOffset
from corral.config.seccomp import Seccomp, SeccompArg, SeccompSyscall, parse_seccomp
from corral.config.spec import INHERITED, Config, Process
from corral.config.types import (
    DEFAULT_CAPABILITIES,
    DEFAULT_MASKED_PATHS,
    DEFAULT_NAMESPACES,
    DEFAULT_PATH_ENV,
    DEFAULT_READONLY_PATHS,
    BlockIOResources,
    Capabilities,
    ConsoleSize,
    CpuResources,
    Device,
    DeviceRule,
    FrozenMap,
    HugepageLimit,
    IDMapping,
    MemoryResources,
    Mount,
    Namespace,
    PidsResources,
    Resources,
    Rlimit,
    Root,
    UNSET,
    User,
)

__all__ = [
    "CPUAffinity",
    "IOPriority",
    "Personality",
    "Scheduler",
    "TimeOffset",
    "BlockIOResources",
    "CAPABILITIES",
    "CAPABILITY_SETS",
    "Capabilities",
    "Config",
    "ConsoleSize",
    "CpuResources",
    "DEFAULT_CAPABILITIES",
    "DEFAULT_MASKED_PATHS",
    "DEFAULT_NAMESPACES",
    "DEFAULT_PATH_ENV",
    "DEFAULT_READONLY_PATHS",
    "DEVICE_RULE_TYPES",
    "DEVICE_TYPES",
    "Device",
    "DeviceRule",
    "FrozenMap",
    "HOOK_KINDS",
    "HOST_NAME_MAX",
    "Hook",
    "Hooks",
    "HugepageLimit",
    "IDMapping",
    "INHERITED",
    "INT64_MAX",
    "IPC_SYSCTLS",
    "MAX_ID_MAP_RANGES",
    "MemoryResources",
    "Mount",
    "NAMESPACE_TYPES",
    "Namespace",
    "PidsResources",
    "Process",
    "RLIMITS",
    "RLIMIT_UNLIMITED",
    "ROOTFS_PROPAGATIONS",
    "Resources",
    "Rlimit",
    "Root",
    "Seccomp",
    "Network",
    "Interface",
    "Route",
    "NETWORK_ANNOTATION",
    "SeccompArg",
    "SeccompSyscall",
    "UINT32_MAX",
    "UINT64_MAX",
    "UNSET",
    "User",
    "parse_seccomp",
]
