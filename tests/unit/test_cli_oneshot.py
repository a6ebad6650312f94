"""The pre-argparse front (corral/cli/oneshot.py) changes nothing a caller sees.

It recognises the plain forms of the calls containerd makes and builds the very
namespace argparse would; everything else goes to argparse. `state`, `ps
--format json` and `list` are printed by quickread.py from store/peek.py: here
their output is compared byte for byte with the argparse path's (inspect.py,
status.py, `json.dumps`) on the same stores, and every case quickread.py leaves
to the library is checked to give the argparse path's output, exit status and
log lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.cli import app, context, oneshot, quickread, status
from corral.cli.parser import build_parser
from corral.executor import proc
from corral.store import peek, readonly

BOOT_ID = Path("/proc/sys/kernel/random/boot_id").read_text().strip()

RECOGNISED = [
    ["state", "c1"],
    ["start", "c1"],
    ["pause", "c1"],
    ["resume", "c1"],
    ["kill", "c1"],
    ["kill", "c1", "9"],
    ["kill", "-a", "c1", "KILL"],
    ["kill", "--all", "c1", "SIGUSR1"],
    ["ps", "--format", "json", "c1"],
    ["ps", "-f", "json", "c1"],
    ["ps", "--format=json", "c1"],
    ["ps", "-f=json", "c1"],
    ["list"],
    ["list", "-q"],
    ["list", "--format", "json", "--quiet"],
    ["list", "--quiet", "-f", "table"],
    ["--root", "/r", "state", "c1"],
    ["--root=/r", "--debug", "start", "c1"],
    ["--root", "/run/containerd/runc/default", "--log", "/b/log.json", "--log-format", "json", "kill", "c1", "9"],
    ["--log-format=text", "--log=/l", "resume", "c1"],
    ["--root=-odd", "state", "c1"],
    ["--root", "", "state", ""],
    ["delete", "c1"],
    ["delete", "-f", "c1"],
    ["delete", "--force", "c1"],
    ["--root", "/run/containerd/runc/k8s.io", "--log", "/b/log.json", "--log-format", "json", "delete", "--force", "c1"],
    ["create", "c1"],
    ["create", "--bundle", "/b", "c1"],
    ["create", "-b", "/b", "c1"],
    ["create", "--bundle=/b", "c1"],
    ["create", "-b=/b", "c1"],
    ["create", "--bundle", "", "c1"],
    ["create", "--pid-file", "/b/init.pid", "c1"],
    ["create", "--pid-file=", "c1"],
    ["create", "--console-socket", "/tmp/pty.sock", "c1"],
    ["create", "--no-pivot", "c1"],
    ["create", "--no-new-keyring", "c1"],
    ["create", "--preserve-fds", "2", "c1"],
    ["create", "--preserve-fds=0", "c1"],
    ["create", "--preserve-fds", "007", "c1"],
    # containerd's shim, as it calls runc
    ["--root", "/run/containerd/runc/default", "--log", "/b/log.json", "--log-format", "json",
     "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "c1"],
    ["--root", "/run/containerd/runc/default", "--log", "/b/log.json", "--log-format", "json",
     "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "--console-socket", "/tmp/pty.sock", "c1"],
    ["--debug", "create", "--no-new-keyring", "--no-pivot", "--preserve-fds", "3", "--console-socket=/s", "-b", "/b",
     "--pid-file", "/p", "c1"],
]

#: Each must reach argparse: its errors, help and every flag this front does not know.
UNUSUAL = [
    [],
    ["--help"],
    ["-h"],
    ["--version"],
    ["-v"],
    ["state"],
    ["state", "--help"],
    ["state", "a", "b"],
    ["state", "-c1"],
    ["--ro", "/r", "state", "c1"],  # argparse's abbreviations
    ["--root", "/a", "--root", "/b", "state", "c1"],
    ["--root", "-x", "state", "c1"],
    ["--root"],
    ["--debug=1", "state", "c1"],
    ["--log-format", "xml", "state", "c1"],
    ["--systemd-cgroup", "kill", "c1"],
    ["--rootless", "true", "list"],
    ["--parent", "caller", "start", "c1"],
    ["state", "--root", "/r", "c1"],
    ["kill", "c1", "-9"],
    ["kill", "c1", "9", "--all"],
    ["kill", "-a", "-a", "c1"],
    ["kill", "--all=1", "c1"],
    ["kill", "-a", "c1", "9", "extra"],
    ["ps", "c1"],
    ["ps", "--format", "table", "c1"],
    ["ps", "--format", "json", "c1", "--", "-ef"],
    ["ps", "-fjson", "c1"],
    ["list", "c1"],
    ["list", "--format", "xml"],
    ["list", "-qf", "json"],
    ["delete"],
    ["delete", "a", "b"],
    ["delete", "--help"],
    ["delete", "--forc", "c1"],
    ["delete", "-f", "-f", "c1"],
    ["delete", "-f", "--force", "c1"],
    ["delete", "--force=1", "c1"],
    ["delete", "c1", "--force"],
    ["delete", "-fc1"],
    ["create"],
    ["create", "--help"],
    ["create", "-h", "c1"],
    ["create", "a", "b"],
    ["create", "--bund", "/b", "c1"],  # argparse's abbreviation
    ["create", "--bundle", "/a", "--bundle", "/b", "c1"],
    ["create", "-b", "/a", "--bundle", "/b", "c1"],
    ["create", "--bundle", "-b", "c1"],
    ["create", "--bundle", "--pid-file", "/p", "c1"],
    ["create", "--pid-file", "-", "c1"],
    ["create", "--bundle"],
    ["create", "-b/b", "c1"],
    ["create", "c1", "--bundle", "/b"],
    ["create", "--no-pivot=1", "c1"],
    ["create", "--no-pivot", "--no-pivot", "c1"],
    ["create", "--preserve-fds", "x", "c1"],
    ["create", "--preserve-fds", "", "c1"],
    ["create", "--preserve-fds", "-1", "c1"],
    ["create", "--preserve-fds", "+1", "c1"],
    ["create", "--preserve-fds", " 1", "c1"],
    ["create", "--preserve-fds", "1_0", "c1"],
    ["create", "--preserve-fds", "\u0663", "c1"],  # a digit int() reads, not ASCII
    ["create", "--preserve-fds", "1" * 19, "c1"],
    ["create", "--detach", "c1"],  # run's, not create's
    ["create", "--", "c1"],
    ["--parent", "caller", "create", "--bundle", "/b", "c1"],
    ["--systemd-cgroup", "create", "c1"],
    ["run", "--bundle", "/b", "c1"],
    ["exec", "c1", "sh"],
    ["frobnicate"],
]


@pytest.mark.parametrize("argv", RECOGNISED, ids=" ".join)
def test_a_recognised_call_gets_argparse_s_namespace(argv: list[str]) -> None:
    recognised = oneshot.recognise(argv)
    assert recognised is not None
    assert vars(recognised) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", UNUSUAL, ids=" ".join)
def test_anything_unusual_is_left_to_argparse(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert oneshot.recognise(argv) is None
    calls: list[tuple[list[str] | None, str]] = []
    monkeypatch.setattr(app, "main", lambda given=None, *, parent="monitor": calls.append((given, parent)) or 7)
    assert oneshot.main(argv, parent="caller") == 7
    assert calls == [(argv, "caller")]


def test_the_flag_tables_are_parser_s() -> None:
    """Every flag recognised here has parser.py's attribute, default, value (switch, choices or int)
    and spellings; every command here has its target."""
    import argparse

    (commands,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    for command, flags in oneshot._FLAGS.items():
        sub = commands.choices[command]
        assert sub.get_default("target") == oneshot._TARGETS[command]
        options = {a.dest: a for a in sub._actions if a.option_strings and a.dest != "help"}
        recognised = {attribute for attribute, _ in flags.values()}
        if command not in ("ps", "list"):  # ps's table runs ps(1); list's flags are all here
            assert recognised == set(options), command
        for spelling, (attribute, value) in flags.items():
            action = sub._option_string_actions[spelling]
            assert action.dest == attribute and spelling in options[attribute].option_strings
            assert set(action.option_strings) <= set(flags), spelling  # every alias, or a form goes to argparse
            if value is None:
                assert isinstance(action, argparse._StoreTrueAction)
            elif value is int:
                assert action.type is int and action.choices is None
            else:
                assert isinstance(value, tuple) and action.nargs is None and action.type is None
                assert set(value) <= set(action.choices or value)
                assert bool(value) == (action.choices is not None)
            if not (command == "ps" and attribute == "format"):  # given, always: json is the only form here
                assert oneshot._COMMAND_DEFAULTS[command][attribute] == action.default
        optional = [a.dest for a in sub._actions if not a.option_strings and a.nargs in ("?", argparse.REMAINDER)]
        assert set(oneshot._COMMAND_DEFAULTS[command]) == (recognised | set(optional)) - ({"format"} if command == "ps" else set())


def test_the_repeated_facts_agree() -> None:
    """quickread.py and peek.py repeat a few constants so as not to import their modules."""
    assert quickread.DEFAULT_ROOT == context.DEFAULT_ROOT
    assert quickread.BOOT_ID_FILE == context.BOOT_ID_FILE
    assert set(quickread.INIT_ALIVE) == set(status.INIT_ALIVE)
    assert set(quickread.OCI_STATUS) == set(status.OCI_STATUS) - {"creating"}
    assert quickread.OCI_VERSION == status.OCI_VERSION
    assert (peek.SCHEMA_REVISION, peek.DB_NAME, peek.BUSY_TIMEOUT_S) == (
        readonly.SCHEMA_REVISION, readonly.DB_NAME, readonly.BUSY_TIMEOUT_S
    )


# -- the reads, against the argparse path -----------------------------------------------------

CONFIGS = {
    "plain": {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "process": {"args": ["sh"]}},
    "odd": {
        "ociVersion": "1.1.0-rc.1",
        "root": {"path": "/abs/root fs"},
        "annotations": {"a\"b": "x\\y\n", "é": "☃", "io.k8s": "", "a\"b ": "two", "k": "v"},
    },
    "bare": {},
    "no-path": {"root": {"readonly": True}, "annotations": {}},
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    """A store at head, recovered in this boot: a running container whose init is this test process,
    a paused and a stopped one, a destroyed one, each config of CONFIGS, and fake cgroup dirs."""
    from corral.store.repository import Repository

    me = proc.identity(os.getpid())
    assert me is not None
    cgroup = tmp_path / "cg"
    (cgroup / "child").mkdir(parents=True)
    (cgroup / "cgroup.procs").write_text(f"{os.getpid()}\n12\n")
    (cgroup / "child" / "cgroup.procs").write_text("3\n12\n")
    root = tmp_path / "root"
    repo = Repository(root)
    try:
        for i, (name, config) in enumerate(CONFIGS.items()):
            for state in ("running", "paused", "stopped", "destroyed"):
                cid = f"{name}-{state}"
                record = repo.insert(container_id=cid, state="creating", pending_event=None, config=json.dumps(config),
                                     bundle=None if i == 2 else f"/bundles/{cid}", run_dir=f"/run/{cid}", boot_id=BOOT_ID,
                                     cgroup_paths={"": str(cgroup)} if i % 2 else {"memory": str(cgroup), "pids": str(cgroup)},
                                     journal_event="create")
                changes: dict[str, object] = {"state": state}
                if state in ("running", "paused"):
                    changes.update(init_pid=me.pid, init_start_time=me.start_time)
                repo.update(record.key, record.version, **changes)
        repo.mark_recovered(BOOT_ID)
    finally:
        repo.close()
    yield root


def _both(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """(exit, stdout, stderr) of the front and of argparse's path for the same command line."""
    front = oneshot.main(argv)
    out, err = capsys.readouterr()
    full = app.main(argv)
    full_out, full_err = capsys.readouterr()
    return (front, out, err), (full, full_out, full_err)


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("state", ["running", "paused", "stopped"])
def test_state_is_the_argparse_path_s_byte_for_byte(
    store: Path, name: str, state: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cid = f"{name}-{state}"
    assert quickread.state(str(store), cid) is not None  # the lean answer, not a hand-over
    front, full = _both(["--root", str(store), "state", cid], capsys)
    assert front == full
    assert json.loads(front[1])["status"] == state


def test_ps_json_is_the_argparse_path_s(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for cid in ("plain-running", "odd-paused", "bare-stopped"):
        assert quickread.ps_json(str(store), cid) is not None
        front, full = _both(["--root", str(store), "ps", "--format", "json", cid], capsys)
        assert front == full
        assert json.loads(front[1]) == sorted({os.getpid(), 12, 3})


@pytest.mark.parametrize("flags", [[], ["--quiet"], ["--format", "json"], ["-f", "json", "-q"]], ids=" ".join)
def test_list_is_the_argparse_path_s(store: Path, flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert quickread.list_(str(store), "json" if "json" in flags else "table", "--quiet" in flags or "-q" in flags)
    front, full = _both(["--root", str(store), "list", *flags], capsys)
    assert front == full
    assert front[1].count("destroyed") == 0 and "plain-running" in front[1]


def _rewrite(root: Path, sql: str, *params: object) -> None:
    import sqlite3

    con = sqlite3.connect(root / "corral.db")
    with con:
        con.execute(sql, params)
    con.close()


HAND_OVERS = {
    "missing": (None, ["state", "nope"]),
    "destroyed": (None, ["state", "plain-destroyed"]),
    "another boot": ("UPDATE containers SET boot_id = 'other' WHERE id = 'plain-running'", ["state", "plain-running"]),
    "a dead init": ("UPDATE containers SET init_start_time = 1 WHERE id = 'plain-running'", ["ps", "-f", "json", "plain-running"]),
    "a number annotation": (
        "UPDATE containers SET config = '{\"annotations\": {\"n\": 1}}' WHERE id = 'bare-stopped'", ["state", "bare-stopped"]
    ),
    "a null root path": (
        "UPDATE containers SET config = '{\"root\": {\"path\": null}}' WHERE id = 'bare-stopped'", ["state", "bare-stopped"]
    ),
    "a config that is not an object": ("UPDATE containers SET config = '[1]' WHERE id = 'bare-stopped'", ["state", "bare-stopped"]),
    "a pending intent elsewhere": ("UPDATE containers SET pending_event = 'pause' WHERE id = 'odd-running'", ["state", "bare-stopped"]),
    "a pending intent in the list": ("UPDATE containers SET pending_event = 'pause' WHERE id = 'odd-running'", ["list"]),
    "a restart since recovery": ("UPDATE recovered_boot SET boot_id = 'before'", ["list", "--format", "json"]),
    "a record still creating": ("UPDATE containers SET state = 'creating' WHERE id = 'plain-stopped'", ["state", "plain-stopped"]),
}


@pytest.mark.parametrize("case", list(HAND_OVERS))
def test_what_only_the_library_decides_is_handed_over(
    store: Path, case: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole call goes to argparse's path, the same argv, nothing printed before. (Not run here:
    the library would recover these records, whose init is this very test process.)"""
    sql, argv = HAND_OVERS[case]
    if sql is not None:
        _rewrite(store, sql)
    argv = ["--root", str(store), *argv]
    handed: list[list[str] | None] = []
    monkeypatch.setattr(app, "main", lambda given=None, *, parent="monitor": handed.append(given) or 7)
    assert oneshot.main(argv) == 7
    assert handed == [argv]
    assert capsys.readouterr() == ("", "")


def test_a_hand_over_prints_and_logs_what_argparse_s_path_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No store, a missing container, --debug: the same exit, output and log lines (their times aside)."""
    for argv in (["state", "c1"], ["ps", "--format", "json", "c1"], ["list", "--format", "json"], ["kill", "c1", "NOPE"],
                 ["--debug", "state", "c1"], ["start", "c1"]):
        results = []
        for run in (oneshot.main, app.main):
            log = tmp_path / "log.json"  # one name for both: a debug line repeats the command line
            code = run(["--root", str(tmp_path / "root"), "--log", str(log), "--log-format", "json", *argv])
            out, err = capsys.readouterr()
            lines = [{k: v for k, v in json.loads(line).items() if k != "time"} for line in log.read_text().splitlines()] if log.exists() else []
            log.unlink(missing_ok=True)
            results.append((code, out, err, lines))
        assert results[0] == results[1], argv
        assert not (tmp_path / "root").exists()


def test_state_imports_only_sqlite3_and_corral_s_small_modules(store: Path) -> None:
    """What a plain `state` imports: no argparse, json, typing, dataclasses, enum, pathlib, re."""
    code = (
        "import sys; from corral.cli import main\n"
        f"rc = main(['--root', {str(store)!r}, 'state', 'plain-stopped'])\n"
        "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in "
        "('argparse', 'json', 'typing', 'dataclasses', 'enum', 'pathlib', 're', 'sqlalchemy', 'corral')), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.stderr.strip().splitlines()[-1] == repr(0) + " " + repr(sorted([
        "corral", "corral.cli", "corral.cli.oneshot", "corral.cli.quickread", "corral.cli.roots", "corral.executor",
        "corral.executor.procstat", "corral.store", "corral.store.peek", "corral.store.sqlite_uri", "corral.version",
    ])), result.stderr
    assert json.loads(result.stdout)["status"] == "stopped"


def test_a_repeated_annotation_name_is_read_as_json_loads_reads_it(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Its first place, its last value (a config written by hand may repeat a name)."""
    raw = '{"annotations": {"a": "1", "b": "2", "a": "3", "\\u00e9\\"": "\\ud83d\\ude00"}, "ociVersion": "1.0.0"}'
    _rewrite(store, "UPDATE containers SET config = ? WHERE id = 'bare-stopped'", raw)
    assert quickread.state(str(store), "bare-stopped") is not None
    front, full = _both(["--root", str(store), "state", "bare-stopped"], capsys)
    assert front == full
    assert list(json.loads(front[1])["annotations"].items()) == [("a", "3"), ("b", "2"), ('é"', "\U0001f600")]


def test_an_error_while_reading_is_left_to_argparse_s_path(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read writes nothing, so an unexpected error (a /proc file it may not read) only means
    argparse's path reads again and reports it its own way."""
    def refuse(root: str, cid: str) -> str:
        raise PermissionError(13, "Permission denied", "/proc/1/stat")

    monkeypatch.setattr(quickread, "state", refuse)
    handed: list[list[str] | None] = []
    monkeypatch.setattr(app, "main", lambda given=None, *, parent="monitor": handed.append(given) or 7)
    argv = ["--root", str(store), "state", "plain-running"]
    assert oneshot.main(argv) == 7 and handed == [argv]


# -- create's early helper --------------------------------------------------------------------


@pytest.fixture
def empty_store(tmp_path: Path) -> Path:
    from corral.store.repository import Repository

    root = tmp_path / "root"
    Repository(root).close()
    return root


@pytest.mark.parametrize("failing", ["a missing bundle", "before create runs"])
@pytest.mark.parametrize("path", ["recognised", "argparse's"])
def test_a_create_starts_the_helper_once_and_ends_it_if_untaken(
    empty_store: Path, tmp_path: Path, failing: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both fronts start it (early.py) before anything else, once; a create that fails, whether or not
    it took the helper, leaves none behind. A stand-in helper: `cat` on the socket, which ends at its EOF."""
    import socket

    from corral.cli import early
    from corral.cli.commands import lifecycle
    from corral.errors import CorralError
    from corral.executor import launch

    helpers: list[launch.HelperProcess] = []

    def start_helper() -> launch.Started:
        ours, theirs = socket.socketpair()
        with theirs:
            cat = subprocess.Popen(["cat"], stdin=theirs.fileno(), stdout=subprocess.DEVNULL)
        helpers.append(launch.HelperProcess(cat.pid))  # reaped by the command, as a real one
        return helpers[-1], ours.detach()

    monkeypatch.setattr(launch, "start_helper", start_helper)
    if failing == "before create runs":
        def refuse(ctx: object) -> int:
            raise CorralError("refused")

        monkeypatch.setattr(lifecycle, "create", refuse)
    flag = "--bundle" if path == "recognised" else "--bund"
    argv = ["--root", str(empty_store), "--log", str(tmp_path / "log"), "create", flag, str(tmp_path / "missing"), "c1"]
    assert (oneshot.recognise(argv) is not None) == (path == "recognised")
    assert oneshot.main(argv) == 1
    assert len(helpers) == 1
    assert early.take() is None
    assert helpers[0].returncode is not None  # ended and reaped, not left to the interpreter's exit
    assert ("refused" if failing == "before create runs" else "missing") in (tmp_path / "log").read_text()
