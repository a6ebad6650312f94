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
    "Runtime": "corral.statemachine.runtime",
    "Container": "corral.statemachine.container",
    "State": "corral.statemachine.lifecycle",
    "Config": "corral.config",
    "Process": "corral.config",
    "User": "corral.config",
    "Root": "corral.config",
    "Mount": "corral.config",
    "Namespace": "corral.config",
    "IDMapping": "corral.config",
    "Resources": "corral.config",
    "Stdio": "corral.types",
    "Stats": "corral.types",
    "errors": "corral.errors",
    "CorralError": "corral.errors",
    "InvalidID": "corral.errors",
    "InvalidTransition": "corral.errors",
    "ConcurrentModification": "corral.errors",
    "ConfigError": "corral.errors",
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
        Config,
        IDMapping,
        Mount,
        Namespace,
        Process,
        Resources,
        Root,
        User,
    )
    from corral.errors import (
        ConcurrentModification,
        ConfigError,
        CorralError,
        InvalidID,
        InvalidTransition,
    )
    from corral.statemachine.container import Container
    from corral.statemachine.lifecycle import State
    from corral.statemachine.runtime import Runtime
    from corral.types import Stats, Stdio
