"""CVE-2026-41579 (runc), CVE-2026-47766 (crun): the image's `/dev` is a symlink.

A runtime that builds `/dev` by path (mount a tmpfs on `<rootfs>/dev`, mknod
`<rootfs>/dev/null`, symlink `<rootfs>/dev/fd`) follows the image's symlink,
and the tmpfs, the device nodes and the links land wherever it points: the
host's `/`, a host directory, `/tmp/../..`. corral resolves every target with
openat2(RESOLVE_IN_ROOT), so a symlink is read as if the rootfs were `/`.

Each case plants such a `/dev`, with the default mounts (a tmpfs `/dev`,
devpts, shm, mqueue) and with no `/dev` mount but configured devices, and then
checks the host: a host directory the symlink names (its listing, recursively),
the bundle directory's listing, the host's own `/dev` entries of the names
corral creates (type, mode, device numbers), and the host mount table as a set.
create either refuses with an error, or builds `/dev` inside the rootfs (the
container sees a char 1:3 `/dev/null`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from corral import Runtime
from corral.config import Device
from corral.errors import CorralError
from corral.types import Stdio
from tests.integration.conftest import make_config, output_file
from tests.security.cli import CorralCli
from tests.security.host import host_mounts, new_host_mounts

pytestmark = pytest.mark.root

#: The names corral's /dev set-up creates (devices, links, mount points).
DEV_NAMES = (
    "null", "zero", "full", "random", "urandom", "tty", "ptmx", "fd", "stdin", "stdout", "stderr",
    "core", "pts", "shm", "mqueue", "console", "kmsg",
)
PROBE = "[ -c /dev/null ] && echo null-is-a-device; ls -la /dev; true"


def _listing(path: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under `path` (not following symlinks): mode, device numbers, size."""
    found: dict[str, tuple[int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            found[os.path.relpath(full, path)] = (st.st_mode, st.st_rdev, st.st_size if not os.path.isdir(full) else 0)
    return found


def _outside(tmp_path: Path, bundle: Path, host_dir: Path) -> dict[str, object]:
    """What a device set-up that left the rootfs would change: the host directory the
    symlink names, the bundle beside the rootfs, the test's directory, the host's `/`.
    (Inside the rootfs, mount points and nodes under a `/dev -> /` are the image's own.)"""
    return {
        "host dir": _listing(host_dir),
        "bundle": {k: v for k, v in _listing(bundle).items() if k != "rootfs" and not k.startswith("rootfs/")},
        "test dir": sorted(set(os.listdir(tmp_path)) - {"root", "run"}),  # the runtime's own dirs
        "host /": sorted(os.listdir("/")),
    }


def _host_dev() -> dict[str, tuple[int, int]]:
    found = {}
    for name in DEV_NAMES:
        try:
            st = os.lstat(f"/dev/{name}")
        except FileNotFoundError:
            continue
        found[name] = (st.st_mode, st.st_rdev)
    return found


def _targets(host_dir: Path) -> list[str]:
    return [
        "/",
        str(host_dir),
        "../../../../../../../.." + str(host_dir),
        "/tmp/../../../../.." + str(host_dir),
        "..",
    ]


@pytest.mark.parametrize("dev_mount", [True, False], ids=["tmpfs-dev", "no-dev-mount"])
@pytest.mark.parametrize("index", range(5), ids=["root", "absolute", "relative-up", "tmp-up", "dotdot"])
def test_a_symlinked_dev_never_builds_devices_outside_the_rootfs(
    runtime: Runtime, bundle: Path, tmp_path: Path, dev_mount: bool, index: int
) -> None:
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    (host_dir / "keep").write_bytes(b"host\n")
    target = _targets(host_dir)[index]
    dev = bundle / "rootfs" / "dev"
    if dev.is_symlink() or dev.is_file():
        dev.unlink()
    elif dev.exists():
        os.system(f"rm -rf -- {dev}")  # noqa: S605 - the test's own copy of the rootfs
    dev.symlink_to(target)

    config = make_config(bundle, "devlink", "/bin/sh", "-c", PROBE)
    if not dev_mount:
        config = dataclasses.replace(
            config,
            mounts=tuple(m for m in config.mounts if not m.destination.startswith("/dev")),
            devices=(Device("/dev/null", "c", 1, 3, 0o666, 0, 0), Device("/dev/zero", "c", 1, 5, 0o666, 0, 0)),
        )
    fd, out = output_file(tmp_path)
    before = _outside(tmp_path, bundle, host_dir)
    dev_before = _host_dev()
    mounts_before = host_mounts()
    try:
        box = runtime.create("devlink", config, stdio=Stdio(stdout=fd, stderr=fd))
    except CorralError as exc:
        refused = str(exc)
        box = None
    finally:
        os.close(fd)
    if box is not None:
        refused = ""
        box.start()
        box.wait(20)
        box.destroy()
        text = out.read_text()
        assert "null-is-a-device" in text, text  # it ran: then its /dev is a real one
    after = _outside(tmp_path, bundle, host_dir)
    _remove_escaped(set(after["host /"]) - set(before["host /"]))  # type: ignore[arg-type]
    assert _host_dev() == dev_before, refused
    assert new_host_mounts(mounts_before, tmp_path) == set(), refused
    assert after == before, refused


def _remove_escaped(names: set[str]) -> None:
    """Undo, on the host's `/`, what a broken set-up put there (only corral's /dev names)."""
    for name in names & set(DEV_NAMES):
        path = f"/{name}"
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.unlink(path)


def test_a_symlinked_dev_through_the_cli(corral_cli: CorralCli, bundle: Path, tmp_path: Path) -> None:
    """The absolute host directory case (with the default /dev mounts) once through the `corral` command."""
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    (host_dir / "keep").write_bytes(b"host\n")
    dev = bundle / "rootfs" / "dev"
    if dev.is_symlink() or dev.is_file():
        dev.unlink()
    elif dev.exists():
        os.system(f"rm -rf -- {dev}")  # noqa: S605 - the test's own copy of the rootfs
    dev.symlink_to(str(host_dir))
    before = _outside(tmp_path, bundle, host_dir)
    dev_before = _host_dev()
    mounts_before = host_mounts()
    run = corral_cli.run("devlink", make_config(bundle, "devlink", "/bin/sh", "-c", PROBE), bundle)
    after = _outside(tmp_path, bundle, host_dir)
    _remove_escaped(set(after["host /"]) - set(before["host /"]))  # type: ignore[arg-type]
    assert _host_dev() == dev_before, run
    assert new_host_mounts(mounts_before, tmp_path) == set(), run
    # The CLI's own files (its root, the container's output, config.json) are expected.
    cli_files = {"cli-root", "cli-devlink.out", "cli-devlink.pid"}
    after["test dir"] = [n for n in after["test dir"] if n not in cli_files]  # type: ignore[union-attr]
    after["bundle"] = {k: v for k, v in after["bundle"].items() if k != "config.json"}  # type: ignore[union-attr]
    before["bundle"] = {k: v for k, v in before["bundle"].items() if k != "config.json"}  # type: ignore[union-attr]
    assert after == before, run
    if run.created:
        assert "null-is-a-device" in run.output, run.output
