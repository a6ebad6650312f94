"""spec and features: what a bundle's config.json should look like, and what corral honours."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from corral.cli.context import Context
from corral.errors import CorralError


def default_spec() -> dict[str, Any]:
    """`runc spec`'s config (the library's Python defaults), with `sh` in a read-only `rootfs`.

    `terminal` is false: corral has no console support yet, and a config it
    writes must be one it can run.
    """
    from corral.config import Config, Process, Root

    config = Config(process=Process(args=("sh",)), root=Root("/rootfs", readonly=True), hostname="corral")
    data = config.to_dict()
    data["root"]["path"] = "rootfs"  # relative to the bundle, as runc writes it
    data["process"]["terminal"] = False
    return data


def spec(ctx: Context) -> int:
    if ctx.args.rootless:
        raise CorralError("spec --rootless: rootless containers are not supported by corral")
    bundle = ctx.args.bundle or "."
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise CorralError("File config.json exists. Remove it first.")
    text = json.dumps(default_spec(), indent="\t") + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return 0


def _mount_options() -> list[str]:
    try:
        from corral.executor.rootfs import FLAG_OPTIONS, PROPAGATION_OPTIONS
    except ImportError:  # the cffi extension is not built: say nothing rather than guess
        return []
    return sorted(set(FLAG_OPTIONS) | set(PROPAGATION_OPTIONS))


def features_document() -> dict[str, Any]:
    """The OCI runtime features document (runtime-spec features.md), from the config tables.

    Only what corral honours: no hooks yet, no seccomp in the config yet, no
    AppArmor or SELinux, cgroupfs (v1 and v2) but not systemd.
    """
    from corral.config import CAPABILITIES, NAMESPACE_TYPES

    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.0.2",
        "hooks": [],
        "mountOptions": _mount_options(),
        "linux": {
            "namespaces": list(NAMESPACE_TYPES),
            "capabilities": sorted(CAPABILITIES, key=CAPABILITIES.__getitem__),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"io.github.corral.version": _version()},
    }


def _version() -> str:
    from corral.version import __version__

    return __version__


def features(ctx: Context) -> int:
    sys.stdout.write(json.dumps(features_document(), indent="    ") + "\n")
    return 0
