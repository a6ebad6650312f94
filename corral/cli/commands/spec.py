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

    `terminal` is true, as runc writes it: run it with `--console-socket`, or set it
    to false.
    """
    from corral.config import Config, Process, Root

    config = Config(process=Process(args=("sh",)), root=Root("/rootfs", readonly=True), hostname="corral")
    data = config.to_dict()
    data["root"]["path"] = "rootfs"  # relative to the bundle, as runc writes it
    data["process"]["terminal"] = True
    return data


def to_rootless(data: dict[str, Any], uid: int, gid: int) -> dict[str, Any]:
    """runc's `specconv.ToRootless`, on a spec's JSON: what `spec --rootless` writes.

    A user namespace mapping container root to `uid`/`gid` (the caller's: one id
    each), no network namespace (an unprivileged user could not set one up), no
    mount under /sys but /sys itself bound read-only from the host (sysfs cannot
    be mounted without the network namespace's owner), no uid=/gid= mount options
    (those ids are not mapped) and no linux.resources (no cgroup to write).
    """
    linux = data.setdefault("linux", {})
    namespaces = [ns for ns in linux.get("namespaces", []) if ns["type"] not in ("network", "user")]
    linux["namespaces"] = [*namespaces, {"type": "user"}]
    linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
    mounts = []
    for mount in data.get("mounts", []):
        if mount["destination"].startswith("/sys"):
            continue
        if "options" in mount:
            mount = dict(mount, options=[o for o in mount["options"] if not o.startswith(("uid=", "gid="))])
        mounts.append(mount)
    mounts.append(
        {"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    )
    data["mounts"] = mounts
    linux.pop("resources", None)
    return data


def spec(ctx: Context) -> int:
    bundle = ctx.args.bundle or "."
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise CorralError("File config.json exists. Remove it first.")
    data = default_spec()
    if ctx.args.rootless:
        data = to_rootless(data, os.geteuid(), os.getegid())
    text = json.dumps(data, indent="\t") + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return 0


def features(ctx: Context) -> int:
    """`runc features`: the document corral.features() returns, as JSON."""
    from corral.config.features import features as features_document

    sys.stdout.write(json.dumps(features_document(), indent=2) + "\n")
    return 0
