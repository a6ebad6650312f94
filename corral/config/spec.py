"""The two objects that are valid by construction: a container's `Config` and a `Process`.

A `Config` is built in Python (with the defaults of `runc spec`, so that
`Config(process=Process(args=["sh"]), root=Root("/srv/rootfs"))` is a usable
container), or read from an OCI bundle with `Config.from_bundle()`. A `Process`
is the container's own (`Config.process`) or one to exec.

Both validate themselves in `__post_init__` (validate.py), whichever way they
were built, so that an invalid object never exists and errors always name the
OCI JSON path (``mounts[2].destination``), also for Python callers.

Their JSON methods (`from_dict`, `to_dict`, ...) are thin entry points to oci.py,
which builds these classes and so sits above this module: they import it when
called, the one import here that is not at the top, to keep the module graph
free of cycles.
"""

from __future__ import annotations

import os
from types import MappingProxyType, ModuleType
from typing import Any, Mapping

from corral.config.checks import ErrorsFrom, check_instance, fail, free_key
from corral.config.hooks import Hooks
from corral.config.network import NETWORK_ANNOTATION, Network, validate_network
from corral.config.process_attrs import CPUAffinity, IOPriority, Personality, Scheduler, TimeOffset
from corral.config.seccomp import Seccomp
from corral.config.types import (
    DEFAULT_MASKED_PATHS,
    DEFAULT_NAMESPACES,
    DEFAULT_PATH_ENV,
    DEFAULT_READONLY_PATHS,
    Capabilities,
    ConsoleSize,
    Device,
    FrozenMap,
    IDMapping,
    Mount,
    Namespace,
    Resources,
    Rlimit,
    Root,
    User,
    UNSET,
    default_mounts,
    lists_to_tuples,
)
from corral.config.validate import (
    resolve_paths,
    validate_process,
    validate_sections,
    validate_version,
)
from corral.errors import ConfigError
from corral.records import field, record, replace


def _oci() -> ModuleType:
    """oci.py, which builds Process and Config and so cannot be imported at the top."""
    from corral.config import oci

    return oci


#: The fields of a `Process` that an exec'd process takes from the container's own
#: process when it leaves them unset, as `runc exec` does: who it runs as, what it
#: may do, and where and with what environment. (AppArmor and SELinux labels
#: belong here too once corral honours them: today a config with one is refused,
#: so there is no label to inherit.)
INHERITED: tuple[str, ...] = ("env", "cwd", "user", "rlimits", "no_new_privileges", "capabilities")


def _process_defaults() -> dict[str, Any]:
    """Those of `runc spec`: what an unset field means anywhere but in `exec`."""
    return {
        "env": (DEFAULT_PATH_ENV,),
        "cwd": "/",
        "user": User(),
        "rlimits": (),
        "no_new_privileges": False,
        "capabilities": Capabilities(),
    }


@record
class Process:
    """The process to run: the container's own (in `Config.process`) or one to exec.

    Validated on construction, with errors under ``process.`` (the OCI name of
    this object), both for the container's process and for `exec`.

    A field of INHERITED that the caller leaves out is *unset*, which is not
    the same as empty: ``env=()`` is an empty environment, no `env` at all is
    "whatever the container's process has" for `Container.exec`
    (`resolved_against`), and `runc spec`'s default everywhere else. Fields
    always hold a value (the default, for an unset one), so that reading a
    Process needs no special case; `unset` names the fields left out. This is
    pydantic's ``model_fields_set``, and, like it, it is not part of equality:
    two processes are equal when they are the same OCI process object (what
    `to_dict` writes). `Config` keeps its process with nothing unset, and JSON
    has no "unset" (a left-out key means what OCI says), so neither carries it;
    nor does `dataclasses.replace`, whose result has every field set.
    """

    args: tuple[str, ...]
    env: tuple[str, ...] = UNSET
    cwd: str = UNSET
    user: User = UNSET
    rlimits: tuple[Rlimit, ...] = UNSET
    no_new_privileges: bool = UNSET
    capabilities: Capabilities | None = UNSET
    oom_score_adj: int | None = None
    terminal: bool = False
    #: The terminal's size (`consoleSize`), applied to the pty when `terminal` is true.
    console_size: ConsoleSize | None = None
    #: The fields of INHERITED that the caller left out (set on construction).
    unset: frozenset[str] = field(default=frozenset(), init=False, compare=False)
    #: Kept for the executor, which ignores them (with a warning) where the LSM is off and
    #: refuses them where it is on (executor/lsm.py): applying labels is not supported yet.
    selinux_label: str | None = None
    apparmor_profile: str | None = None
    #: ioprio_set(2), sched_setattr(2) and, for an exec'd process only (as the spec says),
    #: sched_setaffinity(2) before and after it joins the cgroup (config/process_attrs.py).
    io_priority: IOPriority | None = None
    scheduler: Scheduler | None = None
    exec_cpu_affinity: CPUAffinity | None = None

    def __post_init__(self) -> None:
        defaults = _process_defaults()
        unset = frozenset(name for name in INHERITED if getattr(self, name) is UNSET)
        for name in unset:
            object.__setattr__(self, name, defaults[name])
        object.__setattr__(self, "unset", unset)
        lists_to_tuples(self, "args", "env", "rlimits")
        validate_process(self, "process")

    def resolved_against(self, base: Process) -> Process:
        """This process, with what it leaves unset taken from `base` (the container's own).

        What `Container.exec` runs: an exec'd process inherits the container's
        user, capabilities, no_new_privileges, rlimits, environment and working
        directory unless it says otherwise, so that exec never runs with more
        privilege than the container was given (runc exec does the same). The
        result has nothing unset.
        """
        return replace(self, **{name: getattr(base, name) for name in self.unset})

    def resolved(self) -> Process:
        """This process with nothing unset: the defaults it shows become its own values."""
        return replace(self) if self.unset else self

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str | None = None, strict: bool = False
    ) -> Process:
        """Read an OCI `process` object (as for `runc exec --process`).

        Left-out keys mean what they mean in OCI JSON, not the Python defaults:
        no `env` is an empty environment, no `capabilities` is None, no `user`
        is uid 0 / gid 0. `cwd` is required, as in OCI. A key the spec does not
        know is ignored with a logged warning (refused if `strict`), as for Config.
        """
        oci = _oci()
        with ErrorsFrom(source), oci.reading(strict, source):
            return oci.parse_process(data, "process")

    def to_dict(self) -> dict[str, Any]:
        """The OCI `process` object; `Process.from_dict(p.to_dict()) == p`."""
        return _oci().process_to_dict(self)

    @classmethod
    def from_json(
        cls, text: str | bytes, *, source: str | None = None, strict: bool = False
    ) -> Process:
        return cls.from_dict(_oci().load_json(text, source), source=source, strict=strict)

    def to_json(self) -> str:
        """Compact and with sorted keys, so that equal processes give equal text."""
        return _oci().dump_json(self.to_dict())


@record
class Config:
    """A container's configuration, valid by construction.

    Built in Python, the defaults are those of `runc spec`. Read from JSON
    (`from_dict`, `from_json`, `from_bundle`), a left-out section means "none",
    as OCI says: no `mounts` is no mounts, no `linux.namespaces` is no new
    namespaces, no `process.capabilities` is ``capabilities=None``.
    The process is kept with nothing unset (`Process.resolved`): a container's
    own process has nothing to inherit from. No `seccomp` is no filter.

    A relative `root.path` (or bind-mount source) resolves against `bundle`;
    without a bundle it must be absolute. Lists are stored as tuples, `sysctl`
    and `annotations` as `FrozenMap`, so that equal configs compare equal, hash
    alike, and cannot be changed after validation.
    """

    process: Process
    root: Root
    hostname: str | None = None
    mounts: tuple[Mount, ...] = field(default_factory=default_mounts)
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
    seccomp: Seccomp | None = None
    mount_label: str | None = None  # SELinux; see Process.selinux_label
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: Programs run at moments of the lifecycle (config/hooks.py); only ever the bundle's own.
    hooks: Hooks = field(default_factory=Hooks)
    #: corral's network section (config/network.py); in a bundle, the annotation io.corral.network.
    network: Network | None = None
    oci_version: str = "1.0.2"
    bundle: str | None = None  # the directory it was read from, if any
    #: What reading it ignored, one "json.path: why" each (unknown keys, deprecated fields);
    #: not part of the value: it compares and hashes as the same config without them.
    warnings: tuple[str, ...] = field(default=(), compare=False)
    #: setdomainname(2) in the new UTS namespace (refused without one, as `hostname`).
    domainname: str | None = None
    #: personality(2) of the container's own process (applied by the init; exec'd processes keep the runtime's).
    personality: Personality | None = None
    #: `linux.timeOffsets`: clock name -> offset, written for the new time namespace.
    time_offsets: Mapping[str, TimeOffset] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if isinstance(self.process, Process):  # anything else is for validate() to refuse
            object.__setattr__(self, "process", self.process.resolved())
        lists_to_tuples(
            self,
            "mounts",
            "namespaces",
            "uid_mappings",
            "gid_mappings",
            "masked_paths",
            "readonly_paths",
            "devices",
        )
        for name in ("sysctl", "annotations", "time_offsets"):
            value = getattr(self, name)
            if isinstance(value, Mapping) and not isinstance(value, FrozenMap):
                object.__setattr__(self, name, FrozenMap(value))
        resolve_paths(self)
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
        validate_version(self.oci_version)  # first: nothing else means anything in another version
        check_instance(self.process, Process, "process")
        validate_sections(self)
        if NETWORK_ANNOTATION in self.annotations:  # from_dict moves it to `network`; so must Python
            fail(
                free_key("annotations", NETWORK_ANNOTATION),
                "is corral's network section: give it as Config.network (JSON configs are read into it)",
            )
        if self.network is not None:
            validate_network(self.network)
            if self.network.interfaces and self.namespace("network") is None:
                fail("network", "interfaces need the container's own network namespace: add {\"type\": \"network\"} "
                     "to linux.namespaces (without one it shares the host's)")

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        bundle: str | None = None,
        source: str | None = None,
        strict: bool = False,
    ) -> Config:
        """Read an OCI runtime-spec 1.x config.json object.

        OCI semantics, not the Python defaults: a section that is left out means
        "none" (no `mounts`, no `linux.namespaces`, no `linux.maskedPaths` are
        empty; no `process.capabilities` is None; no `process.env` is an empty
        environment). A key whose value is null counts as left out. A key the
        spec defines but corral does not honour is refused; a key the spec does
        not define is ignored, as the spec requires, with a warning logged on
        the ``corral`` logger and kept in `warnings` (``strict=True`` refuses it
        instead, with the same spelling hint); only `annotations` is free-form.
        `bundle` (made absolute) is where a relative `root.path` resolves; it
        does not need to exist here (see `from_bundle`). `source` prefixes every
        error and logged warning, usually the config.json path.
        """
        oci = _oci()
        with ErrorsFrom(source), oci.reading(strict, source):
            absolute = os.path.abspath(bundle) if bundle is not None else None
            return oci.parse_config(data, absolute)

    def to_dict(self) -> dict[str, Any]:
        """The OCI JSON form, with only what is set.

        Every non-empty section is written, the Python defaults included,
        because JSON reads a missing section as "none". `bundle` is not part of
        OCI JSON and is left out: ``Config.from_dict(c.to_dict(), bundle=c.bundle) == c``.
        """
        return _oci().config_to_dict(self)

    @classmethod
    def from_json(
        cls,
        text: str | bytes,
        *,
        bundle: str | None = None,
        source: str | None = None,
        strict: bool = False,
    ) -> Config:
        return cls.from_dict(
            _oci().load_json(text, source), bundle=bundle, source=source, strict=strict
        )

    def to_json(self) -> str:
        """Compact, with sorted keys: stored in the database and sent to the init,
        where equal configs should give equal text."""
        return _oci().dump_json(self.to_dict())

    @classmethod
    def from_bundle(
        cls, path: str | bytes | os.PathLike[str] | os.PathLike[bytes], *, strict: bool = False
    ) -> Config:
        """Read `<path>/config.json`, resolving `root.path` against the bundle.

        Unlike `from_dict`, it checks the filesystem: the bundle directory and
        the rootfs must exist. Errors are prefixed with the config.json path. A file
        over 16 MiB is refused unread (the reader's limits: oci.MAX_CONFIG_BYTES).
        """
        bundle = os.path.abspath(os.fsdecode(path))
        config_path = os.path.join(bundle, "config.json")
        text = _oci().read_config_file(bundle, config_path)
        config = cls.from_json(text, bundle=bundle, source=config_path, strict=strict)
        if not os.path.isdir(config.root.path):
            raise ConfigError(
                "root.path",
                f"{config.root.path} does not exist or is not a directory",
                source=config_path,
            )
        return config

