"""corral: a Linux container runtime library.

The public API is re-exported here lazily (PEP 562): the container's init and the
spawn helper import `corral.executor.*` in fresh interpreters where every
millisecond counts, and must not pay for SQLAlchemy or `transitions` through this
package's `__init__`.
"""

from __future__ import annotations

from corral.version import __version__

# Not `from typing import TYPE_CHECKING`: `typing` costs a one-shot command-line call
# (corral.cli.oneshot) several milliseconds, and every `import corral.x` runs this file.
TYPE_CHECKING = False

_EXPORTS: dict[str, str] = {
    # the lifecycle
    "Runtime": "corral.statemachine.runtime",
    "Container": "corral.statemachine.container",
    "ExecProcess": "corral.statemachine.process",
    "State": "corral.statemachine.lifecycle",
    "RecoveryReport": "corral.statemachine.recovery",
    "RecoveryAction": "corral.statemachine.recovery",
    "Orphan": "corral.statemachine.orphans",
    "Event": "corral.statemachine.events_stream",
    "EventStream": "corral.statemachine.events_stream",
    # records read back from the store
    "ContainerRecord": "corral.store.repository",
    "NamespaceRecord": "corral.store.repository",
    "JournalEntry": "corral.store.repository",
    "ProcessRecord": "corral.store.repository",
    # the configuration
    "Config": "corral.config",
    "Process": "corral.config",
    "User": "corral.config",
    "Root": "corral.config",
    "Mount": "corral.config",
    "Namespace": "corral.config",
    "IDMapping": "corral.config",
    "Resources": "corral.config",
    "BlockIOResources": "corral.config",
    "Capabilities": "corral.config",
    "ConsoleSize": "corral.config",
    "CpuResources": "corral.config",
    "Device": "corral.config",
    "DeviceRule": "corral.config",
    "HugepageLimit": "corral.config",
    "CPUAffinity": "corral.config",
    "IOPriority": "corral.config",
    "Personality": "corral.config",
    "Scheduler": "corral.config",
    "TimeOffset": "corral.config",
    "Hook": "corral.config",
    "Hooks": "corral.config",
    "MemoryResources": "corral.config",
    "PidsResources": "corral.config",
    "Rlimit": "corral.config",
    "Seccomp": "corral.config",
    "SeccompArg": "corral.config",
    "SeccompSyscall": "corral.config",
    "Network": "corral.config",
    "Interface": "corral.config",
    "Route": "corral.config",
    "features": "corral.config.features",
    # terminals: runc's --console-socket protocol
    "send_console": "corral.executor.console_socket",
    "receive_console": "corral.executor.console_socket",
    "ReceivedConsole": "corral.executor.console_socket",
    "ConsoleSocketError": "corral.executor.console_socket",
    # values handed in and out
    "Stdio": "corral.types",
    "LogLine": "corral.types",
    "ExecResult": "corral.types",
    "Stats": "corral.types",
    "MemoryStats": "corral.types",
    "CpuStats": "corral.types",
    "PidsStats": "corral.types",
    "InterfaceStats": "corral.types",
    "HostInterface": "corral.types",
    "ExitStatus": "corral.types",
    "OOMEvent": "corral.types",
    "ProcessIdentity": "corral.types",
    # every error a caller can catch (one hierarchy under CorralError)
    "errors": "corral.errors",
    "CorralError": "corral.errors",
    "InvalidID": "corral.errors",
    "ConfigError": "corral.errors",
    "InvalidStdio": "corral.errors",
    "ContainerNotFound": "corral.errors",
    "ContainerExists": "corral.errors",
    "LogsUnavailable": "corral.errors",
    "InvalidTransition": "corral.errors",
    "ConcurrentModification": "corral.errors",
    "StoreError": "corral.errors",
    "StoreUnreadable": "corral.errors",
    "StoreAccessDenied": "corral.errors",
    "StoreReplaced": "corral.errors",
    "LockError": "corral.errors",
    "UnknownRevision": "corral.errors",
    "ExecutorError": "corral.errors",
    "InitError": "corral.errors",
    "HookFailed": "corral.errors",
    "MountError": "corral.errors",
    "CgroupError": "corral.errors",
    "FreezeTimeout": "corral.errors",
    "WaitTimeout": "corral.errors",
    "ProcessGone": "corral.errors",
    "RunDirError": "corral.errors",
    "NeedsRoot": "corral.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> object:  # every export is typed by the TYPE_CHECKING imports below
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'corral' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(module_name)
    value = module if name == "errors" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


# Each name imported `as` itself: an explicit re-export, which `mypy --strict` requires.
if TYPE_CHECKING:  # pragma: no cover
    from corral import errors as errors
    from corral.config import (
        BlockIOResources as BlockIOResources,
        Capabilities as Capabilities,
        Config as Config,
        ConsoleSize as ConsoleSize,
        CpuResources as CpuResources,
        Device as Device,
        DeviceRule as DeviceRule,
        Hook as Hook,
        Hooks as Hooks,
        HugepageLimit as HugepageLimit,
        CPUAffinity as CPUAffinity,
        IOPriority as IOPriority,
        Personality as Personality,
        Scheduler as Scheduler,
        TimeOffset as TimeOffset,
        IDMapping as IDMapping,
        Interface as Interface,
        MemoryResources as MemoryResources,
        Mount as Mount,
        Namespace as Namespace,
        Network as Network,
        PidsResources as PidsResources,
        Process as Process,
        Resources as Resources,
        Rlimit as Rlimit,
        Root as Root,
        Route as Route,
        Seccomp as Seccomp,
        SeccompArg as SeccompArg,
        SeccompSyscall as SeccompSyscall,
        User as User,
    )
    from corral.config.features import features as features
    from corral.executor.console_socket import (
        ConsoleSocketError as ConsoleSocketError,
        ReceivedConsole as ReceivedConsole,
        receive_console as receive_console,
        send_console as send_console,
    )
    from corral.errors import (
        CgroupError as CgroupError,
        ConcurrentModification as ConcurrentModification,
        ConfigError as ConfigError,
        ContainerExists as ContainerExists,
        ContainerNotFound as ContainerNotFound,
        CorralError as CorralError,
        ExecutorError as ExecutorError,
        FreezeTimeout as FreezeTimeout,
        HookFailed as HookFailed,
        InitError as InitError,
        InvalidID as InvalidID,
        InvalidStdio as InvalidStdio,
        InvalidTransition as InvalidTransition,
        LockError as LockError,
        LogsUnavailable as LogsUnavailable,
        MountError as MountError,
        NeedsRoot as NeedsRoot,
        ProcessGone as ProcessGone,
        RunDirError as RunDirError,
        StoreAccessDenied as StoreAccessDenied,
        StoreError as StoreError,
        StoreReplaced as StoreReplaced,
        StoreUnreadable as StoreUnreadable,
        UnknownRevision as UnknownRevision,
        WaitTimeout as WaitTimeout,
    )
    from corral.statemachine.container import Container as Container
    from corral.statemachine.events_stream import Event as Event, EventStream as EventStream
    from corral.statemachine.lifecycle import State as State
    from corral.statemachine.orphans import Orphan as Orphan
    from corral.statemachine.process import ExecProcess as ExecProcess
    from corral.statemachine.recovery import RecoveryAction, RecoveryReport
    from corral.statemachine.runtime import Runtime as Runtime
    from corral.store.repository import (
        ContainerRecord as ContainerRecord,
        JournalEntry as JournalEntry,
        NamespaceRecord as NamespaceRecord,
        ProcessRecord as ProcessRecord,
    )
    from corral.types import (
        CpuStats as CpuStats,
        ExecResult as ExecResult,
        ExitStatus as ExitStatus,
        HostInterface as HostInterface,
        InterfaceStats as InterfaceStats,
        LogLine as LogLine,
        MemoryStats as MemoryStats,
        OOMEvent as OOMEvent,
        PidsStats as PidsStats,
        ProcessIdentity as ProcessIdentity,
        Stats as Stats,
        Stdio as Stdio,
    )
