"""The small pieces every config check is made of: where an error is, and what a value must be.

Every ConfigError names the OCI JSON path of the value at fault
(``mounts[2].destination``); the helpers here build those paths and refuse a
value in one line, so that validation (validate.py) and JSON reading (oci.py)
say the same thing in the same words. They know nothing of the dataclasses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal, NoReturn

from corral.config.linux import INT64_MAX, UINT32_MAX
from corral.errors import ConfigError

# --------------------------------------------------------------------------- errors


class ErrorsFrom:
    """Prefix the ConfigErrors raised inside with `source` (the file they come from).

    Validation deep inside the dataclasses does not know the file; the entry
    points do.
    """

    def __init__(self, source: str | None) -> None:
        self.source = source

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if isinstance(exc, ConfigError) and self.source and not exc.source:
            raise ConfigError(exc.where, exc.problem, source=self.source) from None
        return False


def fail(where: str, problem: str) -> NoReturn:
    raise ConfigError(where, problem)


def join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def free_key(where: str, key: object) -> str:
    """Path of a free-form key (a sysctl name, an annotation): keys may contain dots."""
    return f"{where}[{json.dumps(key) if isinstance(key, str) else repr(key)}]"


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


# --------------------------------------------------------------------------- value checks


def is_int(value: object) -> bool:
    """JSON true is not 1: bools are ints in Python and must not pass as such."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_range(value: object, where: str, low: int, high: int, problem: str | None = None) -> int:
    if not is_int(value) or not low <= value <= high:  # type: ignore[operator]
        fail(where, problem or f"must be an integer from {low} to {high}")
    return value  # type: ignore[return-value]


def check_uint32(value: object, where: str) -> int:
    return check_range(value, where, 0, UINT32_MAX)


def check_positive_or_unlimited(value: object, where: str, extra: str = "") -> None:
    """Kernel limits where 0 is not a limit but -1 spells "max"."""
    if not is_int(value) or not (value == -1 or 0 < value <= INT64_MAX):  # type: ignore[operator]
        fail(where, f"must be a positive integer or -1 (unlimited){extra}")


def check_range_or_unlimited(
    value: object, where: str, low: int, high: int, why: str, extra: str = ""
) -> None:
    """Kernel limits with their own range, where -1 spells "max"."""
    if not is_int(value) or not (value == -1 or low <= value <= high):  # type: ignore[operator]
        fail(where, f"must be -1 (unlimited) or an integer from {low} to {high} ({why}){extra}")


def check_bool(value: object, where: str) -> None:
    if not isinstance(value, bool):
        fail(where, "must be true or false")


#: Half of a UTF-16 pair: JSON can spell one ("\ud800"), Python keeps it, UTF-8 has no bytes for it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_unicode(value: str, where: str) -> None:
    """Whether the string has UTF-8 bytes: the kernel and every other OCI tool take
    UTF-8, and encoding a lone surrogate fails (in the container's init, for a path)."""
    surrogate = None if value.isascii() else _SURROGATE.search(value)
    if surrogate:
        code = ord(surrogate.group())
        fail(
            where,
            f"must be valid Unicode text: U+{code:04X} is half of a UTF-16 surrogate pair "
            f"(a lone \\u{code:04x} escape)",
        )


def check_no_nul(value: str, where: str) -> None:
    """Whether the string can reach the kernel as it is: C strings end at NUL, so a path
    or argument with one would be cut short silently; and UTF-8 (check_unicode)."""
    if "\0" in value:
        fail(where, "must not contain a NUL character")
    check_unicode(value, where)


def check_string(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        fail(where, "must be a non-empty string")
    check_no_nul(value, where)
    return value


def check_abs_path(value: object, where: str, problem: str = "must be an absolute path") -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        fail(where, problem)
    check_no_nul(value, where)
    return value


def check_list(value: object, where: str, what: str) -> tuple[Any, ...]:
    if not isinstance(value, tuple):
        fail(where, f"must be a list of {what}")
    return value


def check_strings(value: object, where: str) -> None:
    for i, item in enumerate(check_list(value, where, "strings")):
        check_string(item, f"{where}[{i}]")


def check_paths(value: object, where: str) -> None:
    for i, item in enumerate(check_list(value, where, "absolute paths")):
        check_abs_path(item, f"{where}[{i}]")


def check_instance(value: object, cls: type, where: str) -> None:
    """For Python callers only: JSON always yields the right class."""
    if not isinstance(value, cls):
        fail(where, f"must be a corral.config.{cls.__name__}, not {type(value).__name__}")


def check_string_map(value: object, where: str) -> None:
    if not isinstance(value, Mapping):
        fail(where, "must be an object mapping strings to strings")
    for key, item in value.items():
        if not isinstance(key, str):
            fail(free_key(where, key), "keys must be strings")
        check_unicode(key, free_key(where, key))
        if not isinstance(item, str):
            fail(free_key(where, key), "must be a string")
        check_unicode(item, free_key(where, key))


def check_unique(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            fail(where, f"{name!r} appears twice")
        seen.add(name)

