"""CVE-2024-21626 (runc): a host descriptor leaked into the container, reached with `cwd: /proc/self/fd/N`.

runc's init held a descriptor of the host's /sys/fs/cgroup when it chdir'd to
the config's `process.cwd`; a cwd of /proc/self/fd/7 put the container's
program in a host directory, and `../../..` from there is the host's root.
corral's processes are forks of a Python process, which keep every descriptor
their parent held unless it is close-on-exec or closed. So:

- every process entering the container holds only 0, 1, 2 when it execs the
  user's program (nothing else may pass: only a caller's explicit
  `Stdio.extra_fds` would, and these tests give none), although the controller holds its store, host
  directories, files and sockets open, some of them inheritable;
- a `cwd` of /proc/self/fd/N, for every N a leak could have, either fails
  create/exec or leaves the process inside the container: a marker written
  through `../../..` must never appear on the host;
- after chdir the init checks getcwd: a directory outside the root fails with
  an error naming process.cwd.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import Process, Runtime
from corral.errors import CorralError, ExecutorError
from corral.executor import init
from corral.types import Stdio
from tests.integration.conftest import PATH_ENV, make_config, output_file
from tests.security.cli import CorralCli

pytestmark = pytest.mark.root

LEAK_RANGE = range(3, 21)
#: The program lists its own descriptors, as the init (or the exec'd process) left them at
#: execve. The shell runs ls as a child (`; true` keeps it from exec'ing ls in its place),
#: so ls's own directory descriptor is not in the list.
LIST_OWN_FDS = ("/bin/sh", "-c", "ls -l /proc/$$/fd; true")
FD_LINE = re.compile(r"\s(\d+)(?: -> (.*))?$")


@pytest.fixture
def controller_fds(tmp_path: Path) -> Iterator[list[int]]:
    """What a sloppy application hosting corral holds: host directories, a file, sockets, inheritable."""
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    held = [
        os.open(host_dir, os.O_RDONLY | os.O_DIRECTORY),
        os.open("/", os.O_RDONLY | os.O_DIRECTORY),
        os.open(tmp_path / "host-file", os.O_RDWR | os.O_CREAT, 0o600),
    ]
    a, b = socket.socketpair()
    held += [a.detach(), b.detach()]
    for fd in held:
        os.set_inheritable(fd, True)
    yield held
    for fd in held:
        os.close(fd)


def fds_listed(text: str) -> dict[int, str]:
    found = {}
    for line in text.splitlines():
        match = FD_LINE.search(line)
        if match:
            found[int(match.group(1))] = match.group(2) or "?"
    return found


def assert_only_stdio(listed: dict[int, str], text: str) -> None:
    assert set(listed) == {0, 1, 2}, text


def test_the_init_execs_the_program_with_only_its_stdio(
    runtime: Runtime, bundle: Path, tmp_path: Path, controller_fds: list[int]
) -> None:
    fd, out = output_file(tmp_path)
    box = runtime.create("fds", make_config(bundle, "fds", *LIST_OWN_FDS), stdio=Stdio(stdout=fd, stderr=fd))
    os.close(fd)
    box.start()
    assert box.wait(20) == 0
    text = out.read_text()
    assert_only_stdio(fds_listed(text), text)
    box.destroy()


def test_an_exec_d_process_gets_only_its_stdio(
    runtime: Runtime, bundle: Path, tmp_path: Path, controller_fds: list[int]
) -> None:
    box = runtime.create("fdx", make_config(bundle, "fdx", "/bin/sleep", "1000"))
    box.start()
    fd, out = output_file(tmp_path)
    process = box.exec(Process(args=LIST_OWN_FDS, env=(PATH_ENV,)), stdio=Stdio(stdout=fd, stderr=fd))
    os.close(fd)
    assert process.wait(20) == 0
    text = out.read_text()
    assert_only_stdio(fds_listed(text), text)
    box.destroy(force=True)


def _escape_script(marker: Path) -> str:
    """From a host directory, enough `..` reach the host's root, and then the marker's directory."""
    return f"pwd; echo escaped > {'../' * 30}{str(marker).lstrip('/')}; echo wrote-$?"


def test_a_cwd_through_proc_self_fd_never_reaches_the_host(
    runtime: Runtime, bundle: Path, tmp_path: Path, controller_fds: list[int]
) -> None:
    marker = tmp_path / "escaped-marker"
    outcomes = {}
    for n in LEAK_RANGE:
        cid = f"cwd{n}"
        config = make_config(bundle, cid, "/bin/sh", "-c", _escape_script(marker))
        config = dataclasses.replace(config, process=dataclasses.replace(config.process, cwd=f"/proc/self/fd/{n}"))
        fd, out = output_file(tmp_path, f"{cid}.out")
        try:
            box = runtime.create(cid, config, stdio=Stdio(stdout=fd, stderr=fd))
        except CorralError as exc:
            assert f"process.cwd '/proc/self/fd/{n}'" in str(exc), str(exc)
            outcomes[n] = f"refused: {exc}"
            continue
        finally:
            os.close(fd)
        box.start()
        box.wait(20)
        box.destroy()
        text = out.read_text()
        outcomes[n] = f"ran: {text!r}"
        assert text.startswith("/") and "unreachable" not in text, text
        assert not marker.exists(), outcomes
    assert not marker.exists(), outcomes


def test_an_exec_with_a_cwd_through_proc_self_fd_never_reaches_the_host(
    runtime: Runtime, bundle: Path, tmp_path: Path, controller_fds: list[int]
) -> None:
    marker = tmp_path / "escaped-marker"
    box = runtime.create("cwdx", make_config(bundle, "cwdx", "/bin/sleep", "1000"))
    box.start()
    outcomes = {}
    for n in LEAK_RANGE:
        fd, out = output_file(tmp_path, f"x{n}.out")
        process = Process(args=("/bin/sh", "-c", _escape_script(marker)), env=(PATH_ENV,), cwd=f"/proc/self/fd/{n}")
        try:
            handle = box.exec(process, stdio=Stdio(stdout=fd, stderr=fd))
        except CorralError as exc:
            assert f"/proc/self/fd/{n}" in str(exc), str(exc)
            outcomes[n] = f"refused: {exc}"
            continue
        finally:
            os.close(fd)
        handle.wait(20)
        text = out.read_text()
        outcomes[n] = f"ran: {text!r}"
        assert text.startswith("/") and "unreachable" not in text, text
    assert not marker.exists(), outcomes
    box.destroy(force=True)


def test_a_cwd_outside_the_root_is_refused_after_chdir(tmp_path: Path) -> None:
    """The getcwd check alone: a process whose cwd is outside its root (as a leaked
    directory descriptor would make it) fails, naming process.cwd."""
    jail = tmp_path / "jail"
    jail.mkdir()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            os.chdir(tmp_path)
            os.chroot(jail)  # the cwd stays outside the new root
            init.check_cwd("/proc/self/fd/7")
            os.write(write, b"accepted")
        except ExecutorError as exc:
            os.write(write, str(exc).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        message = f.read()
    os.waitpid(pid, 0)
    assert "process.cwd '/proc/self/fd/7' is outside the container's root" in message, message


#: The descriptors a `corral create` process could hold when it forks (its store, lock, logs).
CLI_LEAK_RANGE = range(3, 7)


def test_a_cwd_through_proc_self_fd_through_the_cli(corral_cli: CorralCli, bundle: Path, tmp_path: Path) -> None:
    """`process.cwd` /proc/self/fd/N in config.json, for the descriptors the `corral` process
    itself holds (a few: each CLI create costs seconds here)."""
    marker = tmp_path / "escaped-marker"
    outcomes = {}
    for n in CLI_LEAK_RANGE:
        cid = f"cwd{n}"
        config = make_config(bundle, cid, "/bin/sh", "-c", _escape_script(marker))
        config = dataclasses.replace(config, process=dataclasses.replace(config.process, cwd=f"/proc/self/fd/{n}"))
        run = corral_cli.run(cid, config, bundle)
        if not run.created:
            assert f"process.cwd '/proc/self/fd/{n}'" in run.error, run.error
            outcomes[n] = "refused"
            continue
        outcomes[n] = f"ran: {run.output!r}"
        assert "unreachable" not in run.output and "wrote-0" not in run.output, run.output
    assert not marker.exists(), outcomes
