"""The request that carries a container's config to its init: no size limit, clear errors.

runc runs configs of hundreds of KiB; a config must not fail because it does not
fit in one socket datagram, and a bad stdio fd must be named as such, not be
mistaken for a crash of the spawn helper.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
from pathlib import Path

import pytest

from corral import Process, Runtime, State
from corral.errors import InvalidStdio
from corral.executor.interface import Stdio
from tests.integration.conftest import make_config, output_file

pytestmark = pytest.mark.root

BIG_ENV = 100_000  # bytes in one environment variable (execve allows 128 KiB per string)


def _closed_fd() -> int:
    """An fd that was open and is closed, numbered high enough that the runtime's
    own files (its lock, its store) cannot reuse it meanwhile."""
    low = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    fd = fcntl.fcntl(low, fcntl.F_DUPFD_CLOEXEC, 900)
    os.close(low)
    os.close(fd)
    return fd


def test_a_config_over_4_mib_is_created_started_and_exits(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    annotations = {f"org.example.big.{i}": f"{i:06d}" + "x" * 1018 for i in range(4200)}  # 4.3 MiB, all distinct
    config = make_config(bundle, "huge", "/bin/sh", "-c", 'echo "big=${#BIG}"; exit 7')
    process = dataclasses.replace(config.process, env=(*config.process.env, "BIG=" + "y" * BIG_ENV))
    config = dataclasses.replace(config, annotations=annotations, process=process)
    assert len(config.to_json()) > 4 * 1024 * 1024
    fd, out = output_file(tmp_path)
    try:
        box = runtime.create("huge", config, stdio=Stdio(stdout=fd, stderr=fd))
    finally:
        os.close(fd)
    box.start()
    assert box.wait(20) == 7
    assert out.read_text() == f"big={BIG_ENV}\n"
    box.destroy()


@pytest.mark.parametrize("stream", ["stdin", "stdout", "stderr"])
def test_a_closed_stdio_fd_is_refused_before_anything_is_spawned(runtime: Runtime, bundle: Path, stream: str) -> None:
    config = make_config(bundle, "badfd", "/bin/true")
    fd = _closed_fd()
    with pytest.raises(InvalidStdio, match=rf"stdio\.{stream}: fd {fd} ") as caught:
        runtime.create("badfd", config, stdio=Stdio(**{stream: fd}))
    assert caught.value.stream == stream and caught.value.fd == fd
    box = runtime.load("badfd")
    assert box.state is State.DESTROYED
    assert box.record.init_pid is None and box.record.monitor_pid is None
    for path in box.record.cgroup_paths.values():
        assert not os.path.exists(path)


def test_a_closed_stdio_fd_is_refused_by_exec_and_the_container_keeps_running(runtime: Runtime, bundle: Path) -> None:
    box = runtime.create("execfd", make_config(bundle, "execfd", "/bin/sleep", "60"))
    box.start()
    fd = _closed_fd()
    with pytest.raises(InvalidStdio, match=rf"stdio\.stdout: fd {fd} "):
        box.exec(Process(args=("/bin/true",), env=("PATH=/bin",)), stdio=Stdio(stdout=fd))
    assert box.exec_processes() == []
    assert box.state is State.RUNNING
    assert box.exec(Process(args=("/bin/true",), env=("PATH=/bin",))).wait(10) == 0
    box.destroy(force=True)
