"""OCI hooks, in the style of crun's suite: the config `runc spec` writes, one hook kind
added, a real container run, and what the hook saw checked from its own output.

Each hook is a busybox sh script that writes down what it got (its argv, the state on its
stdin, its environment, its namespaces as `readlink /proc/self/ns/*` shows them, its
working directory) to a file the test reads: the namespaces are compared with the
container init's /proc/<pid>/ns/* or with this process's (the runtime's), so where a hook
ran is checked against the kernel, never against corral's record. What a failed create
leaves is checked on the host: processes in /proc, the cgroup directory, the mount table,
the run directory.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from corral import Config, Runtime
from corral.cli.commands.spec import default_spec
from corral.errors import HookFailed
from tests.integration.conftest import CGROUP_PARENT
from tests.rootfs import BUSYBOX

pytestmark = pytest.mark.root

NAMESPACES = ("mnt", "pid", "net", "uts", "ipc")

#: $1: the directory to write to; $2: the hook's kind (the file's name); $3: a host path
#: (resolves only where the host's mount table is seen, before pivot_root).
SCRIPT = r"""
state=$(cat)
{
  echo "argv0=$0"
  echo "state=$state"
  echo "env=${HOOK_VAR-unset} ${CORRAL_TEST_LEAK-unset}"
  echo "cwd=$(pwd)"
  for ns in mnt pid net uts ipc; do echo "ns_$ns=$(readlink /proc/self/ns/$ns)"; done
  echo "sees_host=$(test -e "$3" && echo yes || echo no)"
} > "$1/$2.tmp"
mv "$1/$2.tmp" "$1/$2"
echo ran >> "$1/$2.runs"
"""


#: Made by the `out` fixture, outside the directory bound into the container.
MARKER = "host-marker"


def hook(kind: str, out: str, path: str = BUSYBOX, script: str = SCRIPT, **extra: Any) -> dict[str, Any]:
    """A hook running `script` under busybox sh (argv[0] "sh" picks the applet), writing into
    `out` as the hook sees it; argv after that: its kind, then the host marker's path."""
    marker = str(Path(out).parent / MARKER) if out != "/out" else HOST_MARKER[0]
    args = ["sh", "-c", script, f"{kind}-argv0", out, kind, marker]
    return {"path": path, "args": args, "env": ["HOOK_VAR=given"], **extra}


#: The marker's host path, for hooks that run in the container (set by the `out` fixture).
HOST_MARKER = [""]


def spec_config(bundle: Path, cid: str, out: Path, hooks: dict[str, Any], args: tuple[str, ...] = ("sleep", "30")) -> Config:
    """`runc spec`'s config, with the cgroups under the session's parent, a bind mount for
    what in-container hooks write, an annotation, and `hooks`."""
    data = default_spec()
    data["process"]["args"] = list(args)
    data["process"]["terminal"] = False  # the hooks are under test here, not the pty (test_terminal.py)
    data["linux"]["cgroupsPath"] = f"{CGROUP_PARENT}/{cid}"
    data["mounts"].append({"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind", "rw"]})
    data["annotations"] = {"org.example.hooks": cid}
    data["hooks"] = hooks
    return Config.from_dict(data, bundle=str(bundle))


@pytest.fixture
def out(tmp_path: Path) -> Path:
    path = tmp_path / "hook-out"
    path.mkdir()
    (tmp_path / MARKER).write_text("only the host's mount table shows this file at this path\n")
    HOST_MARKER[0] = str(tmp_path / MARKER)
    return path


def seen(out: Path, kind: str) -> dict[str, Any]:
    lines = dict(line.split("=", 1) for line in (out / kind).read_text().splitlines())
    lines["state"] = json.loads(lines["state"])
    lines["runs"] = (out / f"{kind}.runs").read_text().count("ran")
    return lines


def namespaces_of(pid: int | str) -> dict[str, str]:
    return {ns: os.readlink(f"/proc/{pid}/ns/{ns}") for ns in NAMESPACES}


def hook_namespaces(saw: dict[str, Any]) -> dict[str, str]:
    return {ns: saw[f"ns_{ns}"] for ns in NAMESPACES}


def journal_hooks(box: Any, event: str) -> list[dict[str, Any]]:
    return [h for e in box.history() if e.event == event for h in e.detail.get("hooks", [])]


def check_state(saw: dict[str, Any], cid: str, bundle: Path, status: str, pid: int | None) -> None:
    state = saw["state"]
    assert state["ociVersion"].startswith("1.")
    assert state["id"] == cid
    assert state["status"] == status
    assert state["bundle"] == str(bundle)
    assert state["annotations"] == {"org.example.hooks": cid}
    assert state.get("pid") == pid


def check_given(saw: dict[str, Any], kind: str) -> None:
    """argv and env exactly as the config gave them: nothing of the controller's environment."""
    assert saw["argv0"] == f"{kind}-argv0"
    assert saw["env"] == "given unset"
    assert saw["runs"] == 1


@pytest.fixture(autouse=True)
def _leak_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_TEST_LEAK", "the controller's environment")


# --------------------------------------------------------------------------- each kind at its moment


@pytest.mark.parametrize("kind", ["prestart", "createRuntime"])
def test_runtime_create_hooks_run_once_in_the_runtime_namespaces_during_create(
    runtime: Runtime, bundle: Path, out: Path, kind: str
) -> None:
    cid = f"h-{kind.lower()}"
    box = runtime.create(cid, spec_config(bundle, cid, out, {kind: [hook(kind, str(out), timeout=30)]}))

    saw = seen(out, kind)
    assert box.state.value == "created"
    check_given(saw, kind)
    check_state(saw, cid, bundle, "creating", box.pid)
    assert hook_namespaces(saw) == namespaces_of("self")  # the runtime's, not the container's
    assert namespaces_of(box.pid)["mnt"] != saw["ns_mnt"]
    assert saw["cwd"] == str(bundle)
    [record] = journal_hooks(box, "create")
    assert record["kind"] == kind and record["path"] == BUSYBOX
    assert record["exit_status"] == 0 and record["timed_out"] is False and record["duration_ms"] > 0
    box.start()
    assert seen(out, kind)["runs"] == 1  # not again at start


def test_create_container_runs_in_the_containers_namespaces_before_pivot_root(
    runtime: Runtime, bundle: Path, out: Path
) -> None:
    cid = "h-createcontainer"
    box = runtime.create(cid, spec_config(bundle, cid, out, {"createContainer": [hook("createContainer", str(out))]}))

    saw = seen(out, "createContainer")
    check_given(saw, "createContainer")
    check_state(saw, cid, bundle, "creating", box.pid)
    assert hook_namespaces(saw) == namespaces_of(box.pid)
    assert saw["sees_host"] == "yes"  # the host's paths still resolve: before pivot_root
    assert saw["cwd"] == str(bundle / "rootfs")
    [record] = journal_hooks(box, "create")
    assert record["kind"] == "createContainer" and record["exit_status"] == 0


def test_start_container_runs_in_the_container_at_start_before_the_program(
    runtime: Runtime, bundle: Path, out: Path
) -> None:
    cid = "h-startcontainer"
    script = SCRIPT + 'echo hook >> "$1/order"\n'
    config = spec_config(
        bundle, cid, out,
        {"startContainer": [hook("startContainer", "/out", path="/bin/busybox", script=script)]},
        args=("sh", "-c", "echo program >> /out/order; exec sleep 30"),
    )
    box = runtime.create(cid, config)
    assert not (out / "startContainer").exists()  # not at create

    box.start()

    saw = seen(out, "startContainer")
    check_given(saw, "startContainer")
    check_state(saw, cid, bundle, "created", box.pid)
    assert hook_namespaces(saw) == namespaces_of(box.pid)
    assert saw["sees_host"] == "no"  # after pivot_root: the path resolved in the container
    for _ in range(100):
        if (out / "order").read_text().count("\n") == 2:
            break
        time.sleep(0.05)
    assert (out / "order").read_text().split() == ["hook", "program"]
    [record] = journal_hooks(box, "start")
    assert record["kind"] == "startContainer" and record["path"] == "/bin/busybox" and record["exit_status"] == 0


def test_poststart_runs_in_the_runtime_namespaces_once_the_program_runs(
    runtime: Runtime, bundle: Path, out: Path
) -> None:
    cid = "h-poststart"
    box = runtime.create(cid, spec_config(bundle, cid, out, {"poststart": [hook("poststart", str(out))]}))
    assert not (out / "poststart").exists()

    box.start()

    saw = seen(out, "poststart")
    check_given(saw, "poststart")
    check_state(saw, cid, bundle, "running", box.pid)
    assert hook_namespaces(saw) == namespaces_of("self")
    assert box.state.value == "running"
    assert [r["kind"] for r in journal_hooks(box, "start")] == ["poststart"]


def test_poststop_runs_after_destroy_when_the_container_is_gone(runtime: Runtime, bundle: Path, out: Path) -> None:
    cid = "h-poststop"
    # $4: the container's cgroup below each hierarchy; $5: its run dir. Both must be gone.
    script = SCRIPT + (
        'for d in /sys/fs/cgroup/*/"$4" /sys/fs/cgroup/"$4" "$5"; do test -e "$d" && echo "$d" >> "$1/left"; done\n'
        "true\n"
    )
    poststop = hook("poststop", str(out), script=script)
    poststop["args"] += [f"{CGROUP_PARENT.lstrip('/')}/{cid}", str(runtime.run_root / cid)]
    box = runtime.create(cid, spec_config(bundle, cid, out, {"poststop": [poststop]}))
    box.start()
    pid = box.pid
    assert os.path.isdir(runtime.run_root / cid)

    box.signal(9)
    box.wait(10)
    assert not (out / "poststop").exists()  # not when the program exits: at destroy
    box.destroy()

    saw = seen(out, "poststop")
    check_given(saw, "poststop")
    check_state(saw, cid, bundle, "stopped", None)
    assert hook_namespaces(saw) == namespaces_of("self")
    assert not os.path.exists(f"/proc/{pid}")
    assert not (out / "left").exists(), (out / "left").read_text()
    [record] = journal_hooks(box, "destroy")
    assert record["kind"] == "poststop" and record["exit_status"] == 0


# --------------------------------------------------------------------------- failures


def corral_processes(cid: str) -> list[str]:
    """Every process on the host named as one of this container's (monitor, keeper, init)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
        if comm in (f"corral-mon:{cid}"[:15], f"corral-keep:{cid}"[:15]):
            found.append(f"{entry} {comm}")
    return found


def assert_nothing_left(runtime: Runtime, tmp_path: Path, cid: str, init_pid: int) -> None:
    assert not os.path.exists(f"/proc/{init_pid}"), "the init is still there"
    assert corral_processes(cid) == []
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        assert not (hierarchy / CGROUP_PARENT.lstrip("/") / cid).exists(), hierarchy
    assert not (runtime.run_root / cid).exists()
    with open("/proc/self/mountinfo") as f:
        assert [line for line in f if str(tmp_path) in line] == []


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_a_failing_create_hook_fails_create_and_leaves_nothing(
    runtime: Runtime, tmp_path: Path, bundle: Path, out: Path, kind: str
) -> None:
    cid = f"hf-{kind.lower()}"
    failing = SCRIPT + 'echo "no, says the $2 hook" >&2; exit 3\n'
    config = spec_config(bundle, cid, out, {kind: [hook(kind, str(out), script=failing), hook(kind, str(out) + "-never")]})

    with pytest.raises(HookFailed, match="no, says the") as info:
        runtime.create(cid, config)

    init_pid = seen(out, kind)["state"]["pid"]
    assert_nothing_left(runtime, tmp_path, cid, init_pid)
    assert not Path(str(out) + "-never").exists()  # the next hook of the kind did not run
    assert [h["exit_status"] for h in info.value.hooks] == [3]
    tombstone = runtime.load(cid)
    assert tombstone.state.value == "destroyed"
    [record] = journal_hooks(tombstone, "destroy")
    assert record["kind"] == kind and record["exit_status"] == 3 and "no, says the" in record["error"]


def test_a_hook_that_outlives_its_timeout_is_killed_and_fails_create(
    runtime: Runtime, tmp_path: Path, bundle: Path, out: Path
) -> None:
    cid = "hf-timeout"
    slow = 'echo $$ > "$1/pid"; sleep 60 & echo $! > "$1/child"; cat > "$1/state"; wait\n'
    config = spec_config(bundle, cid, out, {"createRuntime": [hook("createRuntime", str(out), script=slow, timeout=1)]})

    started = time.monotonic()
    with pytest.raises(HookFailed, match="timeout") as info:
        runtime.create(cid, config)

    assert 1 <= time.monotonic() - started < 15
    for name in ("pid", "child"):
        pid = int((out / name).read_text())
        assert not os.path.exists(f"/proc/{pid}"), f"the hook's {name} {pid} outlived the deadline"
    [record] = info.value.hooks
    assert record["timed_out"] is True and record["exit_status"] is None and record["signal"] == 9
    assert_nothing_left(runtime, tmp_path, cid, json.loads((out / "state").read_text())["pid"])


def test_a_failing_start_container_hook_fails_start_and_stops_the_container(
    runtime: Runtime, bundle: Path, out: Path
) -> None:
    cid = "hf-startcontainer"
    failing = SCRIPT + "exit 4\n"
    config = spec_config(
        bundle, cid, out,
        {"startContainer": [hook("startContainer", "/out", path="/bin/busybox", script=failing)]},
        args=("sh", "-c", "echo program >> /out/order"),
    )
    box = runtime.create(cid, config)
    pid = box.pid

    with pytest.raises(HookFailed, match="exited with status 4") as info:
        box.start()

    assert [h["exit_status"] for h in info.value.hooks] == [4]
    assert seen(out, "startContainer")["runs"] == 1
    assert not (out / "order").exists()  # the program never ran
    for _ in range(100):
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")
    assert box.state.value == "stopped"


def test_a_failing_poststart_hook_is_only_a_warning(
    runtime: Runtime, bundle: Path, out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cid = "hf-poststart"
    config = spec_config(
        bundle, cid, out,
        {"poststart": [hook("poststart", str(out), script=SCRIPT + "exit 5\n"), hook("poststart", str(out) + "-next")]},
    )
    (Path(str(out) + "-next")).mkdir()
    box = runtime.create(cid, config)

    with caplog.at_level(logging.WARNING, logger="corral"):
        box.start()

    assert box.state.value == "running"
    assert seen(out, "poststart")["runs"] == 1
    assert seen(Path(str(out) + "-next"), "poststart")["runs"] == 1  # the rest still ran
    warnings = [r for r in caplog.records if r.name == "corral" and r.levelno == logging.WARNING]
    assert any("poststart hook" in r.getMessage() and "status 5" in r.getMessage() for r in warnings)
    assert [r["exit_status"] for r in journal_hooks(box, "start")] == [5, 0]


def test_a_failing_poststop_hook_is_only_a_warning(
    runtime: Runtime, bundle: Path, out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cid = "hf-poststop"
    box = runtime.create(cid, spec_config(bundle, cid, out, {"poststop": [hook("poststop", str(out), script="exit 6")]}))

    with caplog.at_level(logging.WARNING, logger="corral"):
        box.destroy(force=True)

    assert box.state.value == "destroyed"
    assert any("poststop hook" in r.getMessage() and "status 6" in r.getMessage() for r in caplog.records)
    assert [r["exit_status"] for r in journal_hooks(box, "destroy")] == [6]
