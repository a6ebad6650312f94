"""process.terminal: a new pty as the process's controlling terminal, its master handed to the caller.

The config `runc spec` writes (terminal true, args ["sh"]) runs unchanged: the
test types into the pty master and reads the shell's answers, as a person at
the terminal would. Checked from inside the container: `tty` names the
container's /dev/pts/N, /dev/console is that pty (same device numbers), `stty
size` is consoleSize. Then the same through the CLI: `corral spec`, then
`corral run --detach --console-socket S`, with the test listening on S (runc refuses a console
socket to a run in the foreground).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest

from corral import Config, ConsoleSize, Process, Runtime, Stdio, receive_console
from corral.errors import ConfigError
from tests.integration.conftest import make_config
from tests.integration.test_cli import Cli, cli  # noqa: F401  (the fixture, found by pytest by name)

pytestmark = pytest.mark.root

#: What `runc spec` (runc 1.1) writes, byte for byte the same keys and values.
RUNC_SPEC: dict[str, Any] = {
    "ociVersion": "1.0.2-dev",
    "process": {
        "terminal": True,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {
            key: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            for key in ("bounding", "effective", "permitted", "ambient")
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "runc",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": [
            "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
            "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
        ],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}

#: Typed at the shell. Each answer is framed (A...Z) so that the terminal's echo of the
#: typed line, which shows `$((6*7))` and not 42, cannot be mistaken for it.
SESSION = (
    b'echo "A$((6*7))Z"; echo "T$(tty)T"; '
    b'echo "C$(stat -c %t:%T /dev/console)=$(stat -c %t:%T $(tty))C"; '
    b'[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo "STDIO-IS-TTY"; exit 3\n'
)


def talk_to_shell(master: int, run: subprocess.Popen[bytes], line: bytes) -> bytes:
    """Wait for the shell's prompt on `master` (while `run` lives), type `line`, and read everything
    until the container's side of the terminal closes."""
    out = b""
    deadline = time.monotonic() + 60
    while b"# " not in out:  # the shell's prompt
        assert time.monotonic() < deadline and run.poll() is None, out
        if select.select([master], [], [], 1)[0]:
            out += os.read(master, 4096)
    os.write(master, line)
    return out + read_until_closed(master)


def shell_on_a_terminal(argv: list[str], rows: int, columns: int, line: bytes) -> tuple[int, bytes]:
    """Run `argv` (a command that gives a container's shell a terminal) on a new pty of `rows` x
    `columns` as its stdio, type `line` at the prompt: the command's exit status and what it wrote."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    try:
        run = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    finally:
        os.close(slave)
    try:
        out = talk_to_shell(master, run, line)
        return run.wait(timeout=60), out
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        os.close(master)


def read_until_closed(master: int, timeout: float = 20) -> bytes:
    """Everything the process writes until its side of the terminal is closed (EIO on Linux)."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([master], [], [], left)
        if not ready:
            continue
        try:
            data = os.read(master, 4096)
        except OSError as exc:
            if exc.errno == errno.EIO:
                break
            raise
        if not data:
            break
        chunks.append(data)
    else:
        raise AssertionError(f"the terminal stayed open for {timeout} s; got {b''.join(chunks)!r}")
    return b"".join(chunks)


def check_session(out: bytes, pts: bytes = b"/dev/pts/0") -> None:
    assert b"A42Z" in out, out
    assert b"T" + pts + b"T" in out, out
    assert b"STDIO-IS-TTY" in out, out
    consoles = [line for line in out.split(b"\n") if line.startswith(b"C") and line.rstrip().endswith(b"C")]
    assert consoles, out
    console, slave = consoles[-1].strip()[1:-1].split(b"=")
    assert console == slave and console.split(b":")[0] == b"88", out  # char 136 (0x88): a devpts pty


def runc_bundle(tmp_path: Path, rootfs_template: Path, **process: Any) -> Path:
    bundle = tmp_path / "bundle"
    shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
    spec = json.loads(json.dumps(RUNC_SPEC))
    spec["process"].update(process)
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def test_the_config_runc_spec_writes_runs_with_a_console(runtime: Runtime, tmp_path: Path, rootfs_template: Path) -> None:
    config = Config.from_bundle(runc_bundle(tmp_path, rootfs_template))
    assert config.process.terminal and config.process.args == ("sh",)
    box = runtime.create("tty", config, console=True)
    master = box.console_fd
    assert master is not None and not os.get_inheritable(master)
    try:
        box.start()
        os.write(master, SESSION)
        out = read_until_closed(master)
    finally:
        os.close(master)
    check_session(out)
    assert box.wait(10) == 3


def test_console_size_shows_in_stty_size(runtime: Runtime, tmp_path: Path, rootfs_template: Path) -> None:
    config = Config.from_bundle(runc_bundle(tmp_path, rootfs_template, consoleSize={"height": 33, "width": 101}))
    assert config.process.console_size == ConsoleSize(height=33, width=101)
    box = runtime.create("sized", config, console=True)
    assert box.console_fd is not None
    try:
        box.start()
        os.write(box.console_fd, b'echo "S$(stty size)S"; exit\n')
        out = read_until_closed(box.console_fd)
    finally:
        os.close(box.console_fd)
    assert b"S33 101S" in out, out
    assert box.wait(10) == 0


def test_exec_with_a_terminal(runtime: Runtime, bundle: Path) -> None:
    box = runtime.create("host", make_config(bundle, "host", "sleep", "1000"))
    box.start()
    process = Process(args=("sh",), terminal=True, console_size=ConsoleSize(height=20, width=70))
    exec_ = box.exec(process, console=True)
    master = exec_.console_fd
    assert master is not None
    try:
        os.write(master, SESSION.replace(b"exit 3", b'echo "S$(stty size)S"; exit 5'))
        out = read_until_closed(master)
    finally:
        os.close(master)
    # An exec'd process has no /dev/console of its own: the container's is the init's (none here).
    assert b"A42Z" in out and b"T/dev/pts/0T" in out and b"STDIO-IS-TTY" in out and b"S20 70S" in out, out
    assert exec_.wait(10) == 5
    plain = box.exec(Process(args=("true",)))
    assert plain.console_fd is None and plain.wait(10) == 0


def test_a_terminal_needs_a_console_asked_for(runtime: Runtime, bundle: Path) -> None:
    config = make_config(bundle, "ask", "sh", process=Process(args=("sh",), terminal=True))
    with pytest.raises(ConfigError, match=r"process.terminal: is true.*pass console=True to Runtime.create"):
        runtime.create("ask", config)
    with pytest.raises(ConfigError, match=r"console=True was passed"):
        runtime.create("ask", make_config(bundle, "ask", "sh"), console=True)
    with pytest.raises(ConfigError, match=r"^stdio: "):
        runtime.create("ask", config, console=True, stdio=Stdio(stdout=1))
    assert runtime.list() == []  # refused before anything was recorded
    box = runtime.create("ask", make_config(bundle, "ask", "sleep", "1000"))
    box.start()
    with pytest.raises(ConfigError, match=r"pass console=True to Container.exec"):
        box.exec(Process(args=("sh",), terminal=True))


def test_cli_spec_then_run_with_a_console_socket(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    bundle = cli.tmp_path / "fresh"
    bundle.mkdir()
    cli("spec", "--bundle", str(bundle))
    shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
    assert json.loads((bundle / "config.json").read_text())["process"]["terminal"] is True
    path = str(cli.tmp_path / "console.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        # --detach: a console socket is for a run that detaches (runc refuses it in the foreground:
        # test_cli_runc_parity_gaps.py::test_run_in_the_foreground_with_a_console_socket_is_runcs_error).
        command = [sys.executable, "-m", "corral.cli", "--root", str(cli.root), "--log", str(cli.log),
                   "--log-format", "json", "run", "--detach", "--bundle", str(bundle), "--console-socket", path,
                   "fresh"]
        run = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            received = receive_console(listener, timeout=60)
        except BaseException:
            run.kill()
            run.communicate()
            raise
    try:
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        assert received.name == "/dev/ptmx"  # runc's message
        os.write(received.fd, SESSION)
        out = read_until_closed(received.fd)
    finally:
        os.close(received.fd)
    runtime = Runtime(cli.root, run_root=cli.root / "run")
    try:
        assert runtime.load("fresh").wait(timeout=60) == 3
    finally:
        runtime.close()
    cli("delete", "fresh")
    check_session(out)
    # The terminal as runc hands it over: the kernel's line discipline, "\n" written reads "\r\n".
    assert b"A42Z\r\n" in out, out

    # And without a terminal: the same bundle with terminal false runs on the command's stdio.
    config = json.loads((bundle / "config.json").read_text())
    config["process"].update(terminal=False, args=["sh", "-c", "echo plain; exit 4"])
    (bundle / "config.json").write_text(json.dumps(config))
    plain = cli("run", "--bundle", str(bundle), "plain", check=False)
    assert plain.returncode == 4 and plain.stdout == "plain\n", plain


def test_cli_detached_exec_tty_with_a_console_socket(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    """`exec --tty --console-socket S --detach` with corral's monitor as the parent: the master
    reaches the socket and is the shell's terminal. (In the foreground runc refuses a console
    socket, and so does corral: test_cli_runc_parity_gaps.py.)"""
    from tests.integration.test_cli import make_bundle

    bundle = make_bundle(cli, rootfs_template, "ex", "sleep", "1000")
    cli("run", "--detach", "--bundle", str(bundle), "ex")
    path = str(cli.tmp_path / "exec.sock")
    pid_file = cli.tmp_path / "exec.pid"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        command = [sys.executable, "-m", "corral.cli", "--root", str(cli.root), "--log", str(cli.log),
                   "--log-format", "json", "exec", "--tty", "--console-socket", path, "--detach",
                   "--pid-file", str(pid_file), "ex", "sh"]
        run = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            received = receive_console(listener, timeout=60)
        except BaseException:
            run.kill()
            run.communicate()
            raise
    try:
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        pid = int(pid_file.read_text())
        os.write(received.fd, b'echo "A$((6*7))Z"; echo "T$(tty)T"; exit 6\n')
        out = read_until_closed(received.fd)
    finally:
        os.close(received.fd)
    assert b"A42Z\r\n" in out and b"T/dev/pts/0T" in out, out  # ONLCR on, as runc's
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:  # the monitor reaps it
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), "the shell outlived its exit"


def test_cli_detached_exec_tty_hands_the_master_over_with_parent_caller(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    """containerd's `ctr task exec -t`: `--parent caller exec --tty --console-socket S --detach`.
    The handed-off process's master must still reach the socket (it was dropped once)."""
    from tests.integration.test_cli import make_bundle

    bundle = make_bundle(cli, rootfs_template, "exd", "sleep", "1000")
    cli("run", "--detach", "--bundle", str(bundle), "exd")
    path = str(cli.tmp_path / "exec-detached.sock")
    pid_file = cli.tmp_path / "exec.pid"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        command = [sys.executable, "-m", "corral.cli", "--root", str(cli.root), "--log", str(cli.log),
                   "--log-format", "json", "--parent", "caller", "exec", "--tty", "--console-socket", path,
                   "--detach", "--pid-file", str(pid_file), "exd", "sh"]
        run = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            received = receive_console(listener, timeout=60)
        except BaseException:
            run.kill()
            run.communicate()
            raise
    try:
        _, err = run.communicate(timeout=60)
        assert run.returncode == 0, err  # detached: the command is done once the process runs
        pid = int(pid_file.read_text())
        assert Path(f"/proc/{pid}").exists(), "the exec'd shell runs after its command exited"
        os.write(received.fd, b'echo "A$((6*7))Z"; echo "T$(tty)T"; exit 6\n')
        out = read_until_closed(received.fd)
    finally:
        os.close(received.fd)
    assert b"A42Z" in out and b"T/dev/pts/0T" in out, out
    cli("delete", "--force", "exd")


def test_cli_exec_tty_in_the_foreground_joins_the_commands_own_terminal(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    """runc's `exec -t` without --console-socket: the command keeps the master and joins it to
    its own terminal (raw, the size following it), copying both ways until the shell exits,
    and exits with its status. The test is the person at that terminal (a pty of its own)."""
    from tests.integration.test_cli import make_bundle

    bundle = make_bundle(cli, rootfs_template, "fg", "sleep", "1000")
    cli("run", "--detach", "--bundle", str(bundle), "fg")
    status, out = shell_on_a_terminal(cli.argv("exec", "--tty", "fg", "sh"), 33, 111,
                                      b'echo "A$((6*7))Z"; echo "S$(stty size)S"; exit 6\n')
    assert status == 6, out
    # (How many "\r" precede each "\n" is a race, with runc too: the master's ONLCR is cleared once
    # the command holds it, and the shell may have saved its terminal settings before.)
    assert re.search(rb"\nA42Z\r+\n", out), out
    assert b"S33 111S" in out, out  # the command's terminal's size
    assert out.count(b'echo "A$((6*7))Z"') == 1, out  # echoed once, by the container's terminal: ours was raw
