"""Seccomp filters from the OCI `linux.seccomp` section, compiled by libseccomp.

Binding: our own cffi API-mode extension, `corral.executor._seccomp`, built at
install against Debian's libseccomp-dev (see _build_seccomp.py for why not
pyseccomp or libseccomp's Cython module). No BPF is written by hand here.

Where the work happens: the filter is compiled in the controller
(`compile_bpf`, libseccomp's seccomp_export_bpf) and the init only hands the
finished BPF program to the kernel (`load_bpf`: one seccomp(2) call through
corral.executor._syscalls, which does not link libseccomp). Because:

- a profile's problems (a rule libseccomp refuses, a syscall name this host
  does not know) surface at `create`, in the controller's log, instead of
  inside an init that can only relay a message;
- the init, which runs inside the container's namespaces, runs no libseccomp
  code and does not even map the library (this module imports it only in the
  functions that compile), and makes one syscall between the filter and execve;
- a profile is compiled once and the bytes can be reused for every container
  and every exec that carries it (containerd's default profile: ~15 ms here).

The kernel, libseccomp and the container are all on one host, so a program
compiled in the controller is the one the init would have compiled. `load()`,
the libseccomp way (seccomp_load in the calling process), is kept for callers
that want it and for tests; both paths build the same filter (`build`).

Semantics follow runc where the spec leaves room: SCMP_ACT_ERRNO and
SCMP_ACT_TRACE without errnoRet return EPERM; a syscall name that neither
this kernel's tables nor libseccomp know is skipped with a warning; a rule
whose action equals the default action is skipped (libseccomp refuses those,
and they change nothing); the native architecture is always in the filter;
no_new_privs is the config's business (libseccomp's own NNP attribute is off).
"""

from __future__ import annotations

import errno as errno_module
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from corral.config.linux import SECCOMP_DEFAULT_ERRNO as DEFAULT_ERRNO
from corral.config.seccomp import Seccomp, validate_seccomp
from corral.errors import ConfigError, ExecutorError
from corral.records import record

if TYPE_CHECKING:
    from cffi import FFI


#: struct sock_filter: u16 code, u8 jt, u8 jf, u32 k.
BPF_INSTRUCTION_SIZE = 8
#: BPF_MAXINSNS: the kernel refuses longer programs.
BPF_MAX_INSTRUCTIONS = 4096


@record
class CompiledFilter:
    """A BPF program ready for seccomp(2), and the SECCOMP_FILTER_FLAG_* to load it with.

    It travels to the init and to exec'd processes inside the spawn request
    (corral.executor.protocol: CreateRequest.seccomp, ExecRequest.seccomp).
    """

    bpf: bytes
    flags: int
    #: Syscall names this host does not know, left out of the filter.
    skipped: tuple[str, ...] = ()

    @property
    def instructions(self) -> int:
        return len(self.bpf) // BPF_INSTRUCTION_SIZE


# --------------------------------------------------------------------------- libseccomp side


def _libseccomp() -> tuple[FFI, Any]:
    """Imported on first use so that the init, which only loads BPF, never maps libseccomp."""
    from corral.executor._seccomp import ffi, lib

    return ffi, lib


def libseccomp_version() -> tuple[int, int, int]:
    _, lib = _libseccomp()
    v = lib.seccomp_version()
    return (v.major, v.minor, v.micro)


def syscall_number(name: str) -> int | None:
    """The native syscall number of `name`, or None if this libseccomp does not know it.

    Negative numbers are libseccomp's pseudo-syscalls (a name that exists on
    another architecture of the filter, e.g. socketcall on x86_64).
    """
    _, lib = _libseccomp()
    nr = lib.seccomp_syscall_resolve_name(name.encode())
    return None if nr == lib.__NR_SCMP_ERROR else int(nr)


def _action(lib: Any, action: str, errno_ret: int | None) -> int:
    """The libseccomp action value; NOTIFY never gets here (validation refuses it)."""
    value = DEFAULT_ERRNO if errno_ret is None else errno_ret
    if action == "SCMP_ACT_ERRNO":
        return int(lib.corral_scmp_act_errno(value))
    if action == "SCMP_ACT_TRACE":
        return int(lib.corral_scmp_act_trace(value))
    simple = {
        "SCMP_ACT_KILL": lib.SCMP_ACT_KILL_THREAD,
        "SCMP_ACT_KILL_THREAD": lib.SCMP_ACT_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": lib.SCMP_ACT_KILL_PROCESS,
        "SCMP_ACT_TRAP": lib.SCMP_ACT_TRAP,
        "SCMP_ACT_ALLOW": lib.SCMP_ACT_ALLOW,
        "SCMP_ACT_LOG": lib.SCMP_ACT_LOG,
    }
    return int(simple[action])


def _operator(lib: Any, op: str) -> int:
    return int(getattr(lib, op))


def _arch_token(lib: Any, arch: str) -> int:
    """SCMP_ARCH_X86_64 -> libseccomp's token, by the name libseccomp itself uses (x86_64)."""
    return int(lib.seccomp_arch_resolve_name(arch.removeprefix("SCMP_ARCH_").lower().encode()))


def _flags_attrs(lib: Any) -> dict[str, Any]:
    return {
        "SECCOMP_FILTER_FLAG_TSYNC": lib.SCMP_FLTATR_CTL_TSYNC,
        "SECCOMP_FILTER_FLAG_LOG": lib.SCMP_FLTATR_CTL_LOG,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW": lib.SCMP_FLTATR_CTL_SSB,
    }


def _kernel_flags(spec: Seccomp) -> int:
    from corral.executor._syscalls import lib as sys_lib

    bits = {
        "SECCOMP_FILTER_FLAG_TSYNC": sys_lib.SECCOMP_FILTER_FLAG_TSYNC,
        "SECCOMP_FILTER_FLAG_LOG": sys_lib.SECCOMP_FILTER_FLAG_LOG,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW": sys_lib.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    }
    flags = 0
    for flag in spec.flags:
        flags |= bits[flag]
    return flags


def _check(rc: int, where: str, what: str) -> None:
    """libseccomp returns -errno."""
    if rc < 0:
        raise ConfigError(where, f"libseccomp refuses {what}: {os.strerror(-rc)}")


@record(frozen=False)
class Filter:
    """A libseccomp filter context (scmp_filter_ctx); `release()` frees it."""

    ctx: Any
    flags: int
    skipped: tuple[str, ...]

    def release(self) -> None:
        if self.ctx is not None:
            _, lib = _libseccomp()
            lib.seccomp_release(self.ctx)
            self.ctx = None

    def export_bpf(self) -> bytes:
        """The BPF program, through a memfd (libseccomp 2.5 writes it only to an fd)."""
        _, lib = _libseccomp()
        fd = os.memfd_create("corral-seccomp", os.MFD_CLOEXEC)
        try:
            rc = lib.seccomp_export_bpf(self.ctx, fd)
            if rc < 0:
                raise ExecutorError(f"seccomp_export_bpf: {os.strerror(-rc)}")
            size = os.lseek(fd, 0, os.SEEK_END)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)

    def load(self) -> None:
        """seccomp_load: install the filter on the calling thread (or all, with TSYNC)."""
        _, lib = _libseccomp()
        rc = lib.seccomp_load(self.ctx)
        if rc < 0:
            raise _load_error(-rc)


def compile_filter(spec: Seccomp, where: str = "linux.seccomp") -> Filter:
    """Build the libseccomp filter for `spec`; the caller releases it (or use `build`).

    Raises ConfigError naming the JSON path for what this host's libseccomp
    cannot do (an architecture it does not know, a rule it refuses).
    """
    validate_seccomp(spec, where)
    ffi, lib = _libseccomp()
    default = _action(lib, spec.default_action, spec.default_errno_ret)
    ctx = lib.seccomp_init(default)
    if ctx == ffi.NULL:
        raise ConfigError(
            f"{where}.defaultAction",
            f"libseccomp refuses {spec.default_action} as the default action "
            "(not supported by this kernel or libseccomp)",
        )
    filt = Filter(ctx=ctx, flags=_kernel_flags(spec), skipped=())
    try:
        _check(
            lib.seccomp_attr_set(ctx, lib.SCMP_FLTATR_CTL_NNP, 0),
            where,
            "turning off its own no_new_privs",
        )
        attrs = _flags_attrs(lib)
        for i, flag in enumerate(spec.flags):
            _check(lib.seccomp_attr_set(ctx, attrs[flag], 1), f"{where}.flags[{i}]", flag)
        for i, arch in enumerate(spec.architectures):
            token = _arch_token(lib, arch)
            if token == 0:
                raise ConfigError(
                    f"{where}.architectures[{i}]",
                    f"{arch} is not known to libseccomp {'.'.join(map(str, libseccomp_version()))}",
                )
            rc = lib.seccomp_arch_add(ctx, token)
            if rc != -errno_module.EEXIST:  # the native one is there from seccomp_init
                _check(rc, f"{where}.architectures[{i}]", f"adding {arch}")
        filt.skipped = _add_rules(ffi, lib, ctx, spec, default, where)
        return filt
    except BaseException:
        filt.release()
        raise


def _add_rules(
    ffi: FFI, lib: Any, ctx: Any, spec: Seccomp, default: int, where: str
) -> tuple[str, ...]:
    skipped: list[str] = []
    for i, rule in enumerate(spec.syscalls):
        w = f"{where}.syscalls[{i}]"
        action = _action(lib, rule.action, rule.errno_ret)
        if action == default:
            continue  # libseccomp refuses it (EACCES) and it would change nothing
        conditions = ffi.new("struct scmp_arg_cmp[]", max(len(rule.args), 1))
        for j, arg in enumerate(rule.args):
            conditions[j].arg = arg.index
            conditions[j].op = _operator(lib, arg.op)
            conditions[j].datum_a = arg.value
            conditions[j].datum_b = arg.value_two
        for name in rule.names:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr == lib.__NR_SCMP_ERROR:
                import logging  # here, not at the top: a CLI create would pay ~2-4 ms for it

                logging.getLogger("corral").warning(
                    "seccomp: %s: syscall %r is unknown to this kernel's libseccomp tables; "
                    "rule skipped for it",
                    w,
                    name,
                )
                skipped.append(name)
                continue
            rc = lib.seccomp_rule_add_array(ctx, action, nr, len(rule.args), conditions)
            if rc < 0:
                detail = os.strerror(-rc)
                if rc == -errno_module.EINVAL and len({a.index for a in rule.args}) < len(
                    rule.args
                ):
                    detail += " (two comparisons on one argument in one rule)"
                raise ConfigError(w, f"libseccomp refuses the rule for syscall {name!r}: {detail}")
    return tuple(skipped)


@contextmanager
def build(spec: Seccomp, where: str = "linux.seccomp") -> Iterator[Filter]:
    filt = compile_filter(spec, where)
    try:
        yield filt
    finally:
        filt.release()


def compile_bpf(spec: Seccomp, where: str = "linux.seccomp") -> CompiledFilter:
    """The filter as the kernel takes it: what the controller sends the init."""
    with build(spec, where) as filt:
        bpf = filt.export_bpf()
        compiled = CompiledFilter(bpf=bpf, flags=filt.flags, skipped=filt.skipped)
    if compiled.instructions > BPF_MAX_INSTRUCTIONS:
        raise ConfigError(
            where,
            f"compiles to {compiled.instructions} BPF instructions; the kernel takes at most "
            f"{BPF_MAX_INSTRUCTIONS}",
        )
    return compiled


#: Distinct profiles whose compiled form a controller keeps: a host runs many
#: containers with few profiles (most with its engine's default one).
COMPILED_CACHE_SIZE = 16


@functools.lru_cache(maxsize=COMPILED_CACHE_SIZE)
def compiled(spec: Seccomp) -> CompiledFilter:
    """`compile_bpf(spec)`, once per distinct profile in this process.

    What the executor calls at create (where a profile's errors surface) and at
    every exec (which runs under the container's filter too): ~15 ms for
    containerd's default profile, paid once, not per container or per exec.
    A `Seccomp` is frozen and hashable, so equal profiles share one entry; an
    error is not cached, and is raised again for the next container.
    """
    return compile_bpf(spec)


def load(spec: Seccomp, where: str = "linux.seccomp") -> None:
    """Compile and install `spec` in the calling process with libseccomp's seccomp_load.

    Needs no_new_privs set beforehand, or CAP_SYS_ADMIN.
    """
    with build(spec, where) as filt:
        filt.load()


# --------------------------------------------------------------------------- kernel side (the init)


def _load_error(err: int) -> ExecutorError:
    hint = ""
    if err == errno_module.EACCES:
        hint = " (set process.noNewPrivileges, or load it while the process has CAP_SYS_ADMIN)"
    elif err == errno_module.EINVAL:
        hint = " (a filter flag this kernel does not support?)"
    return ExecutorError(f"loading the seccomp filter failed: {os.strerror(err)}{hint}")


def load_bpf(compiled: CompiledFilter) -> None:
    """Install a compiled filter with seccomp(2): no libseccomp in this process.

    The last thing before execve: every syscall after it goes through the filter.
    """
    from corral.executor._syscalls import ffi, lib

    if not compiled.bpf or len(compiled.bpf) % BPF_INSTRUCTION_SIZE:
        raise ExecutorError(f"not a BPF program: {len(compiled.bpf)} bytes")
    program = ffi.from_buffer(compiled.bpf)
    rc = lib.corral_seccomp_set_filter(compiled.flags, program, compiled.instructions)
    if rc < 0:
        raise _load_error(ffi.errno)
    if rc > 0:  # SECCOMP_FILTER_FLAG_TSYNC: the thread that could not be synchronised
        raise ExecutorError(
            f"loading the seccomp filter failed: thread {rc} cannot take it (TSYNC)"
        )
