"""The v1 and v2 cgroup managers against the real kernel, with processes the tests start.

Every kernel test runs against both layouts of this host: the v1 hierarchies under
/sys/fs/cgroup and the cgroup2 mount at /sys/fs/cgroup/unified (whose only
controller here is hugetlb, so memory, cpu and pids limits are v1-only). Each
test's cgroup is `/corral-test/<uuid>`; the `box` fixture kills the test's
processes by PID, destroys the cgroup, removes the `/corral-test` parents when
empty, and then checks that nothing of the test's cgroup is left anywhere.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from corral.config import (
    CpuResources,
    DeviceRule,
    MemoryResources,
    PidsResources,
    Resources,
)
from corral.errors import CgroupError, ConfigError, FreezeTimeout
from corral.executor.cgroups import (
    Cgroup,
    CgroupDriver,
    V1Driver,
    V2Driver,
    detect,
    open_cgroup,
    remove_empty_parents,
)
from corral.executor.cgroups import bpf_devices, freezer
from corral.executor.cgroups._fs import parse_mountinfo, relative_cgroup_path
from corral.executor.cgroups.devices import DEFAULT_ALLOWED, DENY_ALL, device_rule_line
from corral.executor.cgroups.oci import cpu_weight_from_shares, swap_max
from corral.executor.cgroups.v1 import V1Cgroup, discover
from corral.executor.cgroups.v2 import V2Cgroup

V2_MOUNT = "/sys/fs/cgroup/unified"
TEST_PARENT = "corral-test"
NO_V2_MEMORY = "memory controller not available on this v2 mount"
NO_V2_CONTROLLER = "no resource controller (memory, cpu, pids, cpuset) on this v2 mount"

# A child that advances a fixed-width counter in a file about every millisecond.
COUNTER = r"""
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
i = 0
while True:
    i += 1
    os.pwrite(fd, b"%020d" % i, 0)
    time.sleep(0.001)
"""


# --- fixtures -------------------------------------------------------------------------------


class Box:
    """A test's cgroup and the processes it started (killed by PID at the end)."""

    def __init__(self, driver: CgroupDriver, cgroup: Cgroup, tmp: Path) -> None:
        self.driver = driver
        self.cgroup = cgroup
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def v2(self) -> bool:
        return self.driver.version == 2

    def child(self, name: str = "sub") -> Cgroup:
        """A child cgroup of the test's cgroup, made as a process in the container would.

        On v2 that is a plain mkdir: `create()` would also delegate controllers
        to it through the test cgroup's subtree_control, after which the test
        cgroup could hold no processes itself (the "no internal processes" rule).
        On v1 `create()` is what fills the child's cpuset.
        """
        sub = self.driver.open({k: f"{p}/{name}" for k, p in self.cgroup.paths.items()})
        if self.v2:
            os.mkdir(sub.paths[""])
        else:
            sub.create()
        return sub

    def start(
        self, argv: list[str], into: Cgroup | None = None, release: bool = True, stdout: int | None = None
    ) -> tuple[subprocess.Popen[bytes], Callable[[], None]]:
        """Start `argv` held by a shell gate, move it into the cgroup, then let it exec.

        The gate makes the process run none of its own code outside the cgroup
        (limits and counters see all of it). Returns the process and the release.
        """
        proc = subprocess.Popen(
            ["/bin/sh", "-c", 'read _ && exec "$@"', "gate", *argv],
            stdin=subprocess.PIPE,
            stdout=stdout,
        )
        self.procs.append(proc)
        for procs in (into or self.cgroup).procs_files():  # as the monitor joins its child
            Path(procs).write_text(str(proc.pid))

        def go() -> None:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.close()
            proc.stdin = None  # so communicate() does not flush it

        if release:
            go()
        return proc, go

    def python(self, code: str, *args: str, **kwargs: object) -> subprocess.Popen[bytes]:
        proc, _ = self.start([sys.executable, "-S", "-c", code, *args], **kwargs)  # type: ignore[arg-type]
        return proc

    def counter(self) -> tuple[subprocess.Popen[bytes], Path]:
        path = self.tmp / f"counter-{len(self.procs)}"
        proc = self.python(COUNTER, str(path))
        wait_for(lambda: read_counter(path) > 0, "the counter to start")
        return proc, path

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)


def make_driver(kind: str) -> CgroupDriver:
    if kind == "v1":
        return V1Driver()
    if not os.path.exists(f"{V2_MOUNT}/cgroup.controllers"):
        pytest.skip(f"no cgroup2 mount at {V2_MOUNT}")
    return V2Driver(V2_MOUNT)


@pytest.fixture(params=["v1", "v2"])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Box]:
    driver = make_driver(request.param)
    paths = driver.plan(f"/{TEST_PARENT}/{uuid.uuid4().hex}")
    cgroup = driver.open(paths)
    b = Box(driver, cgroup, tmp_path)
    try:
        cgroup.create()
        yield b
    finally:
        try:
            b.cleanup()
            cgroup.destroy(timeout=5)
            for proc in b.procs:
                proc.wait(timeout=5)
        finally:
            roots: dict[str, str] = cgroup.roots  # type: ignore[attr-defined]
            for key, path in paths.items():
                remove_empty_parents(os.path.dirname(path), stop_at=roots[key])
        left = [p for p in paths.values() if os.path.exists(p)]
        assert not left, f"test cgroup directories left behind: {left}"


# --- helpers --------------------------------------------------------------------------------


def wait_for(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def read_counter(path: Path) -> int:
    try:
        text = path.read_bytes().strip()
    except FileNotFoundError:
        return 0
    return int(text) if text.isdigit() else 0


def proc_state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()[0]


def kernel_says_frozen(cgroup: Cgroup) -> bool:
    if isinstance(cgroup, V2Cgroup):
        return "frozen 1" in Path(f"{cgroup.path}/cgroup.events").read_text()
    assert isinstance(cgroup, V1Cgroup)
    return Path(f"{cgroup.paths['freezer']}/freezer.state").read_text().strip() == "FROZEN"


def kernel_procs(cgroups: list[Cgroup]) -> list[int]:
    """The union of every cgroup.procs the kernel shows for these cgroups, in every hierarchy."""
    pids: set[int] = set()
    for cg in cgroups:
        for procs in cg.procs_files():
            pids.update(int(x) for x in Path(procs).read_text().split())
    return sorted(pids)


def skip_on_v2(box: Box, reason: str) -> None:
    if box.v2:
        pytest.skip(reason)


# --- pure logic (no root) -------------------------------------------------------------------

MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /sys/fs/cgroup/with\\040space rw - cgroup cgroup rw,pids
50 23 0:40 / /elsewhere/memory rw - cgroup cgroup rw,freezer
"""


def test_discover_reads_hierarchies_from_mountinfo() -> None:
    found = discover("/sys/fs/cgroup", parse_mountinfo(MOUNTINFO))
    assert sorted(found) == ["cpu,cpuacct", "memory", "systemd", "with space"]
    assert found["cpu,cpuacct"].controllers == {"cpu", "cpuacct"}
    assert found["systemd"].controllers == {"name=systemd"}
    assert found["with space"].mountpoint == "/sys/fs/cgroup/with space"


def test_conversions_follow_runc() -> None:
    assert cpu_weight_from_shares(2) == 1
    assert cpu_weight_from_shares(1024) == 39
    assert cpu_weight_from_shares(262144) == 10000
    assert swap_max(32 << 20, 64 << 20) == 32 << 20
    assert swap_max(32 << 20, -1) == "max"
    assert swap_max(-1, None) == "max"
    with pytest.raises(ConfigError, match="memory.swap"):
        swap_max(64 << 20, 32 << 20)
    assert device_rule_line(DeviceRule(allow=False)) == "a *:* rwm"
    assert device_rule_line(DeviceRule(allow=True, type="c", major=1, minor=3, access="rw")) == "c 1:3 rw"


def test_plan_refuses_escaping_paths() -> None:
    assert relative_cgroup_path("/corral//abc/") == "corral/abc"
    for bad in ("/corral/../../etc", "/", ""):
        with pytest.raises(ConfigError, match="linux.cgroupsPath"):
            relative_cgroup_path(bad)


# --- the host -------------------------------------------------------------------------------


@pytest.mark.root
def test_detect_and_reopen_from_paths() -> None:
    assert isinstance(detect(), V1Driver) != os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    if os.path.exists(f"{V2_MOUNT}/cgroup.controllers"):
        v2 = detect(V2_MOUNT)
        assert isinstance(v2, V2Driver)
        reopened = open_cgroup(v2.plan("/corral-test/x"))
        assert isinstance(reopened, V2Cgroup) and reopened.mountpoint == V2_MOUNT
    v1 = V1Driver()
    reopened1 = open_cgroup(v1.plan("/corral-test/x"))
    assert isinstance(reopened1, V1Cgroup)
    assert dict(reopened1.hierarchies) == {k: v1.hierarchies[k] for k in reopened1.paths}


@pytest.mark.root
def test_create_makes_every_directory(box: Box) -> None:
    assert box.cgroup.exists()
    for path in box.cgroup.paths.values():
        assert os.path.isdir(path)
    if not box.v2:
        cpuset = box.cgroup.paths["cpuset"]
        for level in (os.path.dirname(cpuset), cpuset):
            assert Path(f"{level}/cpuset.cpus").read_text().strip()
            assert Path(f"{level}/cpuset.mems").read_text().strip()
    box.cgroup.create()  # again: existing directories are reused


# --- freezer --------------------------------------------------------------------------------


@pytest.mark.root
def test_freeze_stops_a_process_and_thaw_resumes_it(box: Box) -> None:
    proc, counter = box.counter()
    box.cgroup.freeze()
    assert box.cgroup.frozen()
    assert kernel_says_frozen(box.cgroup)
    before = read_counter(counter)
    time.sleep(0.3)
    assert read_counter(counter) == before
    assert proc_state(proc.pid) != "R"

    box.cgroup.thaw()
    assert not box.cgroup.frozen()
    wait_for(lambda: read_counter(counter) > before + 5, "the counter to move after thaw")


@pytest.mark.root
def test_hundred_freeze_thaw_cycles_end_thawed(box: Box) -> None:
    _, counter = box.counter()
    for _ in range(100):
        box.cgroup.freeze()
        box.cgroup.thaw()
    assert not box.cgroup.frozen()
    assert not kernel_says_frozen(box.cgroup)
    now = read_counter(counter)
    wait_for(lambda: read_counter(counter) > now, "the counter to move after 100 cycles")


@pytest.mark.root
def test_freeze_timeout_thaws_and_says_so(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    box.counter()
    if box.v2:  # the kernel mechanics live in freezer.py, for the drivers and the one-shot CLI alike
        monkeypatch.setattr(freezer, "v2_events", lambda path, fd=None: {"populated": 1, "frozen": 0})
    else:
        monkeypatch.setattr(freezer, "v1_state", lambda d: "FREEZING")
    with pytest.raises(FreezeTimeout) as info:
        box.cgroup.freeze(timeout=0.2)
    message = str(info.value)
    assert "0.2 s" in message and "thawed again" in message
    assert (box.cgroup.paths[""] if box.v2 else box.cgroup.paths["freezer"]) in message
    monkeypatch.undo()
    assert not box.cgroup.frozen()


# --- processes ------------------------------------------------------------------------------


@pytest.mark.root
def test_pids_is_the_union_of_cgroup_procs_with_children(box: Box) -> None:
    sub = box.child()
    a, _ = box.start(["sleep", "60"])
    b, _ = box.start(["sleep", "60"], into=sub)
    expected = kernel_procs([box.cgroup, sub])
    assert expected == sorted({a.pid, b.pid})
    assert box.cgroup.pids() == expected
    assert sub.pids() == [b.pid]
    assert open_cgroup(box.cgroup.paths).pids() == expected


@pytest.mark.root
def test_kill_all_kills_a_frozen_cgroup(box: Box) -> None:
    box.counter()
    box.start(["/bin/sh", "-c", "sleep 60 & sleep 60 & wait"])
    wait_for(lambda: len(box.cgroup.pids()) >= 4, "the shell's children")
    box.cgroup.freeze()
    box.cgroup.kill_all(timeout=5)
    assert box.cgroup.pids() == []
    assert not box.cgroup.frozen()
    for proc in box.procs:
        assert proc.wait(timeout=5) == -signal.SIGKILL


@pytest.mark.root
def test_destroy_removes_every_directory(box: Box) -> None:
    sub = box.child()
    box.start(["sleep", "60"], into=sub)
    box.start(["sleep", "60"])
    box.cgroup.destroy(timeout=5)
    assert not box.cgroup.exists()
    assert not [p for p in list(box.cgroup.paths.values()) + list(sub.paths.values()) if os.path.exists(p)]
    box.cgroup.destroy(timeout=1)  # nothing left: a no-op


@pytest.mark.root
def test_destroy_reports_a_directory_it_cannot_remove(box: Box) -> None:
    sub = box.child()
    busy = next(iter(sub.paths.values()))
    subprocess.run(["mount", "-t", "tmpfs", "corral-test", busy], check=True)  # rmdir → EBUSY
    try:
        with pytest.raises(CgroupError) as info:
            box.cgroup.destroy(timeout=0.2)
        assert busy in str(info.value) and "Device or resource busy" in str(info.value)
    finally:
        subprocess.run(["umount", busy], check=True)


@pytest.mark.root
def test_oom_events_end_when_stopped_or_emptied(box: Box) -> None:
    proc, _ = box.start(["sleep", "60"])
    assert list(box.cgroup.oom_events(stop=lambda: True)) == []
    ended = threading.Event()
    # v2 wakes on cgroup.events (POLLPRI); v1 has no emptiness notification: it polls.
    interval = 5.0 if box.v2 else 0.05

    def watch() -> None:
        list(box.cgroup.oom_events(poll_interval=interval))
        ended.set()

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(0.05)
    assert not ended.is_set()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)
    assert ended.wait(timeout=2), "oom_events did not end when the cgroup emptied"
    watcher.join()


# --- limits ---------------------------------------------------------------------------------


@pytest.mark.root
def test_memory_limit_oom_kills_and_is_reported(box: Box) -> None:
    skip_on_v2(box, NO_V2_MEMORY)
    cg = box.cgroup
    cg.apply(Resources(memory=MemoryResources(limit=32 << 20, swap=32 << 20)))
    assert int(Path(cg.paths["memory"], "memory.limit_in_bytes").read_text()) == 32 << 20
    proc, release = box.start([sys.executable, "-S", "-c", "b = b'x' * (64 << 20)"], release=False)
    events: list[int] = []
    # A long poll interval: the event must come from the kernel's eventfd notification.
    watcher = threading.Thread(target=lambda: events.extend(cg.oom_events(poll_interval=5.0)))
    watcher.start()
    release()
    assert proc.wait(timeout=10) == -signal.SIGKILL
    watcher.join(timeout=2)
    assert not watcher.is_alive(), "oom_events did not wake on the OOM notification"
    assert cg.oom_kill_count() >= 1
    assert events and events[-1] == cg.oom_kill_count()
    stats = cg.stats()
    assert stats.memory is not None and stats.memory.limit == 32 << 20
    assert stats.memory.oom_kills >= 1 and stats.memory.failcnt is not None
    assert (stats.memory.max_usage or 0) >= 31 << 20


@pytest.mark.root
def test_pids_limit_makes_the_eleventh_fork_fail(box: Box) -> None:
    skip_on_v2(box, NO_V2_CONTROLLER)
    box.cgroup.apply(Resources(pids=PidsResources(limit=10)))
    forker = r"""
import os, time
kids, err = [], 0
try:
    for _ in range(20):
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        kids.append(pid)
except OSError as e:
    err = e.errno
print(len(kids), err, flush=True)
for kid in kids:
    os.kill(kid, 9)
    os.waitpid(kid, 0)
"""
    proc = box.python(forker, stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=10)
    assert out.split() == [b"9", str(errno.EAGAIN).encode()]  # itself + 9 children = 10


@pytest.mark.root
def test_cpu_quota_keeps_a_busy_loop_near_its_share(box: Box) -> None:
    skip_on_v2(box, NO_V2_CONTROLLER)
    box.cgroup.apply(Resources(cpu=CpuResources(quota=20_000, period=100_000)))
    busy = r"""
import time
start, cpu = time.monotonic(), time.process_time()
while time.monotonic() - start < 1.0:
    pass
print(time.process_time() - cpu, time.monotonic() - start, flush=True)
"""
    out, _ = box.python(busy, stdout=subprocess.PIPE).communicate(timeout=10)
    cpu_s, wall_s = (float(x) for x in out.split())
    assert 0.05 <= cpu_s / wall_s <= 0.40, (cpu_s, wall_s)
    stats = box.cgroup.stats()
    assert stats.cpu is not None and (stats.cpu.throttled_periods or 0) > 0


@pytest.mark.root
def test_apply_reports_a_value_the_kernel_refuses(box: Box) -> None:
    skip_on_v2(box, NO_V2_CONTROLLER)
    with pytest.raises(ConfigError) as info:
        box.cgroup.apply(Resources(cpu=CpuResources(cpus="99")))
    assert info.value.where == "linux.resources.cpu.cpus"
    message = str(info.value)
    assert f"{box.cgroup.paths['cpuset']}/cpuset.cpus" in message and "refused 99" in message
    assert "[Errno" in message


@pytest.mark.root
def test_apply_refuses_a_controller_that_is_not_there(box: Box) -> None:
    if box.v2:
        with pytest.raises(ConfigError) as info:
            box.cgroup.apply(Resources(memory=MemoryResources(limit=32 << 20)))
        assert info.value.where == "linux.resources.memory"
        assert "memory controller" in str(info.value) and V2_MOUNT in str(info.value)
        return
    assert isinstance(box.cgroup, V1Cgroup)
    without_pids = {k: p for k, p in box.cgroup.paths.items() if k != "pids"}
    partial = V1Cgroup(without_pids, {k: box.cgroup.hierarchies[k] for k in without_pids})
    with pytest.raises(ConfigError) as info1:
        partial.apply(Resources(pids=PidsResources(limit=10)))
    assert info1.value.where == "linux.resources.pids.limit" and "pids controller" in str(info1.value)


OPENS = """
import errno, os, sys
for path in sys.argv[1:]:
    try:
        os.close(os.open(path, os.O_RDWR))
        print(path, "ok")
    except OSError as err:
        print(path, errno.errorcode[err.errno])
"""


def opens(box: Box, *paths: str) -> dict[str, str]:
    """What a process in the cgroup gets opening each of `paths` read-write: ok or the errno's name."""
    out, _ = box.python(OPENS, *paths, stdout=subprocess.PIPE).communicate(timeout=10)
    return dict(line.split() for line in out.decode().splitlines())


@pytest.mark.root
def test_device_rules(box: Box) -> None:
    rules = (DeviceRule(allow=False), DeviceRule(allow=True, type="c", major=1, minor=3, access="rwm"))
    box.cgroup.apply(Resources(devices=rules))
    if box.v2:
        assert len(bpf_devices.attached(box.cgroup.paths[""])) == 1
    else:
        assert Path(box.cgroup.paths["devices"], "devices.list").read_text().split() == ["c", "1:3", "rwm"]
    assert opens(box, "/dev/null", "/dev/zero") == {"/dev/null": "ok", "/dev/zero": "EPERM"}


@pytest.mark.root
def test_device_rules_again_replace_the_first_and_the_last_rule_wins(box: Box) -> None:
    box.cgroup.apply(Resources(devices=(DeviceRule(allow=False),)))
    no_zero = DeviceRule(allow=False, type="c", major=1, minor=5, access="rwm")
    box.cgroup.apply(Resources(devices=(DENY_ALL, *DEFAULT_ALLOWED, no_zero)))
    if box.v2:
        assert len(bpf_devices.attached(box.cgroup.paths[""])) == 1  # the first program was detached
    assert opens(box, "/dev/null", "/dev/zero", "/dev/full") == {
        "/dev/null": "ok", "/dev/zero": "EPERM", "/dev/full": "ok",
    }


# --- stats ----------------------------------------------------------------------------------


@pytest.mark.root
def test_stats_after_work(box: Box) -> None:
    work = r"""
import sys, time
keep = b"x" * (8 << 20)
start = time.process_time()
while time.process_time() - start < 0.1:
    pass
print("ready", flush=True)
time.sleep(60)
"""
    proc = box.python(work, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    stats = box.cgroup.stats()
    assert stats.cpu is not None
    assert stats.cpu.total_usage_ns >= 50_000_000
    assert (stats.cpu.user_ns or 0) + (stats.cpu.system_ns or 0) > 0
    assert box.cgroup.oom_kill_count() == 0
    if box.v2:
        assert stats.memory is None and stats.pids is None  # no such controllers on this mount
        assert stats.cpu.per_cpu_usage_ns is None and stats.cpu.periods is None
        assert list(box.cgroup.oom_events(stop=lambda: True)) == []
        return
    assert stats.memory is not None
    assert stats.memory.usage >= 8 << 20 and (stats.memory.max_usage or 0) >= stats.memory.usage
    assert stats.memory.limit is None and stats.memory.oom_kills == 0
    assert stats.cpu.per_cpu_usage_ns is not None and len(stats.cpu.per_cpu_usage_ns) >= 1
    assert sum(stats.cpu.per_cpu_usage_ns) > 0
    assert stats.pids is not None and stats.pids.current >= 1 and stats.pids.limit is None
