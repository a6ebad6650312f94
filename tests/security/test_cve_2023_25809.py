"""CVE-2023-25809 (runc, rootless): a host cgroup writable from a container without a cgroup namespace.

runc bind-mounted a host cgroup directory (the user's `user.slice` subtree)
into a rootless container that had no cgroup namespace: the container could
write the host's cgroup files. corral's configs here have no `cgroup`
namespace (the default); the container, as root in it, tries every way to a
cgroup file it knows: writing every `pids.max` and `cgroup.procs`-free limit
file it can see under `/sys/fs/cgroup`, making a directory in every cgroup
directory it can see, and mounting the cgroup filesystems itself.

Checked on the host: the listing of every cgroup directory of the container and
of the test session's parent, and each hierarchy's root, in every hierarchy,
and the bytes of their limit files, after create and after the attack; no
directory named with the attack's token anywhere in the first levels of the host's cgroup trees.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from corral import Mount, Runtime
from corral.types import Stdio
from tests.integration.conftest import CGROUP_PARENT, make_config, output_file
from tests.security.host import host_mounts, new_host_mounts

pytestmark = pytest.mark.root

LIMIT_FILES = ("pids.max", "memory.max", "memory.limit_in_bytes", "cpu.shares", "cpu.max", "cpuset.cpus")
#: A directory made by the attack is named with this token (and removed by the test, wherever
#: it is); a limit file is written with the value it holds, so that a successful write
#: proves the file writable without changing a host's limit if the defence is gone.
ESCAPE = f"escape-corral-security-{os.getpid()}"
ATTACK = r"""
for d in $(find /sys/fs/cgroup -maxdepth 4 -type d 2>&-); do
  mkdir "$d/ESCAPE" 2>&- && echo "MADE $d"
done
for f in $(find /sys/fs/cgroup -maxdepth 5 \( -name pids.max -o -name memory.max -o -name memory.limit_in_bytes -o -name cpu.shares \) 2>&-); do
  v=$(cat "$f") && (echo "$v" > "$f") 2>&- && echo "WROTE $f"
done
mkdir -p /tmp/cg1 /tmp/cg2
mount -t cgroup -o pids none /tmp/cg1 2>&- && echo "MOUNTED cgroup v1" && mkdir /tmp/cg1/ESCAPE 2>&- && echo "MADE /tmp/cg1"
mount -t cgroup2 none /tmp/cg2 2>&- && echo "MOUNTED cgroup2" && mkdir /tmp/cg2/ESCAPE 2>&- && echo "MADE /tmp/cg2"
echo done
""".replace("ESCAPE", ESCAPE)


def _cgroup_state(dirs: list[Path]) -> dict[str, object]:
    """Each directory's entry names and the bytes of its limit files (what a write would change).

    A hierarchy's root is listed by its limit files only: other test sessions and the
    machine make and remove their cgroups there while this test runs; a directory the
    attack made there is found by its token (`_escapes`)."""
    state: dict[str, object] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        if d.parent != Path("/sys/fs/cgroup"):
            state[f"{d}/"] = sorted(os.listdir(d))
        for name in LIMIT_FILES:
            try:
                state[str(d / name)] = (d / name).read_bytes()
            except OSError:
                pass
    return state


def _escapes() -> list[str]:
    found = []
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        for dirpath, dirnames, _ in os.walk(hierarchy):
            if dirpath.count("/") > 8:
                dirnames.clear()
                continue
            found += [os.path.join(dirpath, n) for n in dirnames if n == ESCAPE]
    return found


def _remove(escapes: list[str]) -> None:
    """Undo the attack's directories on the host (deepest first), so that a regression does
    not leave cgroups behind."""
    for path in sorted(escapes, key=len, reverse=True):
        try:
            os.rmdir(path)
        except OSError:
            pass


def _watched(container_dirs: list[str]) -> list[Path]:
    hierarchies = [p for p in Path("/sys/fs/cgroup").iterdir() if p.is_dir()]
    return (
        [Path(d) for d in container_dirs]
        + [h / CGROUP_PARENT.lstrip("/") for h in hierarchies]
        + hierarchies
    )


@pytest.mark.parametrize("cgroup_mount", ["none", "ro", "default-options"])
def test_no_host_cgroup_file_is_writable_without_a_cgroup_namespace(
    runtime: Runtime, bundle: Path, tmp_path: Path, cgroup_mount: str
) -> None:
    config = make_config(bundle, "cg", "/bin/sh", "-c", ATTACK)
    assert not any(ns.type == "cgroup" for ns in config.namespaces), "this attack needs no cgroup namespace"
    if cgroup_mount == "ro":
        config = dataclasses.replace(
            config, mounts=config.mounts + (Mount("/sys/fs/cgroup", "cgroup", "cgroup", ("nosuid", "noexec", "nodev", "relatime", "ro")),)
        )
    elif cgroup_mount == "default-options":  # no `ro`: corral's bind of the container's own directories
        config = dataclasses.replace(
            config, mounts=config.mounts + (Mount("/sys/fs/cgroup", "cgroup", "cgroup", ("nosuid", "noexec", "nodev")),)
        )
    fd, out = output_file(tmp_path)
    box = runtime.create("cg", config, stdio=Stdio(stdout=fd, stderr=fd))
    os.close(fd)
    watched = _watched(list(box.record.cgroup_paths.values()))
    before = _cgroup_state(watched)
    mounts_before = host_mounts()
    box.start()
    assert box.wait(30) is not None
    text = out.read_text()
    after = _cgroup_state(watched)
    escapes = _escapes()
    _remove(escapes)
    box.destroy()
    own = tuple(f"{path}/" for path in box.record.cgroup_paths.values())
    assert "done" in text, text
    if cgroup_mount == "default-options":
        escapes = [e for e in escapes if not e.startswith(own)]
    assert escapes == [], (escapes, text)
    host_side = {k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)}
    if cgroup_mount == "default-options":
        # A writable cgroup mount shows the container its own cgroups: those, and only those,
        # it may change. Nothing above them.
        outside = {k: v for k, v in host_side.items() if not (k + '/').startswith(own) and not k.startswith(own)}
        assert outside == {}, (outside, text)
    else:
        assert host_side == {}, (host_side, text)
        assert "WROTE" not in text and "MADE" not in text, text
    assert "MOUNTED" not in text, text
    assert new_host_mounts(mounts_before, tmp_path) == set()
