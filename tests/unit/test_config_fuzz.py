"""Fuzzing the config reader (issue 16, item 4): whatever it is given, a valid Config or a
CorralError, never another exception, in bounded time.

Three sources of input: configs that `runc spec` and the rootless-style spec in
test_config.py would write, mutated at random paths (a value replaced by any JSON
value, a key deleted or added); arbitrary JSON values; and arbitrary bytes, alone or
spliced into a config's text. Each goes through `Config.from_json`, `Config.from_dict`
and, through a bundle directory, `Config.from_bundle` (and the mutated configs' process
through `Process.from_dict` and `from_json`, as `exec --process` reads one). A Config that comes out must
survive its own round trip: `to_dict()` read back by `from_dict` gives an equal Config.

A fourth test puts Python values that JSON cannot hold (bytes, tuples, sets, objects)
into the dicts given to `from_dict`. The suite runs a short pass (about 200 examples in
all, a few seconds). The long run is
the same tests with more examples each (see tests/README.md)::

    CORRAL_FUZZ_EXAMPLES=100000 .venv/bin/python -m pytest tests/unit/test_config_fuzz.py

Time per example is bounded by hypothesis' deadline (1 s; a typical example takes a few
milliseconds); memory by the reader's own limits (corral.config.oci: MAX_CONFIG_BYTES,
MAX_JSON_DEPTH, MAX_NUMBER_DIGITS), which the strategies reach past on purpose.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.config import Config, Process
from corral.config.oci import MAX_JSON_DEPTH, MAX_NUMBER_DIGITS
from corral.errors import CorralError
from tests.unit.test_config import minimal, runc_spec, userns_spec

#: Examples per test for a long run; the suite's own pass is short.
LONG_RUN = int(os.environ.get("CORRAL_FUZZ_EXAMPLES", "0"))


def examples(short: int) -> settings:
    return settings(
        max_examples=LONG_RUN or short,
        deadline=1000,  # ms: an example that takes longer is a finding
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# --------------------------------------------------------------------------- what to feed

SEEDS: tuple[Callable[[], dict[str, Any]], ...] = (runc_spec, minimal, userns_spec)

#: Keys of the config's objects (from the seeds), OCI keys corral refuses, and misspellings.
KEYS = sorted(
    {
        "ociVersion", "process", "root", "hostname", "mounts", "annotations", "linux",
        "args", "env", "cwd", "user", "rlimits", "noNewPrivileges", "capabilities",
        "oomScoreAdj", "terminal", "uid", "gid", "additionalGids", "umask", "type", "soft",
        "hard", "bounding", "effective", "permitted", "inheritable", "ambient", "path",
        "readonly", "destination", "source", "options", "namespaces", "uidMappings",
        "gidMappings", "resources", "cgroupsPath", "maskedPaths", "readonlyPaths", "devices",
        "sysctl", "rootfsPropagation", "containerID", "hostID", "size", "major", "minor",
        "fileMode", "memory", "cpu", "pids", "blockIO", "limit", "reservation", "swap",
        "shares", "quota", "period", "cpus", "mems", "weight", "allow", "access",
        "hooks", "seccomp", "unified", "username", "Process", "",
    }
)

#: The edges of every range corral checks, and a little past them.
INTS = st.sampled_from(
    [
        0, 1, -1, 2, 9, 10, 22, 438, 511, 512, 999, 1000, 1001, 1024, 4095, 4096, 65536, 2**20 - 1, 2**20,
        1_000_000, 1_000_001, 262_144, 262_145, 4_194_304, 4_194_305, 2**31 - 1, 2**32 - 1,
        2**32, 2**44 - 1, 2**44, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1,
        10**MAX_NUMBER_DIGITS - 1, -(10**MAX_NUMBER_DIGITS - 1),
    ]
) | st.integers()

STRINGS = st.sampled_from(
    [
        "", "/", "/proc", "/dev/pts", "rootfs", "..", "a/../b", "/a/../b", "\x00", "/a\x00b",
        "sh", "PATH=/bin", "=x", "A=", "CAP_KILL", "CAP_SYS_ADMIN", "RLIMIT_NOFILE",
        "RLIMIT_OFILE", "a", "c", "b", "u", "p", "rwm", "rx", "user", "uts", "mount", "time",
        "network", "ipc", "pid", "cgroup", "1.0.2", "1.1.0", "2.0.0", "0-2,4", "3-1",
        "0-99999", "bind", "rbind", "proc", "tmpfs", "rslave", "private", "/corral/x",
        "corral:x:y", "/sys/fs/cgroup/..", "net.ipv4.ip_forward", "kernel.shmmax",
        "kernel.hostname", "kernel.domainname", "fs.mqueue.x", "vm.swappiness", "net..x",
        "\ud800", "/\udcff", "\udc80", "x" * 65, "é", "\n", " ",
    ]
) | st.text(max_size=20)

#: Characters that a C string, a path or a JSON escape treats specially.
SPECIAL_CHARS = st.sampled_from(["\x00", "\ud800", "\udcff", "/", "..", ":", "=", ",", "-", " ", "\n", "é"])

SCALARS = st.none() | st.booleans() | INTS | st.floats() | STRINGS

JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)


def _slots(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) pair in a JSON tree: where a mutation can happen."""
    found: list[tuple[Any, Any]] = []
    stack = [value]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            found.append((node, key))
            stack.append(child)
    return found


#: What a Python caller might pass to from_dict besides JSON's values.
PYTHON_VALUES = JSON_VALUES | st.sampled_from(
    [b"/bin/sh", ("sh",), {"sh"}, frozenset(), object(), 1.5, float("nan"), 1j, type, ...]
) | st.tuples(JSON_VALUES) | st.dictionaries(st.integers() | st.none(), JSON_VALUES, max_size=2)


@st.composite
def mutated_configs(draw: st.DrawFn, values: st.SearchStrategy[Any] = JSON_VALUES) -> Any:
    """A seed config with one to four random changes (a value twisted, replaced by any JSON
    value, deleted, or a key added): most such inputs are nearly valid, which is where
    the checks of individual fields are reached."""
    spec: Any = draw(st.sampled_from(SEEDS))()
    for _ in range(draw(st.integers(1, 4))):
        slots = _slots(spec)
        action = draw(st.sampled_from(["twist", "twist", "replace", "delete", "add", "root"]))
        if action == "root" or not slots:
            spec = draw(values) if action == "root" and draw(st.integers(0, 9)) == 0 else spec
            continue
        container, key = draw(st.sampled_from(slots))
        value = container[key]
        if action == "twist" and isinstance(value, str):  # a special character inside
            at = draw(st.integers(0, len(value)))
            container[key] = value[:at] + draw(SPECIAL_CHARS) + value[at:]
        elif action == "twist" and isinstance(value, int) and not isinstance(value, bool):
            container[key] = draw(st.sampled_from([value - 1, value + 1, -value, value * 1024]) | INTS)
        elif action in ("replace", "twist"):
            container[key] = draw(values)
        elif action == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[draw(st.sampled_from(KEYS))] = draw(values)
        else:
            container.append(draw(values))
    return spec


@st.composite
def config_texts(draw: st.DrawFn) -> bytes:
    """Bytes: random ones, or a config's JSON text with a slice replaced by random bytes,
    by deep brackets or by a long number (the text-level limits)."""
    if draw(st.integers(0, 3)) == 0:
        return draw(st.binary(max_size=200))
    text = json.dumps(draw(mutated_configs())).encode()
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, min(len(text), start + 20)))
    depth = draw(st.integers(MAX_JSON_DEPTH - 5, MAX_JSON_DEPTH + 5))
    patch = draw(
        st.binary(max_size=20)
        | st.just(b"[" * depth + b"]" * depth)
        | st.just(b"{" * depth)
        | st.just(b'"' + b"[" * depth + b'"')
        | st.integers(MAX_NUMBER_DIGITS - 2, MAX_NUMBER_DIGITS + 2).map(lambda n: b"9" * n)
        | st.sampled_from([b"NaN", b"-Infinity", b"1e999", b"\\ud800", b"\xed\xa0\x80", b"\x00", b"\xff"])
    )
    return text[:start] + patch + text[end:]


# --------------------------------------------------------------------------- the property


def read_or_refuse(read: Callable[[], Config | Process]) -> None:
    """The property: a Config (or Process) that round-trips, or a CorralError; anything
    else fails the test."""
    try:
        result = read()
    except CorralError:
        return
    if isinstance(result, Process):
        assert Process.from_dict(result.to_dict()) == result
        assert Process.from_json(result.to_json()) == result
        return
    assert Config.from_dict(result.to_dict(), bundle=result.bundle) == result
    assert Config.from_json(result.to_json(), bundle=result.bundle) == result


def write_bundle(bundle: Path, text: bytes) -> None:
    (bundle / "rootfs").mkdir(parents=True, exist_ok=True)
    (bundle / "config.json").write_bytes(text)


@examples(80)
@given(spec=mutated_configs())
def test_mutated_configs(tmp_path: Path, spec: Any) -> None:
    read_or_refuse(lambda: Config.from_dict(spec))
    read_or_refuse(lambda: Config.from_dict(spec, bundle="/srv/bundle"))
    text = json.dumps(spec).encode()
    read_or_refuse(lambda: Config.from_json(text))
    write_bundle(tmp_path / "bundle", text)
    read_or_refuse(lambda: Config.from_bundle(tmp_path / "bundle"))
    if isinstance(spec, dict) and "process" in spec:  # as `exec --process` reads it
        read_or_refuse(lambda: Process.from_dict(spec["process"]))
        read_or_refuse(lambda: Process.from_json(json.dumps(spec["process"])))


@examples(40)
@given(value=JSON_VALUES)
def test_arbitrary_json_values(value: Any) -> None:
    read_or_refuse(lambda: Config.from_json(json.dumps(value)))


@examples(50)
@given(text=config_texts())
def test_arbitrary_bytes(tmp_path: Path, text: bytes) -> None:
    read_or_refuse(lambda: Config.from_json(text))
    write_bundle(tmp_path / "bundle", text)
    read_or_refuse(lambda: Config.from_bundle(tmp_path / "bundle"))


@examples(40)
@given(spec=mutated_configs(PYTHON_VALUES))
def test_python_values_in_from_dict(spec: Any) -> None:
    """A Python caller's dict may hold what JSON cannot: bytes, tuples, sets, objects."""
    read_or_refuse(lambda: Config.from_dict(spec))
    read_or_refuse(lambda: Config.from_dict(spec, bundle="/srv/bundle"))
