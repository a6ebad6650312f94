"""`linux.namespaces`: each type new, joined by path, or absent (the runtime's own),
checked by the namespace inodes the container's own `/proc/self/ns` shows; without a
mount namespace the container is chrooted, and what would need a mount is refused."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from corral import Runtime
from corral.errors import ConfigError
from tests.integration.spec.helpers import namespace_list, sh, spec_config, without_namespace

pytestmark = pytest.mark.root

NS_NAMES = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt", "cgroup": "cgroup", "time": "time"}


def host_ns(name: str) -> int:
    return os.stat(f"/proc/self/ns/{name}").st_ino


def container_ns(runtime: Runtime, bundle: Path, tmp_path: Path, cid: str, change: object) -> dict[str, int]:
    names = " ".join(NS_NAMES.values())
    out = sh(runtime, bundle, tmp_path, cid, f"for n in {names}; do echo $n $(stat -L -c %i /proc/self/ns/$n); done", change)  # type: ignore[arg-type]
    return {line.split()[0]: int(line.split()[1]) for line in out.splitlines()}


def no_mount_ns(data: dict) -> None:
    """No mount namespace, and so none of what needs one (refused otherwise)."""
    without_namespace(data, "mount")
    data["mounts"] = []
    data["root"]["readonly"] = False
    for key in ("maskedPaths", "readonlyPaths"):
        data["linux"].pop(key, None)


@pytest.mark.parametrize("ns_type", ["network", "ipc", "uts", "cgroup", "time"])
def test_a_listed_namespace_is_new_and_an_absent_one_is_the_runtimes(
    runtime: Runtime, bundle: Path, tmp_path: Path, ns_type: str
) -> None:
    name = NS_NAMES[ns_type]

    def add(data: dict) -> None:
        if ns_type not in {ns["type"] for ns in namespace_list(data)}:
            namespace_list(data).append({"type": ns_type})

    def remove(data: dict) -> None:
        without_namespace(data, ns_type)
        if ns_type == "uts":
            data.pop("hostname", None)

    assert container_ns(runtime, bundle, tmp_path, f"new-{ns_type}", add)[name] != host_ns(name)
    assert container_ns(runtime, bundle, tmp_path, f"absent-{ns_type}", remove)[name] == host_ns(name)


def test_a_namespace_is_joined_by_path(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    holder = subprocess.Popen(["unshare", "--ipc", "--uts", "sleep", "60"])
    try:
        deadline = time.monotonic() + 5
        while os.stat(f"/proc/{holder.pid}/ns/ipc").st_ino == host_ns("ipc") and time.monotonic() < deadline:
            time.sleep(0.01)
        target = os.stat(f"/proc/{holder.pid}/ns/ipc").st_ino
        assert target != host_ns("ipc")

        def join(data: dict) -> None:
            without_namespace(data, "ipc")
            namespace_list(data).append({"type": "ipc", "path": f"/proc/{holder.pid}/ns/ipc"})

        assert container_ns(runtime, bundle, tmp_path, "join-ipc", join)["ipc"] == target
    finally:
        holder.kill()
        holder.wait()


def test_without_a_mount_namespace_the_container_is_chrooted_and_the_host_mounts_are_untouched(
    runtime: Runtime, bundle: Path, tmp_path: Path
) -> None:
    (bundle / "rootfs" / "marker").write_text("in the rootfs\n")
    with open("/proc/self/mountinfo") as f:
        before = f.read()
    out = sh(runtime, bundle, tmp_path, "chroot", "cat /marker; ls /; stat -L -c %i /proc/self/ns/mnt 2>&1; true", no_mount_ns)
    with open("/proc/self/mountinfo") as f:
        after = f.read()
    assert out.startswith("in the rootfs\n"), out
    assert "marker" in out.split() and "bin" in out.split()
    assert after == before
    # /proc is not mounted in the rootfs (nothing is mounted without a mount namespace)
    assert "No such file" in out, out


@pytest.mark.parametrize(
    "field, change",
    [
        ("mounts", lambda d: d.update(mounts=[{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}])),
        ("root.readonly", lambda d: d["root"].update(readonly=True)),
        ("linux.devices", lambda d: d["linux"].update(devices=[{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}])),
        ("linux.rootfsPropagation", lambda d: d["linux"].update(rootfsPropagation="private")),
        ("process.terminal", lambda d: d["process"].update(terminal=True)),
    ],
)
def test_what_needs_a_mount_is_refused_without_a_mount_namespace(
    runtime: Runtime, bundle: Path, field: str, change: object
) -> None:
    def both(data: dict) -> None:
        no_mount_ns(data)
        change(data)  # type: ignore[operator]

    config = spec_config(bundle, "true", change=both)
    with pytest.raises(ConfigError) as info:
        runtime.create(f"refused-{field.replace('.', '-')}", config, console=config.process.terminal)
    assert info.value.where == field
    assert "no mount namespace of its own" in str(info.value)


def test_masked_paths_are_refused_without_a_mount_namespace(bundle: Path) -> None:
    def change(data: dict) -> None:
        no_mount_ns(data)
        data["linux"]["maskedPaths"] = ["/proc/kcore"]

    with pytest.raises(ConfigError, match="linux.maskedPaths: need a mount namespace"):
        spec_config(bundle, "true", change=change)


def test_a_mount_namespace_joined_by_path_gives_its_root(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    """The joiner sees the other container's rootfs as `/`, with its mounts (as runc)."""
    other = bundle.parent / "other"
    other.mkdir()
    os.rename(bundle / "rootfs", other / "rootfs")
    os.rename(other, bundle.parent / "holder")
    holder_bundle = bundle.parent / "holder"
    (holder_bundle / "rootfs" / "marker").write_text("the holder's root\n")
    holder = runtime.create("holder", spec_config(holder_bundle, "sleep", "60"))
    try:
        holder.start()
        bundle.mkdir(exist_ok=True)
        (bundle / "rootfs").mkdir()  # the joiner's own root.path: unused, as the spec allows

        def join(data: dict) -> None:  # and its PID namespace, for its /proc to show this process
            for ns_type, name in (("mount", "mnt"), ("pid", "pid")):
                without_namespace(data, ns_type)
                namespace_list(data).append({"type": ns_type, "path": f"/proc/{holder.pid}/ns/{name}"})
            data["mounts"] = []
            data["root"]["readonly"] = False
            for key in ("maskedPaths", "readonlyPaths"):
                data["linux"].pop(key, None)

        out = sh(runtime, bundle, tmp_path, "joiner", "cat /marker; stat -L -c %i /proc/self/ns/mnt", join)
        lines = out.splitlines()
        assert lines[0] == "the holder's root", out
        assert int(lines[1]) == os.stat(f"/proc/{holder.pid}/ns/mnt").st_ino
    finally:
        holder.destroy(force=True)


def test_time_offsets_show_in_the_containers_timens_offsets_and_uptime(
    runtime: Runtime, bundle: Path, tmp_path: Path
) -> None:
    def change(data: dict) -> None:
        namespace_list(data).append({"type": "time"})
        data["linux"]["timeOffsets"] = {"monotonic": {"secs": 86400, "nanosecs": 0}, "boottime": {"secs": 172800}}

    out = sh(runtime, bundle, tmp_path, "timens", "cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime", change)
    lines = out.splitlines()
    assert lines[0].split() == ["monotonic", "86400", "0"], out
    assert lines[1].split() == ["boottime", "172800", "0"], out
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])
    assert int(lines[2]) >= 172800 + int(host_uptime) - 5


def test_exec_into_a_container_without_a_mount_namespace_is_chrooted_too(
    runtime: Runtime, bundle: Path
) -> None:
    (bundle / "rootfs" / "marker").write_text("in the rootfs\n")
    box = runtime.create("chroot-exec", spec_config(bundle, "sleep", "30", change=no_mount_ns))
    try:
        box.start()
        status, out, err = box.exec_run(["cat", "/marker"], timeout=20)
        assert (status, out) == (0, b"in the rootfs\n"), err
    finally:
        box.destroy(force=True)


def test_an_execd_process_joins_the_time_namespace(runtime: Runtime, bundle: Path) -> None:
    def change(data: dict) -> None:
        namespace_list(data).append({"type": "time"})
        data["linux"]["timeOffsets"] = {"boottime": {"secs": 3600}}

    box = runtime.create("timens-exec", spec_config(bundle, "sleep", "30", change=change))
    try:
        box.start()
        status, out, err = box.exec_run(["cat", "/proc/self/timens_offsets"], timeout=20)
        assert status == 0, err
        assert out.decode().splitlines()[1].split() == ["boottime", "3600", "0"]
        assert os.stat(f"/proc/{box.pid}/ns/time").st_ino != host_ns("time")
    finally:
        box.destroy(force=True)
