"""CVE-2025-52565 (runc): the `/dev/console` bind of a terminal follows a symlink.

A runtime gives a `process.terminal` container's init its pty as /dev/console:
it creates /dev/console if need be (runc: `os.Create`, which opens for writing
and truncates) and bind-mounts the pty over it. When the config does not mount
a fresh tmpfs on /dev, /dev/console is whatever the image put there: a symlink
to a host file (absolute, or climbing with `..`), or through /proc's magic
links (`/proc/self/root/...`, `/proc/1/root/...`) to the host's root, or to
`/proc/sys/kernel/core_pattern`. Following it truncates the target and puts
the pty over it.

Each test plants such a /dev/console in a rootfs that otherwise has what a
terminal needs (a devpts at /dev/pts, /dev/ptmx -> pts/ptmx), and creates the
container with a terminal. The host is checked: the target's bytes and mode,
the host's core_pattern, the host's mount table (as a set, before and after),
and the planted link itself. corral refuses such a /dev/console (create fails
naming it); a regular file there is used, and is then the pty.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from corral import Config, Device, Process, Runtime
from corral.errors import CorralError
from tests.integration.conftest import make_config
from tests.integration.test_cli import Cli, cli, make_bundle  # noqa: F401  (cli: the fixture, found by name)
from tests.integration.test_terminal import check_session, read_until_closed
from tests.security.host import file_state, host_mounts, new_host_mounts

pytestmark = pytest.mark.root

HOST_BYTES = b"host bytes a terminal must never truncate\n"
CORE_PATTERN = "/proc/sys/kernel/core_pattern"


def _host_file(tmp_path: Path) -> Path:
    """A host file outside the rootfs (and outside the bundle), mode 0600."""
    path = tmp_path / "host" / "target"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(HOST_BYTES)
    os.chmod(path, 0o600)
    return path


#: name -> how /dev/console points at the host file (or at a host-wide procfs file).
TARGETS = {
    "absolute": lambda host: str(host),
    "climbing": lambda host: "../../../../../../../../../.." + str(host),
    "proc-self-root": lambda host: "/proc/self/root" + str(host),
    "proc-1-root": lambda host: "/proc/1/root" + str(host),
    "core-pattern": lambda host: CORE_PATTERN,
}


def _terminal_bundle(bundle: Path, console: str | None) -> None:
    """The image's /dev: a pty multiplexer link and a devpts mount point, and `console` at /dev/console."""
    dev = bundle / "rootfs" / "dev"
    dev.mkdir(exist_ok=True)
    (dev / "pts").mkdir(exist_ok=True)
    (dev / "ptmx").symlink_to("pts/ptmx")
    if console is not None:
        (dev / "console").symlink_to(console)


def _config(bundle: Path, cid: str, *args: str) -> Config:
    """A terminal, and no /dev tmpfs: the image's /dev (and its /dev/console) is what the init sees."""
    config = make_config(bundle, cid, *args)
    return dataclasses.replace(
        config,
        process=dataclasses.replace(config.process, terminal=True),
        mounts=tuple(m for m in config.mounts if m.destination != "/dev"),
        devices=(Device("/dev/null", "c", 1, 3, 0o666, 0, 0),),  # the masks bind it
    )


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_a_symlinked_dev_console_is_never_followed(runtime: Runtime, bundle: Path, tmp_path: Path, name: str) -> None:
    host = _host_file(tmp_path)
    link = TARGETS[name](host)
    _terminal_bundle(bundle, link)
    before = (file_state(host), Path(CORE_PATTERN).read_bytes(), host_mounts())

    error: CorralError | None = None
    try:
        box = runtime.create(f"console-{name}", _config(bundle, f"console-{name}", "sh"), console=True)
    except CorralError as exc:
        error = exc
    else:  # not refused: still check the host first, then fail below
        if box.console_fd is not None:
            os.close(box.console_fd)
        box.destroy(force=True)

    assert file_state(host) == before[0], "the host file was written through /dev/console"
    assert Path(CORE_PATTERN).read_bytes() == before[1]
    assert new_host_mounts(before[2], tmp_path) == set()
    assert error is not None and "/dev/console" in str(error) and "symlink" in str(error), error
    console = bundle / "rootfs" / "dev" / "console"
    assert console.is_symlink() and os.readlink(console) == link  # left as the image had it
    assert [b.record.state for b in runtime.list(include_destroyed=True)] == ["destroyed"]


def test_an_image_dev_console_file_becomes_the_terminal(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    """What the image may legitimately have: a regular file (or a device) at /dev/console."""
    _terminal_bundle(bundle, None)
    (bundle / "rootfs" / "dev" / "console").write_bytes(b"")
    before = host_mounts()
    box = runtime.create("console-file", _config(bundle, "console-file", "sh"), console=True)
    assert box.console_fd is not None
    try:
        box.start()
        os.write(box.console_fd, b'echo "A$((6*7))Z"; echo "T$(tty)T"; '
                 b'echo "C$(stat -c %t:%T /dev/console)=$(stat -c %t:%T $(tty))C"; '
                 b'[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo "STDIO-IS-TTY"; exit 3\n')
        out = read_until_closed(box.console_fd)
    finally:
        os.close(box.console_fd)
    check_session(out)
    assert box.wait(10) == 3
    assert new_host_mounts(before, tmp_path) == set()


def test_an_exec_terminal_does_not_touch_dev_console(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    """An exec'd process's terminal binds nothing: a planted /dev/console stays as it is."""
    host = _host_file(tmp_path)
    _terminal_bundle(bundle, str(host))
    config = dataclasses.replace(_config(bundle, "console-exec", "sleep", "1000"),
                                 process=make_config(bundle, "x", "sleep", "1000").process)
    box = runtime.create("console-exec", config)
    box.start()
    exec_ = box.exec(Process(args=("sh", "-c", "echo ok")), console=False)
    assert exec_.wait(10) == 0
    tty = box.exec(Process(args=("sh",), terminal=True), console=True)
    assert tty.console_fd is not None
    try:
        os.write(tty.console_fd, b'echo "T$(tty)T"; exit 2\n')
        out = read_until_closed(tty.console_fd)
    finally:
        os.close(tty.console_fd)
    assert b"T/dev/pts/0T" in out and tty.wait(10) == 2
    assert file_state(host) == (HOST_BYTES, file_state(host)[1]) and file_state(host)[1] & 0o777 == 0o600


def test_through_the_cli(cli: Cli, rootfs_template: Path, tmp_path: Path) -> None:  # noqa: F811
    """`corral create --console-socket` of the hostile bundle: refused, naming /dev/console; the host is unchanged."""
    host = _host_file(tmp_path)
    bundle = make_bundle(cli, rootfs_template, "hostile", "sh")
    _terminal_bundle(bundle, str(host))
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = True
    config["mounts"] = [m for m in config["mounts"] if m["destination"] != "/dev"]
    config["linux"]["devices"] = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 438}]
    (bundle / "config.json").write_text(json.dumps(config))
    before = (file_state(host), host_mounts())
    result = cli("create", "--bundle", str(bundle), "--console-socket", str(tmp_path / "console.sock"), "hostile",
                 check=False)
    assert file_state(host) == before[0], "the host file was written through /dev/console"
    assert new_host_mounts(before[1], tmp_path) == set()
    assert result.returncode == 1 and "/dev/console" in cli.errors()[-1] and "symlink" in cli.errors()[-1]
    assert cli("state", "hostile", check=False).returncode == 1  # nothing left behind
