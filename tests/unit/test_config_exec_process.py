"""corral.config: `linux.seccomp` in a Config, and a Process's unset fields (no root needed).

An exec'd Process inherits from the container's process what it leaves unset
(`Process.resolved_against`); "unset" is distinct from "empty", and a Config's
process keeps the runc-spec defaults, with nothing unset.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from corral.config import (
    DEFAULT_PATH_ENV,
    INHERITED,
    UNSET,
    Capabilities,
    Config,
    Process,
    Rlimit,
    Root,
    Seccomp,
    SeccompArg,
    SeccompSyscall,
    User,
)
from corral.errors import ConfigError
from corral.statemachine.runtime import Runtime
from tests.fakes import FakeExecutor

FIXTURE = Path(__file__).parent.parent / "fixtures" / "seccomp_containerd_default.json"


def minimal() -> dict[str, Any]:
    return {"ociVersion": "1.0.2", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "/srv/rootfs"}}


# --------------------------------------------------------------------------- linux.seccomp


def test_a_config_reads_and_writes_its_seccomp_section() -> None:
    profile = json.loads(FIXTURE.read_text())
    data = {**minimal(), "linux": {"seccomp": profile}}

    config = Config.from_dict(data)

    assert isinstance(config.seccomp, Seccomp)
    assert config.seccomp.default_action == "SCMP_ACT_ERRNO"
    assert config.to_dict()["linux"]["seccomp"] == profile
    assert Config.from_dict(config.to_dict()) == config
    assert Config.from_json(config.to_json()) == config
    assert pickle.loads(pickle.dumps(config)) == config
    assert "seccomp" not in Config.from_dict(minimal()).to_dict().get("linux", {})


def test_a_python_config_takes_a_seccomp_and_round_trips() -> None:
    seccomp = Seccomp(
        default_action="SCMP_ACT_ALLOW",
        syscalls=[SeccompSyscall(["personality"], "SCMP_ACT_ERRNO", 38, [SeccompArg(0, 0xFF, "SCMP_CMP_MASKED_EQ", 8)])],
    )
    config = Config(process=Process(args=["sh"]), root=Root("/r"), seccomp=seccomp)

    assert Config.from_dict(config.to_dict()) == config
    assert config.seccomp is not None and config.seccomp.syscalls[0].args[0].value_two == 8


@pytest.mark.parametrize(
    ("seccomp", "where"),
    [
        ({"defaultAction": "SCMP_ACT_NOPE"}, "linux.seccomp.defaultAction"),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]},
            "linux.seccomp.syscalls[0].args[0].op",
        ),
        ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}, "linux.seccomp.architectures[0]"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}, "linux.seccomp.listenerPath"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "comment": "x"}, "linux.seccomp.comment"),
    ],
)
def test_a_bad_seccomp_section_names_its_json_path_and_file(seccomp: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_dict({**minimal(), "linux": {"seccomp": seccomp}}, source="/b/config.json")

    assert info.value.where == where
    assert info.value.source == "/b/config.json"


def test_a_python_config_with_a_bad_seccomp_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        Config(process=Process(args=["sh"]), root=Root("/r"), seccomp=Seccomp("SCMP_ACT_BOGUS"))
    assert info.value.where == "linux.seccomp.defaultAction"
    with pytest.raises(ConfigError) as info:
        Config(process=Process(args=["sh"]), root=Root("/r"), seccomp={"defaultAction": "SCMP_ACT_ALLOW"})  # type: ignore[arg-type]
    assert info.value.where == "linux.seccomp"


# --------------------------------------------------------------------------- unset process fields


CONTAINER = Process(
    args=["/bin/sleep", "600"],
    env=["PATH=/bin", "HOME=/root"],
    cwd="/tmp",
    user=User(1000, 1000, (5,), umask=0o27),
    rlimits=[Rlimit("RLIMIT_NOFILE", 64, 64)],
    no_new_privileges=True,
    capabilities=Capabilities(*(("CAP_KILL", "CAP_CHOWN"),) * 3),
)


def test_left_out_fields_are_unset_and_hold_the_runc_spec_defaults() -> None:
    p = Process(args=["sh"])

    assert p.unset == frozenset(INHERITED)
    assert p.env == (DEFAULT_PATH_ENV,) and p.cwd == "/" and p.user == User()
    assert p.rlimits == () and p.no_new_privileges is False and p.capabilities == Capabilities()
    assert Process(args=["sh"], env=(), capabilities=None).unset == frozenset(INHERITED) - {"env", "capabilities"}
    assert Process(args=["sh"], env=UNSET).unset == frozenset(INHERITED)  # UNSET said out loud
    assert "UNSET" not in repr(p)  # no object holds the marker


def test_exec_process_inherits_what_it_leaves_unset() -> None:
    resolved = Process(args=["/bin/ps"]).resolved_against(CONTAINER)

    assert resolved == dataclasses.replace(CONTAINER, args=("/bin/ps",))
    assert resolved.unset == frozenset()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("env", ()),  # empty, not unset
        ("env", ("A=1",)),
        ("cwd", "/"),
        ("user", User()),
        ("rlimits", ()),
        ("no_new_privileges", False),
        ("capabilities", None),  # no capabilities at all, not the container's
        ("capabilities", Capabilities()),
    ],
)
def test_an_explicit_value_overrides_the_container_s(name: str, value: Any) -> None:
    resolved = Process(args=["/bin/ps"], **{name: value}).resolved_against(CONTAINER)

    assert getattr(resolved, name) == value
    for other in set(INHERITED) - {name}:
        assert getattr(resolved, other) == getattr(CONTAINER, other), other


def test_oom_score_adj_and_terminal_are_not_inherited() -> None:
    base = dataclasses.replace(CONTAINER, oom_score_adj=500)
    assert Process(args=["sh"]).resolved_against(base).oom_score_adj is None


def test_a_config_keeps_its_process_with_nothing_unset() -> None:
    config = Config(process=Process(args=["sh"], env=()), root=Root("/r"))

    assert config.process.unset == frozenset()
    assert config.process.env == () and config.process.capabilities == Capabilities()
    assert Config.from_dict(config.to_dict()).process.unset == frozenset()


def test_unset_is_not_part_of_equality_and_survives_pickling() -> None:
    """Equal when they are the same OCI object; JSON has no "unset"."""
    p = Process(args=["sh"], cwd="/tmp")

    assert p == Process(args=["sh"], cwd="/tmp", env=(DEFAULT_PATH_ENV,), capabilities=Capabilities())
    assert hash(p) == hash(Process.from_dict(p.to_dict()))
    assert Process.from_dict(p.to_dict()).unset == frozenset()
    assert pickle.loads(pickle.dumps(p)).unset == p.unset
    assert pickle.loads(pickle.dumps(UNSET)) is UNSET
    assert dataclasses.replace(p, args=("ls",)).unset == frozenset()  # documented: replace sets all


def test_unset_fields_are_still_validated_after_inheriting() -> None:
    with pytest.raises(ConfigError, match=r"^process.cwd: must be an absolute path$"):
        Process(args=["sh"], cwd="tmp").resolved_against(CONTAINER)


# --------------------------------------------------------------------------- through the lifecycle


def test_container_exec_hands_the_executor_the_resolved_process(runtime: Runtime, tmp_path: Path) -> None:
    """The lifecycle resolves before the executor sees the process: no executor has to."""
    executor = runtime.context.executor
    assert isinstance(executor, FakeExecutor)
    seen: list[Process] = []
    real_exec = executor.exec
    executor.exec = lambda facts, process, stdio: (seen.append(process), real_exec(facts, process, stdio))[1]  # type: ignore[method-assign]
    (tmp_path / "rootfs").mkdir()
    box = runtime.create("box", Config(process=CONTAINER, root=Root(str(tmp_path / "rootfs"))))
    box.start()

    box.exec(Process(args=("true",))).wait()
    box.exec(Process(args=("true",), env=(), capabilities=None)).wait()

    assert seen[0] == dataclasses.replace(CONTAINER, args=("true",))
    assert seen[1] == dataclasses.replace(CONTAINER, args=("true",), env=(), capabilities=None)
    assert all(p.unset == frozenset() for p in seen)
    box.destroy(force=True)
