"""`process`: each field of the config `runc spec` writes changed once, and read back
from inside the container (its /proc/self/status, `id`, `umask`, /proc/self/sched,
/proc/self/personality ...), or from the host where the container cannot see it."""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path
from typing import Any

import pytest

from corral import CPUAffinity, Process, Runtime
from tests.integration.spec.helpers import sh, spec_config

pytestmark = pytest.mark.root


def status_field(text: str, name: str) -> str:
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in {text}")


def test_args_env_and_cwd(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["process"]["env"] = ["PATH=/bin", "GREETING=hello there"]
        data["process"]["cwd"] = "/tmp/work"

    out = sh(runtime, bundle, tmp_path, "args", 'echo "$0|$1|$GREETING|$(pwd)"; env | sort', change).splitlines()
    assert out[0] == "sh||hello there|/tmp/work"
    assert sorted(line for line in out[1:] if not line.startswith(("PWD=", "SHLVL="))) == ["GREETING=hello there", "PATH=/bin"]


def test_user_uid_gid_and_additional_gids(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 7]}

    out = sh(runtime, bundle, tmp_path, "user", "id -u; id -g; id -G", change).split()
    assert out[:2] == ["1000", "1001"]
    assert sorted(out[2:]) == ["1001", "5", "7"]


@pytest.mark.parametrize("umask", [0o077, 0o002])
def test_umask(runtime: Runtime, bundle: Path, tmp_path: Path, umask: int) -> None:
    def change(data: dict[str, Any]) -> None:
        data["process"]["user"]["umask"] = umask

    out = sh(runtime, bundle, tmp_path, f"umask-{umask:o}", "umask; grep Umask /proc/self/status", change)
    assert int(out.split()[0], 8) == umask
    assert int(status_field(out, "Umask"), 8) == umask


def test_rlimits(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]

    out = sh(runtime, bundle, tmp_path, "rlimits", "ulimit -n; ulimit -Hn", change).split()
    assert out == ["123", "456"]


def test_capabilities_and_no_new_privileges(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        caps = ["CAP_CHOWN", "CAP_KILL"]
        data["process"]["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
        data["process"]["noNewPrivileges"] = True

    out = sh(runtime, bundle, tmp_path, "caps", "cat /proc/self/status", change)
    expected = (1 << 0) | (1 << 5)  # CAP_CHOWN, CAP_KILL
    for field in ("CapBnd", "CapEff", "CapPrm"):
        assert int(status_field(out, field), 16) == expected, field
    assert status_field(out, "NoNewPrivs") == "1"


def test_oom_score_adj(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["process"]["oomScoreAdj"] = 321

    assert sh(runtime, bundle, tmp_path, "oom", "cat /proc/self/oom_score_adj", change).strip() == "321"


@pytest.mark.parametrize(
    "policy, extra, shown",
    [
        ("SCHED_BATCH", {"nice": 5}, (3, 125)),
        ("SCHED_OTHER", {"nice": -5}, (0, 115)),
        ("SCHED_IDLE", {}, (5, 120)),
    ],
)
def test_scheduler(runtime: Runtime, bundle: Path, tmp_path: Path, policy: str, extra: dict[str, int], shown: tuple[int, int]) -> None:
    """/proc/self/sched's policy and prio (kernel prio: 120 + nice). SCHED_FIFO/RR are
    not run here: with RT group scheduling a cgroup without an rt budget refuses them
    (EPERM), as it would under runc."""

    def change(data: dict[str, Any]) -> None:
        data["process"]["scheduler"] = {"policy": policy, **extra}

    out = sh(runtime, bundle, tmp_path, f"sched-{policy.lower().replace('_', '-')}", "grep -E '^(policy|prio) ' /proc/self/sched", change)
    values = {line.split(":")[0].strip(): int(line.split(":")[1]) for line in out.splitlines()}
    assert (values["policy"], values["prio"]) == shown, out


SYS_IOPRIO_GET = {"x86_64": 252, "aarch64": 31}


@pytest.mark.parametrize("ioclass, level", [("IOPRIO_CLASS_IDLE", 0), ("IOPRIO_CLASS_BE", 6), ("IOPRIO_CLASS_RT", 2)])
def test_io_priority(runtime: Runtime, bundle: Path, ioclass: str, level: int) -> None:
    """Read on the host with ioprio_get(IOPRIO_WHO_PROCESS, pid): busybox `ionice -p`
    would do as well, but the kernel's own answer needs no tool in the image."""
    number = SYS_IOPRIO_GET.get(platform.machine())
    if number is None:
        pytest.skip(f"no ioprio_get number for {platform.machine()}")

    def change(data: dict[str, Any]) -> None:
        data["process"]["ioPriority"] = {"class": ioclass, "priority": level}

    box = runtime.create(f"ioprio-{level}", spec_config(bundle, "sleep", "30", change=change))
    try:
        box.start()
        libc = ctypes.CDLL(None, use_errno=True)
        value = libc.syscall(number, 1, box.pid)
        assert value != -1, os.strerror(ctypes.get_errno())
        classes = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
        assert (value >> 13, value & 0xFF) == (classes[ioclass], level)
    finally:
        box.destroy(force=True)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="LINUX32 is the 32-bit personality of x86_64")
def test_personality(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["linux"]["personality"] = {"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]}

    out = sh(runtime, bundle, tmp_path, "persona", "cat /proc/self/personality; uname -m", change).split()
    assert int(out[0], 16) == 0x0008 | 0x0040000
    assert out[1] == "i686"  # what uname says under PER_LINUX32


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_exec_cpu_affinity_final_shows_in_the_execd_process(runtime: Runtime, bundle: Path) -> None:
    cpu = sorted(os.sched_getaffinity(0))[-1]
    box = runtime.create("affinity", spec_config(bundle, "sleep", "30"))
    try:
        box.start()
        process = Process(
            args=("grep", "Cpus_allowed_list", "/proc/self/status"),
            exec_cpu_affinity=CPUAffinity(initial="0", final=str(cpu)),
        )
        status, out, _ = box.exec_run(process, timeout=20)
        assert status == 0
        assert out.decode().split()[-1] == str(cpu)
    finally:
        box.destroy(force=True)
