"""cgroup v2 device rules: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) on the container's cgroup.

cgroup v2 has no devices controller. Instead, on every open or mknod of a
device node the kernel runs each BPF_CGROUP_DEVICE program attached to the
task's cgroup (and, attached with BPF_F_ALLOW_MULTI, to its ancestors) and
allows the access only if every one of them returns 1. Without a program a
root process with CAP_MKNOD could make a node for the host's disk and read it.

The program is the same rule list v1 writes to devices.deny/devices.allow
(devices.py's `with_device_rules`), compiled by a fixed template per rule, as
runc's devicefilter.go and crun's ebpf.c do: load the context into registers,
then one block per rule ("if this rule does not match, jump to the next block;
else return allow or deny"), then "deny". runc first reduces the list with an
emulator of v1's exception lists; corral instead emits the rules last to first,
so that the first block that matches is the list's *last* matching rule, which
is what the list means when written in order to v1's files (a later rule
overrides an earlier one; "deny all" first resets everything).

Matching, per rule (struct bpf_cgroup_dev_ctx: u32 access_type, the device type
in its low 16 bits and the access asked for in the high 16; u32 major; u32 minor):

- type ``a`` (or unset) matches both character and block devices;
- a major or minor that is unset or negative matches any;
- access: an allow rule matches only when it grants *every* access asked for
  (an open for read and write needs one rule with both: v1's exception match
  does the same); a deny rule matches when it covers *any* of them (denying
  part of a request denies the request). ``rwm`` needs no check;
- a rule with no condition left ends the program (the verifier refuses
  unreachable instructions, and nothing before it in the list can matter);
- a major of 2**12 or more, or a minor of 2**20 or more, names no device the
  kernel can have (dev_t is 12 + 20 bits), so that rule can never match and
  is left out (the immediates are sign-extended 32-bit values; these stay clear).

The kernel pins the program to the cgroup when it is attached; the program
goes away with the cgroup directory, so no fd is kept. Loading and attaching
need CAP_SYS_ADMIN (or CAP_BPF + CAP_NET_ADMIN): the controller does it.
"""

from __future__ import annotations

import errno
import os
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from corral.errors import CgroupError
from corral.executor import syscalls as sc
from corral.executor.cgroups import _fs

if TYPE_CHECKING:  # pragma: no cover  (annotations only)
    from corral.config import DeviceRule

__all__ = ["Insn", "program", "encode", "listing", "install", "attached", "LICENSE"]

#: Any string does for this program type: it calls no GPL-only helper (runc passes "Apache").
LICENSE = "Apache"

# uapi values (include/uapi/linux/bpf.h), also checked against the C headers by the unit tests.
DEV_BLOCK = 1  # BPF_DEVCG_DEV_BLOCK
DEV_CHAR = 2  # BPF_DEVCG_DEV_CHAR
ACC_MKNOD = 1  # BPF_DEVCG_ACC_MKNOD
ACC_READ = 2  # BPF_DEVCG_ACC_READ
ACC_WRITE = 4  # BPF_DEVCG_ACC_WRITE
ACC_ALL = ACC_MKNOD | ACC_READ | ACC_WRITE

_ACCESS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}
_TYPES = {"c": DEV_CHAR, "b": DEV_BLOCK}
_MAJOR_LIMIT = 1 << 12
_MINOR_LIMIT = 1 << 20

# Opcodes (class | operation | source), the few the template uses.
LDXW = 0x61  # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
AND32 = 0x54  # BPF_ALU | BPF_AND | BPF_K: dst = (u32)dst & imm
RSH32 = 0x74  # BPF_ALU | BPF_RSH | BPF_K
MOV32 = 0xB4  # BPF_ALU | BPF_MOV | BPF_K: dst = imm
MOV32_REG = 0xBC  # BPF_ALU | BPF_MOV | BPF_X: dst = (u32)src
JNE = 0x55  # BPF_JMP | BPF_JNE | BPF_K: if dst != imm goto pc + 1 + off
JNE_REG = 0x5D  # BPF_JMP | BPF_JNE | BPF_X
JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
EXIT = 0x95  # BPF_JMP | BPF_EXIT: return r0

# Registers after the prologue.
R0, R1, R2, R3, R4, R5 = range(6)
TYPE, ACCESS, MAJOR, MINOR = R2, R3, R4, R5


@dataclass(frozen=True)
class Insn:
    """One struct bpf_insn."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def encode(self) -> bytes:
        """8 bytes in the host's order; the register nibbles follow the C bitfield layout."""
        if sys.byteorder == "little":
            return struct.pack("<BBhi", self.code, self.dst | self.src << 4, self.off, self.imm)
        return struct.pack(">BBhi", self.code, self.dst << 4 | self.src, self.off, self.imm)

    def __str__(self) -> str:
        d, s, off, imm = f"r{self.dst}", f"r{self.src}", f"{self.off:+d}", self.imm
        return {
            LDXW: f"ldxw {d}, [{s}{off}]",
            AND32: f"and32 {d}, {imm:#x}",
            RSH32: f"rsh32 {d}, {imm}",
            MOV32: f"mov32 {d}, {imm}",
            MOV32_REG: f"mov32 {d}, {s}",
            JNE: f"jne {d}, {imm}, {off}",
            JNE_REG: f"jne {d}, {s}, {off}",
            JEQ: f"jeq {d}, {imm}, {off}",
            EXIT: "exit",
        }.get(self.code, f"op {self.code:#04x} {d}, {s}, {off}, {imm}")


#: Load the context: type (low half of access_type), access (high half), major, minor.
PROLOGUE: tuple[Insn, ...] = (
    Insn(LDXW, TYPE, R1, 0),
    Insn(AND32, TYPE, imm=0xFFFF),
    Insn(LDXW, ACCESS, R1, 0),
    Insn(RSH32, ACCESS, imm=16),
    Insn(LDXW, MAJOR, R1, 4),
    Insn(LDXW, MINOR, R1, 8),
)


def _verdict(allow: bool) -> tuple[Insn, Insn]:
    return Insn(MOV32, R0, imm=int(allow)), Insn(EXIT)


def _access_bits(access: str | None) -> int:
    bits = 0
    for letter in access or "rwm":
        if letter not in _ACCESS:
            raise ValueError(f"device access {access!r}: {letter!r} is not one of r, w, m")
        bits |= _ACCESS[letter]
    return bits


def _wildcard(number: int | None) -> bool:
    return number is None or number < 0


def _conditions(rule: DeviceRule) -> list[Insn] | None:
    """The rule's tests, each jumping past the block when it fails (offsets filled in later).

    None when the rule can match no device at all.
    """
    tests: list[Insn] = []
    kind = rule.type or "a"
    if kind != "a":
        if kind not in _TYPES:
            raise ValueError(f"device rule type {rule.type!r} is not one of a, c, b")
        tests.append(Insn(JNE, TYPE, imm=_TYPES[kind]))
    bits = _access_bits(rule.access)
    if bits != ACC_ALL:
        tests.append(Insn(MOV32_REG, R1, ACCESS))  # r1 = access & bits
        tests.append(Insn(AND32, R1, imm=bits))
        if rule.allow:
            tests.append(Insn(JNE_REG, R1, ACCESS))  # not every access asked for is granted
        else:
            tests.append(Insn(JEQ, R1, imm=0))  # none of the access asked for is denied
    for number, register, limit in ((rule.major, MAJOR, _MAJOR_LIMIT), (rule.minor, MINOR, _MINOR_LIMIT)):
        if _wildcard(number):
            continue
        assert number is not None
        if number >= limit:
            return None
        tests.append(Insn(JNE, register, imm=number))
    return tests


def program(rules: Sequence[DeviceRule]) -> tuple[Insn, ...]:
    """The device program for `rules`: the last matching rule decides; no match denies."""
    insns = list(PROLOGUE)
    for rule in reversed(rules):
        tests = _conditions(rule)
        if tests is None:
            continue
        block = [*tests, *_verdict(rule.allow)]
        for i, insn in enumerate(tests):
            if insn.code in (JNE, JNE_REG, JEQ):  # to the first instruction after the block
                block[i] = Insn(insn.code, insn.dst, insn.src, len(block) - i - 1, insn.imm)
        insns += block
        if not tests:
            return tuple(insns)  # matches everything: the earlier rules are unreachable
    insns += _verdict(False)
    return tuple(insns)


def encode(insns: Sequence[Insn]) -> bytes:
    return b"".join(insn.encode() for insn in insns)


def listing(insns: Sequence[Insn]) -> list[str]:
    """One line per instruction, ``"12: jne r2, 2, +4"``: for tests and error messages."""
    return [f"{i}: {insn}" for i, insn in enumerate(insns)]


def _open_dir(cgroup_dir: str) -> int:
    try:
        return os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise _fs.cgroup_error("open", cgroup_dir, err) from err


def install(cgroup_dir: str, rules: Sequence[DeviceRule]) -> None:
    """Load the program for `rules` and make it the only one on `cgroup_dir`.

    The new program is attached before the old ones (from an earlier apply, or
    a create retried into a cgroup a crash left behind) are detached, so that
    the cgroup is never without one; and they are detached because the kernel
    allows an access only if every attached program does, so a stale one would
    go on denying what the new rules allow.
    """
    try:
        code = encode(program(rules))
    except ValueError as err:
        raise CgroupError(f"cannot compile the device rules for {cgroup_dir}: {err}") from err
    try:
        prog_fd = sc.bpf_prog_load(sc.BPF_PROG_TYPE_CGROUP_DEVICE, code, LICENSE)
    except OSError as err:
        raise _fs.cgroup_error("load the device program (eBPF) for", cgroup_dir, err) from err
    try:
        dir_fd = _open_dir(cgroup_dir)
        try:
            old = _query(dir_fd, cgroup_dir)
            try:
                sc.bpf_prog_attach(prog_fd, dir_fd, sc.BPF_CGROUP_DEVICE, sc.BPF_F_ALLOW_MULTI)
            except OSError as err:
                raise _fs.cgroup_error("attach the device program (eBPF) to", cgroup_dir, err) from err
            for prog_id in old:
                _detach(prog_id, dir_fd, cgroup_dir)
        finally:
            os.close(dir_fd)
    finally:
        os.close(prog_fd)


def attached(cgroup_dir: str) -> list[int]:
    """The ids of the device programs attached to `cgroup_dir` itself."""
    dir_fd = _open_dir(cgroup_dir)
    try:
        return _query(dir_fd, cgroup_dir)
    finally:
        os.close(dir_fd)


def _query(dir_fd: int, cgroup_dir: str) -> list[int]:
    try:
        return sc.bpf_prog_query(dir_fd, sc.BPF_CGROUP_DEVICE)
    except OSError as err:
        if err.errno == errno.EBADF:  # the kernel's answer for a directory that is no cgroup2 one
            raise CgroupError(f"cannot list the device programs of {cgroup_dir}: not a cgroup2 directory") from err
        raise _fs.cgroup_error("list the device programs of", cgroup_dir, err) from err


def _detach(prog_id: int, dir_fd: int, cgroup_dir: str) -> None:
    try:
        fd = sc.bpf_prog_get_fd_by_id(prog_id)
    except OSError as err:
        if err.errno == errno.ENOENT:
            return  # already gone
        raise _fs.cgroup_error(f"open device program {prog_id} of", cgroup_dir, err) from err
    try:
        sc.bpf_prog_detach(fd, dir_fd, sc.BPF_CGROUP_DEVICE)
    except OSError as err:
        if err.errno != errno.ENOENT:
            raise _fs.cgroup_error(f"detach the old device program {prog_id} from", cgroup_dir, err) from err
    finally:
        os.close(fd)
