"""The attacks once more through the `corral` command, as containerd drives runc.

The library path is what most tests use (fast, exact errors); the CLI adds its
own parsing of config.json from the bundle, its own store and run root, and
one process per call. Each security module that can runs its attack once
through here: `create --bundle`, `start`, `state` until stopped, `delete --force`.
The config is the one the library test built, written as the bundle's config.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corral import Config, Runtime
from tests.integration.conftest import leaks_of

#: The command next to the interpreter running the tests: .venv/bin/corral-runc, the same
#: command line as .venv/bin/corral started without site (as containerd would run it).
CORRAL = str(Path(sys.executable).with_name("corral-runc"))


@dataclass(frozen=True)
class CliRun:
    created: bool
    error: str  # create's stderr when it was refused
    output: str  # what the container wrote to its stdout and stderr
    pid: int | None  # the init's PID while it was created (from --pid-file)


class CorralCli:
    """`corral --root ROOT ...` in a subprocess, on a root of its own under the test's tmp_path."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.root = tmp_path / "cli-root"

    def __call__(self, *args: str, timeout: float = 60, stdout: object = None) -> subprocess.CompletedProcess[str]:
        out = stdout if stdout is not None else subprocess.PIPE
        return subprocess.run(
            [CORRAL, "--root", str(self.root), *args],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE if stdout is None else out,
            text=True, timeout=timeout,
        )

    def status(self, cid: str) -> str:
        done = self("state", cid)
        return json.loads(done.stdout)["status"] if done.returncode == 0 else "missing"

    def exec(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`corral exec [options] CID COMMAND...`; its output (and the process's, which keeps
        the command's stdio: a pipe would never close) in a file, returned as stdout."""
        out_path = self.tmp_path / "cli-exec.out"
        with open(out_path, "w") as out:
            done = self("exec", *args, stdout=out)
        text = out_path.read_text()
        return subprocess.CompletedProcess(done.args, done.returncode, text, text)

    def run(
        self,
        cid: str,
        config: Config,
        bundle: Path,
        *,
        while_created: Callable[[int], None] | None = None,
        while_running: Callable[[int], None] | None = None,
        wait: float = 20,
    ) -> CliRun:
        """create (the config written as `bundle`/config.json), then `while_created(pid)` if
        given, start, `while_running(pid)`, wait up to `wait` s for the stop, delete --force.
        A refused create is a result, not a failure."""
        (bundle / "config.json").write_text(config.to_json())
        out_path = self.tmp_path / f"cli-{cid}.out"
        pid_file = self.tmp_path / f"cli-{cid}.pid"
        with open(out_path, "w") as out:
            created = self("create", "--bundle", str(bundle), "--pid-file", str(pid_file), cid, stdout=out)
        if created.returncode != 0:
            self("delete", "--force", cid)
            return CliRun(False, out_path.read_text(), "", None)
        pid = int(pid_file.read_text())
        try:
            if while_created is not None:
                while_created(pid)
            started = self("start", cid)
            assert started.returncode == 0, started.stderr
            if while_running is not None:
                while_running(pid)
        except BaseException:
            self("delete", "--force", cid)
            raise
        deadline = time.monotonic() + wait
        while self.status(cid) not in ("stopped", "missing") and time.monotonic() < deadline:
            time.sleep(0.05)
        deleted = self("delete", "--force", cid)
        assert deleted.returncode == 0, deleted.stderr
        return CliRun(True, "", out_path.read_text(), pid)

    def check_no_leaks(self) -> list[str]:
        if not (self.root / "corral.db").exists():
            return []
        runtime = Runtime(self.root, run_root=self.root / "run")
        try:
            return leaks_of(runtime, self.tmp_path)
        finally:
            runtime.close()


@pytest.fixture
def corral_cli(tmp_path: Path) -> Iterator[CorralCli]:
    cli = CorralCli(tmp_path)
    yield cli
    leaks = cli.check_no_leaks()
    assert not leaks, leaks
