"""Real containers from a busybox bundle: namespaces, rootfs, create/start split, exec, exit status.

Everything is checked in the kernel or from inside the container, never in corral's record alone.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import Config, IDMapping, Mount, Namespace, Process, Runtime, State, User
from corral.errors import ConfigError, InitError
from corral.executor.interface import Stdio
from tests.integration.conftest import make_config, output_file

pytestmark = pytest.mark.root

HOST_NS = {name: os.stat(f"/proc/self/ns/{name}").st_ino for name in ("pid", "mnt", "uts", "ipc", "net", "cgroup", "user")}


def run_to_end(runtime: Runtime, cid: str, config: Config, tmp_path: Path, timeout: float = 20) -> tuple[int | None, str]:
    fd, out = output_file(tmp_path, f"{cid}.out")
    try:
        box = runtime.create(cid, config, stdio=Stdio(stdout=fd, stderr=fd))
    finally:
        os.close(fd)
    box.start()
    status = box.wait(timeout)
    box.destroy()
    return status, out.read_text()


def test_init_is_pid_1_in_new_namespaces(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    config = make_config(bundle, "ns", "/bin/sh", "-c", "echo pid=$$; ps -o pid,comm; sleep 30")
    fd, out = output_file(tmp_path)
    box = runtime.create("ns", config, stdio=Stdio(stdout=fd, stderr=fd))
    os.close(fd)
    box.start()
    pid = box.pid
    assert pid is not None
    for name in ("pid", "mnt", "uts", "ipc", "net"):
        assert os.stat(f"/proc/{pid}/ns/{name}").st_ino != HOST_NS[name], name
    assert os.stat(f"/proc/{pid}/ns/user").st_ino == HOST_NS["user"]  # not asked for
    recorded = box.record.namespaces
    assert recorded["network"].inode == os.stat(f"/proc/{pid}/ns/net").st_ino
    deadline = time.monotonic() + 10
    while "COMMAND" not in out.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    text = out.read_text()
    assert "pid=1" in text
    pids = [line.split()[0] for line in text.splitlines()[2:] if line.strip()]
    assert pids and all(int(p) <= 3 for p in pids), text  # only the container's own processes
    box.signal(signal.SIGKILL)
    assert box.wait(10) == 128 + signal.SIGKILL
    box.destroy()


def test_hostname_env_cwd_user_and_rootfs_come_from_the_config(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    (bundle / "rootfs" / "work").mkdir()
    (bundle / "rootfs" / "marker-only-in-this-rootfs").write_text("yes\n")
    config = make_config(
        bundle,
        "facts",
        "/bin/sh",
        "-c",
        "hostname; echo FOO=$FOO; pwd; id -u; id -g; id -G; cat /marker-only-in-this-rootfs; ls /proc/self/ns >/dev/null && echo proc-ok",
    )
    config = dataclasses.replace(
        config,
        hostname="inside",
        process=dataclasses.replace(
            config.process,
            env=config.process.env + ("FOO=bar baz",),
            cwd="/work",
            user=User(uid=1000, gid=1001, additional_gids=(1002,)),
        ),
    )
    status, text = run_to_end(runtime, "facts", config, tmp_path)
    assert status == 0, text
    assert text.split("\n")[:8] == ["inside", "FOO=bar baz", "/work", "1000", "1001", "1001 1002", "yes", "proc-ok"]


def test_a_namespace_with_a_path_is_joined(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    holder = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        deadline = time.monotonic() + 5
        netns = f"/proc/{holder.pid}/ns/net"
        while os.stat(netns).st_ino == HOST_NS["net"] and time.monotonic() < deadline:
            time.sleep(0.01)
        target = os.stat(netns).st_ino
        assert target != HOST_NS["net"]
        config = make_config(bundle, "join", "/bin/sleep", "30")
        namespaces = tuple(ns for ns in config.namespaces if ns.type != "network") + (Namespace("network", netns),)
        box = runtime.create("join", dataclasses.replace(config, namespaces=namespaces))
        assert os.stat(f"/proc/{box.pid}/ns/net").st_ino == target
        assert os.stat(f"/proc/{box.pid}/ns/uts").st_ino != HOST_NS["uts"]
        box.destroy(force=True)
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture
def walkable_bundle(bundle: Path) -> Iterator[Path]:
    """The bundle, moved where a user namespace's root can walk to it.

    pytest's temporary directories are 0700 root: container root mapped to
    host uid 100000 could not reach a rootfs below them (runc has the same rule).
    """
    base = Path(tempfile.mkdtemp(prefix="corral-userns-", dir="/tmp"))
    os.chmod(base, 0o711)
    shutil.move(str(bundle), base / "bundle")
    try:
        yield base / "bundle"
    finally:
        shutil.rmtree(base)


def test_user_namespace_maps_container_root_to_100000(runtime: Runtime, walkable_bundle: Path, tmp_path: Path) -> None:
    bundle = walkable_bundle
    rootfs = bundle / "rootfs"
    os.chown(rootfs / "tmp", 100000, 100000)
    config = make_config(bundle, "userns", "/bin/sh", "-c", "id -u; touch /tmp/made-inside; mkdir /tmp/dir-inside")
    config = dataclasses.replace(
        config,
        namespaces=config.namespaces + (Namespace("user"),),
        uid_mappings=(IDMapping(0, 100000, 65536),),
        gid_mappings=(IDMapping(0, 100000, 65536),),
    )
    status, text = run_to_end(runtime, "userns", config, tmp_path)
    assert status == 0, text
    assert text.split() == ["0"]
    for name in ("made-inside", "dir-inside"):
        st = os.stat(rootfs / "tmp" / name)
        assert (st.st_uid, st.st_gid) == (100000, 100000), name


def test_the_process_does_not_run_before_start(runtime: Runtime, bundle: Path) -> None:
    flag = bundle / "rootfs" / "tmp" / "started"
    box = runtime.create("split", make_config(bundle, "split", "/bin/touch", "/tmp/started"))
    assert box.state is State.CREATED
    time.sleep(0.3)
    assert not flag.exists()
    assert Path(box.record.run_dir, "exec.fifo").exists()
    box.start()
    assert box.wait(10) == 0
    assert flag.exists()
    assert not Path(box.record.run_dir, "exec.fifo").exists()
    box.destroy()


def test_exec_joins_the_init_namespaces_and_returns_its_status(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    box = runtime.create("exec", make_config(bundle, "exec", "/bin/sleep", "60"))
    box.start()
    fd, out = output_file(tmp_path, "exec.out")
    try:
        proc = box.exec(
            Process(args=("/bin/sh", "-c", "echo $$; sleep 0.3; exit 3"), env=("PATH=/bin",)),
            stdio=Stdio(stdout=fd, stderr=fd),
        )
    finally:
        os.close(fd)
    for name in ("pid", "mnt", "uts", "ipc", "net"):
        assert os.stat(f"/proc/{proc.pid}/ns/{name}").st_ino == os.stat(f"/proc/{box.pid}/ns/{name}").st_ino, name
    assert proc.pid in box.processes()
    assert proc.wait(10) == 3
    assert int(out.read_text().split()[0]) > 1  # a PID inside the container's namespace
    [record] = box.exec_processes()
    assert record.exit_status == 3 and record.pid == proc.pid
    box.destroy(force=True)


def test_wait_returns_the_exit_code(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    status, _ = run_to_end(runtime, "seven", make_config(bundle, "seven", "/bin/sh", "-c", "exit 7"), tmp_path)
    assert status == 7


def test_wait_after_sigkill(runtime: Runtime, bundle: Path) -> None:
    box = runtime.create("killed", make_config(bundle, "killed", "/bin/sleep", "60"))
    box.start()
    box.signal(signal.SIGKILL)
    assert box.wait(10) == 137
    assert box.record.exit_signal == signal.SIGKILL
    assert box.state is State.STOPPED
    box.destroy()


def test_missing_executable_fails_create_and_leaves_nothing(runtime: Runtime, bundle: Path) -> None:
    with pytest.raises(InitError, match="no-such-program"):
        runtime.create("noexec", make_config(bundle, "noexec", "no-such-program"))
    box = runtime.load("noexec")
    assert box.state is State.DESTROYED
    assert "no-such-program" in (box.record.last_error or "")
    assert kernel_leftovers(box, bundle) == []


def test_bad_mount_destination_fails_create_and_leaves_nothing(runtime: Runtime, bundle: Path) -> None:
    config = make_config(bundle, "badmount")
    # /bin/busybox is a file: nothing can be mounted below it
    config = dataclasses.replace(config, mounts=config.mounts + (Mount("/bin/busybox/sub", "tmpfs", "tmpfs"),))
    with pytest.raises(InitError, match="busybox/sub|Not a directory"):
        runtime.create("badmount", config)
    box = runtime.load("badmount")
    assert box.state is State.DESTROYED
    assert kernel_leftovers(box, bundle) == []


def test_missing_bind_source_fails_create(runtime: Runtime, bundle: Path) -> None:
    config = make_config(bundle, "badbind")
    config = dataclasses.replace(
        config, mounts=config.mounts + (Mount("/data", "bind", "/nonexistent-source", ("bind",)),)
    )
    with pytest.raises(InitError, match="nonexistent-source"):
        runtime.create("badbind", config)


def test_bad_config_is_refused_before_anything_exists(runtime: Runtime, bundle: Path) -> None:
    config = make_config(bundle, "badcfg")
    with pytest.raises(ConfigError, match="mount namespace"):
        runtime.create("badcfg", dataclasses.replace(config, namespaces=(Namespace("pid"), Namespace("uts"))))
    with pytest.raises(ConfigError):
        Config.from_dict({"ociVersion": "1.0.2", "process": {"args": []}, "root": {"path": str(bundle)}})
    assert [c.id for c in runtime.list(include_destroyed=True)] == []


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _threads() -> set[str]:
    return set(os.listdir("/proc/self/task"))


def _children() -> set[int]:
    """The controller's child processes (a leaked monitor, helper or zombie shows here)."""
    found: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        try:
            found.update(int(p) for p in Path(f"/proc/self/task/{task}/children").read_text().split())
        except FileNotFoundError:
            pass  # the thread ended meanwhile
    return found


def _rooted_in(rootfs: Path) -> list[int]:
    """Every process on the host whose root directory is `rootfs` (the container's processes)."""
    want = os.stat(rootfs)
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                root = os.stat(f"/proc/{entry}/root")  # readlink says "/" across mount namespaces
            except OSError:
                continue  # gone meanwhile
            if (root.st_dev, root.st_ino) == (want.st_dev, want.st_ino):
                pids.append(int(entry))
    return pids


def kernel_leftovers(box, bundle: Path) -> list[str]:
    """What the kernel still holds of `box`: cgroups, run dir, processes, mounts."""
    record = box.record
    found = [f"cgroup {p}" for p in record.cgroup_paths.values() if os.path.exists(p)]
    if os.path.exists(record.run_dir):
        found.append(f"run dir {record.run_dir}")
    found += [f"process {pid} in the rootfs" for pid in _rooted_in(bundle / "rootfs")]
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if str(bundle) in line]
    return found


def test_twenty_lifecycles_leave_nothing_behind(runtime: Runtime, bundle: Path) -> None:
    config = make_config(bundle, "loop", "/bin/true")
    warmup = runtime.create(
        "warmup", dataclasses.replace(config, cgroups_path=config.cgroups_path + "-warmup", process=Process(
            args=("/bin/sleep", "1000"), env=config.process.env))
    )
    warmup.start()
    assert warmup.pid in _rooted_in(bundle / "rootfs")  # the leak check can see a live container
    warmup.destroy(force=True)
    fds_before, threads_before, children_before = _open_fds(), _threads(), _children()
    for i in range(20):
        cid = f"loop-{i}"
        box = runtime.create(cid, dataclasses.replace(config, cgroups_path=f"{config.cgroups_path}-{i}"))
        box.start()
        assert box.wait(10) == 0
        box.destroy()
        assert kernel_leftovers(box, bundle) == []
    assert _open_fds() == fds_before
    assert _threads() == threads_before
    assert _children() == children_before


def test_capabilities_rlimits_no_new_privs_sysctl_and_protected_paths(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    from corral.config import Capabilities, Rlimit, Root

    script = (
        "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; "
        "echo nofile=$(ulimit -n)/$(ulimit -Hn); "
        "echo ip_forward=$(cat /proc/sys/net/ipv4/ip_forward); "
        "touch /written 2>/dev/null && echo root=rw || echo root=ro; "
        "echo kcore=$(head -c 16 /proc/kcore | wc -c); "
        "echo firmware=$(ls /sys/firmware | wc -l); "
        "(echo 1 > /proc/sys/kernel/panic_on_oops) 2>/dev/null && echo procsys=rw || echo procsys=ro"
    )
    config = make_config(bundle, "privs", "/bin/sh", "-c", script)
    config = dataclasses.replace(
        config,
        root=Root(config.root.path, readonly=True),
        sysctl={"net.ipv4.ip_forward": "1"},
        process=dataclasses.replace(
            config.process,
            capabilities=Capabilities(
                bounding=("CAP_CHOWN", "CAP_KILL"), effective=("CAP_CHOWN", "CAP_KILL"), permitted=("CAP_CHOWN", "CAP_KILL")
            ),
            no_new_privileges=True,
            rlimits=(Rlimit("RLIMIT_NOFILE", 123, 456),),
        ),
    )
    status, text = run_to_end(runtime, "privs", config, tmp_path)
    assert status == 0, text
    facts = dict(line.replace(":\t", "=").split("=", 1) for line in text.split("\n") if "=" in line or ":\t" in line)
    assert facts["CapEff"] == facts["CapBnd"] == "0000000000000021"  # CAP_CHOWN (0) and CAP_KILL (5)
    assert facts["NoNewPrivs"] == "1"
    assert facts["nofile"] == "123/456"
    assert facts["ip_forward"] == "1"  # in the container's own network namespace
    assert facts["root"] == "ro"
    assert facts["kcore"] == "0"  # masked by /dev/null
    assert facts["firmware"] == "0"  # masked by an empty read-only tmpfs
    assert facts["procsys"] == "ro"
    assert not (bundle / "rootfs" / "written").exists()


def test_a_bundle_on_disk_runs(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    import json

    oci = make_config(bundle, "ondisk", "/bin/sh", "-c", "echo from-bundle; exit 4").to_dict()
    oci["root"]["path"] = "rootfs"  # relative, as `runc spec` writes it
    (bundle / "config.json").write_text(json.dumps(oci))
    config = Config.from_bundle(bundle)
    assert config.root.path == str(bundle / "rootfs") and config.bundle == str(bundle)
    status, text = run_to_end(runtime, "ondisk", config, tmp_path)
    assert (status, text.strip()) == (4, "from-bundle")
    assert runtime.load("ondisk").record.bundle == str(bundle)


def test_devices_are_denied_except_the_defaults(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    """runc's rule list: a deny-all config still gets /dev/null and friends; a host disk stays out of reach."""
    from corral.config import DeviceRule, Resources

    config = make_config(
        bundle, "devices", "/bin/sh", "-c",
        "echo x > /dev/null && echo null=ok; mknod /tmp/sda b 8 0 && echo mknod=ok; "
        "head -c 1 /tmp/sda >/dev/null 2>&1 && echo sda=readable || echo sda=denied",
    )
    config = dataclasses.replace(config, resources=Resources(devices=(DeviceRule(allow=False, access="rwm"),)))
    status, text = run_to_end(runtime, "devices", config, tmp_path)
    assert status == 0, text
    assert text.split() == ["null=ok", "mknod=ok", "sda=denied"]


def test_a_container_without_proc_fails_at_create_not_at_start(runtime: Runtime, bundle: Path) -> None:
    config = make_config(bundle, "noproc", "/bin/true")
    config = dataclasses.replace(
        config,
        mounts=tuple(m for m in config.mounts if m.destination != "/proc"),
        masked_paths=(),
        readonly_paths=(),
    )
    with pytest.raises(InitError, match="proc mounted at /proc"):
        runtime.create("noproc", config)
