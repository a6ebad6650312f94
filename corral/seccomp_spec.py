"""The OCI `linux.seccomp` section: frozen data, its validation, and JSON in/out.

Temporary home: it moves into the config package once that exists. It is
self-contained on purpose (standard library and corral.errors only), because the
container's init imports the config in a fresh interpreter.

As in corral.config, the dataclasses only normalise themselves (lists become
tuples); `validate_seccomp(s, where)` checks them and names the JSON path, and
`parse_seccomp` calls it. Nothing is silently ignored: user notification
(`SCMP_ACT_NOTIFY`, `listenerPath`) is refused rather than dropped, because a
container that runs without the supervision it was promised is worse than one
that does not start.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any, Mapping, NoReturn

from corral.errors import ConfigError

#: Every action of the runtime spec. SCMP_ACT_KILL is libseccomp's name for
#: SCMP_ACT_KILL_THREAD.
ACTIONS: tuple[str, ...] = (
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
)

#: The actions that carry a number (errno for ERRNO, a message for the tracer for TRACE).
ACTIONS_WITH_ERRNO: frozenset[str] = frozenset({"SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"})

#: What ERRNO and TRACE return when errnoRet is left out (the spec's default, runc's too).
DEFAULT_ERRNO: int = errno.EPERM

OPERATORS: tuple[str, ...] = (
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)

ARCHITECTURES: tuple[str, ...] = (
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
)

#: Filter flags corral honours (seccomp(2)'s SECCOMP_FILTER_FLAG_*).
FLAGS: tuple[str, ...] = (
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
)
#: In the spec, but only meaningful with user notification, which is not supported yet.
_NOTIFY_FLAGS = frozenset({"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"})

#: seccomp(2) compares at most six syscall arguments.
MAX_ARG_INDEX = 5
UINT64_MAX = 2**64 - 1
#: errnoRet is 16 bits in the filter's return value (SECCOMP_RET_DATA); more would be cut.
ERRNO_MAX = 0xFFFF

_NOTIFY_UNSUPPORTED = (
    "seccomp user notification (SCMP_ACT_NOTIFY, listenerPath) is not supported yet"
)


@dataclass(frozen=True)
class SeccompArg:
    """One comparison on a syscall argument. For SCMP_CMP_MASKED_EQ, `value` is the
    mask and `value_two` what the masked argument must equal."""

    index: int
    value: int
    op: str
    value_two: int = 0


@dataclass(frozen=True)
class SeccompSyscall:
    """A rule: `action` for every syscall in `names` whose arguments match all of `args`."""

    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[SeccompArg, ...] = ()

    def __post_init__(self) -> None:
        _tuples(self, "names", "args")


@dataclass(frozen=True)
class Seccomp:
    """`linux.seccomp`. No architectures means the native one only."""

    default_action: str
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    listener_path: str | None = None
    listener_metadata: str | None = None
    syscalls: tuple[SeccompSyscall, ...] = ()

    def __post_init__(self) -> None:
        _tuples(self, "architectures", "flags", "syscalls")

    def validate(self, where: str = "linux.seccomp") -> None:
        validate_seccomp(self, where)

    def to_dict(self) -> dict[str, Any]:
        """The OCI JSON form, with only what is set: ``parse_seccomp(s.to_dict()) == s``."""
        d: dict[str, Any] = {"defaultAction": self.default_action}
        if self.default_errno_ret is not None:
            d["defaultErrnoRet"] = self.default_errno_ret
        if self.architectures:
            d["architectures"] = list(self.architectures)
        if self.flags:
            d["flags"] = list(self.flags)
        if self.listener_path is not None:
            d["listenerPath"] = self.listener_path
        if self.listener_metadata is not None:
            d["listenerMetadata"] = self.listener_metadata
        if self.syscalls:
            d["syscalls"] = [_syscall_to_dict(s) for s in self.syscalls]
        return d


def _syscall_to_dict(s: SeccompSyscall) -> dict[str, Any]:
    d: dict[str, Any] = {"names": list(s.names), "action": s.action}
    if s.errno_ret is not None:
        d["errnoRet"] = s.errno_ret
    if s.args:
        d["args"] = [_arg_to_dict(a) for a in s.args]
    return d


def _arg_to_dict(a: SeccompArg) -> dict[str, Any]:
    d: dict[str, Any] = {"index": a.index, "value": a.value, "op": a.op}
    if a.value_two:
        d["valueTwo"] = a.value_two
    return d


def _tuples(obj: object, *names: str) -> None:
    """Lists become tuples (hashable, equal whichever was given); anything else is
    left for validation to report."""
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, list):
            object.__setattr__(obj, name, tuple(value))


# --------------------------------------------------------------------------- validation


def _fail(where: str, problem: str) -> NoReturn:
    raise ConfigError(where, problem)


def _is_int(value: object) -> bool:
    """JSON true is not 1: bools are ints in Python and must not pass as such."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_uint(value: object, where: str, high: int) -> None:
    if not _is_int(value) or not 0 <= value <= high:  # type: ignore[operator]
        _fail(where, f"must be an integer from 0 to {high}")


def _check_name(value: object, where: str, known: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or value not in known:
        _fail(where, f"unknown {what} {value!r}; known: {', '.join(known)}")
    return value


def _check_strings(value: object, where: str, what: str) -> tuple[Any, ...]:
    if not isinstance(value, tuple):
        _fail(where, f"must be a list of {what}")
    return value


def _check_action(action: object, errno_ret: object, where: str, errno_where: str) -> None:
    _check_name(action, where, ACTIONS, "action")
    if action == "SCMP_ACT_NOTIFY":
        _fail(where, _NOTIFY_UNSUPPORTED)
    if errno_ret is not None:
        if action not in ACTIONS_WITH_ERRNO:
            _fail(errno_where, f"only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one, not {action}")
        _check_uint(errno_ret, errno_where, ERRNO_MAX)


def validate_seccomp(s: Seccomp, where: str = "linux.seccomp") -> None:
    """Raise ConfigError for the first problem found, naming its JSON path.

    Syscall names are not checked here: which ones exist depends on the kernel
    and libseccomp of the host, and an unknown one is skipped with a warning
    when the filter is compiled (as runc and crun do), so that one profile
    serves hosts of different ages.
    """
    if not isinstance(s, Seccomp):
        _fail(where, f"must be a corral Seccomp, not {type(s).__name__}")
    _check_action(
        s.default_action, s.default_errno_ret, f"{where}.defaultAction", f"{where}.defaultErrnoRet"
    )
    for i, arch in enumerate(_check_strings(s.architectures, f"{where}.architectures", "strings")):
        _check_name(arch, f"{where}.architectures[{i}]", ARCHITECTURES, "architecture")
    for i, flag in enumerate(_check_strings(s.flags, f"{where}.flags", "strings")):
        if flag in _NOTIFY_FLAGS:
            _fail(f"{where}.flags[{i}]", _NOTIFY_UNSUPPORTED)
        _check_name(flag, f"{where}.flags[{i}]", FLAGS, "flag")
    if s.listener_path is not None:
        _fail(f"{where}.listenerPath", _NOTIFY_UNSUPPORTED)
    if s.listener_metadata is not None:
        _fail(f"{where}.listenerMetadata", _NOTIFY_UNSUPPORTED)
    rules = _check_strings(s.syscalls, f"{where}.syscalls", "syscall rules")
    for i, rule in enumerate(rules):
        _validate_syscall(rule, f"{where}.syscalls[{i}]")


def _validate_syscall(rule: object, w: str) -> None:
    if not isinstance(rule, SeccompSyscall):
        _fail(w, f"must be a corral SeccompSyscall, not {type(rule).__name__}")
    names = _check_strings(rule.names, f"{w}.names", "syscall names")
    if not names:
        _fail(f"{w}.names", "must name at least one syscall")
    for j, name in enumerate(names):
        if not isinstance(name, str) or not name or "\0" in name:
            _fail(f"{w}.names[{j}]", "must be a non-empty string without NUL")
    _check_action(rule.action, rule.errno_ret, f"{w}.action", f"{w}.errnoRet")
    for j, arg in enumerate(_check_strings(rule.args, f"{w}.args", "argument comparisons")):
        wa = f"{w}.args[{j}]"
        if not isinstance(arg, SeccompArg):
            _fail(wa, f"must be a corral SeccompArg, not {type(arg).__name__}")
        _check_uint(arg.index, f"{wa}.index", MAX_ARG_INDEX)
        _check_uint(arg.value, f"{wa}.value", UINT64_MAX)
        _check_uint(arg.value_two, f"{wa}.valueTwo", UINT64_MAX)
        _check_name(arg.op, f"{wa}.op", OPERATORS, "operator")


# --------------------------------------------------------------------------- JSON -> dataclasses


def _object(value: object, where: str, keys: frozenset[str]) -> dict[str, Any]:
    """The object's non-null members (null counts as left out, as in corral.config),
    after refusing every key corral does not know."""
    if not isinstance(value, Mapping):
        _fail(where, "must be an object")
    members: dict[str, Any] = {}
    for key, item in value.items():
        if item is None:
            continue
        if key not in keys:
            _fail(f"{where}.{key}", "not a key of the OCI seccomp section; check its spelling")
        members[key] = item
    return members


def _required(members: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in members:
        _fail(f"{where}.{key}", "required")
    return members[key]


def _list(value: object, where: str) -> tuple[Any, ...]:
    if not isinstance(value, (list, tuple)):
        _fail(where, "must be a list")
    return tuple(value)


_SECCOMP_KEYS = frozenset(
    {
        "defaultAction",
        "defaultErrnoRet",
        "architectures",
        "flags",
        "listenerPath",
        "listenerMetadata",
        "syscalls",
    }
)
_SYSCALL_KEYS = frozenset({"names", "action", "errnoRet", "args"})
_ARG_KEYS = frozenset({"index", "value", "valueTwo", "op"})


def parse_seccomp(data: object, where: str = "linux.seccomp") -> Seccomp:
    """Read the OCI JSON object (as json.loads gives it) and validate it."""
    d = _object(data, where, _SECCOMP_KEYS)
    rules = _list(d.get("syscalls", ()), f"{where}.syscalls")
    s = Seccomp(
        default_action=_required(d, "defaultAction", where),
        default_errno_ret=d.get("defaultErrnoRet"),
        architectures=_list(d.get("architectures", ()), f"{where}.architectures"),
        flags=_list(d.get("flags", ()), f"{where}.flags"),
        listener_path=d.get("listenerPath"),
        listener_metadata=d.get("listenerMetadata"),
        syscalls=tuple(_parse_syscall(r, f"{where}.syscalls[{i}]") for i, r in enumerate(rules)),
    )
    validate_seccomp(s, where)
    return s


def _parse_syscall(value: object, w: str) -> SeccompSyscall:
    d = _object(value, w, _SYSCALL_KEYS)
    args = _list(d.get("args", ()), f"{w}.args")
    return SeccompSyscall(
        names=_list(_required(d, "names", w), f"{w}.names"),
        action=_required(d, "action", w),
        errno_ret=d.get("errnoRet"),
        args=tuple(_parse_arg(a, f"{w}.args[{j}]") for j, a in enumerate(args)),
    )


def _parse_arg(value: object, w: str) -> SeccompArg:
    d = _object(value, w, _ARG_KEYS)
    return SeccompArg(
        index=_required(d, "index", w),
        value=_required(d, "value", w),
        op=_required(d, "op", w),
        value_two=d.get("valueTwo", 0),
    )
