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
