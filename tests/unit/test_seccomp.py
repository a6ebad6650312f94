"""Seccomp: the OCI section's parsing, and real filters loaded in a forked child.

No container: each kernel test forks, the child sets no_new_privs (so no root
is needed), loads the filter, makes raw syscalls through libc's syscall() and
reports their errnos through a pipe. Every filter test runs twice: loaded by
libseccomp in the child (`load`), and compiled in the parent then loaded as raw
BPF with seccomp(2) (`load_bpf`), which is how the init will do it.

tests/fixtures/seccomp_containerd_default.json is the profile containerd's
`contrib/seccomp/seccomp_default.go` (DefaultProfile) writes on amd64 for a
container with the default capabilities, on a kernel >= 4.8: defaultAction
SCMP_ACT_ERRNO without defaultErrnoRet (EPERM), the allow list, personality by
value, ptrace, arch_prctl and modify_ldt, chroot (CAP_SYS_CHROOT), clone
without CLONE_NEW* flags (MASKED_EQ), and clone3 -> ENOSYS.
"""

from __future__ import annotations

import base64
import ctypes
import errno
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corral.errors import ConfigError
from corral.executor import protocol, seccomp
from corral.executor import syscalls as sc
from corral.config import Process, Seccomp, SeccompArg, SeccompSyscall, parse_seccomp

FIXTURE = Path(__file__).parent.parent / "fixtures" / "seccomp_containerd_default.json"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

CLONE_NS_FLAGS = (
    sc.CLONE_NEWNS
    | sc.CLONE_NEWUTS
    | sc.CLONE_NEWIPC
    | sc.CLONE_NEWUSER
    | sc.CLONE_NEWPID
    | sc.CLONE_NEWNET
    | sc.CLONE_NEWCGROUP
)
ADDR_NO_RANDOMIZE = 0x0040000


def containerd_default() -> Seccomp:
    return parse_seccomp(json.loads(FIXTURE.read_text()))


def raw(name: str, *args: int | None) -> int:
    """Make syscall `name` with `args` (None is NULL); 0 if it succeeded, else its errno."""
    nr = seccomp.syscall_number(name)
    assert nr is not None and nr >= 0, name
    ctypes.set_errno(0)
    c_args = [ctypes.c_void_p(None) if a is None else ctypes.c_ulong(a) for a in args]
    result = _libc.syscall(ctypes.c_long(nr), *c_args)
    return ctypes.get_errno() if result == -1 else 0


Probes = dict[str, Callable[[], int]]


def run_filtered(spec: Seccomp | None, loader: str, probes: Probes) -> dict[str, int]:
    """In a forked child: no_new_privs, load `spec` (None: no filter), run the probes."""
    compiled = seccomp.compile_bpf(spec) if spec is not None and loader == "bpf" else None
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        result: dict[str, Any]
        try:
            os.close(read_end)
            sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
            if compiled is not None:
                seccomp.load_bpf(compiled)
            elif spec is not None:
                seccomp.load(spec)
            result = {name: probe() for name, probe in probes.items()}
        except BaseException as exc:
            result = {"error": repr(exc)}
        try:
            os.write(write_end, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    report = json.loads(b"".join(chunks))
    assert "error" not in report, report["error"]
    return report


def fork_works() -> int:
    """Python's os.fork is clone() without CLONE_NEW* flags: the default profile allows it."""
    try:
        pid = os.fork()
    except OSError as e:
        return e.errno or -1
    if pid == 0:  # pragma: no cover
        os._exit(7)
    _, status = os.waitpid(pid, 0)
    return 0 if os.waitstatus_to_exitcode(status) == 7 else -1


LOADERS = ["libseccomp", "bpf"]


# --------------------------------------------------------------------------- kernel


@pytest.mark.parametrize("loader", LOADERS)
def test_containerd_default_profile(loader: str) -> None:
    probes: Probes = {
        "getpid": lambda: raw("getpid"),
        "unshare": lambda: raw("unshare", sc.CLONE_NEWUSER),
        "mount": lambda: raw("mount", None, None, None, 0, None),  # EFAULT without a filter
        "keyctl": lambda: raw("keyctl", 0xDEAD, 0, 0, 0, 0),  # EOPNOTSUPP without a filter
        "clone3": lambda: raw("clone3", None, 0),  # EINVAL or EFAULT without a filter
        "clone_newns": lambda: raw("clone", CLONE_NS_FLAGS, None, None, None, None),
        "fork": fork_works,
        "personality_query": lambda: raw("personality", 0xFFFFFFFF),
        "personality_other": lambda: raw("personality", ADDR_NO_RANDOMIZE),
    }
    got = run_filtered(containerd_default(), loader, probes)
    assert got == {
        "getpid": 0,
        "unshare": errno.EPERM,
        "mount": errno.EPERM,
        "keyctl": errno.EPERM,
        "clone3": errno.ENOSYS,
        "clone_newns": errno.EPERM,
        "fork": 0,
        "personality_query": 0,
        "personality_other": errno.EPERM,
    }


def test_probes_do_not_fail_with_eperm_by_themselves() -> None:
    """Without a filter the probes give other answers, so the EPERMs above are the filter's."""
    got = run_filtered(
        None,
        "none",
        {
            "mount": lambda: raw("mount", None, None, None, 0, None),
            "keyctl": lambda: raw("keyctl", 0xDEAD, 0, 0, 0, 0),
            "clone3": lambda: raw("clone3", None, 0),
        },
    )
    assert errno.EPERM not in got.values() and errno.ENOSYS not in got.values(), got


@pytest.mark.parametrize("loader", LOADERS)
def test_errno_ret_and_its_default(loader: str) -> None:
    spec = Seccomp(
        default_action="SCMP_ACT_ALLOW",
        syscalls=(
            SeccompSyscall(names=("getppid",), action="SCMP_ACT_ERRNO", errno_ret=errno.ENOSYS),
            SeccompSyscall(names=("getpgrp",), action="SCMP_ACT_ERRNO"),
        ),
    )
    got = run_filtered(
        spec,
        loader,
        {
            "getppid": lambda: raw("getppid"),
            "getpgrp": lambda: raw("getpgrp"),
            "getpid": lambda: raw("getpid"),
        },
    )
    assert got == {"getppid": errno.ENOSYS, "getpgrp": errno.EPERM, "getpid": 0}


@pytest.mark.parametrize("loader", LOADERS)
def test_masked_eq_condition_on_personality(loader: str) -> None:
    """value is the mask, valueTwo what the masked argument must equal (swapping them
    would let ADDR_NO_RANDOMIZE through)."""
    spec = Seccomp(
        default_action="SCMP_ACT_ALLOW",
        syscalls=(
            SeccompSyscall(
                names=("personality",),
                action="SCMP_ACT_ERRNO",
                errno_ret=errno.EACCES,
                args=(
                    SeccompArg(
                        index=0,
                        value=0x00FF0000,
                        value_two=ADDR_NO_RANDOMIZE,
                        op="SCMP_CMP_MASKED_EQ",
                    ),
                ),
            ),
        ),
    )
    got = run_filtered(
        spec,
        loader,
        {
            "linux": lambda: raw("personality", 0),
            "no_randomize": lambda: raw("personality", ADDR_NO_RANDOMIZE),
        },
    )
    assert got == {"linux": 0, "no_randomize": errno.EACCES}


@pytest.mark.parametrize(
    ("op", "value", "allowed", "refused"),
    [
        ("SCMP_CMP_NE", 0, 0, None),
        ("SCMP_CMP_EQ", 8, 0, 8),
        ("SCMP_CMP_LT", 8, None, 0),
        ("SCMP_CMP_LE", 8, 0x20000, 8),
        ("SCMP_CMP_GE", 8, 0, 8),
        ("SCMP_CMP_GT", 8, 8, 0x20000),
    ],
)
def test_comparison_operators(
    op: str, value: int, allowed: int | None, refused: int | None
) -> None:
    """Each operator refuses (EACCES) personality(arg) when `arg <op> value` holds."""
    spec = Seccomp(
        default_action="SCMP_ACT_ALLOW",
        syscalls=(
            SeccompSyscall(
                names=("personality",),
                action="SCMP_ACT_ERRNO",
                errno_ret=errno.EACCES,
                args=(SeccompArg(index=0, value=value, op=op),),
            ),
        ),
    )
    probes: Probes = {}
    if allowed is not None:
        probes["allowed"] = lambda: raw("personality", allowed)
    if refused is not None:
        probes["refused"] = lambda: raw("personality", refused)
    got = run_filtered(spec, "bpf", probes)
    if allowed is not None:
        assert got["allowed"] == 0
    if refused is not None:
        assert got["refused"] == errno.EACCES


# --------------------------------------------------------------------------- compiling


def test_unknown_syscall_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    spec = Seccomp(
        default_action="SCMP_ACT_ERRNO",
        syscalls=(
            SeccompSyscall(names=("getpid", "corral_no_such_syscall"), action="SCMP_ACT_ALLOW"),
        ),
    )
    with caplog.at_level(logging.WARNING, logger="corral"):
        compiled = seccomp.compile_bpf(spec)
    assert compiled.skipped == ("corral_no_such_syscall",)
    assert any(
        "corral_no_such_syscall" in r.getMessage() and "linux.seccomp.syscalls[0]" in r.getMessage()
        for r in caplog.records
    ), caplog.text


def test_a_rule_libseccomp_refuses_names_the_syscall_and_the_rule() -> None:
    spec = Seccomp(
        default_action="SCMP_ACT_ALLOW",
        syscalls=(
            SeccompSyscall(names=("getpid",), action="SCMP_ACT_ERRNO"),
            SeccompSyscall(
                names=("personality",),
                action="SCMP_ACT_ERRNO",
                args=(
                    SeccompArg(index=0, value=1, op="SCMP_CMP_GE"),
                    SeccompArg(index=0, value=5, op="SCMP_CMP_LE"),
                ),
            ),
        ),
    )
    with pytest.raises(ConfigError) as info:
        seccomp.compile_bpf(spec)
    assert info.value.where == "linux.seccomp.syscalls[1]"
    assert "'personality'" in info.value.problem


def test_bpf_export_and_its_transport() -> None:
    compiled = seccomp.compile_bpf(containerd_default())
    assert compiled.instructions > 100 and len(compiled.bpf) % 8 == 0
    request = protocol.ExecRequest("c", 1, 2, ("pid",), (), Process(args=("true",)), seccomp=compiled)
    carried = protocol.decode(protocol.encode(request), allow_pickle=True)
    assert isinstance(carried, protocol.ExecRequest) and carried.seccomp == compiled
    assert seccomp.compile_bpf(containerd_default()).bpf == compiled.bpf  # deterministic


def test_flags_become_seccomp2_flags() -> None:
    spec = Seccomp(
        default_action="SCMP_ACT_ALLOW",
        flags=("SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"),
    )
    from corral.executor._syscalls import lib

    assert (
        seccomp.compile_bpf(spec).flags
        == lib.SECCOMP_FILTER_FLAG_LOG | lib.SECCOMP_FILTER_FLAG_SPEC_ALLOW
    )


def test_every_action_compiles() -> None:
    for action in (
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_LOG",
    ):
        spec = Seccomp(
            default_action="SCMP_ACT_ALLOW", syscalls=(SeccompSyscall(("getppid",), action),)
        )
        assert seccomp.compile_bpf(spec).instructions > 0, action


# --------------------------------------------------------------------------- parsing


def test_parse_and_to_dict_round_trip() -> None:
    data = json.loads(FIXTURE.read_text())
    spec = parse_seccomp(data)
    assert spec.to_dict() == data
    assert parse_seccomp(spec.to_dict()) == spec
    assert spec.syscalls[-2].args == (
        SeccompArg(index=0, value=CLONE_NS_FLAGS, value_two=0, op="SCMP_CMP_MASKED_EQ"),
    )
    full = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {
                "names": ["personality"],
                "action": "SCMP_ACT_TRACE",
                "errnoRet": 3,
                "args": [{"index": 0, "value": 255, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}],
            }
        ],
    }
    assert parse_seccomp(full).to_dict() == full
    assert parse_seccomp(full).default_errno_ret == 38


BASE: dict[str, Any] = {"defaultAction": "SCMP_ACT_ALLOW"}
RULE: dict[str, Any] = {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}


@pytest.mark.parametrize(
    ("data", "where", "words"),
    [
        ({"defaultAction": "SCMP_ACT_DENY"}, "linux.seccomp.defaultAction", "unknown action"),
        ({}, "linux.seccomp.defaultAction", "required"),
        (
            {**BASE, "syscalls": [RULE, {**RULE, "action": "SCMP_ACT_NOPE"}]},
            "linux.seccomp.syscalls[1].action",
            "unknown action",
        ),
        (
            {
                **BASE,
                "syscalls": [{**RULE, "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}],
            },
            "linux.seccomp.syscalls[0].args[0].op",
            "unknown operator",
        ),
        (
            {
                **BASE,
                "syscalls": [{**RULE, "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}],
            },
            "linux.seccomp.syscalls[0].args[0].index",
            "0 to 5",
        ),
        (
            {
                **BASE,
                "syscalls": [{**RULE, "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}],
            },
            "linux.seccomp.syscalls[0].args[0].value",
            "integer",
        ),
        (
            {**BASE, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]},
            "linux.seccomp.architectures[1]",
            "unknown architecture",
        ),
        ({**BASE, "flags": ["SECCOMP_FILTER_FLAG_FAST"]}, "linux.seccomp.flags[0]", "unknown flag"),
        (
            {**BASE, "syscalls": [{**RULE, "action": "SCMP_ACT_NOTIFY"}]},
            "linux.seccomp.syscalls[0].action",
            "user notification",
        ),
        ({"defaultAction": "SCMP_ACT_NOTIFY"}, "linux.seccomp.defaultAction", "user notification"),
        (
            {**BASE, "listenerPath": "/run/agent.sock"},
            "linux.seccomp.listenerPath",
            "not supported",
        ),
        (
            {**BASE, "syscalls": [{**RULE, "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]},
            "linux.seccomp.syscalls[0].errnoRet",
            "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE",
        ),
        ({**BASE, "defaultErrnoRet": 1}, "linux.seccomp.defaultErrnoRet", "only SCMP_ACT_ERRNO"),
        (
            {**BASE, "syscalls": [{**RULE, "errnoRet": 70000}]},
            "linux.seccomp.syscalls[0].errnoRet",
            "0 to 65535",
        ),
        (
            {**BASE, "syscalls": [{**RULE, "names": []}]},
            "linux.seccomp.syscalls[0].names",
            "at least one",
        ),
        (
            {**BASE, "syscalls": [{"action": "SCMP_ACT_ERRNO"}]},
            "linux.seccomp.syscalls[0].names",
            "required",
        ),
        (
            {**BASE, "syscalls": [{**RULE, "comment": "x"}]},
            "linux.seccomp.syscalls[0].comment",
            "not a key",
        ),
        ({**BASE, "syscalls": {"names": ["getpid"]}}, "linux.seccomp.syscalls", "must be a list"),
        ("SCMP_ACT_ALLOW", "linux.seccomp", "must be an object"),
    ],
)
def test_invalid_sections_name_their_json_path(data: object, where: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_seccomp(data)
    assert info.value.where == where
    assert words in info.value.problem


def test_python_callers_are_validated_before_compiling() -> None:
    rules: Any = [SeccompSyscall(["getpid"], "SCMP_ACT_BOGUS")]  # type: ignore[arg-type]
    spec = Seccomp(default_action="SCMP_ACT_ALLOW", syscalls=rules)
    assert spec.syscalls[0].names == ("getpid",)  # lists become tuples
    with pytest.raises(ConfigError) as info:
        seccomp.compile_bpf(spec)
    assert info.value.where == "linux.seccomp.syscalls[0].action"


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the fixture's architectures are x86's")
def test_listed_architectures_are_in_the_filter() -> None:
    """x86 and x32 besides the native x86_64: each adds its own syscall table to the program."""
    three = containerd_default()
    native = Seccomp(**{**three.__dict__, "architectures": ("SCMP_ARCH_X86_64",)})
    none = Seccomp(**{**three.__dict__, "architectures": ()})
    assert seccomp.compile_bpf(none).bpf == seccomp.compile_bpf(native).bpf  # native is always in
    assert seccomp.compile_bpf(three).instructions > seccomp.compile_bpf(native).instructions + 100


def test_loading_bpf_does_not_map_libseccomp() -> None:
    """The init imports this module and loads BPF: libseccomp stays out of its memory."""
    compiled = seccomp.compile_bpf(Seccomp(default_action="SCMP_ACT_ALLOW"))
    code = (
        "import sys, base64\n"
        "from corral.executor import seccomp, syscalls as sc\n"
        "sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)\n"
        "seccomp.load_bpf(seccomp.CompiledFilter(base64.b64decode(sys.argv[1]), 0))\n"
        "print('libseccomp' in open('/proc/self/maps').read())\n"
    )
    bpf = base64.b64encode(compiled.bpf).decode()
    out = subprocess.run(
        [sys.executable, "-c", code, bpf], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_a_profile_is_compiled_once_per_process() -> None:
    """The executor compiles at create and again for each exec: equal profiles share one result."""
    seccomp.compiled.cache_clear()
    first = seccomp.compiled(containerd_default())
    again = seccomp.compiled(containerd_default())  # an equal Seccomp, another object

    assert again is first
    assert seccomp.compiled.cache_info().hits == 1
    assert first.bpf == seccomp.compile_bpf(containerd_default()).bpf
