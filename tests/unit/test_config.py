"""corral.config: reading, validating and writing OCI runtime-spec configs (no root needed)."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from pathlib import Path
from typing import Any, Callable

import pytest

from corral.config import (
    CAPABILITIES,
    DEFAULT_CAPABILITIES,
    DEFAULT_MASKED_PATHS,
    DEFAULT_NAMESPACES,
    DEFAULT_PATH_ENV,
    RLIMITS,
    BlockIOResources,
    Capabilities,
    ConsoleSize,
    Config,
    CpuResources,
    Device,
    DeviceRule,
    IDMapping,
    MemoryResources,
    Mount,
    Namespace,
    PidsResources,
    Process,
    Resources,
    Rlimit,
    Root,
    User,
)
from corral.errors import ConfigError

CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def runc_spec() -> dict[str, Any]:
    """What `runc spec` writes (runc 1.1), with terminal off (tests/integration/test_terminal.py runs it on)."""
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [DEFAULT_PATH_ENV, "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": list(CAPS),
                "effective": list(CAPS),
                "permitted": list(CAPS),
                "ambient": list(CAPS),
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
            },
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
                {"type": "cgroup"},
            ],
            "maskedPaths": list(DEFAULT_MASKED_PATHS),
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def minimal() -> dict[str, Any]:
    return {"ociVersion": "1.0.2", "process": {"args": ["sh"], "cwd": "/"}, "root": {"path": "/srv/rootfs"}}


def userns_spec() -> dict[str, Any]:
    """A rootless-style config: a new user namespace, limits, sysctls, devices."""
    spec = runc_spec()
    spec["root"]["path"] = "/srv/rootfs"
    spec["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 10], "umask": 0o22}
    spec["process"]["oomScoreAdj"] = 100
    spec["linux"]["namespaces"].append({"type": "user"})
    spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    spec["linux"]["gidMappings"] = [
        {"containerID": 0, "hostID": 100000, "size": 1000},
        {"containerID": 1000, "hostID": 200000, "size": 1},
    ]
    spec["linux"]["resources"] = {
        "memory": {"limit": 256 << 20, "reservation": 128 << 20, "swap": 512 << 20},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-2,4", "mems": "0"},
        "pids": {"limit": 64},
        "blockIO": {"weight": 500},
        "devices": [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        ],
    }
    spec["linux"]["cgroupsPath"] = "/corral/test"
    spec["linux"]["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0},
        {"path": "/dev/pipe", "type": "p"},
    ]
    spec["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536"}
    spec["linux"]["rootfsPropagation"] = "rslave"
    spec["annotations"] = {"org.example.owner": "tests", "io.kubernetes.pod": "p"}
    return spec


def write_bundle(tmp_path: Path, spec: dict[str, Any], *, rootfs: bool = True) -> Path:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    if rootfs:
        for sub in ("bin", "dev", "proc", "sys", "etc"):
            (bundle / "rootfs" / sub).mkdir(parents=True)
        (bundle / "rootfs" / "bin" / "busybox").write_bytes(b"\x7fELF")
        (bundle / "rootfs" / "bin" / "sh").symlink_to("busybox")
    (bundle / "config.json").write_text(json.dumps(spec, indent=2))
    return bundle


def error_of(data: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(ConfigError) as info:
        Config.from_dict(data, **kwargs)
    return str(info.value)


def process_error(**fields: Any) -> str:
    with pytest.raises(ConfigError) as info:
        Process(**fields)
    return str(info.value)


# --------------------------------------------------------------------------- a full bundle


def test_runc_spec_bundle_is_read_completely(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, runc_spec())

    config = Config.from_bundle(bundle)

    assert config.bundle == str(bundle)
    assert config.oci_version == "1.0.2-dev"
    assert config.root == Root(str(bundle / "rootfs"), readonly=True)
    assert config.hostname == "runc"
    p = config.process
    assert p.args == ("sh",)
    assert p.env == (DEFAULT_PATH_ENV, "TERM=xterm")
    assert p.cwd == "/"
    assert p.user == User(0, 0)
    assert p.rlimits == (Rlimit("RLIMIT_NOFILE", 1024, 1024),)
    assert p.no_new_privileges is True
    assert p.terminal is False
    assert p.oom_score_adj is None
    assert p.capabilities == Capabilities(
        bounding=tuple(CAPS), effective=tuple(CAPS), permitted=tuple(CAPS), inheritable=(), ambient=tuple(CAPS)
    )
    assert len(config.mounts) == 7
    assert config.mounts[0] == Mount("/proc", "proc", "proc", ())
    assert config.mounts[2].options[-1] == "gid=5"
    assert config.mounts[6] == Mount("/sys/fs/cgroup", "cgroup", "cgroup", ("nosuid", "noexec", "nodev", "relatime", "ro"))
    assert [ns.type for ns in config.namespaces] == ["pid", "network", "ipc", "uts", "mount", "cgroup"]
    assert all(ns.path is None for ns in config.namespaces)
    assert config.creates_namespace("cgroup") and not config.creates_namespace("user")
    assert config.uid_mappings == () and config.gid_mappings == ()
    assert config.resources == Resources(devices=(DeviceRule(allow=False, access="rwm"),))
    assert config.masked_paths == DEFAULT_MASKED_PATHS
    assert config.readonly_paths[-1] == "/proc/sysrq-trigger"
    assert config.devices == ()
    assert dict(config.sysctl) == {} and dict(config.annotations) == {}
    assert config.cgroups_path is None and config.rootfs_propagation is None


def test_from_bundle_accepts_a_relative_bundle_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = write_bundle(tmp_path, runc_spec())
    monkeypatch.chdir(tmp_path)

    config = Config.from_bundle("bundle")

    assert config.bundle == str(bundle)
    assert config.root.path == str(bundle / "rootfs")


def test_user_namespace_config_with_everything_is_read(tmp_path: Path) -> None:
    config = Config.from_dict(userns_spec())

    assert config.process.user == User(1000, 1000, (5, 10), 0o22)
    assert config.process.oom_score_adj == 100
    assert config.creates_namespace("user")
    assert config.uid_mappings == (IDMapping(0, 100000, 65536),)
    assert config.gid_mappings[1] == IDMapping(1000, 200000, 1)
    assert config.resources == Resources(
        memory=MemoryResources(256 << 20, 128 << 20, 512 << 20),
        cpu=CpuResources(512, 50000, 100000, "0-2,4", "0"),
        pids=PidsResources(64),
        block_io=BlockIOResources(500),
        devices=(DeviceRule(False, access="rwm"), DeviceRule(True, "c", 1, 3, "rw")),
    )
    assert config.devices == (Device("/dev/fuse", "c", 10, 229, 0o666, 0, 0), Device("/dev/pipe", "p"))
    assert config.sysctl == {"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536"}
    assert config.annotations["org.example.owner"] == "tests"
    assert config.rootfs_propagation == "rslave"
    assert config.cgroups_path == "/corral/test"


def test_missing_sections_mean_none_not_the_python_defaults() -> None:
    config = Config.from_dict(minimal())

    assert config.mounts == ()
    assert config.namespaces == ()
    assert config.masked_paths == () and config.readonly_paths == ()
    assert config.process.capabilities is None
    assert config.process.env == ()
    assert config.process.user == User(0, 0, (), None)
    assert config.process.rlimits == ()
    assert config.resources is None and config.hostname is None and config.bundle is None
    assert config.root == Root("/srv/rootfs", False)


def test_null_values_count_as_left_out() -> None:
    data = minimal()
    data["hostname"] = None
    data["hooks"] = None
    data["linux"] = {"seccomp": None, "namespaces": None}
    data["process"]["capabilities"] = None

    config = Config.from_dict(data)

    assert config.hostname is None and config.namespaces == () and config.process.capabilities is None


# --------------------------------------------------------------------------- round trips


def default_config() -> Config:
    return Config(process=Process(args=["sh"]), root=Root("/srv/rootfs"))


def test_python_defaults_round_trip() -> None:
    config = default_config()

    data = config.to_dict()

    assert Config.from_dict(data) == config
    assert Config.from_json(config.to_json()) == config
    assert [ns["type"] for ns in data["linux"]["namespaces"]] == ["pid", "network", "ipc", "uts", "mount"]
    assert data["process"]["capabilities"]["bounding"] == list(DEFAULT_CAPABILITIES)
    assert data["process"]["env"] == [DEFAULT_PATH_ENV]
    assert len(data["mounts"]) == 6


@pytest.mark.parametrize("spec", [runc_spec, userns_spec, minimal], ids=["runc", "userns", "minimal"])
def test_parsed_configs_round_trip(spec: Callable[[], dict[str, Any]]) -> None:
    config = Config.from_dict(spec(), bundle="/bundles/b1")

    again = Config.from_json(config.to_json(), bundle=config.bundle)

    assert again == config
    assert hash(again) == hash(config)
    assert again.to_json() == config.to_json()


def test_python_built_user_namespace_config_round_trips() -> None:
    config = Config(
        process=Process(
            args=["/bin/sh", "-c", "true"],
            env=["A=1", "EMPTY="],
            user=User(uid=0, gid=0, additional_gids=[1]),
            rlimits=[Rlimit("RLIMIT_NOFILE", 1024, 4096), Rlimit("RLIMIT_CORE", 0, 2**64 - 1)],
            no_new_privileges=True,
            capabilities=Capabilities(bounding=["CAP_KILL"], effective=[], permitted=[]),
            oom_score_adj=-500,
        ),
        root=Root("/srv/rootfs", readonly=True),
        hostname="box",
        namespaces=list(DEFAULT_NAMESPACES) + [Namespace("user"), Namespace("cgroup", "/proc/1/ns/cgroup")],
        uid_mappings=[IDMapping(0, 100000, 65536)],
        gid_mappings=[IDMapping(0, 100000, 65536)],
        resources=Resources(
            memory=MemoryResources(limit=-1, swap=-1),
            cpu=CpuResources(quota=-1, period=100000),
            pids=PidsResources(-1),
            block_io=BlockIOResources(),
            devices=[DeviceRule(True)],
        ),
        cgroups_path="/corral/x",
        devices=[Device("/dev/null", "c", 1, 3)],
        sysctl={"fs.mqueue.msg_max": "10"},
        annotations={"a": "b"},
        rootfs_propagation="private",
    )

    assert Config.from_dict(config.to_dict()) == config
    assert Config.from_json(config.to_json()) == config


def test_process_round_trips_on_its_own() -> None:
    process = Process(args=["ls", "-l"], cwd="/tmp", capabilities=None, user=User(5, 6, umask=0o77))

    data = process.to_dict()

    assert data == {"args": ["ls", "-l"], "cwd": "/tmp", "env": [DEFAULT_PATH_ENV], "user": {"uid": 5, "gid": 6, "umask": 0o77}}
    assert Process.from_dict(data) == process
    assert Process.from_json(process.to_json()) == process
    assert Process.from_dict({"args": ["true"], "cwd": "/"}).capabilities is None


def test_to_dict_writes_only_what_is_set() -> None:
    config = Config.from_dict(minimal(), bundle="/bundles/b1")

    assert config.to_dict() == {
        "ociVersion": "1.0.2",
        "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "root": {"path": "/srv/rootfs"},
    }


def test_empty_but_present_sections_survive_the_round_trip() -> None:
    data = minimal()
    data["process"]["capabilities"] = {}
    data["linux"] = {"resources": {"memory": {}, "blockIO": {}}}

    config = Config.from_dict(data)

    assert config.process.capabilities == Capabilities((), (), (), (), ())
    assert config.resources == Resources(memory=MemoryResources(), block_io=BlockIOResources())
    assert Config.from_dict(config.to_dict()) == config


def test_to_json_is_compact_and_sorted() -> None:
    text = default_config().to_json()

    assert ": " not in text and ", " not in text and "\n" not in text
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert "bundle" not in text


# --------------------------------------------------------------------------- Python-built configs


def test_lists_become_tuples_and_configs_hash() -> None:
    a = Config(process=Process(args=["sh"], env=["A=1"]), root=Root("/r"), mounts=[Mount("/m", options=["ro"])])
    b = Config(process=Process(args=("sh",), env=("A=1",)), root=Root("/r"), mounts=(Mount("/m", options=("ro",)),))

    assert a == b
    assert hash(a) == hash(b)
    assert isinstance(a.process.args, tuple) and isinstance(a.mounts[0].options, tuple)


def test_mappings_are_immutable_and_compare_by_content() -> None:
    source = {"org.a": "1"}
    config = Config(process=Process(args=["sh"]), root=Root("/r"), annotations=source, sysctl={"kernel.sem": "1 2 3 4"})
    source["org.b"] = "2"

    assert config.annotations == {"org.a": "1"}
    assert config.sysctl == {"kernel.sem": "1 2 3 4"}
    with pytest.raises(TypeError):
        config.annotations["x"] = "y"  # type: ignore[index]
    assert default_config().sysctl == {}
    assert pickle.loads(pickle.dumps(config)) == config


def test_frozen_config_cannot_be_changed() -> None:
    config = default_config()

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.hostname = "x"  # type: ignore[misc]


def test_relative_root_resolves_against_the_bundle() -> None:
    data = minimal()
    data["root"]["path"] = "./rootfs/../rootfs"

    assert Config.from_dict(data, bundle="/b").root.path == "/b/rootfs"
    assert Config(process=Process(args=["sh"]), root=Root("rootfs"), bundle="/b").root.path == "/b/rootfs"


def test_relative_bind_sources_resolve_against_the_bundle() -> None:
    data = minimal()
    data["mounts"] = [
        {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind"]},
        {"destination": "/proc", "type": "proc", "source": "proc"},
    ]

    config = Config.from_dict(data, bundle="/b")

    assert config.mounts[0].source == "/b/data"
    assert config.mounts[1].source == "proc"
    assert "mounts[0].source: must be an absolute path for a bind mount" in error_of(data)


def test_relative_root_without_bundle_is_refused() -> None:
    data = minimal()
    data["root"]["path"] = "rootfs"

    assert error_of(data) == "root.path: must be an absolute path (a relative one needs a bundle directory)"
    with pytest.raises(ConfigError, match=r"^root\.path: must be an absolute path"):
        Config(process=Process(args=["sh"]), root=Root("rootfs"))


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Process(args=()), "process.args: must be a non-empty list of strings"),
        (lambda: Process(args="sh"), "process.args: must be a non-empty list of strings"),
        (lambda: Process(args=["sh"], cwd="tmp"), "process.cwd: must be an absolute path"),
        (lambda: Process(args=["sh"], user=User(uid=-1)), "process.user.uid: must be an integer from 0 to 4294967295"),
        (lambda: Process(args=["sh"], terminal="yes"), "process.terminal: must be true or false"),
        (
            lambda: Process(args=["sh"], terminal=True, console_size=ConsoleSize(height=70000, width=80)),
            "process.consoleSize.height: must be an integer from 0 to 65535",
        ),
        (
            lambda: Config(process=Process(args=["sh"]), root=Root("/r"), mounts=[Mount("/a"), Mount("b")]),
            "mounts[1].destination: must be an absolute path",
        ),
        (
            lambda: Config(process=Process(args=["sh"]), root=Root("/r"), namespaces=[Namespace("pid"), Namespace("pid")]),
            "linux.namespaces: 'pid' appears twice",
        ),
        (
            lambda: Config(process=Process(args=["sh"]), root=Root("/r"), mounts=["/proc"]),
            "mounts[0]: must be a corral.config.Mount, not str",
        ),
        (lambda: Config(process=Process(args=["sh"]), root="/r"), "root: must be a corral.config.Root, not str"),
        (
            lambda: Config(process=Process(args=["sh"]), root=Root("/r"), bundle="rel"),
            "bundle: must be an absolute path",
        ),
    ],
)
def test_python_built_configs_get_the_json_messages(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build()

    assert str(info.value) == message


def test_validate_can_be_called_again() -> None:
    config = default_config()

    assert config.validate() is None
    assert dataclasses.replace(config, hostname="h").hostname == "h"
    with pytest.raises(ConfigError, match=r"^hostname: cannot be set without a uts namespace"):
        dataclasses.replace(config, hostname="h", namespaces=(Namespace("mount"),))


# --------------------------------------------------------------------------- JSON errors


def mutate(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set a dotted path with [i] indexes in a spec (creating objects on the way)."""

    def apply(data: dict[str, Any]) -> None:
        node: Any = data
        parts = path.replace("[", ".[").split(".")
        for i, part in enumerate(parts):
            key: Any = int(part[1:-1]) if part.startswith("[") else part
            if i == len(parts) - 1:
                node[key] = value
            else:
                if isinstance(key, str) and key not in node:
                    node[key] = {}
                node = node[key]

    return apply


def delete(path: str) -> Callable[[dict[str, Any]], None]:
    def apply(data: dict[str, Any]) -> None:
        node: Any = data
        *parents, last = path.split(".")
        for part in parents:
            node = node[part]
        del node[last]

    return apply


ERRORS: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    # versions and required parts
    (mutate("ociVersion", "2.0.0"), "ociVersion: unsupported version '2.0.0' (corral reads runtime-spec 1.x)"),
    (mutate("ociVersion", "0.9"), "ociVersion: unsupported version '0.9' (corral reads runtime-spec 1.x)"),
    (mutate("ociVersion", 1), 'ociVersion: must be a string such as "1.0.2"'),
    (delete("ociVersion"), "ociVersion: required"),
    (delete("process"), "process: required"),
    (delete("root"), "root: required"),
    (delete("root.path"), "root.path: required"),
    (delete("process.cwd"), "process.cwd: required"),
    (mutate("process", []), "process: must be an object, not a list"),
    (mutate("linux", "x"), "linux: must be an object, not a string"),
    (mutate("mounts", {}), "mounts: must be a list, not an object"),
    (mutate("mounts", [{"destination": "/a"}, "b"]), "mounts[1]: must be an object, not a string"),
    # process
    (mutate("process.args", []), "process.args: must be a non-empty list of strings"),
    (mutate("process.args", ["sh", 1]), "process.args: must be a non-empty list of strings"),
    (mutate("process.args", ["sh", "a\0b"]), "process.args[1]: must not contain a NUL character"),
    (mutate("process.env", ["A=1", "B=2", "NOEQUALS"]), "process.env[2]: must be a string of the form NAME=value"),
    (mutate("process.env", ["=value"]), "process.env[0]: must be a string of the form NAME=value"),
    (mutate("process.env", "A=1"), "process.env: must be a list of strings of the form NAME=value"),
    (mutate("process.cwd", "tmp"), "process.cwd: must be an absolute path"),
    (mutate("process.user.uid", -1), "process.user.uid: must be an integer from 0 to 4294967295"),
    (mutate("process.user.gid", 2**32), "process.user.gid: must be an integer from 0 to 4294967295"),
    (mutate("process.user.uid", "0"), "process.user.uid: must be an integer from 0 to 4294967295"),
    (mutate("process.user.uid", 1.0), "process.user.uid: must be an integer from 0 to 4294967295"),
    (delete("process.user.gid"), "process.user.gid: required"),
    (mutate("process.user.additionalGids", [1, -2]), "process.user.additionalGids[1]: must be an integer from 0 to 4294967295"),
    (mutate("process.user.umask", 0o1000), "process.user.umask: must be an integer from 0 to 511 (0o777)"),
    (mutate("process.terminal", 1), "process.terminal: must be true or false"),
    (mutate("process.consoleSize", {"height": 24}), "process.consoleSize.width: required"),
    (mutate("process.consoleSize", {"height": -1, "width": 80}), "process.consoleSize.height: must be an integer from 0 to 65535"),
    (mutate("process.rlimits", [{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]), "process.rlimits[0].type: unknown rlimit 'RLIMIT_FOO'"),
    (mutate("process.rlimits", [{"type": "RLIMIT_CORE", "soft": 10, "hard": 5}]), "process.rlimits[0]: soft 10 is above hard 5"),
    (mutate("process.rlimits", [{"type": "RLIMIT_CORE", "soft": -1, "hard": 5}]), "process.rlimits[0].soft: must be an integer from 0 to 18446744073709551615"),
    (mutate("process.rlimits", [{"type": "RLIMIT_CORE", "hard": 5}]), "process.rlimits[0].soft: required"),
    (
        mutate("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}] * 2),
        "process.rlimits: 'RLIMIT_NOFILE' appears twice",
    ),
    (mutate("process.capabilities.bounding", ["CAP_KILL", "CAP_CHOWN", "CAP_SETUID", "CAP_FOO"]), "process.capabilities.bounding[3]: unknown capability 'CAP_FOO'"),
    (mutate("process.capabilities.ambient", ["kill"]), "process.capabilities.ambient[0]: unknown capability 'kill'"),
    (mutate("process.capabilities.effective", ["CAP_SYS_ADMIN"]), "process.capabilities.effective[0]: CAP_SYS_ADMIN is not in permitted (the kernel refuses it)"),
    (mutate("process.oomScoreAdj", 1001), "process.oomScoreAdj: must be an integer from -1000 to 1000"),
    (mutate("process.noNewPrivileges", 1), "process.noNewPrivileges: must be true or false"),
    # root, hostname, mounts, annotations
    (mutate("root.readonly", "yes"), "root.readonly: must be true or false"),
    (mutate("hostname", 5), "hostname: must be a string"),
    (mutate("hostname", "h" * 65), "hostname: must be at most 64 bytes long"),
    (
        mutate("linux.namespaces", [{"type": "mount"}]),
        "hostname: cannot be set without a uts namespace (linux.namespaces has no 'uts')",
    ),
    (mutate("mounts[2].destination", "dev/pts"), "mounts[2].destination: must be an absolute path"),
    ((lambda d: d["mounts"][1].pop("destination")), "mounts[1].destination: required"),
    (mutate("mounts[0].options", "ro"), "mounts[0].options: must be a list of strings"),
    (mutate("mounts[0].options", ["ro", 1]), "mounts[0].options[1]: must be a non-empty string"),
    (mutate("mounts", [{"destination": "/data", "options": ["bind"]}]), "mounts[0].source: required for a bind mount"),
    (mutate("annotations", {"a": 1}), 'annotations["a"]: must be a string'),
    (mutate("annotations", ["a"]), "annotations: must be an object mapping strings to strings"),
    # namespaces and id mappings
    (mutate("linux.namespaces[1].type", "foo"), "linux.namespaces[1].type: unknown namespace type 'foo' (expected one of pid, network, mount, ipc, uts, user, cgroup, time)"),
    (mutate("linux.timeOffsets", {"monotonic": {"secs": 1}}), "linux.timeOffsets: need a new time namespace (linux.namespaces has no 'time' without a path)"),
    (mutate("linux.namespaces[2]", {"type": "pid"}), "linux.namespaces: 'pid' appears twice"),
    (mutate("linux.namespaces[0].path", "proc/1/ns/pid"), "linux.namespaces[0].path: must be an absolute path"),
    (mutate("linux.namespaces[0]", {"path": "/proc/1/ns/pid"}), "linux.namespaces[0].type: required"),
    (
        mutate("linux.namespaces[0]", {"type": "user"}),
        "linux.uidMappings: required when a user namespace is created (linux.namespaces has 'user' without a path)",
    ),
    (
        mutate("linux.uidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}]),
        "linux.uidMappings: given, but no user namespace is created (only when linux.namespaces has 'user' without a path)",
    ),
]


USERNS_ERRORS: list[tuple[Callable[[dict[str, Any]], None], str]] = [
    (delete("linux.gidMappings"), "linux.gidMappings: required when a user namespace is created (linux.namespaces has 'user' without a path)"),
    (mutate("linux.uidMappings[0].size", 0), "linux.uidMappings[0].size: must be an integer from 1 to 4294967295"),
    (mutate("linux.uidMappings[0].hostID", True), "linux.uidMappings[0].hostID: must be an integer from 0 to 4294967295"),
    (mutate("linux.uidMappings[0].containerID", 2**32 - 10), "linux.uidMappings[0]: containerID 4294967286 + size 65536 goes past 4294967295"),
    (
        mutate("linux.gidMappings[1]", {"containerID": 999, "hostID": 300000, "size": 5}),
        "linux.gidMappings[1]: overlaps linux.gidMappings[0] (the kernel refuses overlapping ranges)",
    ),
    (mutate("process.user.uid", 70000), "process.user.uid: 70000 is not mapped by linux.uidMappings (the kernel refuses to switch to it)"),
    (mutate("process.user.additionalGids", [5, 1001]), "process.user.additionalGids[1]: 1001 is not mapped by linux.gidMappings (the kernel refuses to switch to it)"),
    # resources
    (mutate("linux.resources.memory.limit", 0), "linux.resources.memory.limit: must be a positive integer or -1 (unlimited)"),
    (mutate("linux.resources.memory.limit", True), "linux.resources.memory.limit: must be a positive integer or -1 (unlimited)"),
    (mutate("linux.resources.memory.swap", -2), "linux.resources.memory.swap: must be a positive integer or -1 (unlimited)"),
    (mutate("linux.resources.memory.swap", 1 << 20), "linux.resources.memory.swap: 1048576 is below limit 268435456 (OCI swap counts memory plus swap, so it must be at least the limit, or -1)"),
    (mutate("linux.resources.memory.limit", -1), "linux.resources.memory.swap: cannot be limited without a memory limit (linux.resources.memory.limit)"),
    (mutate("linux.resources.cpu.shares", 0), "linux.resources.cpu.shares: must be an integer from 2 to 262144 (the kernel's MIN_SHARES and MAX_SHARES: it would silently clamp any other value)"),
    (mutate("linux.resources.cpu.quota", 0), "linux.resources.cpu.quota: must be -1 (unlimited) or an integer from 1000 to 17592186044415 (microseconds: at least 1 ms, the kernel's range for a CFS quota)"),
    (mutate("linux.resources.cpu.period", -1), "linux.resources.cpu.period: must be an integer from 1000 to 1000000 (microseconds: 1 ms to 1 s, the kernel's range for a CFS period)"),
    (mutate("linux.resources.cpu.cpus", "0-2,a"), "linux.resources.cpu.cpus: must be a string of CPU numbers and ranges such as '0-2,4'"),
    (mutate("linux.resources.cpu.cpus", "3-1"), "linux.resources.cpu.cpus: must be a string of CPU numbers and ranges such as '0-2,4': range '3-1' goes backwards"),
    (mutate("linux.resources.cpu.mems", ""), "linux.resources.cpu.mems: must be a string of memory node numbers and ranges such as '0-2,4'"),
    (mutate("linux.resources.pids.limit", 0), "linux.resources.pids.limit: must be -1 (unlimited) or an integer from 1 to 4194304 (the kernel's PID_MAX_LIMIT); 0 is ambiguous (runc reads it as unlimited)"),
    (mutate("linux.resources.pids", {}), "linux.resources.pids.limit: required"),
    (mutate("linux.resources.blockIO.weight", 5), "linux.resources.blockIO.weight: must be an integer from 10 to 1000"),
    (mutate("linux.resources.devices[1].access", "rx"), "linux.resources.devices[1].access: must be some of the letters r, w and m, each at most once"),
    (mutate("linux.resources.devices[1].access", ""), "linux.resources.devices[1].access: must be some of the letters r, w and m, each at most once"),
    (mutate("linux.resources.devices[1].type", "p"), "linux.resources.devices[1].type: must be one of a, c, b"),
    (mutate("linux.resources.devices[1].major", -1), "linux.resources.devices[1].major: must be an integer of 0 or more (leave it out to mean any)"),
    (mutate("linux.resources.devices[0].allow", "false"), "linux.resources.devices[0].allow: must be true or false"),
    (mutate("linux.resources.devices[0]", {"access": "r"}), "linux.resources.devices[0].allow: required"),
    # cgroups path
    (mutate("linux.cgroupsPath", 7), "linux.cgroupsPath: must be a non-empty string"),
    (mutate("linux.cgroupsPath", "./"), "linux.cgroupsPath: must name a cgroup (a relative path is placed below corral's own cgroup)"),
    (mutate("linux.cgroupsPath", "corral/../x"), "linux.cgroupsPath: must not contain '..' components"),
    (mutate("linux.cgroupsPath", "/corral/../x"), "linux.cgroupsPath: must not contain '..' components"),
    (mutate("linux.cgroupsPath", "/"), "linux.cgroupsPath: must name a cgroup below the root cgroup"),
    (
        mutate("linux.cgroupsPath", "system.slice:corral:x"),
        "linux.cgroupsPath: systemd cgroup paths (slice:prefix:name) are not supported yet; give a cgroupfs path such as /corral/<id>",
    ),
    # devices, paths, sysctl, propagation
    (mutate("linux.devices[0].type", "x"), "linux.devices[0].type: must be one of c, b, u, p"),
    (mutate("linux.devices[0].path", "dev/fuse"), "linux.devices[0].path: must be an absolute path"),
    (mutate("linux.devices[0].major", -1), "linux.devices[0].major: must be an integer from 0 to 4095 (mknod takes 12 bits of major)"),
    (mutate("linux.devices[0].fileMode", 0o20666), "linux.devices[0].fileMode: must be an integer from 0 to 4095 (permission bits: 0o666 is 438)"),
    (mutate("linux.devices[0].uid", False), "linux.devices[0].uid: must be an integer from 0 to 4294967295"),
    (mutate("linux.devices[1]", {"path": "/dev/kmsg", "type": "c"}), "linux.devices[1].major: required"),
    (mutate("linux.maskedPaths[1]", "proc/kcore"), "linux.maskedPaths[1]: must be an absolute path"),
    (mutate("linux.readonlyPaths", "/proc"), "linux.readonlyPaths: must be a list of absolute paths"),
    (mutate("linux.sysctl", {"net.ipv4.ip_forward": 1}), 'linux.sysctl["net.ipv4.ip_forward"]: must be a string'),
    (mutate("linux.sysctl", ["net.ipv4.ip_forward=1"]), "linux.sysctl: must be an object mapping strings to strings"),
    (mutate("linux.sysctl", {"vm.swappiness": "10"}), 'linux.sysctl["vm.swappiness"]: is not namespaced in the kernel: setting it would change the host\'s value'),
    (mutate("linux.sysctl", {"net/../../vm/x": "1"}), 'linux.sysctl["net/../../vm/x"]: is not a sysctl name'),
    (mutate("linux.sysctl", {"kernel.hostname": "x"}), "linux.sysctl[\"kernel.hostname\"]: conflicts with the OCI 'hostname' field: set that instead"),
    (mutate("linux.rootfsPropagation", "slaves"), "linux.rootfsPropagation: must be one of private, rprivate, slave, rslave, shared, rshared, unbindable, runbindable"),
]


@pytest.mark.parametrize("change, message", ERRORS, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(ERRORS)])
def test_runc_spec_errors_name_their_json_path(change: Callable[[dict[str, Any]], None], message: str) -> None:
    data = runc_spec()
    change(data)

    assert error_of(data, bundle="/b") == message


@pytest.mark.parametrize(
    "change, message", USERNS_ERRORS, ids=[m.split(":")[0] + f"-{i}" for i, (_, m) in enumerate(USERNS_ERRORS)]
)
def test_userns_spec_errors_name_their_json_path(change: Callable[[dict[str, Any]], None], message: str) -> None:
    data = userns_spec()
    change(data)

    assert error_of(data) == message


def test_rlimit_aliases_count_as_the_same_limit() -> None:
    data = minimal()
    data["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
        {"type": "RLIMIT_OFILE", "soft": 2, "hard": 2},
    ]

    assert error_of(data) == "process.rlimits[1]: 'RLIMIT_OFILE' is the same limit as 'RLIMIT_NOFILE'"


def test_sysctls_need_their_namespace() -> None:
    data = userns_spec()
    data["linux"]["namespaces"] = [ns for ns in data["linux"]["namespaces"] if ns["type"] != "network"]

    assert error_of(data) == "linux.sysctl[\"net.ipv4.ip_forward\"]: needs a network namespace (linux.namespaces has no 'network')"


def test_masked_paths_need_a_mount_namespace() -> None:
    data = runc_spec()
    del data["hostname"]
    data["linux"]["namespaces"] = [{"type": "pid"}]

    assert error_of(data, bundle="/b") == (
        "linux.maskedPaths: need a mount namespace (linux.namespaces has no 'mount'): they would change the host's mounts"
    )


def test_joined_namespaces_are_not_new() -> None:
    data = userns_spec()
    data["linux"]["namespaces"][-1] = {"type": "user", "path": "/proc/1/ns/user"}

    assert error_of(data).startswith("linux.uidMappings: given, but no user namespace is created")
    del data["linux"]["uidMappings"], data["linux"]["gidMappings"]
    config = Config.from_dict(data)
    assert config.namespace("user") == Namespace("user", "/proc/1/ns/user")
    assert not config.creates_namespace("user")


def test_hostname_with_a_joined_uts_namespace_is_allowed_as_in_runc() -> None:
    data = minimal()
    data["hostname"] = "h"
    data["linux"] = {"namespaces": [{"type": "uts", "path": "/proc/1/ns/uts"}]}

    assert Config.from_dict(data).hostname == "h"


def test_bools_are_not_integers() -> None:
    for path in ("process.user.uid", "process.user.gid", "process.oomScoreAdj"):
        data = runc_spec()
        mutate(path, True)(data)
        assert error_of(data, bundle="/b").startswith(f"{path}: must be an integer")
    data = minimal()
    data["process"]["rlimits"] = [{"type": "RLIMIT_CORE", "soft": False, "hard": 1}]
    assert error_of(data) == "process.rlimits[0].soft: must be an integer from 0 to 18446744073709551615"


def test_errors_carry_where_problem_and_source() -> None:
    data = minimal()
    data["process"]["cwd"] = "relative"

    with pytest.raises(ConfigError) as info:
        Config.from_dict(data, source="/b/config.json")

    assert info.value.where == "process.cwd"
    assert info.value.problem == "must be an absolute path"
    assert info.value.source == "/b/config.json"
    assert str(info.value) == "/b/config.json: process.cwd: must be an absolute path"


def test_process_from_dict_validates_like_the_config() -> None:
    with pytest.raises(ConfigError) as info:
        Process.from_dict({"args": ["sh"], "cwd": "/", "env": ["X"]}, source="exec.json")

    assert str(info.value) == "exec.json: process.env[0]: must be a string of the form NAME=value"
    sized = Process.from_dict({"args": ["sh"], "cwd": "/", "terminal": True, "consoleSize": {"height": 24, "width": 80}})
    assert (sized.terminal, sized.console_size) == (True, ConsoleSize(height=24, width=80))
    assert Process.from_dict(sized.to_dict()) == sized
    with pytest.raises(ConfigError, match=r"^process: must be an object, not a list$"):
        Process.from_dict([])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- unsupported keys

UNSUPPORTED = [
    "solaris",
    "windows",
    "vm",
    "linux.intelRdt",
    "linux.memoryPolicy",
    "linux.resources.network",
    "linux.resources.rdma",
    "linux.resources.unified",
    "linux.resources.memory.swappiness",
    "linux.resources.memory.disableOOMKiller",
    "linux.resources.memory.useHierarchy",
    "linux.resources.cpu.realtimeRuntime",
    "linux.resources.cpu.realtimePeriod",
    "linux.resources.blockIO.leafWeight",
    "linux.resources.blockIO.weightDevice",
    "linux.resources.blockIO.throttleReadBpsDevice",
    "linux.resources.blockIO.throttleWriteIOPSDevice",
    "process.user.username",
]


@pytest.mark.parametrize("path", UNSUPPORTED)
def test_unsupported_oci_keys_are_refused(path: str) -> None:
    data = minimal()
    mutate(path, {"some": "value"})(data)

    assert error_of(data) == f"{path}: not supported yet"


@pytest.mark.parametrize("path", ["linuxx", "process.arg", "linux.namespace", "mounts[0].flags", "linux.resources.memory.limt"])
def test_unknown_keys_are_refused_in_strict_mode_with_a_spelling_hint(path: str) -> None:
    """Leniently they are ignored with the same hint as a warning (test_config_lenient.py)."""
    data = minimal()
    data["mounts"] = [{"destination": "/proc", "type": "proc", "source": "proc"}]
    mutate(path, 1)(data)

    message = error_of(data, strict=True)

    assert message.startswith(f"{path}: not a key of the OCI runtime spec")
    assert "check its spelling" in message
    assert any(w.startswith(f"{path}: ") and "check its spelling" in w for w in Config.from_dict(data).warnings)


def test_annotations_are_free_form() -> None:
    data = minimal()
    data["annotations"] = {"seccomp": "x", "hooks.anything": "y", "": "empty key"}

    assert Config.from_dict(data).annotations == data["annotations"]


def test_unsupported_keys_are_named_before_value_errors() -> None:
    data = runc_spec()
    data["process"]["args"] = []
    data["process"]["commandLine"] = "sh"

    assert error_of(data, bundle="/b") == "process.commandLine: not supported yet"


# --------------------------------------------------------------------------- bundle files


def test_missing_bundle_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"

    with pytest.raises(ConfigError) as info:
        Config.from_bundle(missing)

    assert str(info.value) == f"{missing}/config.json: bundle: {missing} does not exist or is not a directory"
    assert info.value.source == f"{missing}/config.json"


def test_missing_config_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_bundle(tmp_path)

    assert str(info.value) == f"{tmp_path}/config.json: bundle: {tmp_path} has no config.json (`runc spec` writes an example)"


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{\n  "ociVersion": "1.0.2",\n  "process": {,}\n}\n')

    with pytest.raises(ConfigError) as info:
        Config.from_bundle(tmp_path)

    assert str(info.value) == (
        f"{tmp_path}/config.json: line 3 column 15: invalid JSON: Expecting property name enclosed in double quotes"
    )


def test_config_json_that_is_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("[1, 2]")

    with pytest.raises(ConfigError) as info:
        Config.from_bundle(tmp_path)

    assert str(info.value) == f"{tmp_path}/config.json: (top level): must be an object, not a list"


def test_config_json_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(b'{"ociVersion": "\xff"}')

    with pytest.raises(ConfigError, match=r"config\.json: \(file\): is not UTF-8 text"):
        Config.from_bundle(tmp_path)


def test_missing_rootfs(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, runc_spec(), rootfs=False)

    with pytest.raises(ConfigError) as info:
        Config.from_bundle(bundle)

    assert str(info.value) == f"{bundle}/config.json: root.path: {bundle}/rootfs does not exist or is not a directory"


def test_rootfs_that_is_a_file(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, runc_spec(), rootfs=False)
    (bundle / "rootfs").write_text("not a directory")

    with pytest.raises(ConfigError, match=r"root\.path: .*/rootfs does not exist or is not a directory$"):
        Config.from_bundle(bundle)


def test_validation_errors_in_a_bundle_name_the_file(tmp_path: Path) -> None:
    spec = runc_spec()
    spec["mounts"][2]["destination"] = "dev/pts"
    bundle = write_bundle(tmp_path, spec)

    with pytest.raises(ConfigError) as info:
        Config.from_bundle(bundle)

    assert str(info.value) == f"{bundle}/config.json: mounts[2].destination: must be an absolute path"


def test_unreadable_config_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").mkdir()  # unreadable as a file, even for root

    with pytest.raises(ConfigError) as info:
        Config.from_bundle(tmp_path)

    assert str(info.value) == f"{tmp_path}/config.json: (file): cannot be read: Is a directory"


# --------------------------------------------------------------------------- tables


def test_capability_table_matches_the_kernel_numbers() -> None:
    assert len(CAPABILITIES) == 41
    assert sorted(CAPABILITIES.values()) == list(range(41))
    assert CAPABILITIES["CAP_CHOWN"] == 0
    assert CAPABILITIES["CAP_SYS_ADMIN"] == 21
    assert CAPABILITIES["CAP_SETFCAP"] == 31
    assert CAPABILITIES["CAP_CHECKPOINT_RESTORE"] == 40
    assert set(DEFAULT_CAPABILITIES) <= set(CAPABILITIES)


def test_rlimit_table_comes_from_the_resource_module() -> None:
    import resource

    assert RLIMITS["RLIMIT_NOFILE"] == resource.RLIMIT_NOFILE
    assert all(name.startswith("RLIMIT_") for name in RLIMITS)


def test_inputs_are_not_modified() -> None:
    data = userns_spec()
    before = copy.deepcopy(data)

    Config.from_dict(data, bundle="/b")

    assert data == before
