"""A real container's whole lifecycle, from an OCI bundle built on the spot.

Builds a busybox bundle (Debian's busybox-static and a config.json like
`runc spec` writes), then: create -> start -> exec -> pause -> resume ->
signal -> wait -> destroy, printing the state after each step and the record
corral keeps. Run as root: `.venv/bin/python examples/lifecycle.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import corral
from corral.executor.interface import Stdio


CGROUP_PARENT = f"/corral-demo-{os.getpid()}"


def build_bundle(path: Path) -> Path:
    busybox = shutil.which("busybox")
    if busybox is None:
        sys.exit("busybox not found: install Debian's busybox-static (scripts/install does)")
    rootfs = path / "rootfs"
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc"):
        (rootfs / d).mkdir(parents=True)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    for applet in subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split():
        if applet != "busybox":
            os.symlink("busybox", rootfs / "bin" / applet)
    config = {
        "ociVersion": "1.0.2",
        "process": {
            "args": ["/bin/sh", "-c", "trap 'echo got SIGTERM; exit 0' TERM; echo hello from $(hostname); while :; do sleep 0.1; done"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "user": {"uid": 0, "gid": 0},
            "capabilities": {k: list(corral.config.DEFAULT_CAPABILITIES) for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "demo",
        "mounts": [m for m in corral.Config(process=corral.Process(args=("sh",)), root=corral.Root("/")).to_dict()["mounts"]],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "resources": {"memory": {"limit": 64 << 20}, "pids": {"limit": 64}},
            "cgroupsPath": f"{CGROUP_PARENT}/demo",
            "maskedPaths": list(corral.config.DEFAULT_MASKED_PATHS),
            "readonlyPaths": list(corral.config.DEFAULT_READONLY_PATHS),
        },
    }
    (path / "config.json").write_text(json.dumps(config, indent=2))
    return path


def show(box: corral.Container, step: str) -> None:
    print(f"{step:<10} state={box.state.value:<9} pid={box.pid}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="corral root (default: a temporary directory)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: containers need namespaces, cgroups and mounts")
    work = Path(tempfile.mkdtemp(prefix="corral-demo-"))
    root = Path(args.root) if args.root else work / "root"
    runtime = corral.Runtime(root, run_root=work / "run")
    box = None
    try:
        config = corral.Config.from_bundle(build_bundle(work / "bundle"))
        output = work / "container.out"
        fd = os.open(output, os.O_WRONLY | os.O_CREAT, 0o644)
        box = runtime.create("demo", config, stdio=Stdio(stdout=fd, stderr=fd))
        os.close(fd)
        show(box, "create")
        box.start()
        show(box, "start")
        r, w = os.pipe()
        proc = box.exec(corral.Process(args=("/bin/sh", "-c", "echo exec sees: $(ps -o pid,comm | tr -s ' \\n' ' ')"), env=("PATH=/bin",)), stdio=Stdio(stdout=w))
        os.close(w)
        print(f"exec       pid={proc.pid} exit={proc.wait(10)} output: {os.read(r, 4096).decode().strip()}")
        os.close(r)
        box.pause()
        show(box, "pause")
        box.resume()
        show(box, "resume")
        print(f"processes  {box.processes()}   memory usage {box.stats().memory.usage if box.stats().memory else '?'} bytes")
        box.signal(signal.SIGTERM)
        show(box, "signal")
        status = box.wait(10)
        show(box, "wait")
        print(f"exit       status={status}   container said: {output.read_text().strip()!r}")
        box.destroy()
        show(box, "destroy")
        record = box.record
        print("\nthe record:")
        for field in ("id", "state", "init_pid", "init_start_time", "boot_id", "monitor_pid", "exit_status", "exit_signal", "oom_killed", "run_dir"):
            print(f"  {field:<16} {getattr(record, field)}")
        print(f"  {'cgroup_paths':<16} {dict(record.cgroup_paths)}")
        print(f"  {'namespaces':<16} { {t: n.inode for t, n in record.namespaces.items()} }")
        print("\nthe journal:")
        for entry in box.history():
            print(f"  {entry.at:%H:%M:%S.%f}  {entry.event:<8} {str(entry.from_state):<9} -> {entry.to_state:<9} {dict(entry.detail)}")
        return 0
    finally:
        if box is not None and box.recorded_state is not corral.State.DESTROYED:
            box.destroy(force=True)
        runtime.close()
        shutil.rmtree(work, ignore_errors=True)
        for hierarchy in Path("/sys/fs/cgroup").iterdir():  # the demo's own (now empty) parent cgroup
            parent = hierarchy / CGROUP_PARENT.lstrip("/")
            if parent.is_dir():
                parent.rmdir()


if __name__ == "__main__":
    sys.exit(main())
