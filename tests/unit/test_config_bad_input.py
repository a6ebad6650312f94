"""Hostile or absurd config input ends in a ConfigError that says what to fix, never another
exception, and never a value the kernel would silently change (issue 10, config part).

Each case here was reproduced on main before its fix: a RecursionError or ValueError escaping
from the JSON reader, a cpu.shares the kernel clamps, a file object in Stdio.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from corral.config import Config, CpuResources, PidsResources, Resources
from corral.config.oci import MAX_CONFIG_BYTES, MAX_JSON_DEPTH, MAX_NUMBER_DIGITS
from corral.errors import ConfigError, CorralError
from corral.types import Stdio
from tests.unit.test_config import minimal, userns_spec, write_bundle


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def with_annotations(raw: str) -> str:
    """The minimal config as text, its `annotations` replaced by raw JSON text."""
    text = json.dumps({**minimal(), "annotations": "@"})
    return text.replace('"@"', raw)


# --------------------------------------------------------------------------- nesting


@pytest.mark.parametrize(
    "text",
    [
        with_annotations(deep(100_000)),
        with_annotations('{"x": ' * 100_000 + "1" + "}" * 100_000),
        '{"ociVersion": "1.0.2", "nope": ' + deep(100_000) + "}",  # under a key corral refuses
        deep(100_000),  # the whole file
        "[" * 100_000,  # not even closed
    ],
    ids=["lists", "objects", "unknown key", "top level", "unclosed"],
)
def test_deep_nesting_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_json(text)

    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in str(info.value)
    assert "no OCI config needs more than a few" in str(info.value)


def test_deep_nesting_in_a_bundle_names_the_file(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, minimal())
    (bundle / "config.json").write_text(with_annotations(deep(100_000)))

    with pytest.raises(ConfigError) as info:
        Config.from_bundle(bundle)

    assert info.value.source == f"{bundle}/config.json"
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in str(info.value)


def test_the_depth_limit_is_exact() -> None:
    # The config object itself is level 1: annotations at MAX_JSON_DEPTH - 1 more levels
    # is the deepest allowed, and then only its value is wrong.
    at_limit = with_annotations(deep(MAX_JSON_DEPTH - 1))
    with pytest.raises(ConfigError, match="^annotations: must be an object mapping strings to strings$"):
        Config.from_json(at_limit)

    with pytest.raises(ConfigError, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
        Config.from_json(with_annotations(deep(MAX_JSON_DEPTH)))


def test_brackets_inside_strings_do_not_count() -> None:
    value = '[{"' * 50_000 + '\\"]}'
    config = Config.from_json(with_annotations(json.dumps({"a": value})))

    assert config.annotations["a"] == value


# --------------------------------------------------------------------------- long numbers


@pytest.mark.parametrize("number", ["9" * 5000, "-" + "9" * 5000, "1" * (MAX_NUMBER_DIGITS + 1)])
def test_a_number_with_thousands_of_digits_is_a_config_error(number: str) -> None:
    text = '{"ociVersion": "1.0.2",\n "process": {"oomScoreAdj": ' + number + "}}"

    with pytest.raises(ConfigError) as info:
        Config.from_json(text)

    assert str(info.value) == (
        f"line 2 column 29: a number with more than {MAX_NUMBER_DIGITS} digits "
        "(no field of an OCI config takes one that long)"
    )


def test_long_digit_strings_are_fine_inside_strings() -> None:
    config = Config.from_json(with_annotations(json.dumps({"n": "9" * 5000})))

    assert config.annotations["n"] == "9" * 5000


def test_a_number_at_the_digit_limit_is_read_and_then_refused_by_range() -> None:
    text = json.dumps(minimal()).replace('"cwd": "/"', '"cwd": "/", "oomScoreAdj": ' + "9" * MAX_NUMBER_DIGITS)

    with pytest.raises(ConfigError, match=r"^process\.oomScoreAdj: must be an integer from -1000 to 1000$"):
        Config.from_json(text)


def test_cpu_lists_with_thousands_of_digits_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^linux\.resources\.cpu\.cpus: .*: 9{20}\.\.\. is longer than any CPU number$"):
        with_cpu(cpus="0-" + "9" * 5000)
    with pytest.raises(ConfigError, match=r"^linux\.resources\.cpu\.mems: .*: 9{20}\.\.\. is longer than any memory node number$"):
        with_cpu(mems="9" * 5000)


# --------------------------------------------------------------------------- size


def test_a_config_json_larger_than_the_limit_is_refused_unread(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, minimal())
    with open(bundle / "config.json", "r+b") as f:
        f.truncate(MAX_CONFIG_BYTES + 1)  # sparse: costs no disk

    with pytest.raises(ConfigError) as info:
        Config.from_bundle(bundle)

    assert str(info.value) == (
        f"{bundle}/config.json: (file): is larger than {MAX_CONFIG_BYTES} bytes (16 MiB), "
        "corral's limit for a config.json; an OCI config is a few kilobytes: "
        "check that this is the right file"
    )


def test_a_config_json_at_the_limit_is_read(tmp_path: Path) -> None:
    spec = minimal()
    text = json.dumps(spec)
    spec["annotations"] = {"pad": "x" * (MAX_CONFIG_BYTES - len(text) - len(', "annotations": {"pad": ""}'))}
    bundle = write_bundle(tmp_path, {**spec, "root": {"path": "rootfs"}})
    (bundle / "config.json").write_text(json.dumps({**spec, "root": {"path": "rootfs"}}))
    size = (bundle / "config.json").stat().st_size
    assert MAX_CONFIG_BYTES - 64 <= size <= MAX_CONFIG_BYTES

    assert Config.from_bundle(bundle).annotations["pad"].startswith("xxx")


def test_a_config_json_that_never_ends_is_refused_after_the_limit(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").symlink_to("/dev/zero")

    with pytest.raises(ConfigError, match=r"config\.json: \(file\): is larger than \d+ bytes"):
        Config.from_bundle(bundle)


def test_a_fifo_config_json_without_a_writer_does_not_hang(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    os.mkfifo(bundle / "config.json")

    def hung(signum: int, frame: object) -> None:
        raise AssertionError("opening a FIFO config.json without a writer hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        with pytest.raises(ConfigError, match=r"config\.json: line 1 column 1: invalid JSON: Expecting value"):
            Config.from_bundle(bundle)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("kind", [str, bytes])
def test_from_json_refuses_text_larger_than_the_limit(kind: type) -> None:
    text = " " * (MAX_CONFIG_BYTES + 1) + "{}"

    with pytest.raises(ConfigError, match=r"^\(file\): is larger than \d+ bytes \(16 MiB\)"):
        Config.from_json(text if kind is str else text.encode())


def test_from_json_refuses_what_is_not_text() -> None:
    with pytest.raises(ConfigError, match=r"^\(file\): must be JSON text \(str or bytes\), not dict"):
        Config.from_json({"ociVersion": "1.0.2"})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- kernel ranges

W = "linux.resources"


def config_error(**resources: Any) -> str:
    spec = userns_spec()
    for path, value in resources.items():
        section, key = path.split("__")
        spec["linux"]["resources"][section][key] = value
    with pytest.raises(ConfigError) as info:
        Config.from_dict(spec)
    return str(info.value)


def accepted(**resources: Any) -> Resources:
    spec = userns_spec()
    for path, value in resources.items():
        section, key = path.split("__")
        spec["linux"]["resources"][section][key] = value
    resources_ = Config.from_dict(spec).resources
    assert resources_ is not None
    return resources_


SHARES = f"{W}.cpu.shares: must be an integer from 2 to 262144 (the kernel's MIN_SHARES and MAX_SHARES: it would silently clamp any other value)"
PERIOD = f"{W}.cpu.period: must be an integer from 1000 to 1000000 (microseconds: 1 ms to 1 s, the kernel's range for a CFS period)"
QUOTA = f"{W}.cpu.quota: must be -1 (unlimited) or an integer from 1000 to 17592186044415 (microseconds: at least 1 ms, the kernel's range for a CFS quota)"
PIDS = f"{W}.pids.limit: must be -1 (unlimited) or an integer from 1 to 4194304 (the kernel's PID_MAX_LIMIT); 0 is ambiguous (runc reads it as unlimited)"
BLKIO = f"{W}.blockIO.weight: must be an integer from 10 to 1000"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("cpu__shares", 2**64 - 1, SHARES),  # the reported case: the kernel made it 262144
        ("cpu__shares", 262145, SHARES),
        ("cpu__shares", 1, SHARES),
        ("cpu__shares", 0, SHARES),
        ("cpu__period", 999, PERIOD),
        ("cpu__period", 1_000_001, PERIOD),
        ("cpu__period", 2**64 - 1, PERIOD),
        ("cpu__quota", 999, QUOTA),
        ("cpu__quota", 1, QUOTA),
        ("cpu__quota", -2, QUOTA),
        ("cpu__quota", 2**44, QUOTA),
        ("pids__limit", 4_194_305, PIDS),
        ("pids__limit", 2**63 - 1, PIDS),
        ("blockIO__weight", 1001, BLKIO),
        ("blockIO__weight", 9, BLKIO),
    ],
)
def test_resource_values_the_kernel_would_clamp_or_refuse_are_refused(field: str, value: int, message: str) -> None:
    assert config_error(**{field: value}) == message


@pytest.mark.parametrize(
    "field, value",
    [
        ("cpu__shares", 2),
        ("cpu__shares", 262144),
        ("cpu__period", 1000),
        ("cpu__period", 1_000_000),
        ("cpu__quota", 1000),
        ("cpu__quota", 2**44 - 1),
        ("cpu__quota", -1),
        ("pids__limit", 4_194_304),
        ("pids__limit", -1),
        ("blockIO__weight", 10),
        ("blockIO__weight", 1000),
    ],
)
def test_the_ends_of_each_kernel_range_are_accepted(field: str, value: int) -> None:
    section, key = field.split("__")
    part = getattr(accepted(**{field: value}), {"blockIO": "block_io"}.get(section, section))
    assert getattr(part, {"limit": "limit"}.get(key, key)) == value


def test_python_built_resources_get_the_same_range_errors() -> None:
    with pytest.raises(ConfigError, match=re.escape(SHARES)):
        with_cpu(shares=2**64 - 1)
    with pytest.raises(ConfigError, match=re.escape(PIDS)):
        with_resources(Resources(pids=PidsResources(4_194_305)))


# --------------------------------------------------------------------------- Stdio


def test_stdio_given_a_file_object_without_a_descriptor_is_a_corral_error() -> None:
    # A file object is kept whole (issue 13); one with no descriptor behind it is refused at once.
    with pytest.raises(CorralError) as info:
        Stdio(stdout=io.StringIO())
    assert str(info.value).startswith("stdio.stdout: StringIO has no open file descriptor")


def test_stdio_given_a_closed_file_object_is_a_corral_error(tmp_path: Path) -> None:
    with open(tmp_path / "out", "w") as f:
        pass
    with pytest.raises(CorralError, match=r"^stdio\.stderr: TextIOWrapper has no open file descriptor"):
        Stdio(stderr=f)


@pytest.mark.parametrize("value", [-1, True, 1.0, b"1", object()])
def test_stdio_refuses_what_is_not_a_file_descriptor(value: object) -> None:
    with pytest.raises(CorralError, match=r"^stdio\.stdin: must be a file descriptor \(an integer of 0 or more\), a file object, a path or None"):
        Stdio(stdin=value)  # type: ignore[arg-type]


def test_stdio_log_takes_stdout_and_stderr_and_a_bounded_size() -> None:
    with pytest.raises(CorralError, match=r"^stdio\.log: the log takes the container's stdout and stderr"):
        Stdio(stdout=1, log=True)
    with pytest.raises(CorralError, match=r"^stdio\.log_max_bytes: must be an integer of at least 65536"):
        Stdio.logged(max_bytes=1000)
    assert Stdio.logged(stdin=0, max_bytes=1 << 20) == Stdio(stdin=0, log=True, log_max_bytes=1 << 20)


def test_stdio_takes_file_objects_and_paths(tmp_path: Path) -> None:
    with open(tmp_path / "out", "w") as f:
        assert Stdio(stdout=f).stdout is f  # the object itself: it lives as long as the Stdio
    assert Stdio(stdout=str(tmp_path / "a"), stderr=tmp_path / "b").stderr == tmp_path / "b"


def test_stdio_takes_descriptors_and_none() -> None:
    assert Stdio(0, 1, 2) == Stdio(stdin=0, stdout=1, stderr=2)
    assert Stdio().stdout is None


# --------------------------------------------------------------------------- helpers


def with_resources(resources: Resources) -> Config:
    return dataclasses.replace(Config.from_dict(userns_spec()), resources=resources)


def with_cpu(**fields: Any) -> Config:
    return with_resources(Resources(cpu=CpuResources(**fields)))


# --------------------------------------------------------------------------- lone surrogates
# Found by the fuzzer (test_config_fuzz.py): JSON may spell half a UTF-16 pair ("\ud800"),
# which Python reads as a lone surrogate. No UTF-8 byte sequence holds one, so the kernel
# cannot be given it: hostname raised UnicodeEncodeError while it was checked; args, paths
# and env were accepted and would have failed in the container's init.

SURROGATE_PROBLEM = "must be valid Unicode text: U+D800 is half of a UTF-16 surrogate pair (a lone \\ud800 escape)"


@pytest.mark.parametrize(
    "change, where",
    [
        (lambda s: s.update(hostname="h\ud800"), "hostname"),
        (lambda s: s["process"].update(args=["sh", "\ud800"]), "process.args[1]"),
        (lambda s: s["process"].update(cwd="/\ud800"), "process.cwd"),
        (lambda s: s["process"]["env"].append("A=\ud800"), "process.env[2]"),
        (lambda s: s["root"].update(path="/srv/\ud800"), "root.path"),
        (lambda s: s["mounts"][0].update(destination="/\ud800"), "mounts[0].destination"),
        (lambda s: s["mounts"][1]["options"].append("\ud800"), "mounts[1].options[4]"),
        (lambda s: s["linux"]["sysctl"].update({"net.ipv4.ip_forward": "\ud800"}), 'linux.sysctl["net.ipv4.ip_forward"]'),
        (lambda s: s["linux"]["sysctl"].update({"net.\ud800": "1"}), 'linux.sysctl["net.\\ud800"]'),
        (lambda s: s["annotations"].update(a="\ud800"), 'annotations["a"]'),
        (lambda s: s["linux"].update(cgroupsPath="/corral/\ud800"), "linux.cgroupsPath"),
    ],
)
def test_lone_surrogates_are_refused(change: Any, where: str) -> None:
    spec = userns_spec()
    change(spec)

    with pytest.raises(ConfigError) as info:
        Config.from_json(json.dumps(spec))

    assert str(info.value) == f"{where}: {SURROGATE_PROBLEM}"


def test_utf8_encoded_surrogates_in_bytes_are_refused_too() -> None:
    text = json.dumps({**minimal(), "hostname": "@"}).encode().replace(b"@", b"\xed\xa0\x80")

    with pytest.raises(ConfigError, match=r"^hostname: must be valid Unicode text"):
        Config.from_json(text)


def test_paired_surrogate_escapes_are_one_character() -> None:
    spec = minimal()
    spec["process"]["args"] = ["echo", "\U0001f600"]

    config = Config.from_json(json.dumps(spec))  # ensure_ascii writes "\ud83d\ude00"

    assert config.process.args[1] == "\U0001f600"


def test_a_nul_in_a_sysctl_value_is_refused() -> None:
    spec = userns_spec()
    spec["linux"]["sysctl"]["net.ipv4.ip_forward"] = "1\u0000"

    with pytest.raises(ConfigError) as info:
        Config.from_dict(spec)

    assert str(info.value) == 'linux.sysctl["net.ipv4.ip_forward"]: must not contain a NUL character'


def test_annotations_may_hold_a_nul_they_never_reach_the_kernel() -> None:
    spec = minimal()
    spec["annotations"] = {"a": "x\u0000y"}

    assert Config.from_dict(spec).annotations["a"] == "x\x00y"


def test_a_text_whose_brackets_are_all_inside_a_string() -> None:
    # Many brackets, none outside the string: the depth count sums over nothing.
    with pytest.raises(ConfigError, match=r"^\(top level\): must be an object, not a string$"):
        Config.from_json(json.dumps("[" * (MAX_JSON_DEPTH + 1)))


def test_a_bundle_path_given_as_bytes_is_read_like_a_str(tmp_path: Path) -> None:
    # It raised TypeError ("Can't mix strings and bytes in path components").
    bundle = write_bundle(tmp_path, {**minimal(), "root": {"path": "rootfs"}})

    assert Config.from_bundle(os.fsencode(bundle)) == Config.from_bundle(bundle)


def test_a_long_number_is_located_past_long_digit_strings_and_floats() -> None:
    digits = "9" * (MAX_NUMBER_DIGITS + 50)
    text = '{"annotations": {"n": "' + digits + '"}, "f": 1.' + digits + ',\n "x": ' + digits + "}"

    with pytest.raises(ConfigError, match=r"^line 2 column 7: a number with more than"):
        Config.from_json(text)


# --------------------------------------------------------------------------- device numbers
# mknod(2) takes a 32-bit device number: 12 bits of major, 20 of minor (new_valid_dev()).
# Above them it was EINVAL at start, and a major above 2^31 made os.makedev() raise
# OverflowError in the executor.

DEVICE_MAJOR = "linux.devices[0].major: must be an integer from 0 to 4095 (mknod takes 12 bits of major)"
DEVICE_MINOR = "linux.devices[0].minor: must be an integer from 0 to 1048575 (mknod takes 20 bits of minor)"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("major", 4096, DEVICE_MAJOR),
        ("major", 2**32 - 1, DEVICE_MAJOR),
        ("minor", 2**20, DEVICE_MINOR),
        ("minor", 2**32 - 1, DEVICE_MINOR),
    ],
)
def test_device_numbers_mknod_cannot_take_are_refused(field: str, value: int, message: str) -> None:
    spec = userns_spec()
    spec["linux"]["devices"][0][field] = value

    with pytest.raises(ConfigError) as info:
        Config.from_dict(spec)

    assert str(info.value) == message


def test_the_largest_device_numbers_are_accepted() -> None:
    spec = userns_spec()
    spec["linux"]["devices"][0].update(major=4095, minor=2**20 - 1)

    device = Config.from_dict(spec).devices[0]

    assert (device.major, device.minor) == (4095, 2**20 - 1)
