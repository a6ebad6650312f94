"""Cgroup ownership without root: the default path's derivation, the claim, and its record in the store.

The claim only reads directories and `cgroup.procs` files, so a tree of plain
directories stands in for a hierarchy here; tests/integration/test_cgroup_ownership.py
checks the same against the kernel.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

from corral import Config, Runtime
from corral.errors import ConfigError
from corral.executor.cgroups import ownership
from corral.executor.linux import default_cgroups_path, store_tag
from tests.fakes import FakeExecutor
from tests.unit.conftest import make_runtime


def test_the_default_path_is_unique_to_the_store(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert re.fullmatch(r"/corral/[0-9a-f]{12}/web", default_cgroups_path(str(one), "web"))
    assert default_cgroups_path(str(one), "web") != default_cgroups_path(str(two), "web")
    assert store_tag(str(one)) == hashlib.sha256(str(one).encode()).hexdigest()[:12]


def test_the_default_path_names_the_resolved_root(tmp_path: Path) -> None:
    """Two spellings of one store (a symlink, a trailing slash, `..`) are one store."""
    real = tmp_path / "store"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    tag = store_tag(str(real))
    assert store_tag(str(tmp_path / "link")) == tag
    assert store_tag(f"{real}/") == tag
    assert store_tag(f"{real}/../store") == tag


def _hierarchy(tmp_path: Path, *dirs: str) -> Path:
    root = tmp_path / "memory"
    root.mkdir()
    for d in dirs:
        (root / d).mkdir(parents=True)
        (root / d / "cgroup.procs").write_text("")
    return root


def test_missing_dirs_lists_what_is_to_be_made_parents_first(tmp_path: Path) -> None:
    root = _hierarchy(tmp_path, "system.slice")
    assert ownership.missing_dirs(f"{root}/system.slice/a/b", str(root)) == (
        f"{root}/system.slice/a",
        f"{root}/system.slice/a/b",
    )
    assert ownership.missing_dirs(f"{root}/system.slice", str(root)) == ()


def test_claim_refuses_an_existing_cgroup_with_a_process_below_it(tmp_path: Path) -> None:
    root = _hierarchy(tmp_path, "system.slice", "system.slice/sshd.service")
    (root / "system.slice/sshd.service/cgroup.procs").write_text(f"{os.getpid()}\n")
    with pytest.raises(ConfigError) as refused:
        ownership.claim("/system.slice", {"memory": f"{root}/system.slice"}, {"memory": str(root)})
    assert refused.value.where == "linux.cgroupsPath"
    message = str(refused.value)
    assert f"{root}/system.slice" in message and "the memory hierarchy" in message
    assert str(os.getpid()) in message and "runc 1.2" in message


def test_claim_joins_an_empty_cgroup_and_records_only_what_it_creates(tmp_path: Path) -> None:
    root = _hierarchy(tmp_path, "existing")
    joined = ownership.claim("/existing", {"memory": f"{root}/existing"}, {"memory": str(root)})
    assert joined.created == {"memory": ()}
    made = ownership.claim("/existing/new/box", {"memory": f"{root}/existing/new/box"}, {"memory": str(root)})
    assert made.created == {"memory": (f"{root}/existing/new", f"{root}/existing/new/box")}


def test_a_default_paths_parents_are_corrals_even_when_they_exist(tmp_path: Path) -> None:
    """Whichever container of the store goes last removes /corral/<store> (only ever when empty)."""
    root = _hierarchy(tmp_path, "corral/abc")
    claim = ownership.claim("/corral/abc/web", {"memory": f"{root}/corral/abc/web"}, {"memory": str(root)}, "/corral")
    assert claim.created == {"memory": (f"{root}/corral", f"{root}/corral/abc", f"{root}/corral/abc/web")}


def test_a_record_from_before_ownership_means_the_containers_own_directories() -> None:
    assert ownership.legacy({"memory": "/sys/fs/cgroup/memory/corral/x/"}) == {
        "memory": ("/sys/fs/cgroup/memory/corral/x",)
    }


def test_the_runtime_passes_its_root_and_records_what_is_created(
    runtime: Runtime, config: Config, tmp_path: Path, kernel_dir: Path, boot_id_file: Path
) -> None:
    box = runtime.create("web", config)
    other = make_runtime(tmp_path / "other-root", kernel_dir / "other", boot_id_file)
    try:
        twin = other.create("web", config)
        assert set(box.record.cgroup_paths.values()).isdisjoint(twin.record.cgroup_paths.values())
    finally:
        other.close()
    reread = runtime.load("web").record
    assert reread.created_cgroups == {"fake": tuple(reread.cgroup_paths.values())}
    assert isinstance(runtime.context.executor, FakeExecutor)
