"""`corral update`'s flags: runc's names, runc's sizes, and what is refused rather than dropped."""

from __future__ import annotations

import pytest

from corral.cli.commands.update import ram_in_bytes, resources_json_from_flags
from corral.cli.parser import UsageError, build_parser
from corral.config.update import resources_from_json
from corral.config import CpuResources, MemoryResources
from corral.errors import CorralError


def _flags(*argv: str) -> dict[str, object]:
    return resources_json_from_flags(build_parser().parse_args(["update", *argv, "c1"]))


@pytest.mark.parametrize(
    ("text", "size"),
    [("64m", 64 << 20), ("64M", 64 << 20), ("1g", 1 << 30), ("1GiB", 1 << 30), ("512k", 512 << 10),
     ("1024", 1024), ("1024b", 1024), ("1.5g", 3 << 29), ("-1", -1)],
)
def test_sizes_as_runc_reads_them(text: str, size: int) -> None:
    assert ram_in_bytes("memory", text) == size


@pytest.mark.parametrize("text", ["", "lots", "64x", "-2", "1e6", "m"])
def test_a_bad_size_names_the_flag(text: str) -> None:
    with pytest.raises(UsageError) as raised:
        ram_in_bytes("memory", text)
    assert "--memory" in str(raised.value)


def test_every_flag_lands_in_its_field() -> None:
    document = _flags(
        "--memory", "64m", "--memory-reservation", "32m", "--memory-swap", "128m", "--cpu-shares", "512",
        "--cpu-quota", "20000", "--cpu-period", "100000", "--cpuset-cpus", "0", "--cpuset-mems", "0",
        "--pids-limit", "20", "--blkio-weight", "300",
    )
    resources = resources_from_json(document)
    assert resources.memory == MemoryResources(limit=64 << 20, reservation=32 << 20, swap=128 << 20)
    assert resources.cpu == CpuResources(shares=512, quota=20000, period=100000, cpus="0", mems="0")
    assert resources.pids is not None and resources.pids.limit == 20
    assert resources.block_io is not None and resources.block_io.weight == 300
    assert _flags("--cpu-share", "7") == {"cpu": {"shares": 7}}  # runc's own spelling
    assert _flags() == {}


def test_only_the_given_flags_are_set() -> None:
    assert _flags("--pids-limit", "5") == {"pids": {"limit": 5}}
    assert _flags("--memory", "-1") == {"memory": {"limit": -1}}


@pytest.mark.parametrize("flag", ["--kernel-memory", "--cpu-rt-runtime", "--l3-cache-schema"])
def test_what_corral_cannot_hold_is_refused(flag: str) -> None:
    with pytest.raises(CorralError) as raised:
        _flags(flag, "1")
    assert flag in str(raised.value)


def test_an_integer_flag_names_itself() -> None:
    with pytest.raises(UsageError) as raised:
        _flags("--pids-limit", "many")
    assert "--pids-limit" in str(raised.value)
