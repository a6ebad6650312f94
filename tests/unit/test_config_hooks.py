"""The `hooks` section: read, written back, validated with errors that name the JSON path,
and the executor's runner (state on stdin, argv and env as given, the deadline), no root."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from corral.config import HOOK_KINDS, Config, Hook, Hooks, Process, Root
from corral.config.features import features
from corral.errors import ConfigError
from corral.executor import hooks as running
from corral.executor.protocol import HookRan, decode, encode


def minimal(**hooks: Any) -> dict[str, Any]:
    return {
        "ociVersion": "1.2.0",
        "process": {"args": ["sh"], "cwd": "/"},
        "root": {"path": "/srv/rootfs"},
        "hooks": hooks,
    }


def error_of(data: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ConfigError) as info:
        Config.from_dict(data)
    return info.value.where, info.value.problem


# --------------------------------------------------------------------------- reading and writing


def test_every_kind_is_read_in_order_and_written_back() -> None:
    data = minimal(**{kind: [{"path": f"/hooks/{kind}", "args": [kind, "-x"], "env": ["A=1"], "timeout": 5},
                             {"path": f"/hooks/{kind}-2"}] for kind in HOOK_KINDS})

    config = Config.from_dict(data)

    for kind, field in HOOK_KINDS.items():
        assert getattr(config.hooks, field) == (
            Hook(f"/hooks/{kind}", (kind, "-x"), ("A=1",), 5),
            Hook(f"/hooks/{kind}-2"),
        )
    assert config.to_dict()["hooks"] == data["hooks"] | {
        kind: [data["hooks"][kind][0], {"path": f"/hooks/{kind}-2"}] for kind in HOOK_KINDS
    }
    assert Config.from_json(config.to_json()) == config  # what the store keeps is what runs


def test_no_hooks_is_empty_and_not_written() -> None:
    config = Config.from_dict(minimal())
    assert config.hooks == Hooks() and not config.hooks
    assert "hooks" not in config.to_dict()
    assert "hooks" not in Config(process=Process(args=("sh",)), root=Root("/srv/rootfs")).to_dict()


def test_a_null_kind_counts_as_left_out() -> None:
    assert Config.from_dict(minimal(prestart=None, poststop=[])).hooks == Hooks()


def test_unknown_keys_in_hooks_are_warnings(caplog: pytest.LogCaptureFixture) -> None:
    data = minimal(prestrat=[{"path": "/x"}], poststop=[{"path": "/y", "timeot": 3}])
    with caplog.at_level(logging.WARNING, logger="corral"):
        config = Config.from_dict(data)
    assert config.hooks == Hooks(poststop=(Hook("/y"),))
    assert any(w.startswith("hooks.prestrat: not a key") for w in config.warnings)
    assert any(w.startswith("hooks.poststop[0].timeot: not a key") for w in config.warnings)
    with pytest.raises(ConfigError, match=r"^hooks.prestrat: not a key"):
        Config.from_dict(data, strict=True)


def test_hooks_from_python() -> None:
    hooks = Hooks(create_runtime=[Hook("/bin/true", ["true"])])
    config = Config(process=Process(args=("sh",)), root=Root("/srv/rootfs"), hooks=hooks)
    assert config.hooks.create_runtime == (Hook("/bin/true", ("true",)),)
    assert config.hooks.of("createRuntime") == config.hooks.create_runtime
    assert Hook("/bin/true").argv == ["/bin/true"] and Hook("/bin/x", ("y", "z")).argv == ["y", "z"]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("hook", "where", "problem"),
    [
        ({}, "hooks.createRuntime[0].path", "required"),
        ({"path": "relative/hook"}, "hooks.createRuntime[0].path", "must be an absolute path"),
        ({"path": ""}, "hooks.createRuntime[0].path", "must be an absolute path"),
        ({"path": "/a\u0000b"}, "hooks.createRuntime[0].path", "must not contain a NUL"),
        ({"path": "/x", "args": "sh -c x"}, "hooks.createRuntime[0].args", "must be a list"),
        ({"path": "/x", "args": ["ok", 3]}, "hooks.createRuntime[0].args[1]", "must be a string"),
        ({"path": "/x", "env": ["NOEQUALS"]}, "hooks.createRuntime[0].env[0]", "NAME=value"),
        ({"path": "/x", "env": "A=1"}, "hooks.createRuntime[0].env", "must be a list"),
        ({"path": "/x", "timeout": 0}, "hooks.createRuntime[0].timeout", "above 0"),
        ({"path": "/x", "timeout": -1}, "hooks.createRuntime[0].timeout", "above 0"),
        ({"path": "/x", "timeout": 1.5}, "hooks.createRuntime[0].timeout", "whole number"),
        ({"path": "/x", "timeout": True}, "hooks.createRuntime[0].timeout", "whole number"),
        ("/x", "hooks.createRuntime[0]", "must be an object"),
    ],
)
def test_invalid_hooks_are_refused_naming_the_entry(hook: Any, where: str, problem: str) -> None:
    got_where, got_problem = error_of(minimal(createRuntime=[hook]))
    assert got_where == where
    assert problem in got_problem


def test_a_kind_must_be_a_list_and_hooks_an_object() -> None:
    assert error_of(minimal(poststop={"path": "/x"}))[0] == "hooks.poststop"
    data = minimal()
    data["hooks"] = ["/x"]
    assert error_of(data) == ("hooks", "must be an object, not a list")


def test_python_callers_get_the_same_checks() -> None:
    with pytest.raises(ConfigError, match=r"^hooks.poststart\[0\].path: must be an absolute path"):
        Config(process=Process(args=("sh",)), root=Root("/srv/rootfs"), hooks=Hooks(poststart=(Hook("x"),)))
    with pytest.raises(ConfigError, match=r"^hooks: must be a corral.config.Hooks"):
        Config(process=Process(args=("sh",)), root=Root("/srv/rootfs"), hooks={"poststart": []})  # type: ignore[arg-type]


def test_features_lists_every_kind() -> None:
    assert features()["hooks"] == list(HOOK_KINDS)


# --------------------------------------------------------------------------- running one hook


def sh(script: str, tmp_path: Path, **changes: Any) -> Hook:
    return dataclasses.replace(Hook("/bin/sh", ("sh", "-c", script, "argv0", str(tmp_path))), **changes)


def test_the_state_arrives_on_stdin_with_argv_and_env_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_TEST_LEAK", "x")
    config = Config.from_dict(minimal() | {"annotations": {"a": "b"}}, bundle=str(tmp_path))
    state = running.state(config, "c1", "creating", 42)
    hook = sh('cat > "$1/state"; echo "$0 ${HOOK-unset} ${CORRAL_TEST_LEAK-unset}" > "$1/seen"; pwd >> "$1/seen"',
              tmp_path, env=("HOOK=given",))

    outcome = running.run(hook, "createRuntime", state, cwd=str(tmp_path))

    assert outcome.ok and outcome.status == 0 and outcome.signal is None and not outcome.timed_out
    assert json.loads((tmp_path / "state").read_text()) == {
        "ociVersion": running.STATE_OCI_VERSION, "id": "c1", "status": "creating", "pid": 42,
        "bundle": str(tmp_path), "annotations": {"a": "b"},
    }
    assert (tmp_path / "seen").read_text().split() == ["argv0", "given", "unset", str(tmp_path)]


def test_a_stopped_containers_state_has_no_pid() -> None:
    config = Config.from_dict(minimal())
    assert "pid" not in json.loads(running.state(config, "c1", "stopped", 42))


def test_a_failure_says_how_and_keeps_the_end_of_the_output(tmp_path: Path) -> None:
    outcome = running.run(sh('echo "$(seq 1 400)"; echo "the reason" >&2; exit 7', tmp_path), "poststop", b"{}")
    assert not outcome.ok and outcome.status == 7
    assert outcome.error is not None and outcome.error.endswith("the reason") and len(outcome.error) <= 512
    assert outcome.describe().startswith("poststop hook /bin/sh: exited with status 7: ")
    record = outcome.record()
    assert record["exit_status"] == 7 and record["kind"] == "poststop" and record["timed_out"] is False
    assert running.HookOutcome.from_record(record) == dataclasses.replace(
        outcome, duration=round(outcome.duration * 1000, 3) / 1000
    )


def test_a_hook_past_its_deadline_is_killed_with_its_children(tmp_path: Path) -> None:
    hook = sh('echo $$ > "$1/pid"; sleep 60 & echo $! > "$1/child"; wait', tmp_path, timeout=1)
    started = time.monotonic()

    outcome = running.run(hook, "createRuntime", b"{}")

    assert 1 <= time.monotonic() - started < 10
    assert outcome.timed_out and not outcome.ok and outcome.signal == 9 and outcome.status is None
    assert "killed after its timeout" in outcome.describe()
    for name in ("pid", "child"):
        pid = int((tmp_path / name).read_text())
        for _ in range(100):
            if not os.path.exists(f"/proc/{pid}"):
                break
            time.sleep(0.02)
        assert not os.path.exists(f"/proc/{pid}"), name


def test_a_missing_program_is_a_failure_not_an_exception() -> None:
    outcome = running.run(Hook("/nonexistent/hook"), "prestart", b"{}")
    assert not outcome.ok and outcome.status is None and "No such file" in (outcome.error or "")


def test_a_fatal_kind_stops_at_its_first_failure_the_others_go_on(tmp_path: Path) -> None:
    failing, fine = sh("exit 1", tmp_path), sh("exit 0", tmp_path)
    assert [o.status for o in running.run_all((failing, fine), "createContainer", b"{}")] == [1]
    assert [o.status for o in running.run_all((failing, fine), "poststop", b"{}")] == [1, 0]


def test_outcomes_cross_the_exec_fifo_as_reports_then_zero() -> None:
    ok = running.HookOutcome("startContainer", "/h", 0, None, False, 0.25)
    bad = running.HookOutcome("startContainer", "/h2", 3, None, False, 0.5, "no")
    assert decode(encode(running.to_message(bad))) == HookRan("startContainer", "/h2", 3, None, False, 0.5, "no")

    reader = running.FifoReader()
    data = running.fifo_line(ok) + b"0"
    assert not reader.feed(data[:10]) and reader.feed(data[10:])
    assert reader.outcomes == [ok] and reader.failure("c") is None

    failed = running.FifoReader()
    assert not failed.feed(running.fifo_line(ok) + running.fifo_line(bad))
    error = failed.failure("c")
    assert error is not None and "exited with status 3: no" in str(error)
    assert [h["exit_status"] for h in error.hooks] == [0, 3]


def test_creates_wait_for_the_init_grows_with_its_hooks_timeouts() -> None:
    from corral.executor import spawn
    from corral.executor.protocol import CreateRequest

    def request(**hooks: Any) -> CreateRequest:
        config = Config.from_dict(minimal(**hooks))
        return CreateRequest("c", config, (), {}, "/f", "/e", (), (), "", "")

    assert spawn._setup_timeout(request()) == spawn.SETUP_TIMEOUT
    timed = request(prestart=[{"path": "/a", "timeout": 100}], createContainer=[{"path": "/b", "timeout": 20}],
                    poststop=[{"path": "/c"}])
    assert spawn._setup_timeout(timed) == spawn.SETUP_TIMEOUT + 120
    assert spawn._setup_timeout(request(createRuntime=[{"path": "/a"}])) is None  # no limit: as the spec
