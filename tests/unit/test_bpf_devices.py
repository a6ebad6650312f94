"""The v2 device program emitter, without root: listings derived by hand, bytes, and a model check.

Expectations are written out instruction by instruction (struct
bpf_cgroup_dev_ctx: type in the low half of access_type, access in the high
half; BPF_DEVCG_DEV_CHAR = 2, BPF_DEVCG_DEV_BLOCK = 1; access m = 1, r = 2,
w = 4). A jump's offset counts from the next instruction. The program is also
run by a small interpreter of the nine opcodes it uses and compared with the
rule list's meaning (the last matching rule decides; none denies).
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.config import DeviceRule
from corral.executor import syscalls as sc
from corral.executor.cgroups import bpf_devices as bd
from corral.executor.cgroups.devices import DEFAULT_ALLOWED, DENY_ALL

PROLOGUE = [
    "0: ldxw r2, [r1+0]",
    "1: and32 r2, 0xffff",
    "2: ldxw r3, [r1+0]",
    "3: rsh32 r3, 16",
    "4: ldxw r4, [r1+4]",
    "5: ldxw r5, [r1+8]",
]


def lines(rules: tuple[DeviceRule, ...]) -> list[str]:
    return bd.listing(bd.program(rules))


def test_the_uapi_values_match_the_kernel_headers() -> None:
    assert (bd.DEV_BLOCK, bd.DEV_CHAR) == (sc.BPF_DEVCG_DEV_BLOCK, sc.BPF_DEVCG_DEV_CHAR)
    assert (bd.ACC_MKNOD, bd.ACC_READ, bd.ACC_WRITE) == (
        sc.BPF_DEVCG_ACC_MKNOD, sc.BPF_DEVCG_ACC_READ, sc.BPF_DEVCG_ACC_WRITE,
    )


def test_no_rules_is_deny_everything_down_to_the_bytes() -> None:
    insns = bd.program(())
    assert bd.listing(insns) == [*PROLOGUE, "6: mov32 r0, 0", "7: exit"]
    assert bd.encode(insns) == bytes.fromhex(
        "6112000000000000"  # ldxw r2, [r1+0]: code 0x61, dst 2 | src 1 << 4
        "54020000ffff0000"  # and32 r2, 0xffff
        "6113000000000000"
        "7403000010000000"  # rsh32 r3, 16
        "6114040000000000"  # off 4
        "6115080000000000"  # off 8
        "b400000000000000"  # mov32 r0, 0
        "9500000000000000"  # exit
    )


def test_one_device_after_deny_all() -> None:
    null = DeviceRule(allow=True, type="c", major=1, minor=3, access="rwm")
    assert lines((DENY_ALL, null)) == [
        *PROLOGUE,
        "6: jne r2, 2, +4",  # not a char device: to 11
        "7: jne r4, 1, +3",
        "8: jne r5, 3, +2",
        "9: mov32 r0, 1",
        "10: exit",
        "11: mov32 r0, 0",  # DENY_ALL matches everything: the program ends with it
        "12: exit",
    ]
    jump = bd.program((DENY_ALL, null))[6].encode()
    assert jump == struct.pack("<BBhi", 0x55, 0x02, 4, 2)


def test_a_wildcard_minor_and_a_partial_deny() -> None:
    pts = DeviceRule(allow=True, type="c", major=136, access="rwm")
    no_disk_write = DeviceRule(allow=False, type="b", major=8, minor=0, access="w")
    assert lines((DENY_ALL, pts, no_disk_write)) == [
        *PROLOGUE,
        "6: jne r2, 1, +7",  # the deny, listed last, is tested first
        "7: mov32 r1, r3",
        "8: and32 r1, 0x4",
        "9: jeq r1, 0, +4",  # no write asked for: the deny does not match
        "10: jne r4, 8, +3",
        "11: jne r5, 0, +2",
        "12: mov32 r0, 0",
        "13: exit",
        "14: jne r2, 2, +3",
        "15: jne r4, 136, +2",  # no minor test
        "16: mov32 r0, 1",
        "17: exit",
        "18: mov32 r0, 0",
        "19: exit",
    ]


def test_type_a_with_minus_one_numbers_tests_only_the_access() -> None:
    mknod_anything = DeviceRule(allow=True, type="a", major=-1, minor=-1, access="m")
    assert lines((mknod_anything,)) == [
        *PROLOGUE,
        "6: mov32 r1, r3",
        "7: and32 r1, 0x1",
        "8: jne r1, r3, +2",  # something besides mknod asked for
        "9: mov32 r0, 1",
        "10: exit",
        "11: mov32 r0, 0",  # no rule matched
        "12: exit",
    ]


def test_allow_all_after_a_deny_ends_the_program_and_drops_what_it_overrides() -> None:
    disk = DeviceRule(allow=False, type="b", major=8, minor=0, access="rwm")
    allow_all = DeviceRule(allow=True, access="rwm")
    assert lines((disk, allow_all)) == [*PROLOGUE, "6: mov32 r0, 1", "7: exit"]
    assert lines((allow_all, disk))[6:] == [
        "6: jne r2, 1, +4", "7: jne r4, 8, +3", "8: jne r5, 0, +2", "9: mov32 r0, 0", "10: exit",
        "11: mov32 r0, 1", "12: exit",
    ]


def test_a_number_no_device_can_have_is_left_out() -> None:
    assert lines((DENY_ALL, DeviceRule(allow=True, type="c", major=1 << 12, access="rwm"))) == lines((DENY_ALL,))
    assert len(lines((DeviceRule(allow=True, type="c", major=1, minor=(1 << 20) - 1),))) == 6 + 5 + 2


def test_the_default_list_is_59_instructions() -> None:
    # prologue 6; c 136:* 4; seven exact devices 5 each; b *:* m and c *:* m 6 each; deny all 2
    assert len(bd.program((DENY_ALL, *DEFAULT_ALLOWED))) == 6 + 4 + 7 * 5 + 6 + 6 + 2


# --- the program means what the list means -----------------------------------------------------


def run(insns: tuple[bd.Insn, ...], ctx: tuple[int, int, int]) -> int:
    """Execute the program on struct bpf_cgroup_dev_ctx `ctx` (access_type, major, minor)."""
    regs = [0] * 11
    memory = struct.pack("<III", *ctx)
    pc = 0
    for _ in range(10_000):
        i = insns[pc]
        pc += 1
        if i.code == bd.LDXW:
            regs[i.dst] = struct.unpack_from("<I", memory, i.off)[0]
        elif i.code == bd.AND32:
            regs[i.dst] = (regs[i.dst] & i.imm) & 0xFFFFFFFF
        elif i.code == bd.RSH32:
            regs[i.dst] = (regs[i.dst] & 0xFFFFFFFF) >> i.imm
        elif i.code == bd.MOV32:
            regs[i.dst] = i.imm & 0xFFFFFFFF
        elif i.code == bd.MOV32_REG:
            regs[i.dst] = regs[i.src] & 0xFFFFFFFF
        elif i.code in (bd.JNE, bd.JEQ, bd.JNE_REG):
            other = regs[i.src] if i.code == bd.JNE_REG else i.imm
            if (regs[i.dst] != other) == (i.code != bd.JEQ):
                pc += i.off
        elif i.code == bd.EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unknown opcode {i.code:#x}")
    raise AssertionError("no exit")


def meaning(rules: tuple[DeviceRule, ...], kind: str, major: int, minor: int, access: str) -> int:
    """The list's answer: the last rule that matches decides; none matching denies."""
    for rule in reversed(rules):
        granted = set(rule.access or "rwm")
        if (
            (rule.type in (None, "a", kind))
            and (rule.major is None or rule.major < 0 or rule.major == major)
            and (rule.minor is None or rule.minor < 0 or rule.minor == minor)
            and (set(access) <= granted if rule.allow else bool(set(access) & granted))
        ):
            return int(rule.allow)
    return 0


ACCESS = st.sampled_from(["r", "w", "m", "rw", "rm", "wm", "rwm"])
NUMBER = st.one_of(st.none(), st.just(-1), st.integers(0, 3))
RULES = st.lists(
    st.builds(
        DeviceRule,
        allow=st.booleans(),
        type=st.sampled_from([None, "a", "c", "b"]),
        major=NUMBER,
        minor=NUMBER,
        access=st.one_of(st.none(), ACCESS),
    ),
    max_size=8,
).map(tuple)


@settings(max_examples=300, deadline=None)
@given(RULES, st.sampled_from(["c", "b"]), st.integers(0, 3), st.integers(0, 3), ACCESS)
def test_the_program_answers_as_the_rule_list(
    rules: tuple[DeviceRule, ...], kind: str, major: int, minor: int, access: str
) -> None:
    bits = sum({"m": 1, "r": 2, "w": 4}[a] for a in access)
    access_type = bits << 16 | {"b": 1, "c": 2}[kind]
    assert run(bd.program(rules), (access_type, major, minor)) == meaning(rules, kind, major, minor, access)
