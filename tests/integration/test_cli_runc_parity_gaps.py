"""Five last gaps between corral's command line (and its asyncio face) and runc, each checked
against runc 1.1.5 (Debian's) run side by side on a busybox bundle:

- `exec --ignore-paused --tty` into a paused container: runc blocks until someone resumes it (the
  process makes its own terminal, and it is frozen); corral refuses at once, naming the
  container, its state and what to do, and leaves nothing behind.
- `AsyncContainer.exec(..., ignore_paused=True)`, as `Container.exec` has it.
- `run` in the foreground with `--console-socket`: runc's "cannot use console socket if runc
  will not detach or allocate tty", exit 1, before anything exists; `exec` the same, as
  "exec failed: ...", exit 255, with or without `--tty`.
- `run` in the foreground catches the signals it passes on before the container starts: a
  SIGTERM while `start` is under way reaches the init, and `run` exits with its status.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from corral import Process, Runtime, State
from corral.aio import AsyncRuntime
from corral.errors import InvalidTransition
from tests.integration.conftest import CGROUP_PARENT, make_config
from tests.integration.test_cli import CGROUP_ROOT, Cli, cli, frozen, make_bundle  # noqa: F401 - cli is a fixture

pytestmark = pytest.mark.root


def test_exec_with_a_terminal_into_a_paused_container_is_refused_with_the_fix(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    bundle = make_bundle(cli, rootfs_template, "pt", "sleep", "1000")
    cli("run", "--detach", "--bundle", str(bundle), "pt")
    cli("pause", "pt")
    before = json.loads(cli("ps", "--format", "json", "pt").stdout)
    expected = ("exec failed: container pt is paused: a terminal (--tty, or terminal in --process) cannot be set "
                "up in it until it is resumed; run `resume pt` first, or exec without a terminal")
    socket_path = cli.tmp_path / "console.sock"
    master, slave = os.openpty()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
            listener.bind(str(socket_path))
            listener.listen(1)
            # As containerd calls it (a socket, detached), and runc's foreground terminal (its own).
            for how in (("--console-socket", str(socket_path), "--detach"), ()):
                refused = cli("exec", "--ignore-paused", "--tty", *how, "pt", "sh", check=False, timeout=30,
                              stdin=slave)
                assert refused.returncode == 255, (how, refused.stderr)
                assert cli.errors()[-1] == expected, how
            listener.settimeout(0)
            with pytest.raises(BlockingIOError):
                listener.accept()  # nothing was ever sent
    finally:
        os.close(master)
        os.close(slave)
    assert json.loads(cli("ps", "--format", "json", "pt").stdout) == before  # no process was made
    assert frozen("pt") and cli.state("pt")["status"] == "paused"
    cli("resume", "pt")
    assert cli("exec", "pt", "true").returncode == 0  # untouched: running, exec'able


@pytest.mark.asyncio
async def test_async_exec_into_a_paused_container_needs_ignore_paused(runtime: Runtime, bundle: Path) -> None:
    rt = AsyncRuntime(runtime)
    try:
        box = await rt.create("ap", make_config(bundle, "ap", "sleep", "1000"))
        await box.start()
        await box.pause()
        with pytest.raises(InvalidTransition):
            await box.exec(Process(args=("true",)))
        handle = await box.exec(Process(args=("sh", "-c", "echo ran > /tmp/marker; exit 3")), ignore_paused=True)
        assert handle.pid in box.sync.processes()  # in the container's cgroup
        await asyncio.sleep(0.5)
        assert handle.sync.poll() is None  # frozen with the container
        assert await box.state() is State.PAUSED and not (bundle / "rootfs/tmp/marker").exists()
        await box.resume()
        assert await handle.wait(30) == 3
        assert (bundle / "rootfs/tmp/marker").read_text() == "ran\n"
        await box.destroy(force=True)
    finally:
        await rt.close(keep_runtime=True)


def _cgroup_dirs(cid: str) -> list[Path]:
    """Where the container's cgroup would be, in every hierarchy (v2, or each v1 one)."""
    relative = f"{CGROUP_PARENT}/cli-{cid}".lstrip("/")
    return [CGROUP_ROOT / relative, *(hierarchy / relative for hierarchy in CGROUP_ROOT.iterdir()
                                      if hierarchy.is_dir() and not hierarchy.is_symlink())]


def test_run_in_the_foreground_with_a_console_socket_is_runcs_error(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    """runc's checkTerminal: a foreground run never uses a console socket, whatever
    process.terminal says (runc 1.1.5 gives the same message and exit 1 for both)."""
    socket_path = cli.tmp_path / "console.sock"
    for terminal in (True, False):
        cid = f"fg{int(terminal)}"
        bundle = make_bundle(cli, rootfs_template, cid, "sh", "-c", "touch /tmp/ran", terminal=terminal)
        config = json.loads((bundle / "config.json").read_text())
        config["root"]["readonly"] = False  # so that it would leave /tmp/ran, had it run
        (bundle / "config.json").write_text(json.dumps(config))
        result = cli("run", "--console-socket", str(socket_path), "--bundle", str(bundle), cid, check=False)
        assert result.returncode == 1, result.stderr
        assert cli.errors()[-1] == "cannot use console socket if runc will not detach or allocate tty"
        assert "cannot use console socket" in result.stderr
        # Nothing exists: no record, no cgroup, no run dir, and the process never ran.
        assert cli("state", cid, check=False).returncode == 1
        if (cli.root / "corral.db").exists():
            runtime = Runtime(cli.root, run_root=cli.root / "run")
            try:
                assert [b.id for b in runtime.list(include_destroyed=True)] == []
            finally:
                runtime.close()
        assert not (cli.root / "run" / cid).exists()
        assert not [str(p) for p in _cgroup_dirs(cid) if p.exists()]
        assert not (bundle / "rootfs/tmp/ran").exists()


def test_run_in_the_foreground_passes_on_a_signal_that_comes_during_start(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    """A poststart hook (run by `corral run` itself, inside `start`) sends SIGTERM to it once the
    init has its trap set: the signal comes before `start` has returned. It used to kill `corral
    run` (default action) and leave the container running; now it is held, passed on to the
    init, and `run` exits with the init's status, as runc's run does (its handler is set first)."""
    cid = "sig"
    bundle = make_bundle(cli, rootfs_template, cid, "sh", "-c",
                         "trap 'echo got-term > /got; exit 42' TERM; touch /ready; "
                         "while :; do sleep 0.1; done")
    ready = bundle / "rootfs/ready"
    signal_parent = (f"i=0; while [ ! -e {ready} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; "
                     "kill -TERM $PPID")
    config = json.loads((bundle / "config.json").read_text())
    config["hooks"] = {"poststart": [{"path": "/bin/sh", "args": ["sh", "-c", signal_parent]}]}
    config["root"]["readonly"] = False  # for /ready and /got
    (bundle / "config.json").write_text(json.dumps(config))
    with open(cli.tmp_path / "run.out", "wb") as out:
        run = subprocess.Popen(cli.argv("run", "--bundle", str(bundle), cid),
                               stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        status = run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert status == 42, (status, (cli.tmp_path / "run.out").read_text())
    assert (bundle / "rootfs/got").read_text() == "got-term\n"  # the init's trap ran
    assert cli("state", cid, check=False).returncode == 1  # run deleted it


def test_exec_in_the_foreground_with_a_console_socket_is_runcs_error(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    """runc 1.1.5: `exec [--tty] --console-socket S ID cmd` without --detach fails in checkTerminal
    with exit 255; nothing is started and nothing is sent on the socket."""
    bundle = make_bundle(cli, rootfs_template, "fx", "sleep", "1000")
    config = json.loads((bundle / "config.json").read_text())
    config["root"]["readonly"] = False  # so that an exec that ran would leave /tmp/ran
    (bundle / "config.json").write_text(json.dumps(config))
    cli("run", "--detach", "--bundle", str(bundle), "fx")
    before = json.loads(cli("ps", "--format", "json", "fx").stdout)
    socket_path = cli.tmp_path / "console.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(socket_path))
        listener.listen(1)
        for tty in (("--tty",), ()):
            refused = cli("exec", *tty, "--console-socket", str(socket_path), "fx", "touch", "/tmp/ran",
                          check=False, timeout=30)
            assert refused.returncode == 255, (tty, refused.stderr)
            assert cli.errors()[-1] == "exec failed: cannot use console socket if runc will not detach or allocate tty"
        listener.settimeout(0)
        with pytest.raises(BlockingIOError):
            listener.accept()  # no terminal was ever sent
    assert json.loads(cli("ps", "--format", "json", "fx").stdout) == before  # no process was made
    assert cli("exec", "fx", "test", "!", "-e", "/tmp/ran").returncode == 0
