"""corral: a Linux container runtime library.

The public API is re-exported here lazily (PEP 562): the container's init and the
spawn helper import `corral.executor.*` in fresh interpreters where every
millisecond counts, and must not pay for SQLAlchemy or `transitions` through this
package's `__init__`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from corral.version import __version__

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
    "CpuResources": "corral.config",
    "Device": "corral.config",
    "DeviceRule": "corral.config",
    "HugepageLimit": "corral.config",
    "MemoryResources": "corral.config",
    "PidsResources": "corral.config",
    "Rlimit": "corral.config",
    "Seccomp": "corral.config",
    "SeccompArg": "corral.config",
    "SeccompSyscall": "corral.config",
    "features": "corral.config.features",
    # values handed in and out
    "Stdio": "corral.types",
    "Stats": "corral.types",
    "MemoryStats": "corral.types",
    "CpuStats": "corral.types",
    "PidsStats": "corral.types",
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
    "MountError": "corral.errors",
    "CgroupError": "corral.errors",
    "FreezeTimeout": "corral.errors",
    "WaitTimeout": "corral.errors",
    "ProcessGone": "corral.errors",
    "RunDirError": "corral.errors",
    "NeedsRoot": "corral.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'corral' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if name == "errors" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover
    from corral import errors
    from corral.config import (
        BlockIOResources,
        Capabilities,
        Config,
        CpuResources,
        Device,
        DeviceRule,
        HugepageLimit,
        IDMapping,
        MemoryResources,
        Mount,
        Namespace,
        PidsResources,
        Process,
        Resources,
        Rlimit,
        Root,
        Seccomp,
        SeccompArg,
        SeccompSyscall,
        User,
    )
    from corral.config.features import features
    from corral.errors import (
        CgroupError,
        ConcurrentModification,
        ConfigError,
        ContainerExists,
        ContainerNotFound,
        CorralError,
        ExecutorError,
        FreezeTimeout,
        InitError,
        InvalidID,
        InvalidStdio,
        InvalidTransition,
        LockError,
        MountError,
        NeedsRoot,
        ProcessGone,
        RunDirError,
        StoreAccessDenied,
        StoreError,
        StoreReplaced,
        StoreUnreadable,
        UnknownRevision,
        WaitTimeout,
    )
    from corral.statemachine.container import Container
    from corral.statemachine.events_stream import Event, EventStream
    from corral.statemachine.lifecycle import State
    from corral.statemachine.orphans import Orphan
    from corral.statemachine.process import ExecProcess
    from corral.statemachine.recovery import RecoveryAction, RecoveryReport
    from corral.statemachine.runtime import Runtime
    from corral.store.repository import (
        ContainerRecord,
        JournalEntry,
        NamespaceRecord,
        ProcessRecord,
    )
    from corral.types import (
        CpuStats,
        ExitStatus,
        MemoryStats,
        OOMEvent,
        PidsStats,
        ProcessIdentity,
        Stats,
        Stdio,
    )
