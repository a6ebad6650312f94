"""containerd drives corral: `ctr` through containerd's runc shim, with corral-runc as the runc binary.

A private containerd (Debian's package; installed here with apt if missing) runs on
its own socket, with its root, state, opt dir, runc root and the containers'
cgroup parent all its own, and a busybox image built here as an OCI image layout
tarball (tests/oci_image.py: no registry). The shim calls corral-runc exactly as
it calls runc (/work/shared/containerd.md lists the calls); corral-runc hands each
init and exec'd process to the shim, which is a subreaper and learns their exits
by reaping them.

At the end every task and container is deleted through ctr, containerd is stopped
by its own PID, shims that outlive it are killed by PID (found by the socket
address only ours use), and what is left under the temporary root (mounts,
directories), in /run/containerd (shim sockets, fifo dirs) and in the cgroup
parent is removed; the test then checks the host for leaks.
"""

from __future__ import annotations

import errno
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oci_image import IMAGE_NAME, busybox_image_layout
from tests.rootfs import BUSYBOX

pytestmark = pytest.mark.root

WRAPPER = Path(sys.executable).with_name("corral-runc")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = f"/corral-containerd-test-{os.getpid()}"
#: containerd's own paths that its config cannot move (ctr's fifo dirs, shim sockets).
RUN_CONTAINERD = Path("/run/containerd")
#: Every ctr call is bounded: a hung call is a failure, not a hung suite.
CTR_TIMEOUT = 120.0

CONFIG = """\
version = 2
disabled_plugins = ["io.containerd.grpc.v1.cri"]
root = "{tmp}/root"
state = "{tmp}/state"
[grpc]
  address = "{tmp}/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{tmp}/opt"
"""


def _install_containerd() -> str | None:
    """Install Debian's containerd (it ships ctr) if missing; None, or why it cannot be had."""
    if shutil.which("containerd") and shutil.which("ctr"):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "install", "-y", "-q", "containerd"], ["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "containerd"]):
        if shutil.which("apt-get") is None:
            return "containerd is not installed and there is no apt-get to install it"
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode == 0 and shutil.which("containerd") and shutil.which("ctr"):
            return None
    return f"apt-get cannot install containerd: {done.stderr.strip()[-300:]}"


def _entries(path: Path) -> set[str]:
    try:
        return set(os.listdir(path))
    except FileNotFoundError:
        return set()


def _mounts_under(root: Path) -> list[str]:
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == str(root) or point.startswith(f"{root}/"):
                found.append(point)
    return found


def _processes_with(needle: str) -> list[int]:
    """PIDs whose command line holds `needle` (our socket's path: only our shims have it)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            pids.append(int(entry))
    return pids


def _parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def _cgroup_dirs() -> list[Path]:
    """The test's cgroup parent in every hierarchy where it exists, deepest first."""
    found: list[Path] = []
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / CGROUP_PARENT.lstrip("/")
        if top.is_dir():
            found.extend(sorted((Path(d) for d, _, _ in os.walk(top)), key=lambda p: -len(p.parts)))
    return found


class Containerd:
    """A private containerd and the `ctr` calls against it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.socket = tmp / "containerd.sock"
        self.runc_root = tmp / "runc"
        self.process: subprocess.Popen[bytes] | None = None
        self.ids: list[str] = []

    def start(self) -> None:
        config = self.tmp / "config.toml"
        config.write_text(CONFIG.format(tmp=self.tmp))
        with open(self.tmp / "containerd.log", "wb") as log:
            self.process = subprocess.Popen(
                ["containerd", "--config", str(config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while self.ctr("version", check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"containerd did not start: {self.log()[-2000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        path = self.tmp / "containerd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def ctr(self, *args: str, check: bool = True, timeout: float = CTR_TIMEOUT) -> subprocess.CompletedProcess[str]:
        command = ["ctr", "--address", str(self.socket), *args]
        # Files, not pipes: a container holding a copy of a pipe would keep the read waiting.
        with open(self.tmp / "ctr.out", "w+") as out, open(self.tmp / "ctr.err", "w+") as err:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout)
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(command, done.returncode, out.read(), err.read())
        if check:
            assert result.returncode == 0, f"ctr {' '.join(args)}: exit {result.returncode}: {result.stderr}"
        return result

    def run(self, cid: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`ctr run` through corral-runc, with the container's cgroup under the test's parent."""
        self.ids.append(cid)
        return self.ctr(
            "run", "--runc-binary", str(WRAPPER), "--runc-root", str(self.runc_root),
            "--cgroup", f"{CGROUP_PARENT}/{cid}", *args, check=check,
        )

    def on_terminal(self, *args: str, typed: bytes = b"", after: bytes = b"# ") -> tuple[bytes, int]:
        """`ctr ARGS` with a pty of the test's own as its stdin, stdout and stderr (ctr -t needs a
        console there): what came through that terminal, and ctr's exit status. `typed` is
        written once `after` has come out (the shell's prompt)."""
        master, slave = os.openpty()
        try:
            process = subprocess.Popen(["ctr", "--address", str(self.socket), *args],
                                       stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        finally:
            os.close(slave)
        out = b""
        try:
            deadline = time.monotonic() + CTR_TIMEOUT
            while True:
                if typed and after in out:
                    os.write(master, typed)
                    typed = b""
                left = deadline - time.monotonic()
                assert left > 0, f"ctr {' '.join(args)}: still running after {CTR_TIMEOUT} s: {out!r}"
                if not select.select([master], [], [], left)[0]:
                    continue
                try:
                    data = os.read(master, 4096)
                except OSError as exc:  # EIO: ctr, the last holder of the terminal, is gone
                    if exc.errno != errno.EIO:
                        raise
                    break
                if not data:
                    break
                out += data
            return out, process.wait(timeout=CTR_TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            os.close(master)

    def bundle(self, cid: str) -> Path:
        """The task's bundle, where the shim runs the runtime (and its log.json)."""
        return self.tmp / "state" / "io.containerd.runtime.v2.task" / "default" / cid

    def as_the_shim(self, cid: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """corral-runc called as containerd 1.6's runc shim calls a runtime (go-runc): the global
        flags it always gives, in the bundle, with `stdin` as its input."""
        bundle = self.bundle(cid)
        return subprocess.run(
            [str(WRAPPER), "--root", str(self.runc_root / "default"), "--log", str(bundle / "log.json"),
             "--log-format", "json", *args],
            input=stdin, capture_output=True, text=True, cwd=bundle, timeout=CTR_TIMEOUT,
        )

    def task(self, cid: str) -> dict[str, str]:
        """The task's row in `ctr task ls`: TASK, PID, STATUS."""
        for line in self.ctr("task", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == cid:
                return {"pid": fields[1], "status": fields[2]}
        return {}

    def wait_for(self, cid: str, status: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while (task := self.task(cid)).get("status") != status:
            assert time.monotonic() < deadline, f"{cid}: {task} is not {status}"
            time.sleep(0.1)

    def corral(self, *args: str) -> subprocess.CompletedProcess[str]:
        """corral's own view of the namespace's root, as the shim made it."""
        return subprocess.run(
            [str(WRAPPER), "--root", str(self.runc_root / "default"), *args],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=CTR_TIMEOUT,
        )

    def stop(self) -> list[str]:
        """Delete what the tests made, stop containerd by its PID, remove what is left; the leaks."""
        problems: list[str] = []
        if self.process is not None and self.process.poll() is None:
            for cid in self.ids:
                for args in (("task", "kill", "-s", "SIGKILL", cid), ("task", "delete", "--force", cid),
                             ("container", "rm", cid)):
                    try:
                        self.ctr(*args, check=False, timeout=30)
                    except subprocess.TimeoutExpired:
                        problems.append(f"ctr {' '.join(args)} hung")
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                problems.append("containerd did not stop on SIGTERM")
                self.process.kill()
                self.process.wait()
        # Shims outlive containerd by design; ours are the ones given our socket's address.
        shims = _processes_with(f"-address {self.socket}")
        if shims:
            problems.append(f"shims still running after every task was deleted: {shims}")
        for pid in shims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if (self.runc_root / "default" / "corral.db").exists():  # what the shim could not delete
            listed = self.corral("list", "--format", "json")
            for state in json.loads(listed.stdout or "[]"):
                problems.append(f"corral container left: {state['id']} ({state['status']})")
                self.corral("delete", "--force", state["id"])
        for point in reversed(_mounts_under(self.tmp)):
            problems.append(f"mount left: {point}")
            subprocess.run(["umount", "-l", point], check=False)
        for directory in _cgroup_dirs():
            if directory.name != CGROUP_PARENT.lstrip("/"):
                problems.append(f"cgroup left: {directory}")
            try:
                directory.rmdir()
            except OSError as exc:
                problems.append(f"cannot remove {directory}: {exc}")
        return problems


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not WRAPPER.exists():
        pytest.skip("scripts/install writes .venv/bin/corral-runc, the binary containerd is given")
    if not os.path.exists(BUSYBOX):
        pytest.skip("needs Debian's busybox-static (scripts/install installs it)")
    why = _install_containerd()
    if why is not None:
        pytest.skip(why)
    had_run_dir = RUN_CONTAINERD.exists()
    before = {sub: _entries(RUN_CONTAINERD / sub) for sub in ("s", "fifo", "runc")}
    tmp = tmp_path_factory.mktemp("ctd")
    ctd = Containerd(tmp)
    try:
        ctd.start()
        image = tmp / "busybox-oci.tar"
        image.write_bytes(busybox_image_layout())
        ctd.ctr("images", "import", str(image))
        yield ctd
    finally:
        problems = ctd.stop()
        for sub, known in before.items():  # what ctr and the shims made in containerd's fixed paths
            for name in _entries(RUN_CONTAINERD / sub) - known:
                path = RUN_CONTAINERD / sub / name
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
        if not had_run_dir:
            shutil.rmtree(RUN_CONTAINERD, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
        assert not problems, problems


def test_ctr_run_rm_gives_the_output_and_the_exit_code(containerd: Containerd) -> None:
    result = containerd.run(
        "hello", "--rm", IMAGE_NAME, "hello", "sh", "-c", "echo hello from corral; echo to stderr >&2; exit 3",
        check=False,
    )
    assert result.returncode == 3, result
    assert result.stdout == "hello from corral\n", result
    assert "to stderr" in result.stderr, result
    assert containerd.task("hello") == {}
    assert json.loads(containerd.corral("list", "--format", "json").stdout or "[]") == []
    assert [d for d in _cgroup_dirs() if d.name == "hello"] == []  # corral's delete removed it


def test_a_detached_task_through_pause_resume_exec_ps_kill_and_delete(containerd: Containerd) -> None:
    containerd.run("box", "-d", IMAGE_NAME, "box", "sleep", "1000")
    task = containerd.task("box")
    assert task["status"] == "RUNNING", task
    init = int(task["pid"])
    # As with runc: the init is the shim's child (the shim reaps it), not corral's monitor's.
    shim = _parent_of(init)
    assert "containerd-shim-runc-v2" in _cmdline(shim) and "-id box" in _cmdline(shim)
    state = json.loads(containerd.corral("state", "box").stdout)
    assert (state["status"], state["pid"]) == ("running", init)

    containerd.ctr("task", "pause", "box")
    assert containerd.task("box")["status"] == "PAUSED"
    assert json.loads(containerd.corral("state", "box").stdout)["status"] == "paused"
    containerd.ctr("task", "resume", "box")
    assert containerd.task("box")["status"] == "RUNNING"
    # The shim reads the stats from the init's cgroups itself (v1 on a hybrid host, v2 on a pure one).
    metrics = containerd.ctr("task", "metrics", "box").stdout
    assert "pids.current" in metrics, metrics

    done = containerd.ctr("task", "exec", "--exec-id", "e1", "box", "sh", "-c", "echo from exec; exit 4", check=False)
    assert (done.returncode, done.stdout) == (4, "from exec\n"), done

    containerd.ctr("task", "exec", "-d", "--exec-id", "e2", "box", "sleep", "1000")
    listed = containerd.ctr("task", "ps", "box").stdout.split()
    pids = [int(p) for p in listed if p.isdigit()]
    assert init in pids and len(pids) == 2, listed
    (exec_pid,) = [p for p in pids if p != init]
    assert _parent_of(exec_pid) == shim  # exec'd processes too are the shim's to reap

    containerd.ctr("task", "kill", "-s", "SIGKILL", "box")
    containerd.wait_for("box", "STOPPED")
    deleted = containerd.ctr("task", "delete", "box")
    assert "exit code 137" in deleted.stderr, deleted  # the status the shim reaped: SIGKILL
    containerd.ctr("container", "rm", "box")
    assert containerd.task("box") == {}
    assert json.loads(containerd.corral("list", "--format", "json").stdout or "[]") == []
    assert [d for d in _cgroup_dirs() if d.name == "box"] == []


#: Typed at the container's shell. Each answer is framed (A...Z) so that the terminal's echo
#: of the typed line, which shows `$((6*7))` and not 42, cannot be mistaken for it.
TYPED = b'echo "A$((6*7))Z"; echo "T$(tty)T"; echo "O$(stty -a | grep -o -- -*onlcr)O"; exit 5\n'


def test_ctr_run_t_and_task_exec_t_talk_through_a_terminal(containerd: Containerd) -> None:
    """`ctr run -t` and `ctr task exec -t`: the shim gets the pty master over --console-socket and
    copies it to ctr, which copies it to the test's terminal; what is typed reaches the shell."""
    containerd.ids.append("tty")
    out, status = containerd.on_terminal(
        "run", "-t", "--rm", "--runc-binary", str(WRAPPER), "--runc-root", str(containerd.runc_root),
        "--cgroup", f"{CGROUP_PARENT}/tty", IMAGE_NAME, "tty", "sh", typed=TYPED,
    )
    assert status == 5, out
    assert b"A42Z" in out and b"T/dev/pts/0T" in out, out  # the container's own devpts
    assert b"OonlcrO" in out, out  # the terminal as runc's: the kernel's line discipline
    assert containerd.task("tty") == {}

    containerd.run("ttybox", "-d", IMAGE_NAME, "ttybox", "sleep", "1000")
    out, status = containerd.on_terminal("task", "exec", "-t", "--exec-id", "t1", "ttybox", "sh", typed=TYPED)
    assert status == 5, out
    assert b"A42Z" in out and b"OonlcrO" in out, out
    assert re.search(rb"T/dev/pts/[0-9]+T", out), out
    containerd.ctr("task", "kill", "-s", "SIGKILL", "ttybox")
    containerd.wait_for("ttybox", "STOPPED")
    containerd.ctr("task", "delete", "ttybox")
    containerd.ctr("container", "rm", "ttybox")


def _limit(cid: str, v1: str, v2: str) -> str:
    """A cgroup file of the task's, on cgroup v1 (controller/file) or v2 (file)."""
    controller, name = v1.split("/")
    if (CGROUP_ROOT / controller).is_dir():
        return (CGROUP_ROOT / controller / CGROUP_PARENT.lstrip("/") / cid / name).read_text().strip()
    return (CGROUP_ROOT / CGROUP_PARENT.lstrip("/") / cid / v2).read_text().strip()


def test_update_as_the_shim_calls_it(containerd: Containerd) -> None:
    """ctr 1.6 has no `task update`; the Task API's Update makes the shim call
    `update --resources - ID` with the LinuxResources JSON on stdin. containerd's CRI sends the
    whole of the spec's resources, device rules included: those, unchanged, are no change."""
    containerd.run("upd", "-d", IMAGE_NAME, "upd", "sleep", "1000")
    spec = json.loads((containerd.bundle("upd") / "config.json").read_text())
    devices = spec["linux"]["resources"]["devices"]
    resources = {"devices": devices, "memory": {"limit": 64 << 20},
                 "cpu": {"shares": 512, "quota": 50000, "period": 100000}, "pids": {"limit": 100}}
    done = containerd.as_the_shim("upd", "update", "--resources", "-", "upd", stdin=json.dumps(resources) + "\n")
    assert done.returncode == 0, done
    assert _limit("upd", "memory/memory.limit_in_bytes", "memory.max") == str(64 << 20)
    assert _limit("upd", "pids/pids.max", "pids.max") == "100"
    assert _limit("upd", "cpu/cpu.cfs_quota_us", "cpu.max").split()[0] == "50000"

    other = {"devices": devices[:1], "memory": {"limit": 32 << 20}}  # not the container's rules: refused
    done = containerd.as_the_shim("upd", "update", "--resources", "-", "upd", stdin=json.dumps(other))
    assert done.returncode != 0, done
    errors = [json.loads(line) for line in (containerd.bundle("upd") / "log.json").read_text().splitlines()]
    assert "linux.resources.devices" in [e for e in errors if e["level"] == "error"][-1]["msg"]  # what the shim shows
    assert _limit("upd", "memory/memory.limit_in_bytes", "memory.max") == str(64 << 20)  # nothing changed
    containerd.ctr("task", "kill", "-s", "SIGKILL", "upd")
    containerd.wait_for("upd", "STOPPED")
    containerd.ctr("task", "delete", "upd")
    containerd.ctr("container", "rm", "upd")
