"""The `corral` command driven as containerd drives runc: one subprocess per call.

Each test has its own `--root` under tmp_path, bundles made by `corral spec`
then pointed at a busybox rootfs, and cgroups under this session's parent. At
the end every container is force-deleted through the CLI and the kernel is
checked for leaks through the library (conftest.leaks_of).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral import Runtime
from tests.integration.conftest import CGROUP_PARENT, leaks_of

pytestmark = pytest.mark.root

CGROUP_ROOT = Path("/sys/fs/cgroup")
V2 = (CGROUP_ROOT / "cgroup.controllers").exists()

#: The runtime spec's state schema (schema/state-schema.json): required fields and types.
STATE_SCHEMA: dict[str, type | tuple[type, ...]] = {
    "ociVersion": str,
    "id": str,
    "status": str,
    "pid": int,
    "bundle": str,
}
STATUSES = ("creating", "created", "running", "paused", "stopped")


class Cli:
    """Runs `python -m corral.cli --root ROOT --log LOG --log-format json ...` and remembers its ids."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "root"
        self.log = tmp_path / "log.json"
        self.tmp_path = tmp_path

    def argv(self, *args: str) -> list[str]:
        """The command line of one call (for a test that starts it itself, e.g. a foreground run)."""
        return [sys.executable, "-m", "corral.cli", "--root", str(self.root), "--log", str(self.log),
                "--log-format", "json", *args]

    def __call__(self, *args: str, check: bool = True, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        command = self.argv(*args)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        if "stdout" in kwargs:
            result = subprocess.run(command, text=True, timeout=timeout, **kwargs)
        else:
            # Files, not pipes: a container given the command's stdio keeps a pipe open
            # long after the command exits (containerd reads its pipes the same way).
            with open(self.tmp_path / "cli.out", "w+") as out, open(self.tmp_path / "cli.err", "w+") as err:
                done = subprocess.run(command, timeout=timeout, stdout=out, stderr=err, **kwargs)
                out.seek(0)
                err.seek(0)
                result = subprocess.CompletedProcess(command, done.returncode, out.read(), err.read())
        if check:
            assert result.returncode == 0, f"{args}: exit {result.returncode}: {result.stderr}"
        return result

    def state(self, cid: str) -> dict[str, Any]:
        return json.loads(self("state", cid).stdout)

    def wait_for(self, cid: str, status: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(cid)
            if state["status"] == status or time.monotonic() > deadline:
                assert state["status"] == status, state
                return state
            time.sleep(0.05)

    def errors(self) -> list[str]:
        if not self.log.exists():
            return []
        lines = [json.loads(line) for line in self.log.read_text().splitlines()]
        for line in lines:
            assert set(line) == {"level", "msg", "time"}, line
        return [line["msg"] for line in lines if line["level"] == "error"]


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(tmp_path)
    yield runner
    if not (runner.root / "corral.db").exists():
        return
    listed = runner("list", "--format", "json", check=False)
    for state in json.loads(listed.stdout or "[]"):
        runner("delete", "--force", state["id"], check=False)
    runtime = Runtime(runner.root, run_root=runner.root / "run")
    try:
        leaks = leaks_of(runtime, tmp_path)
    finally:
        runtime.close()
    assert not leaks, leaks


def make_bundle(cli: Cli, rootfs_template: Path, cid: str, *args: str, **process: Any) -> Path:
    """`corral spec`, then the busybox rootfs, `args`, and cgroups under the session's parent."""
    bundle = cli.tmp_path / f"bundle-{cid}"
    bundle.mkdir()
    cli("spec", "--bundle", str(bundle))
    shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = list(args)
    config["process"]["terminal"] = False  # `corral spec` writes true, as runc does
    config["process"].update(process)
    config["linux"]["cgroupsPath"] = f"{CGROUP_PARENT}/cli-{cid}"
    config["annotations"] = {"org.example.test": cid}
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def frozen(cid: str) -> bool:
    """What the kernel's freezer says about the container's cgroup."""
    path = f"{CGROUP_PARENT}/cli-{cid}".lstrip("/")
    if V2:
        return "frozen 1" in (CGROUP_ROOT / path / "cgroup.events").read_text()
    return (CGROUP_ROOT / "freezer" / path / "freezer.state").read_text().strip() == "FROZEN"


def check_state_schema(state: dict[str, Any], cid: str, bundle: Path) -> None:
    for key, kind in STATE_SCHEMA.items():
        assert isinstance(state[key], kind), (key, state)
    assert state["ociVersion"].startswith("1.")
    assert state["id"] == cid and state["bundle"] == str(bundle)
    assert state["status"] in STATUSES
    assert isinstance(state["annotations"], dict) and all(isinstance(v, str) for v in state["annotations"].values())
    assert isinstance(state["created"], str) and state["created"].endswith("Z")
    assert isinstance(state["owner"], str)


def test_whole_lifecycle(cli: Cli, rootfs_template: Path) -> None:
    bundle = make_bundle(cli, rootfs_template, "life", "sleep", "1000")
    pid_file = bundle / "init.pid"
    cli("create", "--bundle", str(bundle), "--pid-file", str(pid_file), "life")
    pid = int(pid_file.read_text())
    state = cli.state("life")
    check_state_schema(state, "life", bundle)
    assert (state["status"], state["pid"]) == ("created", pid)
    assert state["annotations"] == {"org.example.test": "life"}
    assert os.path.exists(f"/proc/{pid}")

    cli("start", "life")
    assert cli.state("life")["status"] == "running"
    ps = cli("ps", "--format", "json", "life")
    assert json.loads(ps.stdout) == [pid]  # only the JSON list: containerd reads stdout and stderr together
    assert ps.stderr == ""
    table = cli("ps", "life").stdout.splitlines()
    assert "PID" in table[0] and any(str(pid) in line and "sleep" in line for line in table[1:])

    cli("pause", "life")
    assert frozen("life")
    assert cli.state("life")["status"] == "paused"
    cli("resume", "life")
    assert not frozen("life")
    assert cli.state("life")["status"] == "running"

    out = cli("exec", "life", "sh", "-c", "echo in $(hostname); exit 7", check=False)
    assert (out.returncode, out.stdout) == (7, "in corral\n")
    process_file = cli.tmp_path / "process.json"  # how containerd's shim execs
    process_file.write_text(json.dumps({"args": ["sh", "-c", "echo p=$P; exit 3"], "cwd": "/", "env": ["P=1"]}))
    out = cli("exec", "--process", str(process_file), "life", check=False)
    assert (out.returncode, out.stdout) == (3, "p=1\n")
    exec_pid_file = bundle / "exec.pid"
    cli("exec", "--detach", "--pid-file", str(exec_pid_file), "--env", "X=1", "life", "sleep", "100")
    exec_pid = int(exec_pid_file.read_text())
    assert sorted(json.loads(cli("ps", "--format", "json", "life").stdout)) == sorted([pid, exec_pid])
    with open(f"/proc/{exec_pid}/environ", "rb") as f:
        assert b"X=1" in f.read().split(b"\0")

    listed = json.loads(cli("list", "--format", "json").stdout)
    assert [(s["id"], s["status"], s["pid"]) for s in listed] == [("life", "running", pid)]
    assert cli("list", "--quiet").stdout == "life\n"

    refused = cli("delete", "life", check=False)
    assert refused.returncode == 1 and "not stopped" in refused.stderr

    cli("kill", "life", "9")  # a number, as the shim sends it
    state = cli.wait_for("life", "stopped")
    assert state["pid"] == 0
    # The read-only path saw the init gone and handed over to the library, which recorded it.
    runtime = Runtime(cli.root, run_root=cli.root / "run", recover=False)
    try:
        box = runtime.load("life")
        assert box.recorded_state.value == "stopped"
        assert box.history()[-1].event == "exited"
    finally:
        runtime.close()
    again = cli("kill", "life", "KILL", check=False)
    assert again.returncode == 1
    assert cli.errors()[-1] == "container not running"  # containerd: "process already finished"

    cli("delete", "life")
    gone = cli("state", "life", check=False)
    assert gone.returncode == 1 and "does not exist" in gone.stderr
    assert "does not exist" in cli.errors()[-1]
    assert cli("delete", "--force", "life").returncode == 0  # the cleanup shim's call
    assert cli("delete", "life", check=False).returncode == 1


def test_create_gives_its_stdio_to_the_container(cli: Cli, rootfs_template: Path) -> None:
    bundle = make_bundle(cli, rootfs_template, "stdio", "sh", "-c", "read line; echo got $line; echo err >&2")
    (cli.tmp_path / "in").write_text("hello\n")
    with open(cli.tmp_path / "in") as stdin, open(cli.tmp_path / "out", "w") as out, open(cli.tmp_path / "err", "w") as err:
        cli("create", "--bundle", str(bundle), "stdio", stdin=stdin, stdout=out, stderr=err)
    cli("start", "stdio")
    cli.wait_for("stdio", "stopped")
    assert (cli.tmp_path / "out").read_text() == "got hello\n"
    assert (cli.tmp_path / "err").read_text() == "err\n"
    cli("delete", "stdio")


def test_run_in_the_foreground_exits_with_the_containers_status(cli: Cli, rootfs_template: Path) -> None:
    bundle = make_bundle(cli, rootfs_template, "fg", "sh", "-c", "echo ran; exit 42")
    result = cli("run", "--bundle", str(bundle), "fg", check=False)
    assert (result.returncode, result.stdout) == (42, "ran\n")
    assert cli("state", "fg", check=False).returncode == 1  # run deletes it after it exits


def test_run_detached_and_kill_all_by_name(cli: Cli, rootfs_template: Path) -> None:
    bundle = make_bundle(cli, rootfs_template, "bg", "sh", "-c", "sleep 100 & sleep 100")
    cli("run", "--detach", "--bundle", str(bundle), "--pid-file", str(bundle / "pid"), "bg")
    assert cli.state("bg")["status"] == "running"
    deadline = time.monotonic() + 10
    while len(json.loads(cli("ps", "--format", "json", "bg").stdout)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    cli("kill", "--all", "bg", "SIGKILL")
    cli.wait_for("bg", "stopped")
    assert json.loads(cli("ps", "--format", "json", "bg").stdout) == []
    cli("delete", "bg")


def test_delete_force_kills_a_running_container(cli: Cli, rootfs_template: Path) -> None:
    bundle = make_bundle(cli, rootfs_template, "forced", "sleep", "1000")
    cli("run", "--detach", "--bundle", str(bundle), "forced")
    pid = cli.state("forced")["pid"]
    cli("delete", "--force", "forced")
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] == "Z"
    assert cli("state", "forced", check=False).returncode == 1


def test_errors_are_logged_as_containerd_reads_them(cli: Cli, rootfs_template: Path) -> None:
    bundle = make_bundle(cli, rootfs_template, "bad", "/no/such/program")
    result = cli("create", "--bundle", str(bundle), "bad", check=False)
    assert result.returncode == 1
    message = cli.errors()[-1]
    assert "/no/such/program" in message and message in result.stderr
    assert cli("state", "bad", check=False).returncode == 1  # nothing left behind

    tty = make_bundle(cli, rootfs_template, "tty", "sh", terminal=True)
    result = cli("create", "--bundle", str(tty), "tty", check=False)  # a terminal, and nowhere to send it
    assert result.returncode == 1 and "--console-socket" in cli.errors()[-1]
    result = cli("create", "--bundle", str(tty), "--console-socket", str(cli.tmp_path / "sock"), "tty", check=False)
    assert result.returncode == 1 and "console" in cli.errors()[-1]  # nobody listens there
    assert cli("state", "tty", check=False).returncode == 1  # nothing left behind

    missing = cli("create", "--bundle", str(cli.tmp_path / "nowhere"), "nb", check=False)
    assert missing.returncode == 1 and "config.json" in cli.errors()[-1]

    bundle_ok = make_bundle(cli, rootfs_template, "dup", "sleep", "1000")
    cli("create", "--bundle", str(bundle_ok), "dup")
    second = cli("create", "--bundle", str(bundle_ok), "dup", check=False)
    assert second.returncode == 1 and "already exists" in cli.errors()[-1]
    tty_exec = cli("exec", "--tty", "dup", "sh", check=False)
    assert tty_exec.returncode == 255 and "--console-socket" in cli.errors()[-1]  # runc's exec fails with 255
    update = cli("update", "--kernel-memory", "1000000", "dup", check=False)
    assert update.returncode == 1 and "not supported" in cli.errors()[-1]
    systemd = cli("--systemd-cgroup", "create", "--bundle", str(bundle_ok), "sd", check=False)
    assert systemd.returncode == 1 and "systemd" in cli.errors()[-1]
    cli("delete", "dup")  # created: killed and removed, as runc does


def test_events_stats_once(cli: Cli, rootfs_template: Path) -> None:
    bundle = make_bundle(cli, rootfs_template, "ev", "sleep", "1000")
    cli("run", "--detach", "--bundle", str(bundle), "ev")
    event = json.loads(cli("events", "--stats", "ev").stdout)
    assert (event["type"], event["id"]) == ("stats", "ev")
    assert event["data"]["pids"]["current"] >= 1
    assert event["data"]["memory"]["usage"]["usage"] > 0
    cli("delete", "--force", "ev")


def _popen(cli: Cli, *args: str) -> subprocess.Popen[bytes]:
    out = open(cli.tmp_path / f"popen-{args[-1]}.out", "w")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "corral.cli", "--root", str(cli.root), "--log", str(cli.log), "--log-format", "json", *args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )
    finally:
        out.close()


def test_run_in_the_foreground_passes_signals_on(cli: Cli, rootfs_template: Path) -> None:
    bundle = make_bundle(cli, rootfs_template, "sig", "sh", "-c", "trap 'exit 9' TERM; while :; do sleep 0.1; done")
    runner = _popen(cli, "run", "--bundle", str(bundle), "sig")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            listed = json.loads(cli("list", "--format", "json").stdout)
            if listed and listed[0]["status"] == "running":
                break
            time.sleep(0.1)
        time.sleep(0.3)  # let sh install its trap
        runner.send_signal(15)
        assert runner.wait(timeout=30) == 9
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()


def test_events_stream_until_the_container_stops(cli: Cli, rootfs_template: Path) -> None:
    bundle = make_bundle(cli, rootfs_template, "stream", "sleep", "1000")
    cli("run", "--detach", "--bundle", str(bundle), "stream")
    watcher = _popen(cli, "events", "--interval", "100ms", "stream")
    try:
        out = cli.tmp_path / "popen-stream.out"
        deadline = time.monotonic() + 30
        while out.read_text().count("\n") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        cli("kill", "stream", "KILL")
        assert watcher.wait(timeout=30) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(events) >= 2 and all(e["type"] == "stats" and e["id"] == "stream" for e in events)
    cli("delete", "stream")
