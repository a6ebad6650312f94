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
from tests.security.cli import CorralCli
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


def test_no_host_cgroup_file_is_writable_through_the_cli(corral_cli: CorralCli, bundle: Path, tmp_path: Path) -> None:
    """The `ro` cgroup mount case once through the `corral` command: the host's hierarchies and
    the session's parent before and after (the container's own directories, found from its
    /proc/<pid>/cgroup, are gone after `delete`, so they are left out of the comparison)."""
    config = make_config(bundle, "cg", "/bin/sh", "-c", ATTACK)
    config = dataclasses.replace(
        config, mounts=config.mounts + (Mount("/sys/fs/cgroup", "cgroup", "cgroup", ("nosuid", "noexec", "nodev", "relatime", "ro")),)
    )
    states: dict[str, dict[str, object]] = {}
    mounts_before = host_mounts()

    def while_created(pid: int) -> None:
        own = []
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                base = Path("/sys/fs/cgroup") / name.removeprefix("name=") if name else Path("/sys/fs/cgroup")
                if (base / path.lstrip("/")).is_dir():
                    own.append(str(base / path.lstrip("/")))
        states["watched"] = {"dirs": own}
        states["before"] = _cgroup_state(_watched(own))

    run = corral_cli.run("cg", config, bundle, while_created=while_created)
    assert run.created, run.error
    own = states["watched"]["dirs"]  # type: ignore[index]
    escapes = _escapes()
    _remove(escapes)
    assert escapes == [], (escapes, run.output)
    assert "done" in run.output, run.output
    assert "WROTE" not in run.output and "MADE" not in run.output and "MOUNTED" not in run.output, run.output
    after = _cgroup_state([p for p in _watched(own) if p.exists()])  # type: ignore[arg-type]
    before = {k: v for k, v in states["before"].items() if not any(k.startswith(d) for d in own)}  # type: ignore[union-attr]
    after = {k: v for k, v in after.items() if not any(k.startswith(d) for d in own)}  # type: ignore[arg-type]
    assert after == before
    assert new_host_mounts(mounts_before, tmp_path) == set()
