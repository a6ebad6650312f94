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
import time
from pathlib import Path

import pytest

from corral import Runtime
from tests.integration.test_cli import CGROUP_PARENT, Cli, cli, frozen, make_bundle  # noqa: F401 - `cli` is a fixture

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
#: What start/pause/resume/kill leave out: the parser, `dataclasses` (with `inspect`, ast, dis and
#: tokenize: ~10 ms; the identities are corral.identity's named tuples), and for the freezer the
#: drivers and the config.
WRITES_NEVER = (*HEAVY, "argparse", "corral.cli.parser", "corral.cli.app", "logging", "dataclasses", "inspect", "corral.types")
#: What the one-shot delete leaves out: the config's types, the spawn protocol, the executor, `dataclasses`.
DELETE_NEVER = (
    "corral.config", "corral.executor.protocol", "corral.executor.spawn", "corral.executor.linux",
    "dataclasses", "inspect", "corral.types", "corral.executor.cgroups.bpf_devices",
)
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


def _rows(root: Path, key: int) -> dict[str, list[dict[str, object]]]:
    """A record's rows without identity, PIDs, paths named by id, and clock (tests/unit/test_quick_create.py)."""
    from tests.unit.test_quick_create import every_row

    class Root:  # every_row reads `runtime.root` only
        def __init__(self, root: Path) -> None:
            self.root = root

    found = every_row(Root(root), key)  # type: ignore[arg-type]
    for row in found["containers"]:
        row["bundle"] = str(row["bundle"]).rsplit("-", 1)[0]  # bundle-<id>
    for row in found["namespace_paths"]:
        assert isinstance(row.pop("inode"), int)  # the kernel's, one per container
    return found


def _key(root: Path, cid: str) -> int:
    con = sqlite3.connect(root / "corral.db")
    try:
        return int(con.execute("SELECT key FROM containers WHERE id = ? ORDER BY key DESC", (cid,)).fetchone()[0])
    finally:
        con.close()


def _lean(cli: Cli) -> bool:
    """Whether the last command said it took the one-shot path (its --debug line in the log)."""
    lines = cli.log.read_text().splitlines()
    return any("done on the lean path" in line for line in lines[-3:])


#: What a lean create (a config with an absolute cgroupsPath and no hooks) and delete leave out: the parser
#: (oneshot.py recognises the shim's forms), logging (only for a warning), hashlib (only for a store tag),
#: the hooks' runner and `subprocess` (only for a config with hooks), `dataclasses` and with it `inspect`
#: (the config's classes are records: corral/records.py), shutil (only for destroy's rmtree).
CREATE_NEVER = (*HEAVY, "argparse", "corral.cli.parser", "corral.cli.app", "logging", "hashlib",
                "corral.executor.hooks", "subprocess", "dataclasses", "inspect", "shutil")


def test_the_runc_wrapper_s_create_and_delete_import_no_logging_hashlib_or_shutil(cli: Cli, rootfs_template: Path) -> None:
    cli("create", "--bundle", str(make_bundle(cli, rootfs_template, "first", "sleep", "1000")), "first")  # makes the store
    result, modules = imported_by_wrapper(cli, "create", "--bundle", str(make_bundle(cli, rootfs_template, "lean", "sleep", "1000")), "lean")
    assert result.returncode == 0, result.stderr
    assert _found(modules, CREATE_NEVER) == []
    result, modules = imported_by_wrapper(cli, "delete", "--force", "lean")
    assert result.returncode == 0, result.stderr
    assert _found(modules, CREATE_NEVER[:-1]) == []
    assert _found(modules, DELETE_NEVER) == []  # the kernel directly (executor/teardown.py)
    assert not any(Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PARENT.lstrip('/')}/cli-lean"))
    assert not (cli.root / "run" / "lean").exists()
    cli("delete", "--force", "first")


def test_create_and_delete_import_no_heavy_library_and_do_what_the_library_does(
    cli: Cli, rootfs_template: Path
) -> None:
    """A lean create leaves the kernel as the library's does (namespaces, cgroups, pid file, an init waiting
    on its fifo) and the same rows; a lean delete --force removes all of it and records what the library records."""
    import os

    result, modules = imported(cli, "create", "--bundle", str(make_bundle(cli, rootfs_template, "lib", "sleep", "1000")), "lib")
    assert result.returncode == 0, result.stderr
    assert "sqlalchemy" in modules  # no store yet: the library makes it
    bundle = make_bundle(cli, rootfs_template, "lean", "sleep", "1000")
    pid_file = cli.tmp_path / "lean.pid"
    result, modules = imported(cli, "--debug", "--log", str(cli.log), "create", "--bundle", str(bundle), "--pid-file", str(pid_file), "lean")
    assert result.returncode == 0, result.stderr
    assert sorted(m for m in modules if m in HEAVY) == []
    assert _lean(cli)
    pid = int(pid_file.read_text())
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "corral-init"  # waits on its exec fifo
    assert (cli.root / "run" / "lean" / "exec.fifo").exists()
    for ns in ("pid", "mnt", "ipc", "uts"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
    assert f"{CGROUP_PARENT}/cli-lean" in Path(f"/proc/{pid}/cgroup").read_text()
    root = cli.root
    assert _rows(root, _key(root, "lean")) == _rows(root, _key(root, "lib"))
    runtime = Runtime(root, run_root=root / "run", recover=False)
    try:
        record = runtime.load("lean").record
        assert record.init_pid == pid and record.state == "created"
        assert {t: n.inode for t, n in record.namespaces.items()}["pid"] == os.stat(f"/proc/{pid}/ns/pid").st_ino
    finally:
        runtime.close()
    cli("start", "lean")
    cli("start", "lib")
    result, modules = imported(cli, "--debug", "--log", str(cli.log), "delete", "--force", "lean")
    assert result.returncode == 0, result.stderr
    assert sorted(m for m in modules if m in HEAVY) == []
    assert _lean(cli)
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert not (root / "run" / "lean").exists()
    assert not any(Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PARENT.lstrip('/')}/cli-lean"))
    assert not Path(f"/sys/fs/cgroup/{CGROUP_PARENT.lstrip('/')}/cli-lean").exists()
    runtime = Runtime(root, run_root=root / "run", recover=False)
    try:
        runtime.load("lib").destroy(force=True)  # the library's destroy, to compare with
        history = runtime.load("lean").history()
        assert [(e.event, e.to_state) for e in history] == [
            ("create", "creating"), ("create", "created"), ("start", "running"), ("destroy", "destroyed")
        ]
        assert history[-1].detail["force"] is True and history[-1].detail["signal"] == 9
    finally:
        runtime.close()
    assert _rows(root, _key(root, "lean")) == _rows(root, _key(root, "lib"))


def test_create_and_delete_hand_over_with_nothing_written(cli: Cli, rootfs_template: Path) -> None:
    """Hooks, a pending intent, an init that died unobserved: the library's path, which does it all."""
    cli("create", "--bundle", str(make_bundle(cli, rootfs_template, "first", "sleep", "1000")), "first")
    hooked = make_bundle(cli, rootfs_template, "hooked", "sleep", "1000")
    config = json.loads((hooked / "config.json").read_text())
    config["hooks"] = {"poststop": [{"path": "/bin/true"}]}
    (hooked / "config.json").write_text(json.dumps(config))
    result, modules = imported(cli, "create", "--bundle", str(hooked), "hooked")
    assert result.returncode == 0, result.stderr
    assert "sqlalchemy" in modules
    result, modules = imported(cli, "delete", "--force", "hooked")  # poststop: the library runs it
    assert result.returncode == 0, result.stderr
    assert "sqlalchemy" in modules
    # A crashed controller's intent: the library finishes it first, then creates.
    con = sqlite3.connect(cli.root / "corral.db")
    with con:
        con.execute("UPDATE containers SET pending_event = 'pause', version = version + 1 WHERE id = 'first'")
    con.close()
    second = make_bundle(cli, rootfs_template, "second", "sleep", "1000")
    # --parent caller (containerd's): no monitor stays to record the exit, as with runc.
    result, modules = imported(cli, "--parent", "caller", "create", "--bundle", str(second), "second")
    assert result.returncode == 0, result.stderr
    assert "sqlalchemy" in modules
    # An init killed behind corral's back, nobody recording it: the library's `exited` comes before the delete.
    cli("start", "second")
    state = json.loads(cli("state", "second").stdout)
    import os
    import signal

    os.kill(state["pid"], signal.SIGKILL)
    for _ in range(200):
        if not Path(f"/proc/{state['pid']}").exists():
            break
        time.sleep(0.01)
    result, modules = imported(cli, "delete", "second")
    assert result.returncode == 0, result.stderr
    assert "sqlalchemy" in modules
    runtime = Runtime(cli.root, run_root=cli.root / "run", recover=False)
    try:
        assert [e.event for e in runtime.load("second").history()][-2:] == ["exited", "destroy"]
        assert runtime.load("first").record.pending_event is None
    finally:
        runtime.close()


def test_a_lean_create_whose_pid_file_cannot_be_written_is_undone(cli: Cli, rootfs_template: Path) -> None:
    """The pid file is written after the record: when it cannot be, the container is destroyed (force),
    on the lean path too, and the error is the caller's."""
    cli("create", "--bundle", str(make_bundle(cli, rootfs_template, "first", "sleep", "1000")), "first")
    bundle = make_bundle(cli, rootfs_template, "nopid", "sleep", "1000")
    result, modules = imported(cli, "create", "--bundle", str(bundle), "--pid-file", str(cli.tmp_path / "missing" / "p"), "nopid")
    assert result.returncode == 1
    assert sorted(m for m in modules if m in HEAVY) == []
    runtime = Runtime(cli.root, run_root=cli.root / "run", recover=False)
    try:
        record = runtime.load("nopid").record
        assert record.state == "destroyed" and record.pending_event is None
        assert [e.event for e in runtime.load("nopid").history()] == ["create", "create", "destroy"]
        assert record.init_pid is not None
        cmdline = Path(f"/proc/{record.init_pid}/cmdline")
        assert not cmdline.exists() or cmdline.read_bytes() == b""  # gone, or a zombie for its reaper
    finally:
        runtime.close()
    assert not (cli.root / "run" / "nopid").exists()


def _wal_bytes(root: Path) -> int:
    wal = root / "corral.db-wal"
    return wal.stat().st_size if wal.exists() else 0


def test_a_one_shot_write_leaves_the_wal_to_a_later_checkpoint(cli: Cli, rootfs_template: Path) -> None:
    """The last connection to close checkpoints the WAL into the database (two fsyncs, ~3-15 ms
    of a ~45 ms `start`): a one-shot process, which exits right after, leaves it; a caller of
    `corral.cli.main` in its own process still checkpoints. What was written is there either way."""
    from corral.cli import early, main

    cli("create", "--bundle", str(make_bundle(cli, rootfs_template, "wal", "sleep", "1000")), "wal")
    con = sqlite3.connect(cli.root / "corral.db")  # the last connection: closing it empties the WAL
    con.close()
    assert _wal_bytes(cli.root) == 0
    cli("start", "wal")  # `python -m corral.cli`: an entry point, which ends in exit_now
    assert _wal_bytes(cli.root) > 0
    assert cli.state("wal")["status"] == "running"  # a reader rebuilds the WAL index and sees it
    assert not early.exits_now()
    assert main(["--root", str(cli.root), "pause", "wal"]) == 0  # in this process: closed with the checkpoint
    assert _wal_bytes(cli.root) == 0
    assert frozen("wal") and cli.state("wal")["status"] == "paused"
    assert main(["--root", str(cli.root), "delete", "--force", "wal"]) == 0
