"""corral side by side with runc and crun: one bundle, one run, medians and ratios.

Run as root (containers need namespaces, cgroups and mounts):

    .venv/bin/python benchmarks/lifecycle.py [--iterations 20] [--warmup 3] [--json]

What it does, in one process:

1. builds one busybox rootfs (Debian's busybox-static, every applet linked in
   /bin) and a config.json like `runc spec` writes (process ["/bin/true"],
   terminal false, the usual mounts, pid/network/ipc/uts/mount namespaces,
   masked and read-only paths, the deny-all device rule followed by runc's
   default allow-list). Every container of every runtime uses that rootfs and
   that config; only `args` and `linux.cgroupsPath` differ per container
   (written before the clock starts);
2. on a hybrid cgroup host, if crun is to run and a controller is left to
   cgroup2 (hugetlb here: crun 1.8 refuses that), mounts it as a v1 hierarchy
   under /sys/fs/cgroup, saying so, and puts the host back at the end;
3. times, interleaving the runtimes round by round, after a warm-up:
   - the whole lifecycle of `/bin/true`: corral `create`, `start`, `wait`,
     `destroy` through one long-lived `corral.Runtime` (a controller's use);
     runc/crun `run`, and `create` + `start` + wait for the init + `delete`;
   - `pause` + `resume` of a running `sleep` container, per pair;
   - exec `/bin/true` into that container and wait for it;
   - `state` (corral: `runtime.load(id).state`, which asks the kernel);
4. prints the machine, the versions, the medians (and p90s), the ratios
   corral/runc and corral/crun, and where corral's lifecycle time goes: per
   step (create, start, wait, destroy), and per part (store, executor, the
   rest) from a second, instrumented pass (`--detail`).

runc and crun get their own state roots (`--root`) in the temporary directory,
so the host's /run/runc and /run/crun are never touched, and every cgroup is
under /<prefix>-<pid>/ in each hierarchy. Everything it made is removed at the
end, also on Ctrl-C or SIGTERM: containers are force-deleted by the ids this
run gave them, never by process names. This is not a test: performance is
compared here, never asserted in the test suite.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import datetime
import errno
import io
import json
import os
import platform
import pstats
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timed_run import run  # noqa: E402  (subprocess.run's timeout polls: it would round every call up)

PREFIX = f"corral-bench-{os.getpid()}"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = f"/{PREFIX}"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SLEEP_ARGS = ["/bin/sleep", "100000"]
TIMEOUT = 60.0  # seconds for any one operation before the run is declared broken

#: The config of every container: `runc spec` (runc 1.1.5) with a non-terminal
#: /bin/true. `args` and `linux.cgroupsPath` are set per container.
SPEC: dict[str, Any] = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["/bin/true"],
        "env": [PATH_ENV, "TERM=xterm"],
        "cwd": "/",
        "capabilities": {
            name: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            for name in ("bounding", "effective", "permitted", "ambient")
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "bench",
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
        # `runc spec`'s deny-all rule alone: runc, crun and corral (executor/cgroups/devices.py) each
        # add the default allow-list (null, zero, full, random, urandom, tty, ptmx, pts).
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": [
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi",
        ],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}

#: The rows of the main table: (key, label). Each runtime fills the keys it has.
ROWS = (
    ("lifecycle", "lifecycle of /bin/true (corral: create+start+wait+destroy; oci: run)"),
    ("lifecycle_split", "lifecycle of /bin/true (oci: create+start+wait+delete)"),
    ("pause_resume", "pause + resume, per pair"),
    ("exec", "exec /bin/true and wait"),
    ("state", "state, per call (corral: runtime.load(id).state)"),
)
STEPS = ("create", "start", "wait", "destroy")


class Interrupted(BaseException):
    """SIGTERM or SIGHUP: unwind through every `finally`, like Ctrl-C."""


def say(message: str) -> None:
    """Progress and notes: stdout normally, stderr when stdout carries JSON."""
    print(message, file=sys.stderr if say.to_stderr else sys.stdout, flush=True)


say.to_stderr = False  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- the bundle


def build_rootfs(path: Path) -> Path:
    busybox = shutil.which("busybox")
    if busybox is None:
        sys.exit("busybox not found: install Debian's busybox-static (scripts/install does)")
    rootfs = path / "rootfs"
    rootfs.mkdir(parents=True)
    os.chmod(rootfs, 0o755)
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc", "root"):
        (rootfs / d).mkdir()
    os.chmod(rootfs / "tmp", 0o1777)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    listed = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    for applet in listed.stdout.split():
        if applet != "busybox":
            os.symlink("busybox", rootfs / "bin" / applet)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    return rootfs


def container_spec(rootfs: Path, args: list[str], cgroups_path: str) -> dict[str, Any]:
    spec = json.loads(json.dumps(SPEC))
    spec["root"]["path"] = str(rootfs)
    spec["process"]["args"] = list(args)
    spec["linux"]["cgroupsPath"] = cgroups_path
    return spec


# --------------------------------------------------------------------------- the runtimes


class Corral:
    """corral through its library API: one Runtime, as a controller holds it."""

    name = "corral"

    def __init__(self, work: Path, rootfs: Path) -> None:
        import corral
        from corral.executor.interface import Stdio

        self._corral = corral
        self._stdio = Stdio()  # /dev/null for 0, 1, 2, as the OCI runtimes get below
        self.rootfs = rootfs
        bundle = work / "corral-bundle"
        bundle.mkdir()
        (bundle / "config.json").write_text(json.dumps(container_spec(rootfs, ["/bin/true"], "/unused")))
        # The same config.json as runc and crun read, through corral's own reader.
        self.base = corral.Config.from_bundle(bundle)
        self.runtime = corral.Runtime(work / "corral-root", run_root=work / "corral-run")
        self.ids: list[str] = []
        self.exec_process = corral.Process(args=("/bin/true",), env=(PATH_ENV,))

    def version(self) -> str:
        return self._corral.__version__ + _git_revision()

    def _config(self, cid: str, args: list[str]) -> Any:
        return dataclasses.replace(
            self.base, process=dataclasses.replace(self.base.process, args=tuple(args)),
            cgroups_path=f"{CGROUP_PARENT}/{cid}",
        )

    def lifecycle(self, cid: str) -> dict[str, float]:
        config = self._config(cid, ["/bin/true"])
        self.ids.append(cid)
        t0 = time.perf_counter()
        box = self.runtime.create(cid, config, stdio=self._stdio)
        t1 = time.perf_counter()
        box.start()
        t2 = time.perf_counter()
        status = box.wait(TIMEOUT)
        t3 = time.perf_counter()
        box.destroy()
        t4 = time.perf_counter()
        if status != 0:
            raise RuntimeError(f"/bin/true in {cid} exited with {status}")
        return {"create": t1 - t0, "start": t2 - t1, "wait": t3 - t2, "destroy": t4 - t3, "total": t4 - t0}

    def start_sleeper(self, cid: str) -> None:
        self.ids.append(cid)
        box = self.runtime.create(cid, self._config(cid, SLEEP_ARGS), stdio=self._stdio)
        box.start()
        self.sleeper = box

    def pause_resume(self, cid: str) -> float:
        box = self.sleeper
        t0 = time.perf_counter()
        box.pause()
        box.resume()
        return time.perf_counter() - t0

    def exec(self, cid: str) -> float:
        box = self.sleeper
        t0 = time.perf_counter()
        status = box.exec(self.exec_process, stdio=self._stdio).wait(TIMEOUT)
        elapsed = time.perf_counter() - t0
        if status != 0:
            raise RuntimeError(f"exec /bin/true in {cid} exited with {status}")
        return elapsed

    def state(self, cid: str) -> float:
        t0 = time.perf_counter()
        state = self.runtime.load(cid).state
        elapsed = time.perf_counter() - t0
        if state.value != "running":
            raise RuntimeError(f"{cid} is {state.value}, not running")
        return elapsed

    def stop_sleeper(self, cid: str) -> None:
        self.runtime.load(cid).destroy(force=True)

    def cleanup(self) -> list[str]:
        problems: list[str] = []
        for cid in self.ids:
            try:
                box = self.runtime.load(cid)
                if box.recorded_state.value != "destroyed":
                    box.destroy(force=True)
            except Exception as exc:  # noqa: BLE001 - report, go on with the others
                problems.append(f"corral {cid}: {exc}")
        for box in self.runtime.list():
            problems.append(f"corral {box.id} is still {box.recorded_state.value}")
        self.runtime.close()
        return problems


class OCIRuntime:
    """runc or crun through its command line, with its own state root."""

    def __init__(self, name: str, binary: str, work: Path, rootfs: Path) -> None:
        self.name = name
        self.binary = binary
        self.rootfs = rootfs
        self.state_root = work / f"{name}-state"
        self.state_root.mkdir()
        self.bundles = work / f"{name}-bundles"
        self.bundles.mkdir()
        self.log = work / f"{name}.log"
        self.ids: list[str] = []

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout
        return out.splitlines()[0].split(" version ")[-1] if out else "?"

    def _argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.state_root), *args]

    def _call(self, *args: str, capture: bool = False, timeout: float = TIMEOUT) -> str:
        """Run one command; the container's stdio (inherited) goes to /dev/null and the log."""
        with open(self.log, "ab") as log:
            start = log.tell()
            done = run(  # not subprocess.run: its timeout polls, rounding every call up (timed_run.py)
                self._argv(*args),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                stderr=log,
                timeout=timeout,
            )
        if done.returncode != 0:
            with open(self.log, "rb") as log:
                log.seek(start)
                tail = log.read().decode(errors="replace").strip()[-600:]
            raise RuntimeError(f"{self.name} {' '.join(args)}: exit {done.returncode}: {tail}")
        return done.stdout.decode() if capture else ""

    def _bundle(self, cid: str, args: list[str]) -> Path:
        """Write the container's config.json (before the clock starts)."""
        bundle = self.bundles / cid
        bundle.mkdir()
        spec = container_spec(self.rootfs, args, f"{CGROUP_PARENT}/{cid}")
        (bundle / "config.json").write_text(json.dumps(spec))
        return bundle

    def lifecycle(self, cid: str) -> dict[str, float]:
        bundle = self._bundle(cid, ["/bin/true"])
        self.ids.append(cid)
        t0 = time.perf_counter()
        self._call("run", "--bundle", str(bundle), cid)
        return {"total": time.perf_counter() - t0}

    def lifecycle_split(self, cid: str) -> dict[str, float]:
        bundle = self._bundle(cid, ["/bin/true"])
        pid_file = bundle / "init.pid"
        self.ids.append(cid)
        t0 = time.perf_counter()
        self._call("create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid)
        t1 = time.perf_counter()
        # The init is not our child (runc/crun exited): a pidfd says when it is gone.
        pidfd = os.pidfd_open(int(pid_file.read_text()))
        try:
            t1b = time.perf_counter()
            self._call("start", cid)
            t2 = time.perf_counter()
            ready, _, _ = select.select([pidfd], [], [], TIMEOUT)
            if not ready:
                raise RuntimeError(f"{self.name}: /bin/true in {cid} did not exit in {TIMEOUT} s")
            t3 = time.perf_counter()
        finally:
            os.close(pidfd)
        self._call("delete", cid)
        t4 = time.perf_counter()
        return {
            "create": t1 - t0,
            "start": t2 - t1b,
            "wait": t3 - t2,
            "destroy": t4 - t3,
            "total": (t1 - t0) + (t4 - t1b),
        }

    def start_sleeper(self, cid: str) -> None:
        bundle = self._bundle(cid, SLEEP_ARGS)
        self.ids.append(cid)
        self._call("create", "--bundle", str(bundle), cid)
        self._call("start", cid)

    def pause_resume(self, cid: str) -> float:
        t0 = time.perf_counter()
        self._call("pause", cid)
        self._call("resume", cid)
        return time.perf_counter() - t0

    def exec(self, cid: str) -> float:
        t0 = time.perf_counter()
        self._call("exec", cid, "/bin/true")
        return time.perf_counter() - t0

    def state(self, cid: str) -> float:
        t0 = time.perf_counter()
        out = self._call("state", cid, capture=True)
        elapsed = time.perf_counter() - t0
        status = json.loads(out).get("status")
        if status != "running":
            raise RuntimeError(f"{self.name}: {cid} is {status}, not running")
        return elapsed

    def stop_sleeper(self, cid: str) -> None:
        self._call("delete", "--force", cid)

    def listed(self) -> list[str]:
        try:
            return self._call("list", "-q", capture=True, timeout=30).split()
        except (RuntimeError, subprocess.TimeoutExpired):
            return []

    def cleanup(self) -> list[str]:
        problems: list[str] = []
        for cid in sorted(set(self.ids) & set(self.listed())):
            try:
                self._call("delete", "--force", cid, timeout=30)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                problems.append(str(exc))
        for cid in self.listed():
            problems.append(f"{self.name}: container {cid} is still in {self.state_root}")
        return problems


def _git_revision() -> str:
    """` (git abc1234, modified)`, read-only (no index refresh), or "" outside a checkout."""
    here = Path(__file__).resolve().parent.parent
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    try:
        rev = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, env=env, timeout=10,
        )
        if rev.returncode != 0:
            return ""
        dirty = subprocess.run(
            ["git", "-C", str(here), "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, env=env, timeout=10,
        )
        return f" (git {rev.stdout.strip()}{', modified' if dirty.stdout.strip() else ''})"
    except (OSError, subprocess.TimeoutExpired):
        return ""


# --------------------------------------------------------------------------- host set-up


def cgroup_mounts() -> dict[str, str]:
    """Mount point -> filesystem type, for every cgroup and cgroup2 mount."""
    found = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                found[fields[4]] = fstype
    return found


def _retry_write(path: Path, text: str, seconds: float = 5.0) -> None:
    """Write a cgroup control file, retrying while the kernel finishes an unmount (ENOENT/EBUSY)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            path.write_text(text)
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.EBUSY) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class HybridForCrun:
    """crun 1.8 on a hybrid host refuses any controller left to cgroup2 ("cgroups in hybrid
    mode not supported, drop all controllers from cgroupv2"): here that is hugetlb, which
    no v1 hierarchy has. `prepare()` mounts each such controller as a v1 hierarchy under
    /sys/fs/cgroup (first removing it from the cgroup2 root's cgroup.subtree_control if it
    is enabled there, which the kernel refuses while a cgroup below uses it); `restore()`
    puts the host back as it was found. Every step is said on stdout.
    """

    def __init__(self) -> None:
        self.mounted: list[tuple[Path, bool]] = []  # (mount point, directory made by us)
        self.disabled: list[str] = []  # controllers removed from the cgroup2 root's subtree_control
        mounts = cgroup_mounts()
        self.unified: Path | None = None
        if mounts.get(str(CGROUP_ROOT)) != "cgroup2":
            for point, fstype in mounts.items():
                if fstype == "cgroup2" and os.path.dirname(point) == str(CGROUP_ROOT):
                    self.unified = Path(point)

    def needed(self) -> list[str]:
        if self.unified is None:
            return []
        return (self.unified / "cgroup.controllers").read_text().split()

    def prepare(self) -> list[str]:
        """Mount what crun needs; raise RuntimeError (after undoing it all) if it cannot be done."""
        notes: list[str] = []
        try:
            assert self.unified is not None or not self.needed()
            for controller in self.needed():
                control = self.unified / "cgroup.subtree_control"  # type: ignore[operator]
                if controller in control.read_text().split():
                    try:
                        control.write_text(f"-{controller}")
                    except OSError as exc:
                        raise RuntimeError(
                            f"{controller} is enabled in {control} and a cgroup below uses it "
                            f"({exc.strerror}); crun cannot run on this hybrid host until it is disabled"
                        ) from exc
                    self.disabled.append(controller)
                    notes.append(f"removed {controller} from {control} (restored at the end)")
                point = CGROUP_ROOT / controller
                made = not point.exists()
                point.mkdir(exist_ok=True)
                done = subprocess.run(
                    ["mount", "-t", "cgroup", "-o", controller, "cgroup", str(point)],
                    capture_output=True, text=True,
                )
                if done.returncode != 0:
                    if made:
                        point.rmdir()
                    raise RuntimeError(f"cannot mount {controller} on {point}: {done.stderr.strip()}")
                self.mounted.append((point, made))
                notes.append(
                    f"mounted the {controller} v1 hierarchy on {point} "
                    "(crun refuses a hybrid host without it); unmounted at the end"
                )
        except BaseException:
            for note in self.restore():
                notes.append(note)
            raise
        return notes

    def restore(self) -> list[str]:
        notes: list[str] = []
        for point, made in reversed(self.mounted):
            controller = point.name
            children = sorted(p.name for p in point.iterdir() if p.is_dir())
            if children:
                undo = f"umount {point}" + (f" && rmdir {point}" if made else "")
                if controller in self.disabled:
                    undo += f" && echo +{controller} > {self.unified}/cgroup.subtree_control"
                notes.append(
                    f"left {point} mounted: another process made cgroups in it meanwhile "
                    f"({', '.join(children)}); once they are gone: {undo}"
                )
                self.disabled = [c for c in self.disabled if c != controller]  # it stays bound to v1
                continue
            # A v1 hierarchy unmounted while a removed cgroup of it is still dying is not
            # destroyed: it lingers, unmounted, and keeps the controller from cgroup2. So wait
            # for the dying ones to be freed first, and check that the hierarchy went away.
            _wait_until(lambda: (_hierarchy(controller) or (0, 1))[1] <= 1, 10.0)
            for _attempt in range(3):
                done = subprocess.run(["umount", str(point)], capture_output=True, text=True)
                if done.returncode != 0:
                    break
                if _wait_until(lambda: (_hierarchy(controller) or (0, 0))[0] == 0, 3.0):
                    break
                # it lingers: mount the same hierarchy again, so the next umount can end it
                subprocess.run(["mount", "-t", "cgroup", "-o", controller, "cgroup", str(point)],
                               capture_output=True, text=True)
            if done.returncode != 0:
                notes.append(f"left {point} mounted: umount failed: {done.stderr.strip()}")
                self.disabled = [c for c in self.disabled if c != controller]
                continue
            if made:
                try:
                    point.rmdir()
                except OSError as exc:
                    notes.append(f"unmounted {point} but could not remove the directory: {exc.strerror}")
                    continue
            lingers = (_hierarchy(controller) or (0, 0))[0] != 0
            notes.append(f"unmounted {point}{' and removed the directory' if made else ''}"
                         + (f" (the {controller} hierarchy still lingers in the kernel)" if lingers else ""))
        self.mounted = []
        for controller in self.disabled:
            control = self.unified / "cgroup.subtree_control"  # type: ignore[operator]
            try:
                _retry_write(control, f"+{controller}")
                notes.append(f"enabled {controller} in {control} again, as it was")
            except OSError as exc:
                notes.append(f"could not enable {controller} in {control} again: {exc.strerror}")
        self.disabled = []
        return notes


def _hierarchy(controller: str) -> tuple[int, int] | None:
    """(hierarchy id, number of cgroups) of a controller, from /proc/cgroups; id 0 is cgroup2/none."""
    for line in Path("/proc/cgroups").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == controller:
            return int(fields[1]), int(fields[2])
    return None


def _wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def remove_cgroups() -> list[str]:
    """Remove /<prefix>-<pid> and everything below it in every hierarchy, deepest first."""
    problems: list[str] = []
    for hierarchy in sorted(CGROUP_ROOT.iterdir()):
        top = hierarchy / PREFIX
        if not top.is_dir():
            continue
        for attempt in range(50):
            left = []
            for dirpath, _dirs, _files in os.walk(top, topdown=False):
                try:
                    os.rmdir(dirpath)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    left.append(f"{dirpath}: {exc.strerror}")
            if not left:
                break
            time.sleep(0.05)  # a just-emptied memory cgroup can be EBUSY for a moment
        else:
            problems += left
    return problems


@contextmanager
def signals_unwind() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so every `finally` cleans up."""

    def handler(signum: int, _frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def signals_ignored() -> Iterator[None]:
    """Cleanup is not interrupted by a second Ctrl-C (every call in it has a timeout)."""
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in sigs}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# --------------------------------------------------------------------------- statistics


def summary(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    p90 = statistics.quantiles(ms, n=10, method="inclusive")[8] if len(ms) > 1 else ms[0]
    return {"median": statistics.median(ms), "p90": p90, "min": ms[0], "max": ms[-1], "n": len(ms)}


def fmt(stats: dict[str, float] | None, error: str | None = None) -> str:
    if error:
        return "error"
    if not stats:
        return "-"
    return f"{stats['median']:.1f} ({stats['p90']:.1f})"


def ratio(a: dict[str, float] | None, b: dict[str, float] | None) -> str:
    if not a or not b:
        return "-"
    return f"{a['median'] / b['median']:.1f}x"


# --------------------------------------------------------------------------- the run


class Bench:
    def __init__(self, runtimes: list[Any], iterations: int, warmup: int) -> None:
        self.runtimes = runtimes
        self.iterations = iterations
        self.warmup = warmup
        self.samples: dict[str, dict[str, list[float]]] = {rt.name: {} for rt in runtimes}
        self.errors: dict[str, dict[str, str]] = {rt.name: {} for rt in runtimes}
        self.counter = 0

    def _id(self, rt: Any, what: str) -> str:
        self.counter += 1
        return f"{PREFIX}-{rt.name}-{what}-{self.counter}"

    def _record(self, rt: Any, key: str, value: float) -> None:
        self.samples[rt.name].setdefault(key, []).append(value)

    def _attempt(self, rt: Any, key: str, fn: Callable[[], Any]) -> Any:
        if key in self.errors[rt.name]:
            return None
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - one runtime's failure must not stop the others
            self.errors[rt.name][key] = str(exc)
            say(f"  {rt.name} {key} failed: {exc}")
            return None

    def _rounds(self) -> Iterator[tuple[int, bool, list[Any]]]:
        """Each round runs every runtime once, in an order that rotates, so none always goes first."""
        n = len(self.runtimes)
        for i in range(self.warmup + self.iterations):
            order = [self.runtimes[(i + k) % n] for k in range(n)]
            yield i, i >= self.warmup, order

    def lifecycles(self) -> None:
        say(f"lifecycle of /bin/true: {self.warmup} warm-up + {self.iterations} rounds")
        for _i, keep, order in self._rounds():
            for rt in order:
                steps = self._attempt(rt, "lifecycle", lambda: rt.lifecycle(self._id(rt, "run")))
                if keep and steps:
                    for step, value in steps.items():
                        self._record(rt, "lifecycle" if step == "total" else f"lifecycle.{step}", value)
                if hasattr(rt, "lifecycle_split"):
                    steps = self._attempt(
                        rt, "lifecycle_split", lambda: rt.lifecycle_split(self._id(rt, "split"))
                    )
                    if keep and steps:
                        for step, value in steps.items():
                            key = "lifecycle_split" if step == "total" else f"lifecycle_split.{step}"
                            self._record(rt, key, value)

    def running(self) -> None:
        say(f"pause+resume, exec, state of a running container: {self.warmup} warm-up + {self.iterations} rounds")
        sleepers: dict[str, str] = {}
        try:
            for rt in self.runtimes:
                cid = self._id(rt, "sleep")
                if self._attempt(rt, "sleeper", lambda: rt.start_sleeper(cid) or True):
                    sleepers[rt.name] = cid
                else:
                    for key in ("pause_resume", "exec", "state"):
                        self.errors[rt.name][key] = self.errors[rt.name]["sleeper"]
            for _i, keep, order in self._rounds():
                for rt in order:
                    cid = sleepers.get(rt.name)
                    if cid is None:
                        continue
                    for key in ("pause_resume", "exec", "state"):
                        value = self._attempt(rt, key, lambda: getattr(rt, key)(cid))
                        if keep and value is not None:
                            self._record(rt, key, value)
        finally:
            for rt in self.runtimes:
                if rt.name in sleepers:
                    self._attempt(rt, "stop", lambda: rt.stop_sleeper(sleepers[rt.name]))

    def results(self) -> dict[str, Any]:
        return {
            name: {
                "stats": {key: summary(values) for key, values in keys.items()},
                "errors": self.errors[name],
            }
            for name, keys in self.samples.items()
        }


def profile_corral(rt: Corral, count: int) -> str:
    """cProfile over `count` more corral lifecycles: what the controller process spends time on."""
    prof = cProfile.Profile()
    for n in range(count):
        cid = f"{PREFIX}-corral-profile-{n}"
        prof.enable()
        rt.lifecycle(cid)
        prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(30)
    return out.getvalue()


def corral_detail(rt: Corral, count: int) -> dict[str, Any]:
    """Where one corral lifecycle spends the controller's time, from `count` more lifecycles.

    Every public method of the Runtime's store (the repository: SQLAlchemy and SQLite)
    and of its executor (the kernel side: spawn helper, fifo, cgroups, monitor) is
    wrapped with a timer for this pass only, and unwrapped afterwards; what is left is
    the lifecycle itself (`transitions`, the per-container locks, building facts and
    configs, the confirm message to the monitor). Means per lifecycle, since they add up.
    """
    runtime = rt.runtime
    totals: dict[str, float] = {}
    calls: dict[str, int] = {}
    depth: dict[str, int] = {}
    patched: list[tuple[Any, str]] = []

    def wrap(obj: Any, part: str) -> None:
        seen: set[str] = set()
        for klass in type(obj).__mro__:
            for name, value in vars(klass).items():
                if name.startswith("_") or name in seen or not callable(value) or isinstance(value, type):
                    continue
                if isinstance(value, (staticmethod, classmethod, property)):
                    continue
                seen.add(name)
                bound = getattr(obj, name)

                def timed(*a: Any, _fn: Any = bound, _key: str = f"{part}.{name}", **k: Any) -> Any:
                    if depth.get(part):  # a method calling another of the same part: counted once
                        return _fn(*a, **k)
                    depth[part] = 1
                    t0 = time.perf_counter()
                    try:
                        return _fn(*a, **k)
                    finally:
                        totals[_key] = totals.get(_key, 0.0) + time.perf_counter() - t0
                        calls[_key] = calls.get(_key, 0) + 1
                        depth[part] = 0

                setattr(obj, name, timed)
                patched.append((obj, name))

    wrap(runtime.context.store, "store")
    wrap(runtime.context.executor, "executor")
    whole = 0.0
    try:
        for n in range(count):
            cid = f"{PREFIX}-corral-detail-{n}"
            whole += rt.lifecycle(cid)["total"]
    finally:
        for obj, name in patched:
            delattr(obj, name)
    parts = {key: {"ms": totals[key] * 1000 / count, "calls": calls[key] / count} for key in sorted(totals)}
    accounted = sum(totals.values())
    return {
        "lifecycles": count,
        "total_ms": whole * 1000 / count,
        "parts": parts,
        "rest_ms": (whole - accounted) * 1000 / count,
    }


def print_detail(detail: dict[str, Any]) -> None:
    print(f"\ncorral's lifecycle from the controller's side: mean ms per lifecycle over "
          f"{detail['lifecycles']} instrumented lifecycles (total {detail['total_ms']:.1f} ms)\n")
    rows = []
    store = {k: v for k, v in detail["parts"].items() if k.startswith("store.")}
    rows.append(["store (SQLAlchemy + SQLite), all calls",
                 f"{sum(v['ms'] for v in store.values()):.1f}", f"{sum(v['calls'] for v in store.values()):g}"])
    for key, v in sorted(store.items(), key=lambda kv: -kv[1]["ms"]):
        rows.append([f"  {key}", f"{v['ms']:.1f}", f"{v['calls']:g}"])
    for key, v in sorted(detail["parts"].items(), key=lambda kv: -kv[1]["ms"]):
        if key.startswith("executor."):
            rows.append([key, f"{v['ms']:.1f}", f"{v['calls']:g}"])
    rows.append(["the rest (transitions, locks, facts, confirm)", f"{detail['rest_ms']:.1f}", ""])
    _table(sys.stdout, ["part", "ms", "calls"], rows)


def machine_facts(runtimes: list[Any]) -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    v1 = sorted(
        line.split()[4].rsplit("/", 1)[-1]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split(" - ")[1].startswith("cgroup ")
    )
    layout = "v2" if (CGROUP_ROOT / "cgroup.controllers").exists() else f"v1 ({', '.join(v1)})"
    if (CGROUP_ROOT / "unified").is_dir() and layout.startswith("v1"):
        layout = "hybrid: " + layout + " + cgroup2 on unified"
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "cgroups": layout,
        "versions": {rt.name: rt.version() for rt in runtimes},
    }


def print_report(facts: dict[str, Any], results: dict[str, Any], names: list[str], args: argparse.Namespace) -> None:
    out = sys.stdout
    print(f"\n{facts['date']}  kernel {facts['kernel']}  {facts['cpus']} CPUs ({facts['cpu_model']})"
          f"  Python {facts['python']}", file=out)
    print(f"cgroups: {facts['cgroups']}", file=out)
    print("versions: " + ", ".join(f"{k} {v}" for k, v in facts["versions"].items()), file=out)
    print(f"{args.iterations} iterations after {args.warmup} warm-up; milliseconds, median (p90)\n", file=out)

    def cell(name: str, key: str) -> tuple[str, dict[str, float] | None]:
        r = results.get(name)
        if r is None:
            return "skipped", None
        stats = r["stats"].get(key)
        return fmt(stats, r["errors"].get(key)), stats

    others = [n for n in names if n != "corral"]
    header = ["operation"] + names + [f"corral/{n}" for n in others if "corral" in names]
    rows = []
    for key, label in ROWS:
        cells, stats = [], {}
        for name in names:
            look = "lifecycle" if (key == "lifecycle_split" and name == "corral") else key
            text, st = cell(name, look)
            if key == "lifecycle_split" and name == "corral":
                text = "(same)" if st else text
            cells.append(text)
            stats[name] = st
        ratios = [ratio(stats.get("corral"), stats.get(n)) for n in others] if "corral" in names else []
        rows.append([label] + cells + ratios)
    _table(out, header, rows)

    print("\nwhere the lifecycle goes, median ms (corral: create/start/wait/destroy; "
          "runc/crun: create/start/wait/delete)\n", file=out)
    header = ["step"] + names
    rows = []
    for step in STEPS + ("total",):
        row = [step]
        for name in names:
            key = ("lifecycle" if name == "corral" else "lifecycle_split") + ("" if step == "total" else f".{step}")
            st = results.get(name, {}).get("stats", {}).get(key)
            row.append(f"{st['median']:.1f}" if st else "-")
        rows.append(row)
    _table(out, header, rows)


def _table(out: Any, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |"
    print(line, file=out)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|", file=out)
    for r in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |", file=out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=20, help="measured rounds per operation (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured rounds first (default 3)")
    parser.add_argument("--runtimes", default="corral,runc,crun", help="comma-separated (default corral,runc,crun)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout (progress to stderr)")
    parser.add_argument("--no-cgroup-mounts", action="store_true",
                        help="on a hybrid host, skip crun rather than mount the hugetlb hierarchy it needs")
    parser.add_argument("--detail", type=int, default=20, metavar="N",
                        help="afterwards, time the store and executor calls of N more corral lifecycles "
                        "(default 20; 0 skips)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="afterwards, cProfile N more corral lifecycles and print the top functions")
    args = parser.parse_args()
    if args.iterations < 1 or args.warmup < 0:
        parser.error("--iterations must be at least 1 and --warmup at least 0")
    say.to_stderr = args.json  # type: ignore[attr-defined]
    if os.geteuid() != 0:
        sys.exit("run as root: containers need namespaces, cgroups and mounts")

    wanted = [n.strip() for n in args.runtimes.split(",") if n.strip()]
    unknown = set(wanted) - {"corral", "runc", "crun"}
    if unknown:
        parser.error(f"unknown runtimes: {', '.join(sorted(unknown))}")
    notes: list[str] = []
    skipped: dict[str, str] = {}
    for name in ("runc", "crun"):
        if name in wanted and shutil.which(name) is None:
            skipped[name] = f"{name} is not installed (apt-get install -y {name})"

    work = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-"))
    os.chmod(work, 0o755)
    runtimes: list[Any] = []
    hybrid = HybridForCrun()
    status = 1
    try:
        with signals_unwind():
            if "crun" in wanted and "crun" not in skipped and hybrid.needed():
                if args.no_cgroup_mounts:
                    skipped["crun"] = (f"crun refuses this hybrid host while {', '.join(hybrid.needed())} "
                                       "is left to cgroup2 (--no-cgroup-mounts)")
                else:
                    try:
                        for note in hybrid.prepare():
                            notes.append(note)
                            say(note)
                    except RuntimeError as exc:
                        skipped["crun"] = str(exc)
            for name, reason in skipped.items():
                say(f"skipping {name}: {reason}")
            rootfs = build_rootfs(work / "shared")
            for name in wanted:
                if name in skipped:
                    continue
                if name == "corral":
                    runtimes.append(Corral(work, rootfs))
                else:
                    runtimes.append(OCIRuntime(name, shutil.which(name) or name, work, rootfs))
            facts = machine_facts(runtimes)
            bench = Bench(runtimes, args.iterations, args.warmup)
            bench.lifecycles()
            bench.running()
            results = bench.results()
            profile = ""
            detail: dict[str, Any] | None = None
            corral_rt = next((rt for rt in runtimes if rt.name == "corral"), None)
            if args.detail and corral_rt is not None and "lifecycle" not in bench.errors["corral"]:
                say(f"timing the store and executor calls of {args.detail} more corral lifecycles")
                detail = corral_detail(corral_rt, args.detail)
            if args.profile and corral_rt is not None:
                say(f"profiling {args.profile} corral lifecycles")
                profile = profile_corral(corral_rt, args.profile)
        names = [n for n in wanted]
        for name, reason in skipped.items():
            results[name] = {"stats": {}, "errors": {}, "skipped": reason}
        if args.json:
            json.dump({"machine": facts, "iterations": args.iterations, "warmup": args.warmup,
                       "unit": "ms", "results": results, "corral_detail": detail, "notes": notes + [f"{n} skipped: {r}" for n, r in skipped.items()]},
                      sys.stdout, indent=2)
            print()
        else:
            print_report(facts, {n: r for n, r in results.items() if "skipped" not in r}, names, args)
            for name, reason in skipped.items():
                print(f"\n{name} skipped: {reason}")
            for name, r in results.items():
                for key, error in r.get("errors", {}).items():
                    print(f"{name} {key} failed: {error}")
            if detail:
                print_detail(detail)
            if profile:
                print("\ncProfile of the controller process over corral lifecycles:\n")
                print(profile)
        status = 0 if not any(r.get("errors") for r in results.values()) else 1
    except (KeyboardInterrupt, Interrupted) as exc:
        say(f"interrupted ({str(exc) or 'SIGINT'}): cleaning up")
        status = 130
    finally:
        with signals_ignored():
            problems: list[str] = []
            for rt in runtimes:
                try:
                    problems += rt.cleanup()
                except Exception as exc:  # noqa: BLE001
                    problems.append(f"{rt.name} cleanup: {exc}")
            problems += remove_cgroups()
            for note in hybrid.restore():
                say(note)
            shutil.rmtree(work, ignore_errors=True)
            if work.exists():
                problems.append(f"could not remove {work}")
            for problem in problems:
                say(f"cleanup: {problem}")
            if problems:
                status = status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
