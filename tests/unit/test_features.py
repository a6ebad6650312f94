"""corral.features(): the runtime-spec features document, and proof it agrees with the parser.

Every name the document advertises is fed back to Config.from_dict and must be
accepted, and a name it leaves out must be refused: if a table in config/linux.py
changes, the document changes with it, and if validation stops using the table,
these tests fail.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import pytest

import corral
from corral.cli import main
from corral.config import Config
from corral.config import linux
from corral.config.features import features
from corral.config.validate import validate_version
from corral.errors import ConfigError

# ---- the shape runtime-spec's features.md gives the document (schema/features-linux.json)

STRINGS = list[str]
BOOL = bool
ENABLED = {"enabled": BOOL}
SCHEMA: dict[str, Any] = {
    "ociVersionMin": str,
    "ociVersionMax": str,
    "hooks": STRINGS,
    "mountOptions": STRINGS,
    "linux": {
        "namespaces": STRINGS,
        "capabilities": STRINGS,
        "cgroup": {"v1": BOOL, "v2": BOOL, "systemd": BOOL, "systemdUser": BOOL, "rdma": BOOL},
        "seccomp": {
            "enabled": BOOL,
            "actions": STRINGS,
            "operators": STRINGS,
            "archs": STRINGS,
            "knownFlags": STRINGS,
            "supportedFlags": STRINGS,
        },
        "apparmor": ENABLED,
        "selinux": ENABLED,
        "intelRdt": ENABLED,
        "mountExtensions": {"idmap": ENABLED},
    },
    "annotations": dict[str, str],
    "potentiallyUnsafeConfigAnnotations": STRINGS,
}
HOOK_NAMES = {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}
NAMESPACES_OF_THE_SPEC = {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"}


def conforms(value: object, schema: Any, where: str = "") -> None:
    """Every member is one the spec defines, with the spec's type (all members are optional)."""
    if isinstance(schema, dict):
        assert isinstance(value, dict), where
        for key, item in value.items():
            assert key in schema, f"{where}.{key}: not a field of features.md"
            conforms(item, schema[key], f"{where}.{key}")
    elif schema == STRINGS:
        assert isinstance(value, list) and all(isinstance(s, str) for s in value), where
        assert len(set(value)) == len(value), f"{where}: duplicates"
    elif schema == dict[str, str]:
        assert isinstance(value, dict), where
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()), where
    else:
        assert type(value) is schema, f"{where}: {type(value).__name__} is not {schema.__name__}"


def test_the_document_has_the_specs_fields_and_types() -> None:
    doc = features()
    conforms(doc, SCHEMA)
    for required in ("ociVersionMin", "ociVersionMax"):
        assert required in doc
    assert set(doc["hooks"]) <= HOOK_NAMES
    assert set(doc["linux"]["namespaces"]) <= NAMESPACES_OF_THE_SPEC
    assert doc["linux"]["cgroup"]["systemd"] is False and doc["linux"]["cgroup"]["systemdUser"] is False
    assert set(doc["linux"]["seccomp"]["supportedFlags"]) <= set(doc["linux"]["seccomp"]["knownFlags"])
    assert doc["annotations"]["io.github.corral.version"] == corral.__version__
    json.dumps(doc)  # JSON as it is


def test_corral_features_is_the_generator_and_each_call_is_fresh() -> None:
    a = corral.features()
    a["linux"]["namespaces"].clear()
    assert features()["linux"]["namespaces"]  # a caller cannot corrupt the next answer


def test_the_version_range_is_one_the_parser_reads() -> None:
    doc = features()
    validate_version(doc["ociVersionMin"])
    validate_version(doc["ociVersionMax"])


# ---- no drift: what the document says is exactly what Config.from_dict accepts


def base() -> dict[str, Any]:
    return {
        "ociVersion": "1.2.0",
        "process": {"args": ["true"], "cwd": "/"},
        "root": {"path": "/rootfs"},
        "linux": {"namespaces": [{"type": "mount"}]},
    }


def with_namespaces(types: list[str]) -> dict[str, Any]:
    data = base()
    data["linux"]["namespaces"] = [{"type": t} for t in types]
    if "user" in types:
        data["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        data["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    return data


def test_every_namespace_in_the_document_is_accepted_and_no_other() -> None:
    advertised = features()["linux"]["namespaces"]
    Config.from_dict(with_namespaces(advertised))
    for kind in advertised:
        Config.from_dict(with_namespaces(sorted({"mount", kind})))
    left_out = NAMESPACES_OF_THE_SPEC - set(advertised)  # none since time namespaces came
    for kind in sorted(left_out | {"bogus"}):
        with pytest.raises(ConfigError):
            Config.from_dict(with_namespaces(["mount", kind]))


def with_capabilities(caps: list[str]) -> dict[str, Any]:
    data = base()
    data["process"]["capabilities"] = {s: list(caps) for s in linux.CAPABILITY_SETS}
    return data


def test_every_capability_in_the_document_is_accepted_and_no_other() -> None:
    advertised = features()["linux"]["capabilities"]
    Config.from_dict(with_capabilities(advertised))
    for cap in ("CAP_NOT_IN_LINUX", "cap_chown", "CHOWN"):
        assert cap not in advertised
        with pytest.raises(ConfigError):
            Config.from_dict(with_capabilities([cap]))


def with_seccomp(
    action: str = "SCMP_ACT_ALLOW",
    archs: list[str] | None = None,
    flags: list[str] | None = None,
    op: str = "SCMP_CMP_EQ",
) -> dict[str, Any]:
    data = base()
    data["linux"]["seccomp"] = {
        "defaultAction": action,
        "architectures": archs or [],
        "flags": flags or [],
        "syscalls": [
            {"names": ["getpid"], "action": action, "args": [{"index": 0, "value": 1, "op": op}]}
        ],
    }
    return data


def test_every_seccomp_name_in_the_document_is_accepted_and_no_other() -> None:
    seccomp = features()["linux"]["seccomp"]
    assert seccomp["enabled"] is True
    for action in seccomp["actions"]:
        Config.from_dict(with_seccomp(action=action))
    for op in seccomp["operators"]:
        Config.from_dict(with_seccomp(op=op))
    Config.from_dict(with_seccomp(archs=seccomp["archs"]))
    Config.from_dict(with_seccomp(flags=seccomp["supportedFlags"]))

    refused_actions = set(linux.SECCOMP_ACTIONS) - set(seccomp["actions"])
    assert refused_actions == {"SCMP_ACT_NOTIFY"}
    for action in sorted(refused_actions | {"SCMP_ACT_BOGUS"}):
        with pytest.raises(ConfigError):
            Config.from_dict(with_seccomp(action=action))
    with pytest.raises(ConfigError):
        Config.from_dict(with_seccomp(op="SCMP_CMP_BOGUS"))
    with pytest.raises(ConfigError):
        Config.from_dict(with_seccomp(archs=["SCMP_ARCH_BOGUS"]))
    unsupported_flags = set(seccomp["knownFlags"]) - set(seccomp["supportedFlags"])
    assert unsupported_flags
    for flag in sorted(unsupported_flags | {"SECCOMP_FILTER_FLAG_BOGUS"}):
        with pytest.raises(ConfigError):
            Config.from_dict(with_seccomp(flags=[flag]))


def test_every_mount_option_in_the_document_is_one_rootfs_applies_as_a_flag() -> None:
    from corral.executor.rootfs import parse_options

    advertised = features()["mountOptions"]
    for option in advertised:
        parsed = parse_options([option])
        assert parsed.data is None, f"{option} would be passed to the filesystem as data"
    assert parse_options(["size=64k"]).data == "size=64k"
    assert "size=64k" not in advertised


def test_the_moved_mount_flags_are_the_kernels() -> None:
    """config/linux.py spells mount(2)'s MS_* numbers out; they must be the C headers' values."""
    from corral.executor import syscalls as sc

    names = [n for n in dir(linux) if n.startswith("MS_")]
    assert len(names) >= 19
    for name in names:
        assert getattr(linux, name) == getattr(sc, name), name


# ---- the CLI prints the same document


def test_the_cli_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["features"]) == 0
    assert capsys.readouterr().out == json.dumps(features(), indent=2) + "\n"


def test_python_dash_m_corral_cli_features() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "corral.cli", "features"], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == features()


def test_the_document_is_a_copy_not_shared_state() -> None:
    doc = features()
    before = copy.deepcopy(doc)
    doc["mountOptions"].append("x")
    assert features() == before
