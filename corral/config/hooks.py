"""The OCI `hooks` section: its parts and their validation.

`Config.hooks` holds a `Hooks`: for each kind the spec defines, the programs to
run at that moment of the lifecycle, in order. validate.py calls
`validate_hooks`; oci.py reads and writes the JSON. Which process runs a hook,
in which namespaces and with what state on its stdin is the executor's business
(corral.executor.hooks): this module only says what a valid hook is.

A hook is whatever the bundle's config says, nothing else: `path` is absolute
(the spec requires it, and a relative one would resolve against whatever
directory the running process happens to be in), `args` and `env` are passed
exactly as given (no `env` is an empty environment, as for execve), and
`timeout`, when set, is a whole number of seconds above zero.
"""

from __future__ import annotations

import re

from corral.config.checks import check_abs_path, check_instance, check_list, check_no_nul, check_range, fail
from corral.config.linux import INT64_MAX
from corral.config.types import lists_to_tuples
from corral.records import field_names, record

#: OCI key -> Hooks field, in the order of the lifecycle (prestart, deprecated, runs with createRuntime).
HOOK_KINDS: dict[str, str] = {
    "prestart": "prestart",
    "createRuntime": "create_runtime",
    "createContainer": "create_container",
    "startContainer": "start_container",
    "poststart": "poststart",
    "poststop": "poststop",
}

_ENV = re.compile(r"[^=\0]+=[^\0]*")


@record
class Hook:
    """One program to run: `args` is its whole argv (argv[0] included); empty means ``[path]``."""

    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None  # seconds; None: no limit

    def __post_init__(self) -> None:
        lists_to_tuples(self, "args", "env")

    @property
    def argv(self) -> list[str]:
        """What execve gets (as runc: no `args` runs the program with argv ``[path]``)."""
        return list(self.args) if self.args else [self.path]


@record
class Hooks:
    """The hooks of a container, by kind (field names are HOOK_KINDS' values)."""

    prestart: tuple[Hook, ...] = ()
    create_runtime: tuple[Hook, ...] = ()
    create_container: tuple[Hook, ...] = ()
    start_container: tuple[Hook, ...] = ()
    poststart: tuple[Hook, ...] = ()
    poststop: tuple[Hook, ...] = ()

    def __post_init__(self) -> None:
        lists_to_tuples(self, *field_names(self))

    def of(self, kind: str) -> tuple[Hook, ...]:
        """The hooks of one kind, by its OCI name (``"createRuntime"``)."""
        return getattr(self, HOOK_KINDS[kind])

    def __bool__(self) -> bool:
        return any(getattr(self, name) for name in field_names(self))


def validate_hooks(hooks: object, w: str = "hooks") -> None:
    check_instance(hooks, Hooks, w)
    assert isinstance(hooks, Hooks)
    for kind in HOOK_KINDS:
        wk = f"{w}.{kind}"
        for i, hook in enumerate(check_list(hooks.of(kind), wk, "hook objects")):
            check_instance(hook, Hook, f"{wk}[{i}]")
            validate_hook(hook, f"{wk}[{i}]")


def validate_hook(hook: Hook, w: str) -> None:
    check_abs_path(hook.path, f"{w}.path", "must be an absolute path (the spec requires one)")
    for i, arg in enumerate(check_list(hook.args, f"{w}.args", "strings")):
        if not isinstance(arg, str):
            fail(f"{w}.args[{i}]", "must be a string")
        check_no_nul(arg, f"{w}.args[{i}]")
    for i, var in enumerate(check_list(hook.env, f"{w}.env", "strings of the form NAME=value")):
        if not isinstance(var, str) or not _ENV.fullmatch(var):
            fail(f"{w}.env[{i}]", "must be a string of the form NAME=value")
        check_no_nul(var, f"{w}.env[{i}]")
    if hook.timeout is not None:
        check_range(hook.timeout, f"{w}.timeout", 1, INT64_MAX, "must be a whole number of seconds above 0")
