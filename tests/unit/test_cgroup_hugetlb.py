"""linux.resources.hugepageLimits: read, checked, and written to each layout's hugetlb files.

The writes are tested on directories that stand in for a cgroup (no root):
this host's v1 layout has no hugetlb hierarchy, see
tests/integration/test_conformance_cgroups.py for the real kernel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from corral.config import Config, HugepageLimit, Resources
from corral.errors import ConfigError
from corral.executor.cgroups import oci
from corral.executor.cgroups.v1 import Hierarchy, V1Cgroup
from corral.executor.cgroups.v2 import V2Cgroup


def config(limits: list[Any]) -> Config:
    return Config.from_dict(
        {
            "ociVersion": "1.0.2",
            "process": {"args": ["true"], "cwd": "/"},
            "root": {"path": "/rootfs"},
            "linux": {"resources": {"hugepageLimits": limits}},
        }
    )


def test_hugepage_limits_are_read_and_written_back() -> None:
    c = config([{"pageSize": "2MB", "limit": 4 << 20}, {"pageSize": "1GB", "limit": 0}])

    assert c.resources is not None
    assert c.resources.hugepage_limits == (HugepageLimit("2MB", 4 << 20), HugepageLimit("1GB", 0))
    assert Config.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ([{"pageSize": "2M", "limit": 1}], "linux.resources.hugepageLimits[0].pageSize: must be a size such as 2MB, 1GB or 64KB (<number><KB|MB|GB>)"),
        ([{"pageSize": 2, "limit": 1}], "linux.resources.hugepageLimits[0].pageSize: must be a size such as 2MB, 1GB or 64KB (<number><KB|MB|GB>)"),
        ([{"pageSize": "2MB", "limit": -1}], "linux.resources.hugepageLimits[0].limit: must be an integer from 0 to 18446744073709551615"),
        ([{"pageSize": "2MB"}], "linux.resources.hugepageLimits[0].limit: required"),
        ([{"pageSize": "2MB", "limit": 0}, {"pageSize": "2048KB", "limit": 0}], "linux.resources.hugepageLimits[1].pageSize: 2048KB is limited twice"),
    ],
)
def test_bad_hugepage_limits_are_refused(limits: list[Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config(limits)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("size", "name"), [("2MB", "2MB"), ("2048KB", "2MB"), ("1GB", "1GB"), ("1024MB", "1GB"), ("64KB", "64KB"), ("1536KB", "1536KB")]
)
def test_page_sizes_take_the_kernels_names(size: str, name: str) -> None:
    assert oci.hugetlb_name(size) == name


def test_translation_per_layout() -> None:
    limits = (HugepageLimit("2MB", 10), HugepageLimit("1GB", 20))

    assert oci.hugetlb_limits(limits, "limit_in_bytes") == [
        ("linux.resources.hugepageLimits[0]", "hugetlb.2MB.limit_in_bytes", 10),
        ("linux.resources.hugepageLimits[1]", "hugetlb.1GB.limit_in_bytes", 20),
    ]
    assert [name for _, name, _ in oci.hugetlb_limits(limits, "max")] == ["hugetlb.2MB.max", "hugetlb.1GB.max"]


def v1(tmp_path: Path) -> tuple[V1Cgroup, Path]:
    d = tmp_path / "hugetlb" / "c"
    d.mkdir(parents=True)
    for name in ("hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.rsvd.limit_in_bytes", "hugetlb.1GB.limit_in_bytes"):
        (d / name).write_text("")
    hierarchy = Hierarchy("hugetlb", str(tmp_path / "hugetlb"), frozenset({"hugetlb"}))
    return V1Cgroup({"hugetlb": str(d)}, {"hugetlb": hierarchy}), d


def v2(tmp_path: Path) -> tuple[V2Cgroup, Path]:
    d = tmp_path / "c"
    d.mkdir()
    (d / "cgroup.controllers").write_text("memory hugetlb\n")
    for name in ("hugetlb.2MB.max", "hugetlb.1GB.max", "hugetlb.1GB.rsvd.max"):
        (d / name).write_text("")
    return V2Cgroup(str(d), str(tmp_path)), d


def test_v1_writes_limit_in_bytes_and_the_reservation(tmp_path: Path) -> None:
    cgroup, d = v1(tmp_path)

    cgroup.apply(Resources(hugepage_limits=(HugepageLimit("2048KB", 4 << 20), HugepageLimit("1GB", 1 << 30))))

    assert (d / "hugetlb.2MB.limit_in_bytes").read_text() == str(4 << 20)
    assert (d / "hugetlb.2MB.rsvd.limit_in_bytes").read_text() == str(4 << 20)
    assert (d / "hugetlb.1GB.limit_in_bytes").read_text() == str(1 << 30)


def test_v2_writes_max_and_the_reservation(tmp_path: Path) -> None:
    cgroup, d = v2(tmp_path)

    cgroup.apply(Resources(hugepage_limits=(HugepageLimit("2MB", 8 << 20), HugepageLimit("1GB", 0))))

    assert (d / "hugetlb.2MB.max").read_text() == str(8 << 20)
    assert (d / "hugetlb.1GB.max").read_text() == "0"
    assert (d / "hugetlb.1GB.rsvd.max").read_text() == "0"


@pytest.mark.parametrize("layout", [v1, v2])
def test_a_size_the_host_does_not_have_is_refused_by_path(layout: Any, tmp_path: Path) -> None:
    cgroup, d = layout(tmp_path)

    with pytest.raises(ConfigError) as info:
        cgroup.apply(Resources(hugepage_limits=(HugepageLimit("2MB", 1), HugepageLimit("16GB", 1))))

    assert info.value.where == "linux.resources.hugepageLimits[1].pageSize"
    assert "hugetlb.16GB." in info.value.problem and "does not exist" in info.value.problem


def test_v1_without_a_hugetlb_hierarchy_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "memory" / "c"
    d.mkdir(parents=True)
    cgroup = V1Cgroup({"memory": str(d)}, {"memory": Hierarchy("memory", str(tmp_path / "memory"), frozenset({"memory"}))})

    with pytest.raises(ConfigError) as info:
        cgroup.apply(Resources(hugepage_limits=(HugepageLimit("2MB", 1),)))

    assert info.value.where == "linux.resources.hugepageLimits"
    assert "hugetlb controller has no cgroup v1 hierarchy" in info.value.problem
