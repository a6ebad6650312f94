"""Unit-test fixtures: a Runtime on a temporary root, driving the fake executor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import Config, Process, Root, Runtime
from tests.fakes import FakeExecutor


@pytest.fixture
def kernel_dir(tmp_path: Path) -> Path:
    return tmp_path / "kernel"


@pytest.fixture
def boot_id_file(tmp_path: Path) -> Path:
    path = tmp_path / "boot_id"
    path.write_text("boot-1\n")
    return path


@pytest.fixture
def runtime(tmp_path: Path, kernel_dir: Path, boot_id_file: Path) -> Iterator[Runtime]:
    rt = make_runtime(tmp_path, kernel_dir, boot_id_file)
    yield rt
    rt.close()


def make_runtime(tmp_path: Path, kernel_dir: Path, boot_id_file: Path) -> Runtime:
    return Runtime(
        tmp_path / "root",
        FakeExecutor(kernel_dir),
        run_root=tmp_path / "run",
        boot_id_file=boot_id_file,
    )


def simple_config(tmp_path: Path, *args: str) -> Config:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir(exist_ok=True)
    return Config(process=Process(args=args or ("/bin/sh",)), root=Root(str(rootfs)))


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return simple_config(tmp_path)
