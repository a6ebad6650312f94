"""A container's output on real containers (issue 13, item 3): the log the monitor writes
(surviving the controller, bounded under a flood), exec_run, Stdio paths and file objects,
and run() with labels."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from corral import Process, Runtime, State, Stdio
from corral.executor.logwriter import LOG_NAME, ROTATED_SUFFIX
from tests.integration.conftest import make_config

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[2]

#: The controller, in its own process: runs a logged container that writes a numbered line every
#: 50 ms for 2 s, says so, and waits to be killed.
CONTROLLER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from corral import Runtime, Stdio
    from tests.integration.conftest import make_config

    rt = Runtime({root!r}, run_root={run!r})
    script = 'i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo "line $i"; sleep 0.05; done; echo done >&2'
    rt.run("chatty", make_config(Path({bundle!r}), "chatty", "/bin/sh", "-c", script), stdio=Stdio.logged())
    print("running", flush=True)
    time.sleep(1000)
    """
)


def test_logs_hold_what_a_container_wrote_after_its_controller_died(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    code = CONTROLLER.format(repo=str(REPO), root=str(runtime.root), run=str(runtime.run_root), bundle=str(bundle))
    controller = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert controller.stdout is not None and controller.stdout.readline() == "running\n"
    finally:
        controller.send_signal(signal.SIGKILL)
        controller.wait()
    killed_at = time.time()

    box = Runtime(runtime.root, run_root=runtime.run_root).load("chatty")  # a new controller
    assert box.wait(timeout=30) == 0
    lines = list(box.logs())
    assert [line.text for line in lines if line.stream == "stdout"] == [f"line {i}" for i in range(1, 41)]
    assert [(line.stream, line.text) for line in lines[-1:]] == [("stderr", "done")]
    written_after = [line for line in lines if line.time.timestamp() > killed_at]
    assert len(written_after) > 10  # most of it came while no controller ran
    assert [line.text for line in box.logs(tail=2)] == ["line 40", "done"]
    assert [line.text for line in box.logs(since=lines[-3].time)] == ["line 39", "line 40", "done"]


def _sizes(*paths: Path) -> list[int]:
    """The files' sizes on disk; one the writer is rotating (renamed, not yet re-made) counts 0."""
    sizes = []
    for path in paths:
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:
            sizes.append(0)
    return sizes


def test_the_log_cap_holds_under_a_flood(runtime: Runtime, bundle: Path) -> None:
    cap = 256 * 1024
    box = runtime.run("flood", make_config(bundle, "flood", "/bin/yes"), stdio=Stdio.logged(max_bytes=cap))
    log = Path(box.record.run_dir) / LOG_NAME
    rotated = Path(str(log) + ROTATED_SUFFIX)
    largest = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        sizes = _sizes(log, rotated)
        largest = max(largest, sum(sizes))
        assert all(size <= cap // 2 for size in sizes) and sum(sizes) <= cap, sizes
        time.sleep(0.01)
    assert rotated.exists() and largest > cap // 2  # it did fill and rotate, many times over
    tail = list(box.logs(tail=100))
    assert len(tail) == 100 and {(line.stream, line.data) for line in tail} == {("stdout", b"y")}
    assert box.state is State.RUNNING
    assert box.stop(timeout=1) == 128 + signal.SIGKILL  # PID 1 ignores SIGTERM
    assert sum(_sizes(log, rotated)) <= cap


def test_logs_follow_until_the_container_exits(runtime: Runtime, bundle: Path) -> None:
    script = "for i in 1 2 3 4 5; do echo tick $i; sleep 0.1; done; printf last"
    box = runtime.run("ticker", make_config(bundle, "ticker", "/bin/sh", "-c", script), stdio=Stdio.logged())
    started = time.monotonic()
    followed = [line.text for line in box.logs(follow=True)]
    assert followed == [f"tick {i}" for i in range(1, 6)] + ["last"]
    assert time.monotonic() - started < 10
    assert box.state is State.STOPPED


def test_exec_run_returns_status_stdout_and_stderr(runtime: Runtime, bundle: Path) -> None:
    box = runtime.run("execs", make_config(bundle, "execs", "/bin/sleep", "1000"))
    status, out, err = box.exec_run(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (status, out, err) == (3, b"out\n", b"err\n")
    big = box.exec_run(["/bin/sh", "-c", "yes | head -c 3000000; echo end >&2"])  # more than any pipe holds
    assert (big.exit_status, len(big.stdout), big.stderr) == (0, 3_000_000, b"end\n")
    assert box.exec_run(["/bin/sh", "-c", "sleep 1000 & echo bg"], timeout=10) == (0, b"bg\n", b"")
    assert [p.exit_status for p in box.exec_processes()] == [3, 0, 0]
    box.destroy(force=True)


def test_stdio_takes_a_path_and_a_file_object(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    out.write_text("kept\n")
    with open(tmp_path / "err.txt", "w") as err:
        err.write("first\n")  # still in Python's buffer: flushed before the container writes
        script = "echo to-out; echo to-err >&2"
        box = runtime.create("files", make_config(bundle, "files", "/bin/sh", "-c", script), stdio=Stdio(stdout=out, stderr=err))
    box.start()
    assert box.wait(timeout=30) == 0
    assert out.read_text() == "kept\nto-out\n"  # opened for append
    assert (tmp_path / "err.txt").read_text() == "first\nto-err\n"
    box.destroy()
    live = runtime.run("files2", make_config(bundle, "files2", "/bin/sleep", "1000"))  # exec takes the same kinds
    handle = live.exec(Process(args=("/bin/sh", "-c", "echo from-exec")), stdio=Stdio(stdout=str(out)))
    assert handle.wait(30) == 0
    assert out.read_text() == "kept\nto-out\nfrom-exec\n"


def test_run_starts_and_labels_select(runtime: Runtime, bundle: Path) -> None:
    web = dataclasses.replace(make_config(bundle, "web", "/bin/sleep", "1000"), annotations={"app": "web"})
    db = dataclasses.replace(make_config(bundle, "db", "/bin/sleep", "1000"), annotations={"app": "db"})
    assert runtime.run("web", web).state is State.RUNNING
    runtime.create("db", db)
    assert [b.id for b in runtime.list(labels={"app": "web"})] == ["web"]
    assert [b.id for b in runtime.list(states=["created"])] == ["db"]
    assert os.path.isdir(runtime.load("web").record.run_dir)
