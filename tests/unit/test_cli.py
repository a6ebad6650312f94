"""The command line without a kernel: parsing, signal names, the log format, the read-only path."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from corral.cli import main
from corral.cli.commands.exec import build_process, parse_user
from corral.cli.commands.spec import default_spec, to_rootless
from corral.config.features import features as features_document
from corral.cli.context import DEFAULT_ROOT, DEFAULT_RUN_ROOT, write_pid_file
from corral.cli.log import Log, format_line
from corral.cli.parser import UsageError, build_parser, parse_duration
from corral.cli.signals import parse_signal
from corral.cli.status import created_text, oci_state, quick_status
from corral.config import Config, Process, Root
from corral.errors import CorralError
from corral.store.readonly import RecordView, open_readonly
from corral.version import __version__


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"corral version {__version__}"


def test_no_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 1
    assert "no command given" in capsys.readouterr().err


def test_usage_errors_exit_1_like_runc(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["state"]) == 1
    assert "container-id" in capsys.readouterr().err
    assert main(["frobnicate"]) == 1


@pytest.mark.parametrize(
    "command", ["create", "start", "run", "delete", "kill", "pause", "resume", "state", "ps",
                "list", "events", "exec", "spec", "features", "update"],
)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: corral {command}" in capsys.readouterr().out


def test_global_flags_come_before_the_command() -> None:
    args = build_parser().parse_args(
        ["--root", "/r", "--log", "/l.json", "--log-format", "json", "--debug", "--systemd-cgroup",
         "create", "--bundle", "/b", "--pid-file", "/p", "--console-socket", "/s", "--no-pivot",
         "--no-new-keyring", "--preserve-fds", "2", "c1"]
    )
    assert (args.root, args.log, args.log_format, args.debug, args.systemd_cgroup) == ("/r", "/l.json", "json", True, True)
    assert (args.bundle, args.pid_file, args.console_socket, args.no_pivot, args.no_new_keyring) == ("/b", "/p", "/s", True, True)
    assert (args.preserve_fds, args.container_id, args.target) == (2, "c1", "lifecycle:create")


def test_kill_takes_an_optional_signal_after_the_id() -> None:
    parser = build_parser()
    args = parser.parse_args(["kill", "--all", "c1", "KILL"])
    assert (args.all, args.container_id, args.signal) == (True, "c1", "KILL")
    assert parser.parse_args(["kill", "c1"]).signal == "SIGTERM"


def test_exec_arguments_after_the_id_belong_to_the_command() -> None:
    args = build_parser().parse_args(
        ["exec", "-e", "A=1", "--env", "B=2", "--cwd", "/tmp", "-u", "5:6", "--cap", "net_admin",
         "--detach", "--pid-file", "/p", "c1", "ls", "-d", "--env", "/"]
    )
    assert args.container_id == "c1"
    assert args.args == ["ls", "-d", "--env", "/"]
    assert (args.env, args.cwd, args.user, args.cap, args.detach) == (["A=1", "B=2"], "/tmp", "5:6", ["net_admin"], True)


def test_ps_passes_options_to_ps() -> None:
    args = build_parser().parse_args(["ps", "--format", "json", "c1"])
    assert (args.format, args.ps_args) == ("json", [])
    assert build_parser().parse_args(["ps", "c1", "--", "-o", "pid"]).ps_args in (["-o", "pid"], ["--", "-o", "pid"])


def test_bad_choices_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        build_parser().parse_args(["--log-format", "xml", "list"])
    with pytest.raises(UsageError):
        build_parser().parse_args(["ps", "--format", "yaml", "c1"])


@pytest.mark.parametrize(
    ("raw", "number"),
    [("9", 9), ("KILL", 9), ("SIGKILL", 9), ("sigkill", 9), ("kill", 9), ("TERM", 15), ("SIGUSR1", 10),
     ("hup", 1), ("RTMIN+2", signal.SIGRTMIN + 2), ("SIGRTMAX-1", signal.SIGRTMAX - 1), ("64", 64)],
)
def test_signal_names_and_numbers(raw: str, number: int) -> None:
    assert parse_signal(raw) == number


@pytest.mark.parametrize("raw", ["", "0", "65", "-9", "SIGFOO", "SIG", "RTMIN+99", "SIG_DFL", "9x"])
def test_unknown_signals(raw: str) -> None:
    with pytest.raises(CorralError, match="unknown signal"):
        parse_signal(raw)


def test_durations() -> None:
    assert parse_duration("5s") == 5.0
    assert parse_duration("100ms") == pytest.approx(0.1)
    assert parse_duration("1m30s") == 90.0
    for bad in ("", "5", "s", "5x"):
        with pytest.raises(UsageError):
            parse_duration(bad)


def test_json_log_lines_are_what_containerd_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.json"
    log = Log(str(path), "json", debug=False)
    log.debug("hidden")
    log.error("it broke")
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert (entry["level"], entry["msg"]) == ("error", "it broke")
    datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
    assert capsys.readouterr().err == "it broke\n"
    assert format_line("info", 'a "b"', "text", time="T") == 'time="T" level=info msg="a \\"b\\""\n'


def test_errors_reach_the_log_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "log.json"
    assert main(["--root", str(tmp_path / "root"), "--log", str(log), "--log-format", "json", "kill", "c1", "NOPE"]) == 1
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and "unknown signal" in entry["msg"]
    assert "unknown signal" in capsys.readouterr().err


def test_reads_of_a_missing_store_create_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    assert main(["--root", str(root), "state", "c1"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["--root", str(root), "delete", "--force", "c1"]) == 0
    assert main(["--root", str(root), "list", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert not root.exists()


def test_rootless_mode_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rootless", "true", "list"]) == 1
    assert "not supported" in capsys.readouterr().err


def test_spec_rootless_is_runcs(tmp_path: Path) -> None:
    """specconv.ToRootless: userns mapping the caller, no netns, /sys bound, no uid=/gid=, no resources."""
    assert main(["spec", "--rootless", "--bundle", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "config.json").read_text())
    config = Config.from_dict(data, bundle=str(tmp_path))  # one corral reads
    assert [ns.type for ns in config.namespaces] == ["pid", "ipc", "uts", "mount", "user"]
    assert data["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert data["linux"]["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    assert data["mounts"][-1] == {
        "destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]
    }
    assert [m["destination"] for m in data["mounts"] if m["destination"].startswith("/sys")] == ["/sys"]
    spec = default_spec()
    spec["mounts"].append({"destination": "/dev/pts2", "type": "devpts", "options": ["gid=5", "uid=0", "mode=0620"]})
    spec["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"})
    spec["linux"]["resources"] = {"pids": {"limit": 5}}
    spec["linux"]["namespaces"].append({"type": "user"})
    rootless = to_rootless(spec, 1000, 1001)
    assert rootless["mounts"][-2]["options"] == ["mode=0620"]
    assert "resources" not in rootless["linux"]
    assert [ns["type"] for ns in rootless["linux"]["namespaces"]].count("user") == 1
    assert rootless["linux"]["uidMappings"][0]["hostID"] == 1000 and rootless["linux"]["gidMappings"][0]["hostID"] == 1001


def test_the_defaults_are_the_librarys() -> None:
    from corral.statemachine import runtime

    assert (DEFAULT_ROOT, DEFAULT_RUN_ROOT) == (runtime.DEFAULT_ROOT, runtime.DEFAULT_RUN_ROOT)


def test_spec_writes_a_config_corral_reads(tmp_path: Path) -> None:
    assert main(["spec", "--bundle", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["root"] == {"path": "rootfs", "readonly": True}
    assert data["process"]["args"] == ["sh"] and data["process"]["terminal"] is True
    Config.from_dict(data, bundle=str(tmp_path))
    assert main(["spec", "--bundle", str(tmp_path)]) == 1  # never overwritten
    assert default_spec() == data


def test_features_come_from_the_config_tables() -> None:
    doc = features_document()
    assert doc["linux"]["namespaces"] == ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]
    assert "CAP_SYS_ADMIN" in doc["linux"]["capabilities"]
    assert doc["linux"]["cgroup"]["systemd"] is False
    assert doc["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]


def test_exec_process_from_flags_starts_from_the_containers() -> None:
    base = Process(args=("sh",), env=("PATH=/bin", "A=0"), cwd="/root")
    args = build_parser().parse_args(
        ["exec", "-e", "A=1", "-e", "B=2", "-u", "7:8", "--cap", "NET_ADMIN", "c1", "id"]
    )
    process = build_process(args, base)
    assert process.args == ("id",)
    assert process.env == ("PATH=/bin", "A=1", "B=2")
    assert (process.cwd, process.user.uid, process.user.gid) == ("/root", 7, 8)
    assert process.capabilities is not None and "CAP_NET_ADMIN" in process.capabilities.effective
    assert parse_user("5") == (5, None)
    for bad in ("root", "1:x", "-1"):
        with pytest.raises(UsageError):
            parse_user(bad)


def test_exec_groups_and_caps_as_runcs() -> None:
    """runc exec's -g adds to the container's additional gids; --cap adds to the bounding,
    effective and permitted sets, not the inheritable one (runc 1.1.2, CVE-2022-29162)."""
    from corral.config import Capabilities, User

    caps = Capabilities(bounding=("CAP_KILL",), effective=("CAP_KILL",), permitted=("CAP_KILL",),
                        inheritable=(), ambient=())
    base = Process(args=("sh",), user=User(uid=0, gid=0, additional_gids=(10,)), capabilities=caps)
    args = build_parser().parse_args(["exec", "-g", "20", "-u", "5:6", "--cap", "CAP_NET_RAW", "c1", "id"])
    process = build_process(args, base)
    assert (process.user.uid, process.user.gid, process.user.additional_gids) == (5, 6, (10, 20))
    assert process.capabilities is not None
    assert process.capabilities.inheritable == () and process.capabilities.ambient == ()
    for chosen in (process.capabilities.bounding, process.capabilities.effective, process.capabilities.permitted):
        assert chosen == ("CAP_KILL", "CAP_NET_RAW")
    with pytest.raises(UsageError, match="additional-gids -1"):
        build_process(build_parser().parse_args(["exec", "-g", "-1", "c1", "id"]), base)


def test_exec_process_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "process.json"
    path.write_text(json.dumps({"args": ["echo", "x"], "cwd": "/", "env": ["X=1"]}))
    args = build_parser().parse_args(["exec", "--process", str(path), "c1"])
    assert build_process(args, Process(args=("sh",))).args == ("echo", "x")


def test_pid_file_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "init.pid"
    write_pid_file(str(path), 1234)
    assert path.read_text() == "1234"
    assert [p.name for p in tmp_path.iterdir()] == ["init.pid"]


def _view(**changes: object) -> RecordView:
    fields: dict[str, object] = dict(
        key=1, id="c1", state="stopped", pending_event=None, init_pid=None, init_start_time=None,
        boot_id="b", bundle="/b", config=json.dumps({"ociVersion": "1.0.2", "root": {"path": "/b/rootfs"},
                                                       "annotations": {"k": "v"}}),
        run_dir="/run/c1", exit_status=0, created_at=datetime(2026, 1, 2, 3, 4, 5, 678901), live=True,
    )
    fields.update(changes)
    return RecordView(**fields)  # type: ignore[arg-type]


def test_state_json_fields() -> None:
    state = oci_state(_view(), "stopped")
    assert state == {
        "ociVersion": "1.0.2", "id": "c1", "pid": 0, "status": "stopped", "bundle": "/b",
        "rootfs": "/b/rootfs", "created": "2026-01-02T03:04:05.678901000Z", "owner": "",
        "annotations": {"k": "v"},
    }
    assert created_text(datetime(2026, 1, 2)) == "2026-01-02T00:00:00.000000000Z"


def test_quick_status_leaves_anything_to_record_to_the_library() -> None:
    assert quick_status(_view()) == "stopped"
    assert quick_status(_view(pending_event="start")) is None
    assert quick_status(_view(state="creating")) is None
    # an init that is not this process (PID 1 has another start time, or another boot id)
    assert quick_status(_view(state="running", init_pid=1, init_start_time=-1)) is None
    assert quick_status(_view(state="running", init_pid=None)) is None


def test_readonly_store_needs_the_known_revision(tmp_path: Path) -> None:
    from corral.store.engine import HEAD_REVISION
    from corral.store.readonly import SCHEMA_REVISION

    assert SCHEMA_REVISION == HEAD_REVISION  # a new migration must update the read-only queries
    assert open_readonly(tmp_path) is None
    (tmp_path / "corral.db").write_bytes(b"not a database at all, not even close......")
    assert open_readonly(tmp_path) is None
    (tmp_path / "corral.db").unlink()
    con = sqlite3.connect(tmp_path / "corral.db")
    con.execute("CREATE TABLE alembic_version (version_num TEXT)")
    con.execute("INSERT INTO alembic_version VALUES ('0001_old')")
    con.commit()
    con.close()
    assert open_readonly(tmp_path) is None


def test_readonly_store_reads_what_the_repository_wrote(tmp_path: Path) -> None:
    from corral.store.repository import Repository

    repo = Repository(tmp_path)
    try:
        first = repo.insert(container_id="c1", state="creating", pending_event="create", config="{}", bundle="/b",
                            run_dir="/r/c1", boot_id="boot", cgroup_paths={"memory": "/sys/fs/cgroup/memory/x"},
                            journal_event="create")
        repo.update(first.key, first.version, state="destroyed", pending_event=None)
        second = repo.insert(container_id="c1", state="creating", pending_event=None, config="{}", bundle="/b",
                             run_dir="/r/c1", boot_id="boot", cgroup_paths={}, journal_event="create")
        expected = repo.find("c1")
    finally:
        repo.close()
    store = open_readonly(tmp_path)
    assert store is not None
    with store:
        view = store.find("c1")
        assert view is not None and expected is not None
        assert (view.key, view.state, view.live, view.created_at) == (second.key, "creating", True, expected.created_at)
        assert [v.key for v in store.live()] == [second.key]
        assert store.find("nope") is None


def test_state_and_ps_import_no_sqlalchemy(tmp_path: Path) -> None:
    from corral.store.repository import Repository

    config = Config(process=Process(args=("sh",)), root=Root("/b/rootfs"))
    repo = Repository(tmp_path)
    record = repo.insert(container_id="c1", state="creating", pending_event=None, config=config.to_json(), bundle="/b",
                         run_dir="/r/c1", boot_id="boot", cgroup_paths={}, journal_event="create")
    repo.update(record.key, record.version, state="stopped", exit_status=0)
    repo.mark_recovered(Path("/proc/sys/kernel/random/boot_id").read_text().strip())  # as a Runtime's open does
    repo.close()
    code = (
        "import sys; from corral.cli import main\n"
        f"rc = main(['--root', {str(tmp_path)!r}, 'state', 'c1']) or main(['--root', {str(tmp_path)!r}, 'ps', '--format', 'json', 'c1'])\n"
        "heavy = [m for m in ('sqlalchemy', 'alembic', 'pyroute2', 'transitions') if m in sys.modules]\n"
        "print(rc, heavy, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stderr.strip().splitlines()[-1] == "0 []", result.stderr
    state_text, ps_text = result.stdout.split("\n}\n")
    assert json.loads(state_text + "}")["status"] == "stopped"
    assert json.loads(ps_text) == []


def test_text_log_with_debug(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    assert main(["--debug", "--log", str(log), "--root", str(tmp_path / "root"), "state", "c1"]) == 1
    lines = log.read_text().splitlines()
    assert lines[0].startswith('time="') and " level=debug msg=" in lines[0]
    assert " level=error msg=" in lines[-1] and "does not exist" in lines[-1]


def test_the_runc_wrapper_runs_without_site() -> None:
    wrapper = Path(sys.executable).with_name("corral-runc")
    if not wrapper.exists():
        pytest.skip("scripts/install writes .venv/bin/corral-runc")
    result = subprocess.run([str(wrapper), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith(f"corral version {__version__}"), result
    assert wrapper.read_text().splitlines()[0].endswith("python -S")


def test_the_one_shot_path_knows_the_init_s_name() -> None:
    """corral/executor/quick.py repeats INIT_COMM so that `start` need not import the init's module."""
    from corral.executor import init, quick

    assert quick.INIT_COMM == init.INIT_COMM


def test_exec_process_file_ignores_the_process_flags(tmp_path: Path) -> None:
    """runc's getProcess: with --process the file is the whole process."""
    from corral.cli.commands.exec import ignored_flags

    path = tmp_path / "process.json"
    path.write_text(json.dumps({"args": ["echo", "x"], "cwd": "/", "env": ["X=1"]}))
    base = Process(args=("sh",), env=("PATH=/bin",), cwd="/root")
    args = build_parser().parse_args(["exec", "--process", str(path), "--cap", "NET_ADMIN", "-e", "Y=2", "--cwd",
                                      "/tmp", "-u", "5:6", "-g", "7", "--tty", "--no-new-privs", "c1"])
    assert build_process(args, base) == build_process(build_parser().parse_args(["exec", "--process", str(path), "c1"]), base)
    assert ignored_flags(args) == ["--env", "--cwd", "--user", "--additional-gids", "--cap", "--tty", "--no-new-privs"]
    assert ignored_flags(build_parser().parse_args(["exec", "-e", "Y=2", "c1", "id"])) == []


def test_listen_fds_only_for_this_process() -> None:
    """go-systemd's activation.Files, as runc reads LISTEN_FDS: for the PID LISTEN_PID names only."""
    from corral.cli.listen_fds import announce, listen_fds

    assert listen_fds({"LISTEN_FDS": "2", "LISTEN_PID": "77"}, pid=77) == 2
    assert listen_fds({"LISTEN_FDS": "2", "LISTEN_PID": "78"}, pid=77) == 0
    assert listen_fds({"LISTEN_FDS": "2"}, pid=77) == 0
    assert listen_fds({"LISTEN_FDS": "x", "LISTEN_PID": "77"}, pid=77) == 0
    assert listen_fds({"LISTEN_FDS": "+2", "LISTEN_PID": "77"}, pid=77) == 0
    assert listen_fds({}, pid=77) == 0
    process = announce(Process(args=("sh",), env=("A=1", "LISTEN_PID=9", "LISTEN_FDS=5")), 2)
    assert process.env == ("A=1", "LISTEN_FDS=2", "LISTEN_PID=1")
    args = build_parser().parse_args(["exec", "c1", "env"])
    assert build_process(args, process).env == ("A=1",)  # an exec'd process is not the init
