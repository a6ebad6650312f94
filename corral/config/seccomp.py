"""The OCI `linux.seccomp` section: its parts, their validation, and its JSON in and out.

One module for the one section whose rules are its own (the names it may use
are in linux.py, with the kernel's other names): `Config.seccomp` holds a
`Seccomp`, validate.py calls `validate_seccomp`, oci.py calls `parse_seccomp`
and `seccomp_to_dict`. It sits between types.py and validate.py in the
package's import order, and compiles nothing: the executor turns a `Seccomp`
into BPF with libseccomp (corral.executor.seccomp), at create, in the
controller.

As elsewhere in corral.config, the dataclasses only normalise themselves
(lists become tuples); `validate_seccomp(s, where)` checks them and names the
JSON path. Nothing is silently ignored: user notification (`SCMP_ACT_NOTIFY`,
`listenerPath`) is refused rather than dropped, because a container that runs
without the supervision it was promised is worse than one that does not start.
"""

from __future__ import annotations

from typing import Any, Mapping

from corral.config.checks import check_range, fail, json_type
from corral.config.linux import (
    SECCOMP_ACTIONS,
    SECCOMP_ACTIONS_WITH_ERRNO,
    SECCOMP_ARCHITECTURES,
    SECCOMP_ERRNO_MAX,
    SECCOMP_FLAGS,
    SECCOMP_MAX_ARG_INDEX,
    SECCOMP_NOTIFY_FLAGS,
    SECCOMP_OPERATORS,
    UINT64_MAX,
)
from corral.config.types import lists_to_tuples
from corral.records import record

_NOTIFY_UNSUPPORTED = (
    "seccomp user notification (SCMP_ACT_NOTIFY, listenerPath) is not supported yet"
)

WHERE = "linux.seccomp"


@record
class SeccompArg:
    """One comparison on a syscall argument. For SCMP_CMP_MASKED_EQ, `value` is the
    mask and `value_two` what the masked argument must equal."""

    index: int
    value: int
    op: str
    value_two: int = 0


@record
class SeccompSyscall:
    """A rule: `action` for every syscall in `names` whose arguments match all of `args`."""

    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[SeccompArg, ...] = ()

    def __post_init__(self) -> None:
        lists_to_tuples(self, "names", "args")


@record
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
        lists_to_tuples(self, "architectures", "flags", "syscalls")

    def validate(self, where: str = WHERE) -> None:
        validate_seccomp(self, where)

    def to_dict(self) -> dict[str, Any]:
        """The OCI JSON form, with only what is set: ``parse_seccomp(s.to_dict()) == s``."""
        return seccomp_to_dict(self)


# --------------------------------------------------------------------------- validation


def _check_name(value: object, where: str, known: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str) or value not in known:
        fail(where, f"unknown {what} {value!r}; known: {', '.join(known)}")
    return value


def _check_tuple(value: object, where: str, what: str) -> tuple[Any, ...]:
    if not isinstance(value, tuple):
        fail(where, f"must be a list of {what}")
    return value


def _check_action(action: object, errno_ret: object, where: str, errno_where: str) -> None:
    _check_name(action, where, SECCOMP_ACTIONS, "action")
    if action == "SCMP_ACT_NOTIFY":
        fail(where, _NOTIFY_UNSUPPORTED)
    if errno_ret is not None:
        if action not in SECCOMP_ACTIONS_WITH_ERRNO:
            fail(errno_where, f"only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one, not {action}")
        check_range(errno_ret, errno_where, 0, SECCOMP_ERRNO_MAX)


def validate_seccomp(s: Seccomp, where: str = WHERE) -> None:
    """Raise ConfigError for the first problem found, naming its JSON path.

    Syscall names are not checked here: which ones exist depends on the kernel
    and libseccomp of the host, and an unknown one is skipped with a warning
    when the filter is compiled (as runc and crun do), so that one profile
    serves hosts of different ages.
    """
    if not isinstance(s, Seccomp):
        fail(where, f"must be a corral.config.Seccomp, not {type(s).__name__}")
    _check_action(
        s.default_action, s.default_errno_ret, f"{where}.defaultAction", f"{where}.defaultErrnoRet"
    )
    for i, arch in enumerate(_check_tuple(s.architectures, f"{where}.architectures", "strings")):
        _check_name(arch, f"{where}.architectures[{i}]", SECCOMP_ARCHITECTURES, "architecture")
    for i, flag in enumerate(_check_tuple(s.flags, f"{where}.flags", "strings")):
        if flag in SECCOMP_NOTIFY_FLAGS:
            fail(f"{where}.flags[{i}]", _NOTIFY_UNSUPPORTED)
        _check_name(flag, f"{where}.flags[{i}]", SECCOMP_FLAGS, "flag")
    if s.listener_path is not None:
        fail(f"{where}.listenerPath", _NOTIFY_UNSUPPORTED)
    if s.listener_metadata is not None:
        fail(f"{where}.listenerMetadata", _NOTIFY_UNSUPPORTED)
    rules = _check_tuple(s.syscalls, f"{where}.syscalls", "syscall rules")
    for i, rule in enumerate(rules):
        _validate_syscall(rule, f"{where}.syscalls[{i}]")


def _validate_syscall(rule: object, w: str) -> None:
    if not isinstance(rule, SeccompSyscall):
        fail(w, f"must be a corral.config.SeccompSyscall, not {type(rule).__name__}")
    names = _check_tuple(rule.names, f"{w}.names", "syscall names")
    if not names:
        fail(f"{w}.names", "must name at least one syscall")
    for j, name in enumerate(names):
        if not isinstance(name, str) or not name or "\0" in name:
            fail(f"{w}.names[{j}]", "must be a non-empty string without NUL")
    _check_action(rule.action, rule.errno_ret, f"{w}.action", f"{w}.errnoRet")
    for j, arg in enumerate(_check_tuple(rule.args, f"{w}.args", "argument comparisons")):
        wa = f"{w}.args[{j}]"
        if not isinstance(arg, SeccompArg):
            fail(wa, f"must be a corral.config.SeccompArg, not {type(arg).__name__}")
        check_range(arg.index, f"{wa}.index", 0, SECCOMP_MAX_ARG_INDEX)
        check_range(arg.value, f"{wa}.value", 0, UINT64_MAX)
        check_range(arg.value_two, f"{wa}.valueTwo", 0, UINT64_MAX)
        _check_name(arg.op, f"{wa}.op", SECCOMP_OPERATORS, "operator")


# --------------------------------------------------------------------------- JSON -> dataclasses


def _object(value: object, where: str, keys: frozenset[str]) -> dict[str, Any]:
    """The object's non-null members (null counts as left out, as in the rest of the
    config), after refusing every key corral does not know."""
    if not isinstance(value, Mapping):
        fail(where, f"must be an object, not {json_type(value)}")
    members: dict[str, Any] = {}
    for key, item in value.items():
        if item is None:
            continue
        if key not in keys:
            fail(f"{where}.{key}", "not a key of the OCI seccomp section; check its spelling")
        members[key] = item
    return members


def _required(members: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in members:
        fail(f"{where}.{key}", "required")
    return members[key]


def _list(value: object, where: str) -> tuple[Any, ...]:
    if not isinstance(value, (list, tuple)):
        fail(where, f"must be a list, not {json_type(value)}")
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


def parse_seccomp(data: object, where: str = WHERE) -> Seccomp:
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


# --------------------------------------------------------------------------- dataclasses -> JSON


def seccomp_to_dict(s: Seccomp) -> dict[str, Any]:
    d: dict[str, Any] = {"defaultAction": s.default_action}
    if s.default_errno_ret is not None:
        d["defaultErrnoRet"] = s.default_errno_ret
    if s.architectures:
        d["architectures"] = list(s.architectures)
    if s.flags:
        d["flags"] = list(s.flags)
    if s.listener_path is not None:
        d["listenerPath"] = s.listener_path
    if s.listener_metadata is not None:
        d["listenerMetadata"] = s.listener_metadata
    if s.syscalls:
        d["syscalls"] = [_syscall_to_dict(rule) for rule in s.syscalls]
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
