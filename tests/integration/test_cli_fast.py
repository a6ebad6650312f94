"""The one-shot commands containerd calls import no heavy library, and still hand over what they must.

Each command runs as its own process under `python -X importtime`, which lists
every module the process imported: `state`, `start`, `ps`, `pause`, `resume`
and `kill` must not import SQLAlchemy, Alembic, pyroute2 or `transitions`
(issue 12: one process per call). A test that can fail: an import of the
Repository anywhere on these paths shows up here.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from corral import Runtime
from tests.integration.test_cli import Cli, cli, frozen, make_bundle  # noqa: F401 - `cli` is a fixture

HEAVY = ("sqlalchemy", "alembic", "pyroute2", "transitions")


def imported(cli: Cli, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run one command under -X importtime; its result and the top-level packages it imported."""
    command = [sys.executable, "-X", "importtime", "-m", "corral.cli", "--root", str(cli.root), *args]
    with open(cli.tmp_path / "fast.out", "w+") as out, open(cli.tmp_path / "fast.err", "w+") as err:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=60)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    modules = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    messages = "\n".join(line for line in stderr.splitlines() if not line.startswith("import time:"))
    return subprocess.CompletedProcess(command, done.returncode, stdout, messages), modules


def test_one_shot_commands_import_no_heavy_library(cli: Cli, rootfs_template: Path) -> None:
    bundle = make_bundle(cli, rootfs_template, "fast", "sleep", "1000")
    cli("create", "--bundle", str(bundle), "fast")  # create opens the library: the store is recovered
    calls = [
        ("state", "fast"),
        ("start", "fast"),
        ("state", "fast"),
        ("ps", "--format", "json", "fast"),
        ("pause", "fast"),
        ("resume", "fast"),
        ("kill", "fast", "USR1"),
        ("kill", "--all", "fast", "USR2"),
    ]
    for args in calls:
        result, modules = imported(cli, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert "corral" in modules, modules  # the parse worked
        assert sorted(m for m in modules if m in HEAVY) == [], args
        if args[0] == "pause":
            assert frozen("fast")
    assert json.loads(imported(cli, "state", "fast")[0].stdout)["status"] == "running"
    runtime = Runtime(cli.root, run_root=cli.root / "run", recover=False)
    try:
        history = runtime.load("fast").history()
        assert [(e.event, e.from_state, e.to_state) for e in history][2:] == [
            ("start", "created", "running"),
            ("pause", "running", "paused"),
            ("resume", "paused", "running"),
            ("signal", "running", "running"),
            ("signal", "running", "running"),
        ]
        assert [dict(e.detail) for e in history[-2:]] == [{"signal": 10, "all": False}, {"signal": 12, "all": True}]
    finally:
        runtime.close()


def test_an_interrupted_intent_sends_the_call_to_the_library_which_finishes_it(
    cli: Cli, rootfs_template: Path
) -> None:
    """The cheap path never skips recovery: a crashed controller's intent is finished first."""
    for cid in ("victim", "other"):
        cli("create", "--bundle", str(make_bundle(cli, rootfs_template, cid, "sleep", "1000")), cid)
        cli("start", cid)
    con = sqlite3.connect(cli.root / "corral.db")  # what a controller killed after its pause intent leaves
    with con:
        con.execute("UPDATE containers SET pending_event = 'pause', version = version + 1 WHERE id = 'victim'")
    con.close()
    result, modules = imported(cli, "pause", "other")
    assert result.returncode == 0, result.stderr
    assert "sqlalchemy" in modules  # the library's path: it opened the store and recovered
    runtime = Runtime(cli.root, run_root=cli.root / "run", recover=False)
    try:
        victim = runtime.load("victim").record
        assert victim.pending_event is None and victim.state == "running"
        assert "interrupted" in (victim.last_error or "")
        assert runtime.load("other").recorded_state.value == "paused"
    finally:
        runtime.close()
    _, modules = imported(cli, "resume", "other")  # nothing left to finish: the cheap path again
    assert [m for m in modules if m in HEAVY] == []


#: What the plain reads (corral/cli/oneshot.py + quickread.py) leave out besides HEAVY.
READS_NEVER = (*HEAVY, "argparse", "json", "typing", "dataclasses", "enum", "pathlib", "re")
#: What start/pause/resume/kill leave out: the parser, and for the freezer the drivers and the config.
WRITES_NEVER = (*HEAVY, "argparse", "corral.cli.parser", "corral.cli.app")
FREEZER_NEVER = ("corral.config", "corral.executor.cgroups.base", "corral.executor.cgroups.v1", "corral.executor.cgroups.v2")


def imported_by_wrapper(cli: Cli, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """One command through `corral-runc` (python -S, as containerd runs it) under -X importtime:
    its result and every module it imported (site's own imports would hide `re` or `pathlib`)."""
    wrapper = Path(sys.executable).with_name("corral-runc")
    if not wrapper.exists():
        pytest.skip("scripts/install writes .venv/bin/corral-runc")
    command = [sys.executable, "-S", "-X", "importtime", str(wrapper), "--root", str(cli.root), *args]
    with open(cli.tmp_path / "wrapper.out", "w+") as out, open(cli.tmp_path / "wrapper.err", "w+") as err:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=60)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    modules = {
        line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:") and "|" in line
    }
    messages = "\n".join(line for line in stderr.splitlines() if not line.startswith("import time:"))
    return subprocess.CompletedProcess(command, done.returncode, stdout, messages), modules


def _found(modules: set[str], never: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in never))


def test_the_runc_wrapper_s_calls_import_only_what_each_needs(cli: Cli, rootfs_template: Path) -> None:
    """Through the wrapper the shim runs: state, ps and list read with sqlite3 alone (no argparse,
    json, typing, dataclasses, enum, pathlib, re); the transitions skip argparse; pause, resume
    and kill 9 reach the freezer without the cgroup drivers or corral.config."""
    bundle = make_bundle(cli, rootfs_template, "lean", "sleep", "1000")
    cli("create", "--bundle", str(bundle), "lean")
    calls = [
        (("state", "lean"), READS_NEVER),
        (("start", "lean"), WRITES_NEVER),
        (("state", "lean"), READS_NEVER),
        (("ps", "--format", "json", "lean"), READS_NEVER),
        (("list", "--quiet"), READS_NEVER),
        (("list", "--format", "json"), READS_NEVER),
        (("pause", "lean"), WRITES_NEVER + FREEZER_NEVER),
        (("state", "lean"), READS_NEVER),
        (("resume", "lean"), WRITES_NEVER + FREEZER_NEVER),
        (("kill", "lean", "CONT"), WRITES_NEVER + FREEZER_NEVER),
    ]
    outputs = []
    for args, never in calls:
        result, modules = imported_by_wrapper(cli, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert "corral.cli.oneshot" in modules, modules
        assert _found(modules, never) == [], args
        outputs.append(result.stdout)
        if args[0] == "pause":
            assert frozen("lean")
    assert [json.loads(outputs[i])["status"] for i in (0, 2, 7)] == ["created", "running", "paused"]
    pids = json.loads(outputs[3])
    assert pids and json.loads(outputs[2])["pid"] in pids
    assert outputs[4] == "lean\n"
    assert [s["id"] for s in json.loads(outputs[5])] == ["lean"]
    assert not frozen("lean")
    result, modules = imported_by_wrapper(cli, "kill", "lean", "9")
    assert result.returncode == 0, result.stderr
    assert _found(modules, WRITES_NEVER + FREEZER_NEVER) == []
    # Anything unusual is argparse's, with its message and exit status.
    result, modules = imported_by_wrapper(cli, "state", "--bogus", "lean")
    assert result.returncode == 1 and "unrecognized arguments" in result.stderr and "argparse" in modules
