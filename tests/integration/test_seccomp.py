"""Seccomp in real containers: `linux.seccomp` filters the init's program and every exec'd process.

Each test checks what the kernel says: the exit status and error message of a
busybox tool inside the container, and `Seccomp:` in /proc/<pid>/status on the
host. Where a syscall fails for want of a capability anyway (mount, unshare),
the container is given CAP_SYS_ADMIN and the same commands are first shown to
succeed without a filter, so that the failure with it is the filter's.

keyctl: busybox has no applet that calls it, and the rootfs has nothing else;
tests/unit/test_seccomp.py checks keyctl under the same profile in a forked
child instead.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from pathlib import Path

import pytest

from corral import Runtime
from corral.config import (
    DEFAULT_CAPABILITIES,
    Capabilities,
    Config,
    Process,
    Seccomp,
    SeccompArg,
    SeccompSyscall,
    User,
    parse_seccomp,
)
from corral.errors import ConfigError
from corral.executor.interface import Stdio
from tests.integration.conftest import PATH_ENV, make_config, output_file

pytestmark = pytest.mark.root

FIXTURE = Path(__file__).parent.parent / "fixtures" / "seccomp_containerd_default.json"
ADMIN = Capabilities(*((*DEFAULT_CAPABILITIES, "CAP_SYS_ADMIN"),) * 3)
ENOSYS_TEXT = "Function not implemented"
EPERM_TEXT = "Operation not permitted"
PER_LINUX32 = 0x0008

#: Run each command, then print "<name>=<exit status>"; the errors go to the same file.
PROBES = (
    "unshare -U true; echo unshare=$?; "
    "mount -t tmpfs probe /tmp; echo mount=$?; "
)


def containerd_default() -> Seccomp:
    return parse_seccomp(json.loads(FIXTURE.read_text()))


def run(runtime: Runtime, config: Config, tmp_path: Path, name: str) -> str:
    """Create, start and wait for the container; its output (stdout and stderr)."""
    fd, out = output_file(tmp_path, f"{name}.out")
    try:
        box = runtime.create(name, config, stdio=Stdio(stdout=fd, stderr=fd))
    finally:
        os.close(fd)
    box.start()
    assert box.wait(20) == 0, out.read_text()
    box.destroy()
    return out.read_text()


def results(text: str) -> dict[str, int]:
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)=(\d+)$", text, re.M)}


def seccomp_mode(pid: int) -> tuple[str, str]:
    """(Seccomp, Seccomp_filters) of /proc/<pid>/status: 2 is "filter"."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    return fields["Seccomp"], fields.get("Seccomp_filters", "?")


def exec_output(box, tmp_path: Path, name: str, *args: str, process: Process | None = None) -> tuple[int | None, str]:  # type: ignore[no-untyped-def]
    fd, out = output_file(tmp_path, f"{name}.out")
    try:
        proc = box.exec(process or Process(args=args), stdio=Stdio(stdout=fd, stderr=fd))
    finally:
        os.close(fd)
    return proc.wait(20), out.read_text()


def test_the_containerd_default_profile_refuses_unshare_and_mount(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    config = make_config(bundle, "bare", "/bin/sh", "-c", PROBES)
    config = dataclasses.replace(config, process=dataclasses.replace(config.process, capabilities=ADMIN))

    unfiltered = run(runtime, config, tmp_path, "bare")
    filtered = run(runtime, dataclasses.replace(config, seccomp=containerd_default()), tmp_path, "filtered")

    assert results(unfiltered) == {"unshare": 0, "mount": 0}, unfiltered
    assert results(filtered) == {"unshare": 1, "mount": 1}, filtered
    assert f"unshare(0x10000000): {EPERM_TEXT}" in filtered  # CLONE_NEWUSER
    assert "mount: permission denied" in filtered  # busybox's words for EPERM


def test_an_exec_d_process_is_under_the_container_s_filter(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    config = make_config(bundle, "exec", "/bin/sleep", "600", seccomp=containerd_default())
    config = dataclasses.replace(config, process=dataclasses.replace(config.process, capabilities=ADMIN))
    box = runtime.create("exec", config)
    box.start()

    status, text = exec_output(box, tmp_path, "exec-probes", "/bin/sh", "-c", PROBES)
    sleeper = box.exec(Process(args=("/bin/sleep", "600")))

    assert results(text) == {"unshare": 1, "mount": 1}, text
    assert seccomp_mode(box.pid) == ("2", "1")
    assert seccomp_mode(sleeper.pid) == ("2", "1")
    box.destroy(force=True)


def test_errno_ret_38_makes_the_syscall_return_enosys(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    profile = Seccomp(
        default_action="SCMP_ACT_ALLOW",
        syscalls=(SeccompSyscall(("mkdir", "mkdirat"), "SCMP_ACT_ERRNO", errno_ret=38),),
    )
    script = "mkdir /tmp/made; echo mkdir=$?; sleep 600"
    fd, out = output_file(tmp_path, "enosys.out")
    try:
        box = runtime.create(
            "enosys", make_config(bundle, "enosys", "/bin/sh", "-c", script, seccomp=profile),
            stdio=Stdio(stdout=fd, stderr=fd),
        )
    finally:
        os.close(fd)
    box.start()
    status, exec_text = exec_output(box, tmp_path, "enosys-exec", "/bin/mkdir", "/tmp/made-by-exec")

    assert status == 1 and ENOSYS_TEXT in exec_text, exec_text
    box.destroy(force=True)
    text = out.read_text()
    assert results(text) == {"mkdir": 1} and ENOSYS_TEXT in text, text
    assert not (bundle / "rootfs" / "tmp" / "made").exists()
    assert not (bundle / "rootfs" / "tmp" / "made-by-exec").exists()


def test_a_masked_eq_condition_allows_one_value_and_refuses_another(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    """personality(2) through busybox: linux64 asks for PER_LINUX (0), linux32 for PER_LINUX32 (8)."""
    profile = Seccomp(
        default_action="SCMP_ACT_ALLOW",
        syscalls=(
            SeccompSyscall(
                ("personality",),
                "SCMP_ACT_ERRNO",
                args=(SeccompArg(index=0, value=0xFF, value_two=PER_LINUX32, op="SCMP_CMP_MASKED_EQ"),),
            ),
        ),
    )
    script = "linux64 true; echo linux64=$?; linux32 true; echo linux32=$?"

    text = run(runtime, make_config(bundle, "persona", "/bin/sh", "-c", script, seccomp=profile), tmp_path, "persona")

    assert results(text) == {"linux64": 0, "linux32": 1}, text
    assert EPERM_TEXT in text


@pytest.mark.parametrize("no_new_privileges", [True, False], ids=["no-new-privs", "privileged-load"])
def test_a_process_without_cap_sys_admin_is_filtered_either_way(
    runtime: Runtime, bundle: Path, tmp_path: Path, no_new_privileges: bool
) -> None:
    """Without no_new_privs the filter is loaded while the init still has CAP_SYS_ADMIN
    (the kernel refuses it after the drop); with it, last before execve."""
    profile = Seccomp(default_action="SCMP_ACT_ALLOW", syscalls=(SeccompSyscall(("mkdir", "mkdirat"), "SCMP_ACT_ERRNO", errno_ret=38),))
    process = Process(
        args=("/bin/sh", "-c", "mkdir /tmp/d; echo mkdir=$?; sleep 600"),
        env=(PATH_ENV,),
        user=User(1000, 1000),
        capabilities=None,
        no_new_privileges=no_new_privileges,
    )
    fd, out = output_file(tmp_path, "user.out")
    try:
        box = runtime.create("user", make_config(bundle, "user", process=process, seccomp=profile), stdio=Stdio(stdout=fd, stderr=fd))
    finally:
        os.close(fd)
    box.start()
    exec_status, exec_text = exec_output(box, tmp_path, "user-exec", "/bin/mkdir", "/tmp/e")

    assert seccomp_mode(box.pid) == ("2", "1")
    assert exec_status == 1 and ENOSYS_TEXT in exec_text, exec_text
    box.destroy(force=True)
    assert ENOSYS_TEXT in out.read_text()


def test_a_profile_libseccomp_refuses_fails_create_naming_the_rule(runtime: Runtime, bundle: Path) -> None:
    profile = Seccomp(
        default_action="SCMP_ACT_ALLOW",
        syscalls=(
            SeccompSyscall(("getpid",), "SCMP_ACT_ERRNO"),
            SeccompSyscall(
                ("personality",),
                "SCMP_ACT_ERRNO",
                args=(SeccompArg(0, 1, "SCMP_CMP_GE"), SeccompArg(0, 5, "SCMP_CMP_LE")),
            ),
        ),
    )
    with pytest.raises(ConfigError) as info:
        runtime.create("refused", make_config(bundle, "refused", "/bin/true", seccomp=profile))

    assert info.value.where == "linux.seccomp.syscalls[1]"


def test_an_unknown_syscall_is_skipped_with_a_warning(
    runtime: Runtime, bundle: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    profile = Seccomp(
        default_action="SCMP_ACT_ALLOW",
        syscalls=(SeccompSyscall(("corral_future_syscall", "mkdir", "mkdirat"), "SCMP_ACT_ERRNO", errno_ret=38),),
    )
    with caplog.at_level(logging.WARNING, logger="corral"):
        text = run(
            runtime,
            make_config(bundle, "future", "/bin/sh", "-c", "mkdir /tmp/x; echo mkdir=$?", seccomp=profile),
            tmp_path,
            "future",
        )

    assert results(text) == {"mkdir": 1} and ENOSYS_TEXT in text, text
    assert "corral_future_syscall" in caplog.text
