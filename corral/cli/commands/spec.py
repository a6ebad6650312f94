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


def features(ctx: Context) -> int:
    """`runc features`: the document corral.features() returns, as JSON."""
    from corral.config.features import features as features_document

    sys.stdout.write(json.dumps(features_document(), indent=2) + "\n")
    return 0
