"""Removing a container the store forgot: its run dir is found, its record is not.

Recovery (statemachine/orphans.py) calls this under the container id's lock
for each run dir under the run root that no live record owns. The run dir's
identity file (identity.py, written by create) is the only description of the
container left, so every kernel object is checked against what corral itself
wrote before it is touched, and what cannot be proven corral's is left alone:

- no identity file (a create that died before writing it, an older corral),
  or one that names another id: nothing is signalled; the run dir is removed,
  as before corral wrote identities;
- another boot id: the processes and cgroups it names ended with that boot;
  nothing is signalled, the run dir is removed;
- the init: SIGKILLed through a pidfd, and only if its PID still has the
  recorded start time (checked after the pidfd is open, so the check cannot go
  stale: a PID handed to another process is never signalled). With its own
  PID namespace its death ends every process in it;
- the cgroups: killed in and removed only when every directory the identity
  names is one create made (listed as created), lies under corral's own parent
  (``/corral`` of its hierarchy), is not named by a live record, and still has
  the inode it had when made (so it is the very directory corral made, not one
  removed and made again by anyone). Such a directory holds only what corral
  put there (the init and exec'd processes) and their children, the same rule
  destroy follows (cgroups/ownership.py). Otherwise no cgroup is killed in and
  none is removed: they are reported, left for an operator;
- the monitor: waited for, so that it has written the exit before the run dir
  goes (its journal write finds no record and gives up);
- the run dir: removed last, and only once the init is gone; an init that
  outlives its SIGKILL (in a frozen cgroup corral may not thaw) keeps its run
  dir, so that the next recovery finds it again.

Network interfaces: a container's host-side veth ends with its network
namespace, that is with its last process. Mounts: a container's mounts live in
its own mount namespace, which ends with it too.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Collection

from corral.errors import CorralError
from corral.executor import identity as identities
from corral.executor import proc
from corral.executor.cgroups import CgroupDriver
from corral.executor.interface import ForgottenRemoval
from corral.executor.teardown import MONITOR_GRACE, wait_for_exit

#: corral's own subtree of every hierarchy (linux.DEFAULT_CGROUP_PARENT).
CGROUP_PARENT = "/corral"
KILL_TIMEOUT = 10.0


def remove(
    driver: CgroupDriver, container_id: str, run_dir: str, spare: Collection[str] = ()
) -> ForgottenRemoval:
    """Kill and remove what the identity in `run_dir` proves is the forgotten container's.

    `spare`: cgroup directories a live record names, never touched.
    """
    found = identities.read(run_dir)
    if found is None or found.container_id != container_id:
        return _remove_run_dir(run_dir, ["no identity file of this id: nothing signalled"])
    if found.boot_id != identities.kernel_boot_id():
        return _remove_run_dir(run_dir, ["written in another boot: nothing signalled"])
    done: list[str] = []
    killed = _kill_init(found.init)
    if killed:
        done.append(f"killed the init {found.init.pid}")
    cgroup = None
    refused = _cgroup_refusal(driver, found, spare)
    if refused is None:
        cgroup = driver.open(found.cgroup_paths, found.created_cgroups)
        try:
            cgroup.kill_all(KILL_TIMEOUT)
        except CorralError as exc:
            done.append(f"killing in the cgroups failed: {exc}")
    elif found.cgroup_paths:
        done.append(f"cgroups left alone ({refused})")
    if not wait_for_exit(found.init, KILL_TIMEOUT):
        done.append(f"the init {found.init.pid} survived SIGKILL: run dir kept for the next recovery")
        return ForgottenRemoval(False, "; ".join(done))
    wait_for_exit(found.monitor, MONITOR_GRACE)
    if cgroup is not None:
        try:
            cgroup.destroy(KILL_TIMEOUT)
            done.append("cgroups removed")
        except CorralError as exc:
            done.append(f"cgroups not all removed: {exc}")
    return _remove_run_dir(run_dir, done)


def _kill_init(init: proc.ProcessIdentity) -> bool:
    pidfd = proc.open_pidfd(init)  # None: gone, or its PID names another process now
    if pidfd is None:
        return False
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(pidfd)


def _cgroup_refusal(driver: CgroupDriver, found: identities.Identity, spare: Collection[str]) -> str | None:
    """Why the identity's cgroups are not proven the container's own, or None when they are."""
    if not found.cgroup_paths:
        return "none recorded"
    parents = driver.plan(CGROUP_PARENT)
    for key, path in found.cgroup_paths.items():
        path = os.path.normpath(path)
        parent = parents.get(key)
        if parent is None or not path.startswith(parent + "/"):
            return f"{path} is not under corral's parent {CGROUP_PARENT}"
        if path not in found.created_cgroups.get(key, ()):
            return f"{path} was joined, not made by create"
        if path in {os.path.normpath(p) for p in spare}:
            return f"{path} is named by a live record"
        try:
            inode = os.stat(path).st_ino
        except FileNotFoundError:
            continue  # gone already: nothing in it to kill
        if inode != found.cgroup_inodes.get(key):
            return f"{path} is not the directory create made (another inode)"
    return None


def _remove_run_dir(run_dir: str, done: list[str]) -> ForgottenRemoval:
    import shutil  # here: linux.py imports this module, and a CLI create must not load shutil (zlib, bz2, lzma)

    shutil.rmtree(run_dir, ignore_errors=True)
    removed = not os.path.exists(run_dir)
    done.append("run dir removed" if removed else "run dir could not be removed")
    return ForgottenRemoval(removed, "; ".join(done))
