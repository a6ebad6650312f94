"""Which mount namespace the container gets, and what each choice rules out.

The runtime spec lets `linux.namespaces` create a mount namespace, join one by
path, or leave it out (the container shares the runtime's). Only a new one is
corral's to change: there the rootfs is bound, the config's mounts made and
`pivot_root` called, and everything dies with the init.

- joined (`{"type": "mount", "path": ...}`): the process setns's into it and its
  root is that namespace's root, as runc does: no rootfs set-up, because every
  mount would change a namespace someone else owns and others live in.
- absent: the init `chroot`s into `root.path` (runc: chroot when there is no
  NEWNS). Nothing is ever mounted then, since any mount would land in the
  host's namespace; and a chroot is not a pivot_root: the old root stays
  reachable to a process that may call chroot (CAP_SYS_CHROOT) again.

What needs a mount of its own is refused in both cases, naming the field, before
anything is created (`check`).
"""

from __future__ import annotations

from corral.config import Config
from corral.errors import ConfigError

NEW = "new"
JOINED = "joined"
NONE = "none"


def mode(config: Config) -> str:
    """NEW, JOINED or NONE: what the config asks of the mount namespace."""
    ns = config.namespace("mount")
    if ns is None:
        return NONE
    return NEW if ns.path is None else JOINED


def check(config: Config) -> None:
    """Refuse what cannot be done without a new mount namespace of the container's own."""
    which = mode(config)
    if which == NEW:
        return
    why = (
        "the container joins a mount namespace by path (linux.namespaces): "
        "it would change that namespace, which others share"
        if which == JOINED
        else "the container has no mount namespace of its own (linux.namespaces has no 'mount'): "
        "it would change the host's mounts"
    )
    needs_mounts = (
        ("mounts", bool(config.mounts), "cannot be mounted"),
        ("linux.maskedPaths", bool(config.masked_paths), "cannot be masked"),
        ("linux.readonlyPaths", bool(config.readonly_paths), "cannot be made read-only"),
        ("root.readonly", config.root.readonly, "the root cannot be remounted read-only"),
        ("linux.devices", bool(config.devices), "cannot be created"),
        ("linux.rootfsPropagation", config.rootfs_propagation is not None, "cannot be applied"),
    )
    for where, asked, what in needs_mounts:
        if asked:
            raise ConfigError(where, f"{what}: {why}")
    if which == NONE and config.process.terminal:
        raise ConfigError(
            "process.terminal",
            "needs the container's own /dev/pts (a devpts mounted in its mount namespace): " + why,
        )
