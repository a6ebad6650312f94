"""The controller of the CVE-2019-5736 test, run by the test's copy of the interpreter.

It starts a container whose program (mode "create") or exec'd process (mode
"exec") is `#!/proc/self/exe`, records what the host sees of the corral
processes (their /proc/<pid>/exe), waits until the attacker inside holds a
descriptor of the interpreter it was run by, writes what it saw as JSON, and
exits without destroying anything: the helper then exits, and the attacker
may go on once no controller runs the interpreter any more.

argv: mode root run_root rootfs cgroups_path result_json
"""

from __future__ import annotations

import json
import os
import sys
import time

from corral import Config, Process, Root, Runtime
from corral.types import Stdio

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ATTACK_ENV = (PATH_ENV, "PYTHONHOME=/evil")


def exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError as exc:
        return f"unreadable: {exc}"


def wait_for(path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit(f"the attacker never got to {path}")
        time.sleep(0.02)


def main() -> None:
    mode, root, run_root, rootfs, cgroups_path, result = sys.argv[1:7]
    args = ("/bin/evil",) if mode == "create" else ("/bin/sleep", "1000")
    config = Config(
        process=Process(args=args, env=ATTACK_ENV),
        root=Root(rootfs),
        hostname="box",
        cgroups_path=cgroups_path,
    )
    runtime = Runtime(root, run_root=run_root)
    log = os.open(os.path.join(rootfs, "attack", "stdio.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    seen: dict[str, object] = {"controller": exe(os.getpid()), "controller_real": os.path.realpath(sys.executable)}
    box = runtime.create("victim", config, stdio=Stdio(stdout=log, stderr=log))
    record = box.record
    assert record.init_pid is not None and record.monitor_pid is not None
    seen["monitor_pid"] = record.monitor_pid
    seen["monitor"] = exe(record.monitor_pid)
    seen["init_before_exec"] = exe(record.init_pid)
    seen["helper_pid"] = parent_of(record.monitor_pid)  # the spawn helper forked the monitor
    seen["helper"] = exe(int(seen["helper_pid"]))  # type: ignore[call-overload]
    box.start()
    if mode == "exec":
        process = box.exec(Process(args=("/bin/evil",), env=ATTACK_ENV), stdio=Stdio(stdout=log, stderr=log))
        seen["exec_pid"] = process.pid
    wait_for(os.path.join(rootfs, "attack", "holding"))
    if mode == "exec":
        # Read only now: the process was forked by a short-lived stage, then reparented to its monitor.
        seen["exec_monitor_pid"] = parent_of(int(seen["exec_pid"]))  # type: ignore[call-overload]
        seen["exec_monitor"] = exe(int(seen["exec_monitor_pid"]))  # type: ignore[call-overload]
    with open(result, "w") as f:
        json.dump(seen, f)
    os._exit(0)  # no clean-up: the container outlives its controller, as in production


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("PPid:"):
                return int(line.split()[1])
    raise RuntimeError(f"no PPid for {pid}")


if __name__ == "__main__":
    main()
