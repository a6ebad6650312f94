"""parent="caller": the init and exec'd processes end up children of the caller's subreaper.

containerd's runc shim and conmon are child subreapers that learn a task's exit by
reaping the PID in the pid file. Each test runs a stand-in for them in a subprocess
(never pytest itself: a subreaper pytest would collect every orphan of the suite):
a process that calls PR_SET_CHILD_SUBREAPER, drives corral (the library, or the
command line as the shim calls it), checks whose child each process is, and reaps
them itself, so that the exit statuses it reports are the kernel's. It reaps
everything before it exits, so that no zombie is left to a PID 1 that may not reap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from corral import Runtime
from corral.executor.protocol import HANDED_OFF
from tests.integration.conftest import leaks_of, make_config

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[2]

#: The library as a shim embedding it would use it: it is the subreaper itself.
LIBRARY = r"""
import json, os, signal, sys
from corral import Process, Runtime
from corral.config import Config
from corral.executor import syscalls as sc
from corral.executor.linux import LinuxExecutor

root, config_path = sys.argv[1:3]
sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)

def parent(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])

out = {}
config = Config.from_json(open(config_path).read())
with Runtime(root, run_root=root + "/run", executor=LinuxExecutor(parent="caller")) as runtime:
    box = runtime.create("lib", config)
    init = box.pid
    out["init_parent_is_us"] = parent(init) == os.getpid()
    out["monitor_recorded"] = box.record.monitor_pid
    box.start()
    out["state_after_start"] = box.state.value
    handle = box.exec(Process(args=("sleep", "1000"), env=config.process.env))
    out["exec_parent_is_us"] = parent(handle.pid) == os.getpid()
    out["exec_poll"] = repr(handle.poll())
    os.kill(handle.pid, signal.SIGTERM)
    out["exec_reaped"] = os.waitstatus_to_exitcode(os.waitpid(handle.pid, 0)[1])
    out["exec_status"] = handle.wait(10)  # returns once it is gone; the status is the reaper's
    box.signal(signal.SIGKILL)
    out["init_reaped"] = os.waitstatus_to_exitcode(os.waitpid(init, 0)[1])
    out["init_status"] = box.wait(10)
    out["state_after_exit"] = box.state.value
    out["journal"] = box.history()[-1].detail
    box.destroy()
while True:  # leave no zombie behind
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
print(json.dumps(out))
"""

#: A stand-in for containerd's runc shim: runs each command line, answers questions about
#: the processes named in pid files, reaps them.
SHIM = r"""
import json, os, subprocess, sys
from corral.executor import syscalls as sc

sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
steps = json.loads(sys.argv[1])
out = []

def parent(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])

for step in steps:
    if "run" in step:  # files, not pipes: create's stdio becomes the container's, which keeps it open
        with open(step["stdout"], "w") as stdout, open(step["stdout"] + ".err", "w+") as stderr:
            done = subprocess.run(step["run"], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
            stderr.seek(0)
            out.append([done.returncode, stderr.read()[-500:]])
    elif "parent_is_us" in step:
        pid = int(open(step["parent_is_us"]).read())
        out.append(parent(pid) == os.getpid())
    elif "reap" in step:  # as a subreaper must: any child, until this one (a PID 1 that exits
        pid = int(open(step["reap"]).read())  # waits until its namespace's processes are reaped)
        while True:
            reaped, status = os.waitpid(-1, 0)
            if reaped == pid:
                out.append(os.waitstatus_to_exitcode(status))
                break
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
print(json.dumps(out))
"""


def _python(script: str, *args: str) -> Any:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture
def root(tmp_path: Path) -> Any:
    path = tmp_path / "root"
    yield path
    if (path / "corral.db").exists():
        runtime = Runtime(path, run_root=path / "run")
        try:
            leaks = leaks_of(runtime, tmp_path)
        finally:
            runtime.close()
        assert not leaks, leaks


def test_the_library_hands_the_init_and_exec_to_the_callers_subreaper(
    root: Path, bundle: Path, tmp_path: Path
) -> None:
    config_path = tmp_path / "config.json"
    config_path.write_text(make_config(bundle, "lib", "sleep", "1000").to_json())
    out = _python(LIBRARY, str(root), str(config_path))
    assert out["init_parent_is_us"] is True
    assert out["monitor_recorded"] is None  # no monitor is left once the init is handed over
    assert out["state_after_start"] == "running"
    assert out["exec_parent_is_us"] is True and out["exec_poll"] == "None"
    assert out["exec_reaped"] == -15  # the reaper, not corral, gets the status
    assert out["exec_status"] is None
    assert out["init_reaped"] == -9
    assert out["init_status"] is None
    assert out["state_after_exit"] == "stopped"
    assert out["journal"]["exit"] == "unknown" and out["journal"]["exit_unknown_reason"] == HANDED_OFF


def _cli_bundle(bundle: Path, cid: str, *args: str) -> Path:
    (bundle / "config.json").write_text(make_config(bundle, cid, *args).to_json())
    return bundle


@pytest.mark.parametrize("how", ["flag", "wrapper"])
def test_the_command_line_hands_over_as_containerds_shim_calls_it(
    root: Path, bundle: Path, tmp_path: Path, how: str
) -> None:
    if how == "flag":
        corral = [sys.executable, "-m", "corral.cli", "--root", str(root), "--parent", "caller"]
    else:
        wrapper = Path(sys.executable).with_name("corral-runc")
        if not wrapper.exists():
            pytest.skip("scripts/install writes .venv/bin/corral-runc")
        corral = [str(wrapper), "--root", str(root)]  # its --parent defaults to caller
    _cli_bundle(bundle, "shimmed", "sh", "-c", "echo out; sleep 1000")
    out_file, pid_file, exec_pid = tmp_path / "out", tmp_path / "init.pid", tmp_path / "exec.pid"
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["sleep", "1000"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}))
    scratch = str(tmp_path / "scratch")

    def run(*args: str, stdout: str = scratch) -> dict[str, Any]:
        return {"run": [*corral, *args], "stdout": stdout}

    steps = [
        run("create", "--bundle", str(bundle), "--pid-file", str(pid_file), "shimmed", stdout=str(out_file)),
        {"parent_is_us": str(pid_file)},
        run("start", "shimmed"),
        run("exec", "--process", str(process), "--detach", "--pid-file", str(exec_pid), "shimmed"),
        {"parent_is_us": str(exec_pid)},
        run("kill", "shimmed", "9"),
        {"reap": str(pid_file)},
        run("state", "shimmed", stdout=str(tmp_path / "state.json")),
        run("delete", "shimmed"),
        run("delete", "--force", "shimmed"),  # the cleanup shim's call, after the container is gone
    ]
    out = _python(SHIM, json.dumps(steps))
    assert [step[0] if isinstance(step, list) else step for step in out] == [
        0, True, 0, 0, True, 0, -9, 0, 0, 0
    ], out
    assert out_file.read_text() == "out\n"  # create's fd 1 became the container's stdout
    assert json.loads((tmp_path / "state.json").read_text())["status"] == "stopped"


def test_the_command_line_keeps_its_monitor_by_default(root: Path, bundle: Path, tmp_path: Path) -> None:
    corral = [sys.executable, "-m", "corral.cli", "--root", str(root)]
    _cli_bundle(bundle, "kept", "sleep", "1000")
    pid_file = tmp_path / "init.pid"
    steps = [
        {"run": [*corral, "create", "--bundle", str(bundle), "--pid-file", str(pid_file), "kept"], "stdout": str(tmp_path / "o")},
        {"parent_is_us": str(pid_file)},
        {"run": [*corral, "delete", "--force", "kept"], "stdout": str(tmp_path / "o")},
    ]
    out = _python(SHIM, json.dumps(steps))
    assert [out[0][0], out[1], out[2][0]] == [0, False, 0], out
