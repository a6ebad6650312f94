"""Idmapped bind mounts (`mounts[].uidMappings`/`gidMappings`), made before any namespace.

The kernel lets only a process with CAP_SYS_ADMIN over the user namespace of the
source's filesystem (the host's, for a host directory) set MOUNT_ATTR_IDMAP, so
the mount cannot be made by the init once it is in the container's user
namespace. As runc does, it is made first, in the runtime's namespaces, as a
detached tree (open_tree(OPEN_TREE_CLONE)): a user namespace holding the
mount's own mappings is made for the occasion (a child unshares it and waits
while its maps are written), the tree is idmapped through it, and the init later
attaches the tree at its destination in its own mount namespace (move_mount).
Nothing is mounted in the host's namespace: a detached tree belongs to none.
"""

from __future__ import annotations

import os

from corral.config import Config, IDMapping, Mount
from corral.errors import MountError
from corral.executor import syscalls as sc

AT_FDCWD = -100


def _map_text(mappings: tuple[IDMapping, ...]) -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)


def userns_fd(mount: Mount) -> int:
    """An fd of a new user namespace with the mount's mappings (its process is gone after)."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child only unshares and waits
        try:
            os.close(ready_r)
            os.close(done_w)
            sc.unshare(sc.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError("the child making the mount's user namespace failed")
        for name, mappings in (("uid_map", mount.uid_mappings), ("gid_map", mount.gid_mappings)):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(_map_text(mappings))
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)


def detached_trees(config: Config) -> dict[int, int]:
    """Mount index -> fd of its idmapped detached tree, for every idmapped mount; MountError names one that fails."""
    trees: dict[int, int] = {}
    try:
        for i, mount in enumerate(config.mounts):
            if not mount.is_idmapped:
                continue
            recursive = "rbind" in mount.options
            try:
                userns = userns_fd(mount)
                try:
                    tree = sc.open_tree(
                        AT_FDCWD,
                        mount.source or "",
                        sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC | (sc.AT_RECURSIVE if recursive else 0),
                    )
                    trees[i] = tree
                    flags = sc.AT_EMPTY_PATH | (sc.AT_RECURSIVE if recursive else 0)
                    sc.mount_setattr(tree, "", flags, sc.MOUNT_ATTR_IDMAP, 0, userns)
                finally:
                    os.close(userns)
            except OSError as exc:
                raise MountError(mount.destination, exc, what="idmapped mount") from exc
    except BaseException:
        for fd in trees.values():
            os.close(fd)
        raise
    return trees
