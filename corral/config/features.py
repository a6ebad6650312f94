"""The OCI runtime features document (runtime-spec features.md): what `runc features` prints.

Generated from the tables the config is validated against (config/linux.py), never
written out by hand, so that what corral says it supports and what it accepts
cannot drift apart; tests/unit/test_features.py feeds every name back to the
parser to prove it. Config layer: it must not import the executor.
"""

from __future__ import annotations

from typing import Any

from corral.config.hooks import HOOK_KINDS
from corral.config.linux import (
    CAPABILITIES,
    FLAG_OPTIONS,
    NAMESPACE_TYPES,
    PROPAGATION_OPTIONS,
    RECURSIVE_OPTIONS,
    SECCOMP_ACTIONS,
    SECCOMP_ARCHITECTURES,
    SECCOMP_FLAGS,
    SECCOMP_NOTIFY_FLAGS,
    SECCOMP_OPERATORS,
)
from corral.version import __version__

#: The runtime-spec versions whose configs corral reads (validate_version accepts 1.x;
#: 1.2.0 is the newest whose fields the parser knows).
OCI_VERSION_MIN = "1.0.0"
OCI_VERSION_MAX = "1.2.0"

#: Refused by the config (user notification is not supported yet), so not advertised.
_UNSUPPORTED_SECCOMP_ACTIONS = frozenset({"SCMP_ACT_NOTIFY"})

#: The annotation naming this runtime's version (runc's is org.opencontainers.runc.version).
VERSION_ANNOTATION = "io.github.corral.version"


def features() -> dict[str, Any]:
    """A fresh features document (a plain JSON-able dict), honest about what is missing.

    Every hook kind of runtime-spec 1.2; cgroupfs v1 and v2 but no systemd driver; seccomp without user
    notification; idmapped bind mounts (Linux 5.12's mount_setattr); no AppArmor, SELinux or Intel RDT.
    """
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": list(HOOK_KINDS),
        "mountOptions": sorted(set(FLAG_OPTIONS) | set(PROPAGATION_OPTIONS) | set(RECURSIVE_OPTIONS)),
        "linux": {
            "namespaces": list(NAMESPACE_TYPES),
            "capabilities": sorted(CAPABILITIES, key=CAPABILITIES.__getitem__),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {
                "enabled": True,
                "actions": [a for a in SECCOMP_ACTIONS if a not in _UNSUPPORTED_SECCOMP_ACTIONS],
                "operators": list(SECCOMP_OPERATORS),
                "archs": list(SECCOMP_ARCHITECTURES),
                "knownFlags": list(SECCOMP_FLAGS) + sorted(SECCOMP_NOTIFY_FLAGS),
                "supportedFlags": list(SECCOMP_FLAGS),
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        "annotations": {VERSION_ANNOTATION: __version__},
    }
