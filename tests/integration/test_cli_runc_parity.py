"""Where corral's command line once differed from runc's, each checked against runc's source:

- `exec` into a paused container: refused with runc's message unless `--ignore-paused`, which
  lets the process join the frozen cgroup and run once resumed; an `exec` that fails before its
  process runs exits 255 (runc's exec.go: `fatalWithCode(..., 255)`).
- `exec --process FILE`: the file is the whole process; `--env`, `--cwd`, `--user`, `--cap`,
  `--tty`... are ignored (runc's getProcess returns the file's process untouched).
- `run` in the foreground with `process.terminal` and no `--console-socket`: the command's own
  terminal, proxied (runc's tty.go), as `exec -t` already did.
- `LISTEN_FDS` (systemd socket activation) on `create`/`run`: fds 3..3+N-1 go in before the
  `--preserve-fds` ones, with LISTEN_FDS=N and LISTEN_PID=1 in the process's environment
  (runc's utils_linux.go, through go-systemd's activation.Files: only when LISTEN_PID is the
  runtime's own PID).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from corral import Process, Runtime, State
from corral.errors import InvalidTransition
from tests.integration.conftest import make_config
from tests.integration.test_cli import Cli, cli, frozen, make_bundle  # noqa: F401 - cli is a fixture
from tests.integration.test_preserve_fds import _fds
from tests.integration.test_terminal import shell_on_a_terminal

pytestmark = pytest.mark.root


def test_exec_into_a_paused_container_needs_ignore_paused(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    bundle = make_bundle(cli, rootfs_template, "pz", "sleep", "1000")
    cli("run", "--detach", "--bundle", str(bundle), "pz")
    cli("pause", "pz")
    refused = cli("exec", "pz", "true", check=False)
    assert refused.returncode == 255, refused.stderr  # runc's exit status for a failed exec
    assert cli.errors()[-1] == "exec failed: cannot exec in a paused container (use --ignore-paused to override)"
    out = cli.tmp_path / "exec.out"
    with open(out, "wb") as stdout:
        run = subprocess.Popen(cli.argv("exec", "--ignore-paused", "pz", "sh", "-c", "echo ran; exit 5"),
                               stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT)
    try:
        time.sleep(1.5)
        assert run.poll() is None and out.read_bytes() == b""  # frozen with the container
        assert cli.state("pz")["status"] == "paused"
        cli("resume", "pz")
        assert run.wait(timeout=60) == 5, out.read_bytes()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert out.read_bytes() == b"ran\n"
    assert cli.state("pz")["status"] == "running"


def test_a_detached_exec_into_a_paused_container_returns_at_once(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    """Its process is in the frozen cgroup, frozen, and its pid file written (runc 1.1 blocks until
    the container is resumed: its exec waits for the process's execve)."""
    bundle = make_bundle(cli, rootfs_template, "pd", "sleep", "1000")
    cli("run", "--detach", "--bundle", str(bundle), "pd")
    cli("pause", "pd")
    pid_file = cli.tmp_path / "exec.pid"
    cli("exec", "--detach", "--ignore-paused", "--pid-file", str(pid_file), "pd", "sleep", "999", timeout=30)
    pid = int(pid_file.read_text())
    assert pid in json.loads(cli("ps", "--format", "json", "pd").stdout)
    assert frozen("pd") and cli.state("pd")["status"] == "paused"
    time.sleep(0.5)
    cmdline = Path(f"/proc/{pid}/cmdline")
    assert cmdline.read_bytes() != b"sleep\0" b"999\0"  # not exec'd yet: frozen before
    cli("resume", "pd")
    deadline = time.monotonic() + 30
    while cmdline.read_bytes() != b"sleep\0" b"999\0":
        assert time.monotonic() < deadline, "the exec'd process never ran"
        time.sleep(0.05)


def test_library_exec_into_a_paused_container_needs_ignore_paused(runtime: Runtime, bundle: Path) -> None:
    box = runtime.create("lp", make_config(bundle, "lp", "sleep", "1000"))
    box.start()
    box.pause()
    with pytest.raises(InvalidTransition) as refused:
        box.exec(Process(args=("true",)))
    assert str(refused.value).endswith("pass ignore_paused=True"), str(refused.value)
    handle = box.exec(Process(args=("sh", "-c", "echo ran > /tmp/marker; exit 3")), ignore_paused=True)
    assert handle.pid in box.processes()  # in the container's cgroup
    time.sleep(0.5)
    assert handle.poll() is None
    assert box.state is State.PAUSED and not (bundle / "rootfs/tmp/marker").exists()
    assert [(e.from_state, e.event, e.to_state) for e in box.history()][-1] == ("paused", "exec", "paused")
    box.resume()
    assert handle.wait(timeout=30) == 3
    assert (bundle / "rootfs/tmp/marker").read_text() == "ran\n"
    box.destroy(force=True)


def test_exec_into_a_stopped_container_is_runcs_error(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    bundle = make_bundle(cli, rootfs_template, "st", "true")
    cli("create", "--bundle", str(bundle), "st")
    cli("start", "st")
    cli.wait_for("st", "stopped")
    refused = cli("exec", "st", "true", check=False)
    assert refused.returncode == 255
    assert cli.errors()[-1] == "exec failed: cannot exec in a stopped container"


def test_exec_process_file_ignores_the_process_flags(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    bundle = make_bundle(cli, rootfs_template, "pf", "sleep", "1000")
    cli("run", "--detach", "--bundle", str(bundle), "pf")
    script = "echo cwd=$(pwd) X=$X id=$(id -u):$(id -g) groups=$(id -G); grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status"
    process_file = cli.tmp_path / "process.json"
    process_file.write_text(json.dumps({"args": ["sh", "-c", script], "cwd": "/", "env": ["PATH=/bin"]}))
    plain = cli("exec", "--process", str(process_file), "pf")
    flagged = cli("--debug", "exec", "--process", str(process_file), "--env", "X=1", "--cwd", "/tmp",
                  "--user", "5:6", "--additional-gids", "9", "--cap", "CAP_SYS_ADMIN", "--no-new-privs",
                  "--tty", "pf")
    assert flagged.stdout == plain.stdout, (plain.stdout, flagged.stdout)
    assert plain.stdout.startswith("cwd=/ X= id=0:0"), plain.stdout
    debug = [json.loads(line)["msg"] for line in cli.log.read_text().splitlines()]
    ignored = [m for m in debug if "ignored" in m and "--process" in m]
    assert ignored and all(flag in ignored[-1] for flag in
                           ("--env", "--cwd", "--user", "--additional-gids", "--cap", "--no-new-privs", "--tty")), debug


def test_run_in_the_foreground_with_a_terminal_uses_the_commands_own(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    """runc's `run` with process.terminal and no --console-socket: the container's pty joined to
    the command's terminal (raw, its size), copied both ways; the command exits with the status."""
    bundle = make_bundle(cli, rootfs_template, "tfg", "sh", terminal=True)
    status, out = shell_on_a_terminal(cli.argv("run", "--bundle", str(bundle), "tfg"), 27, 93,
                                      b'echo "A$((6*7))Z"; echo "S$(stty size)S"; echo "T$(tty)T"; exit 6\n')
    assert status == 6, out
    assert re.search(rb"\nA42Z\r+\n", out), out
    assert b"S27 93S" in out, out
    assert b"T/dev/pts/0T" in out, out  # the container's own pty, not the test's
    assert out.count(b'echo "A$((6*7))Z"') == 1, out  # echoed once: the command's terminal was raw
    assert cli("state", "tfg", check=False).returncode == 1  # run deleted it


def test_detached_run_with_a_terminal_and_no_socket_is_an_error(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    bundle = make_bundle(cli, rootfs_template, "tdt", "sh", terminal=True)
    for command in (("create",), ("run", "--detach")):
        result = cli(*command, "--bundle", str(bundle), "tdt", check=False)
        assert result.returncode == 1
        message = cli.errors()[-1]
        assert "--console-socket" in message and "detach" in message, message  # runc: "cannot allocate tty if runc will detach without setting console socket"
        assert cli("state", "tdt", check=False).returncode == 1


def _run_with_listen_fds(cli: Cli, bundle: Path, cid: str, listen_pid: str, tmp: Path) -> None:
    """`run --detach --preserve-fds 1` under LISTEN_FDS=2, with fds 3, 4 (listening) and 5 open;
    LISTEN_PID is `$$` (the command's own PID: sh execs it) or what is given."""
    for name in ("l3", "l4", "p5"):
        (tmp / name).write_text(name)
    wrapper = ('LISTEN_PID=' + listen_pid + '; export LISTEN_PID; '
               'exec "$@" 3<"$D/l3" 4<"$D/l4" 5<"$D/p5"')
    env = {**os.environ, "LISTEN_FDS": "2", "D": str(tmp)}
    command = ["sh", "-c", wrapper, "sh", *cli.argv("run", "--detach", "--preserve-fds", "1",
                                                    "--bundle", str(bundle), cid)]
    with open(tmp / f"{cid}.out", "w") as out:
        done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                              timeout=60)
    assert done.returncode == 0, (tmp / f"{cid}.out").read_text()


def test_listen_fds_go_into_the_container_before_the_preserved_ones(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    bundle = make_bundle(cli, rootfs_template, "sa", "sleep", "1000")
    _run_with_listen_fds(cli, bundle, "sa", "$$", cli.tmp_path)
    pid = cli.state("sa")["pid"]
    fds = _fds(pid)
    assert sorted(fds) == [0, 1, 2, 3, 4, 5], fds
    assert [fds[3], fds[4], fds[5]] == [str(cli.tmp_path / n) for n in ("l3", "l4", "p5")], fds
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"LISTEN_FDS=2" in environ and b"LISTEN_PID=1" in environ, environ
    # An exec gets none of them (runc passes them to create and run only).
    exec_env = cli("exec", "sa", "env").stdout.splitlines()
    assert not [line for line in exec_env if line.startswith("LISTEN_")], exec_env


def test_listen_fds_for_another_process_are_not_passed(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    """go-systemd's activation.Files (runc's): LISTEN_FDS is for the process LISTEN_PID names."""
    bundle = make_bundle(cli, rootfs_template, "sb", "sleep", "1000")
    _run_with_listen_fds(cli, bundle, "sb", "1", cli.tmp_path)
    pid = cli.state("sb")["pid"]
    fds = _fds(pid)
    assert sorted(fds) == [0, 1, 2, 3], fds  # --preserve-fds 1 alone: the command's fd 3
    assert fds[3] == str(cli.tmp_path / "l3")
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert not [e for e in environ if e.startswith(b"LISTEN_")], environ
