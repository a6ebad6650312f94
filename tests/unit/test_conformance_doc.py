"""docs/conformance.md stays true: honoured rows name real tests, and what the parser refuses is listed.

The refused keys come from the parser itself (its `_*_OCI_KEYS` sets, and a probe
that feeds each documented field to Config.from_dict), so supporting a new key,
or refusing one, forces the document to change with it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from corral.config import Config, oci
from corral.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "conformance.md"
STATUSES = ("honoured", "ignored with warning", "refused")
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
UNSUPPORTED = "not supported yet"

#: The parser's sets of keys the spec defines but corral refuses, and the JSON path of the
#: object each belongs to. A new set in oci.py must be added here (the test below says so).
OCI_KEY_SETS: dict[str, str] = {
    "_CONFIG_OCI_KEYS": "",
    "_PROCESS_OCI_KEYS": "process",
    "_LINUX_OCI_KEYS": "linux",
    "_RESOURCES_OCI_KEYS": "linux.resources",
    "_MEMORY_OCI_KEYS": "linux.resources.memory",
    "_CPU_OCI_KEYS": "linux.resources.cpu",
    "_BLOCK_IO_OCI_KEYS": "linux.resources.blockIO",
}


def rows() -> dict[str, tuple[str, str]]:
    """field -> (status, the rest of the row), from the markdown table."""
    table: dict[str, tuple[str, str]] = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        field, status, rest = cells
        field = field.strip("`")
        assert status in STATUSES, f"{field}: status {status!r} is not one of {STATUSES}"
        assert field not in table, f"{field} appears twice"
        table[field] = (status, rest)
    return table


def test_the_table_is_there_and_covers_the_spec_areas() -> None:
    table = rows()
    for field in ("ociVersion", "root.path", "process.user.umask", "process.ioPriority",
                  "process.scheduler", "hooks.prestart", "linux.timeOffsets", "linux.intelRdt",
                  "linux.personality", "linux.seccomp.defaultAction", "linux.resources.pids.limit",
                  "mounts[].uidMappings", "linux.memoryPolicy", "linux.netDevices"):
        assert field in table, field


def test_every_honoured_row_names_a_test_that_exists() -> None:
    for field, (status, rest) in rows().items():
        if status != "honoured":
            continue
        refs = TEST_REF.findall(rest)
        assert refs, f"{field}: honoured, but names no test (`tests/...py::test_name`)"
        for path, name in refs:
            source = ROOT / path
            assert source.is_file(), f"{field}: {path} does not exist"
            assert re.search(rf"^\s*(async )?def {name}\(", source.read_text(), re.M), (
                f"{field}: {path} has no test {name}"
            )


def test_every_refused_or_ignored_row_says_why() -> None:
    for field, (status, rest) in rows().items():
        if status != "honoured":
            assert len(rest) > 10, f"{field}: {status} without a reason"


def test_every_key_set_of_the_parser_is_known_here() -> None:
    found = {name for name in vars(oci) if re.fullmatch(r"_\w+_OCI_KEYS", name)}
    assert found == set(OCI_KEY_SETS), "a new set of refused keys in oci.py: map it in OCI_KEY_SETS"


def test_every_key_the_parser_refuses_is_refused_in_the_doc() -> None:
    table = rows()
    for set_name, parent in OCI_KEY_SETS.items():
        for key in sorted(getattr(oci, set_name)):
            field = f"{parent}.{key}" if parent else key
            documented = [f for f in table if f == field or f.startswith(field + ".")]
            assert documented, f"{field}: refused by the parser, missing from docs/conformance.md"
            for f in documented:
                assert table[f][0] == "refused", f"{f}: the parser refuses it; the doc says {table[f][0]}"


# ---- the probe: each documented field, fed to the parser on its own


def minimal() -> dict[str, Any]:
    return {"ociVersion": "1.2.0", "process": {"args": ["true"], "cwd": "/"}, "root": {"path": "/rootfs"}}


def with_field(field: str) -> dict[str, Any]:
    """A minimal config with `field` set to a placeholder (keys are checked before values)."""
    data = minimal()
    node: Any = data
    parts = field.split(".")
    for part in parts[:-1]:
        key = part.removesuffix("[]")
        if part.endswith("[]"):
            node[key] = [{}]
            node = node[key][0]
        else:
            node = node.setdefault(key, {})
    node[parts[-1].removesuffix("[]")] = {"placeholder": 1}
    return data


def refused_as_unsupported(field: str) -> bool:
    try:
        Config.from_dict(with_field(field))
    except ConfigError as e:
        where = re.sub(r"\[\d+\]", "[]", e.where)
        return e.problem == UNSUPPORTED and (field == where or field.startswith(where + "."))
    return False


@pytest.mark.parametrize("field", sorted(rows()))
def test_the_doc_agrees_with_the_parser_field_by_field(field: str) -> None:
    """Catches the keys refused inline (process.user.username, mounts[].uidMappings) too."""
    status = rows()[field][0]
    if refused_as_unsupported(field):
        assert status == "refused", f"{field}: the parser refuses it as unsupported; the doc says {status}"


#: Refused rows the parser accepts as keys: validation refuses them, with these values.
REFUSED_BY_VALIDATION: dict[str, Any] = {
    "linux.seccomp.listenerPath": "/run/listener.sock",
    "linux.seccomp.listenerMetadata": "x",
}


def test_a_refused_row_is_refused_by_the_code() -> None:
    """A key that becomes supported cannot stay 'refused' in the doc."""
    for field, (status, _) in rows().items():
        if status != "refused" or refused_as_unsupported(field):
            continue
        assert field in REFUSED_BY_VALIDATION, f"{field}: the doc says refused, the parser accepts it"
        data = minimal()
        if field.startswith("linux.seccomp."):
            data["linux"] = {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}
            data["linux"]["seccomp"][field.rsplit(".", 1)[1]] = REFUSED_BY_VALIDATION[field]
        else:
            data["process"][field.rsplit(".", 1)[1]] = REFUSED_BY_VALIDATION[field]
        with pytest.raises(ConfigError, match=UNSUPPORTED) as info:
            Config.from_dict(data)
        assert info.value.where == field


def test_the_probe_sees_a_refusal() -> None:
    assert refused_as_unsupported("process.commandLine")
    assert refused_as_unsupported("linux.resources.rdma")
    assert refused_as_unsupported("linux.intelRdt")
    assert not refused_as_unsupported("process.oomScoreAdj")
