"""CVE-2025-31133 (runc), CVE-2025-62161 (youki): the `/dev/null` used to mask paths is a symlink.

A runtime masks a file by bind-mounting `/dev/null` over it. If the image's
`/dev` is not replaced by a fresh tmpfs (the config has no `/dev` mount), its
`/dev/null` is whatever the image put there: a symlink to
`/proc/sys/kernel/core_pattern`, to a host file bound read-only into the
container, or to a file of the rootfs. A mask that follows it binds that
target over the masked path: the masked file then shows the target's bytes,
and a write to the masked path lands in the target.

Each test plants such a `/dev/null`, masks the default paths and a secret file
of the rootfs, and has the container read and write every masked path. The
host is checked: the target's bytes and mode, the host's core_pattern, the host
mount table (as a set, before and after). The container's view is checked too:
every masked file reads empty and refuses writes.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from corral import Config, Mount, Runtime
from corral.config import DEFAULT_MASKED_PATHS
from corral.errors import CorralError
from corral.types import Stdio
from tests.integration.conftest import make_config, output_file
from tests.security.cli import CorralCli
from tests.security.host import file_state, host_mounts, new_host_mounts

pytestmark = pytest.mark.root

SECRET = b"secret bytes the mask must hide\n"
HOST_MARKER_IN_BOX = "/host-marker"
CORE_PATTERN = "/proc/sys/kernel/core_pattern"
MASKED_FILES = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/secret")

#: For each masked file: its first bytes (as hex, so that nothing is lost), then whether
#: a write to it succeeded.
#: The probe never touches /dev/null itself (a redirection to a planted one would fail and
#: hide the result): its errors go to a closed stderr.
PROBE = " ; ".join(
    f"echo {p}=$(head -c 64 {p} 2>&- | od -An -tx1 | tr -d ' \\n') ; "
    f"(echo pwned > {p}) 2>&- && echo {p}:WROTE || echo {p}:refused"
    for p in MASKED_FILES
)


def _plant_dev_null(bundle: Path, target: str) -> None:
    dev = bundle / "rootfs" / "dev"
    dev.mkdir(exist_ok=True)
    null = dev / "null"
    if null.exists() or null.is_symlink():
        null.unlink()
    null.symlink_to(target)
    (bundle / "rootfs" / "secret").write_bytes(SECRET)
    (bundle / "rootfs" / "etc").mkdir(exist_ok=True)


def _config(bundle: Path, cid: str, host_marker: Path) -> Config:
    """No /dev tmpfs: the image's /dev (and its /dev/null) is what the container sees."""
    config = make_config(bundle, cid, "/bin/sh", "-c", PROBE)
    mounts = tuple(m for m in config.mounts if not m.destination.startswith("/dev"))
    mounts += (Mount(HOST_MARKER_IN_BOX, "bind", str(host_marker), ("bind", "ro")),)
    return dataclasses.replace(
        config, mounts=mounts, masked_paths=tuple(DEFAULT_MASKED_PATHS) + ("/secret",), devices=()
    )


def _outcome(text: str) -> dict[str, tuple[str, str]]:
    read: dict[str, str] = {}
    wrote: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line and line.split("=", 1)[0] in MASKED_FILES:
            path, value = line.split("=", 1)
            read[path] = value
        elif ":" in line and line.split(":", 1)[0] in MASKED_FILES:
            path, value = line.split(":", 1)
            wrote[path] = value
    return {p: (read.get(p, "?"), wrote.get(p, "?")) for p in MASKED_FILES}


@pytest.mark.parametrize(
    "target",
    [CORE_PATTERN, HOST_MARKER_IN_BOX, "/etc/passwd", "../../../../../../proc/sys/kernel/core_pattern"],
)
def test_a_symlinked_dev_null_never_unmasks_or_opens_a_target(
    runtime: Runtime, bundle: Path, tmp_path: Path, target: str
) -> None:
    host_marker = tmp_path / "host-marker"
    host_marker.write_bytes(b"host marker\n")
    host_marker.chmod(0o644)
    (bundle / "rootfs" / "etc").mkdir(exist_ok=True)
    (bundle / "rootfs" / "etc" / "passwd").write_bytes(b"root:x:0:0:root:/root:/bin/sh\n")
    _plant_dev_null(bundle, target)
    watched = {
        "host marker": host_marker,
        "host core_pattern": Path(CORE_PATTERN),
        "rootfs /etc/passwd": bundle / "rootfs" / "etc" / "passwd",
        "rootfs /secret": bundle / "rootfs" / "secret",
    }
    before = {name: file_state(path) for name, path in watched.items()}
    mounts_before = host_mounts()
    fd, out = output_file(tmp_path)
    try:
        try:
            box = runtime.create("mask", _config(bundle, "mask", host_marker), stdio=Stdio(stdout=fd, stderr=fd))
        except CorralError as exc:  # refusing the planted /dev/null is a defence too
            assert "/dev/null" in str(exc), str(exc)
            return
        finally:
            os.close(fd)
        box.start()
        assert box.wait(20) == 0
        box.destroy()
        outcome = _outcome(out.read_text())
        for path, (read, wrote) in outcome.items():
            assert read == "", (path, "reads through the mask", outcome, out.read_text())
            assert wrote == "refused", (path, "writable through the mask", outcome)
    finally:
        after = {name: file_state(path) for name, path in watched.items()}
        if after["host core_pattern"] != before["host core_pattern"]:  # put the host back first
            Path(CORE_PATTERN).write_bytes(before["host core_pattern"][0])
        assert after == before
        assert new_host_mounts(mounts_before, tmp_path) == set()


def test_the_image_s_real_null_device_still_masks(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    """The check refuses only an impostor: a char 1:3 node in the image masks as before."""
    host_marker = tmp_path / "host-marker"
    host_marker.write_bytes(b"host marker\n")
    dev = bundle / "rootfs" / "dev"
    dev.mkdir(exist_ok=True)
    if (dev / "null").exists() or (dev / "null").is_symlink():
        (dev / "null").unlink()
    os.mknod(dev / "null", 0o666 | 0o020000, os.makedev(1, 3))
    (bundle / "rootfs" / "secret").write_bytes(SECRET)
    mounts_before = host_mounts()
    fd, out = output_file(tmp_path)
    box = runtime.create("realnull", _config(bundle, "realnull", host_marker), stdio=Stdio(stdout=fd, stderr=fd))
    os.close(fd)
    box.start()
    assert box.wait(20) == 0
    box.destroy()
    outcome = _outcome(out.read_text())
    for path, (read, _) in outcome.items():
        assert read == "", (path, outcome)
    assert (bundle / "rootfs" / "secret").read_bytes() == SECRET
    assert new_host_mounts(mounts_before, tmp_path) == set()


def test_a_symlinked_dev_null_through_the_cli(corral_cli: CorralCli, bundle: Path, tmp_path: Path) -> None:
    """The core_pattern case once through the `corral` command (config.json in the bundle)."""
    host_marker = tmp_path / "host-marker"
    host_marker.write_bytes(b"host marker\n")
    _plant_dev_null(bundle, CORE_PATTERN)
    watched = {"host marker": host_marker, "host core_pattern": Path(CORE_PATTERN), "rootfs /secret": bundle / "rootfs" / "secret"}
    before = {name: file_state(path) for name, path in watched.items()}
    mounts_before = host_mounts()
    run = corral_cli.run("mask", _config(bundle, "mask", host_marker), bundle)
    after = {name: file_state(path) for name, path in watched.items()}
    if after["host core_pattern"] != before["host core_pattern"]:
        Path(CORE_PATTERN).write_bytes(before["host core_pattern"][0])
    assert after == before
    assert new_host_mounts(mounts_before, tmp_path) == set()
    if run.created:
        for path, (read, wrote) in _outcome(run.output).items():
            assert (read, wrote) == ("", "refused"), (path, run.output)
    else:
        assert "/dev/null" in run.error, run.error
