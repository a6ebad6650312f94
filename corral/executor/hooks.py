"""Running one OCI hook: the container's state on its stdin, a deadline, an outcome.

Used by three processes, each at the moment and in the namespaces the runtime
spec gives a kind (runtime.md "Lifecycle", config.md "POSIX-platform Hooks"):

- the monitor (host namespaces) runs `prestart` then `createRuntime` while the
  init waits before pivot_root;
- the init runs `createContainer` (its namespaces, before pivot_root, in the
  rootfs) and `startContainer` (after `start` opened the exec fifo, right
  before execve, as the container's user);
- the controller, through the executor, runs `poststart` after `start` and
  `poststop` after `destroy`.

A hook is fork+exec through `subprocess` (C code between fork and exec, so the
threaded controller may use it too), in its own process group so that a hook
killed at its deadline takes its children with it. Its stdin and its output are
memfds, not pipes: nothing blocks on a hook's grandchild holding a pipe open,
and the state arrives whole whatever its size. What a hook printed is kept
(its tail) for the error message, never shown to the container.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from typing import Any

from corral.config import Config
from corral.config.hooks import Hook
from corral.errors import HookFailed
from corral.executor.protocol import HookRan, ProtocolError, decode, encode
from corral.records import field_names, record

#: The runtime-spec version of the state corral writes (the one it implements).
STATE_OCI_VERSION = "1.2.0"
#: How much of a hook's output an error message quotes (its end: where programs say why).
OUTPUT_TAIL = 512
#: The kinds whose failure fails the operation; the others are logged and the operation goes on.
FATAL_KINDS = frozenset({"prestart", "createRuntime", "createContainer", "startContainer"})


@record
class HookOutcome:
    """How one hook ended: for the journal (`record()`) and for error messages (`describe()`)."""

    kind: str
    path: str
    status: int | None  # exit status, if it exited
    signal: int | None  # the signal that ended it, if one did
    timed_out: bool  # killed by corral at its deadline (a failure, whatever it would have returned)
    duration: float  # seconds
    error: str | None = None  # it could not be run at all (exec failed), or what it printed on failure

    @property
    def ok(self) -> bool:
        return self.status == 0 and not self.timed_out and self.error is None

    def record(self) -> dict[str, Any]:
        """The journal's form: plain JSON."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "path": self.path,
            "exit_status": self.status,
            "signal": self.signal,
            "timed_out": self.timed_out,
            "duration_ms": round(self.duration * 1000, 3),
        }
        if self.error is not None:
            out["error"] = self.error
        return out

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> HookOutcome:
        return cls(
            kind=str(record["kind"]),
            path=str(record["path"]),
            status=record.get("exit_status"),
            signal=record.get("signal"),
            timed_out=bool(record.get("timed_out")),
            duration=float(record.get("duration_ms", 0.0)) / 1000,
            error=record.get("error"),
        )

    def describe(self) -> str:
        if self.timed_out:
            how = f"killed after its timeout of {self.duration:.3g} s"
        elif self.signal is not None:
            how = f"killed by signal {self.signal}"
        elif self.status is not None:
            how = f"exited with status {self.status}"
        else:
            how = "could not be run"
        text = f"{self.kind} hook {self.path}: {how}"
        return f"{text}: {self.error}" if self.error else text


def state(config: Config, container_id: str, status: str, pid: int | None) -> bytes:
    """The container's state (runtime-spec state.md) as the hook reads it on stdin.

    `pid` is the init's PID as the host sees it; the spec asks for it while the
    container is `creating`, `created` or `running`, and it is left out after.
    """
    document: dict[str, Any] = {
        "ociVersion": STATE_OCI_VERSION,
        "id": container_id,
        "status": status,
        "bundle": config.bundle or "",
        "annotations": dict(config.annotations),
    }
    if pid is not None and status in ("creating", "created", "running"):
        document["pid"] = pid
    return json.dumps(document, separators=(",", ":")).encode()


def run(hook: Hook, kind: str, state_json: bytes, cwd: str | None = None) -> HookOutcome:
    """Run `hook` to its end or its deadline (then kill its process group): never raises."""
    started = time.monotonic()
    stdin = _memfd("corral-hook-state", state_json)
    output = os.memfd_create("corral-hook-output", os.MFD_CLOEXEC)
    try:
        try:
            child = subprocess.Popen(
                hook.argv,
                executable=hook.path,
                env=dict(item.split("=", 1) for item in hook.env),
                stdin=stdin,
                stdout=output,
                stderr=output,
                cwd=cwd if cwd is not None and os.path.isdir(cwd) else None,
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            return HookOutcome(kind, hook.path, None, None, False, time.monotonic() - started, str(exc))
        timed_out = False
        try:
            code = child.wait(hook.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(child.pid)
            code = child.wait()
        duration = time.monotonic() - started
        status, sig = (code, None) if code >= 0 else (None, -code)
        outcome = HookOutcome(kind, hook.path, status, sig, timed_out, duration)
        if not outcome.ok:
            said = _tail(output)
            if said:
                outcome = HookOutcome(kind, hook.path, status, sig, timed_out, duration, said)
        return outcome
    finally:
        os.close(stdin)
        os.close(output)


def run_all(
    hooks: tuple[Hook, ...], kind: str, state_json: bytes, cwd: str | None = None
) -> list[HookOutcome]:
    """Run hooks in order; a fatal kind stops at its first failure (the last outcome then)."""
    outcomes: list[HookOutcome] = []
    for hook in hooks:
        outcome = run(hook, kind, state_json, cwd)
        outcomes.append(outcome)
        if not outcome.ok and kind in FATAL_KINDS:
            break
    return outcomes


def first_failure(outcomes: list[HookOutcome] | tuple[HookOutcome, ...]) -> HookOutcome | None:
    return next((o for o in outcomes if not o.ok), None)


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(fd: int) -> str:
    size = os.fstat(fd).st_size
    data = os.pread(fd, OUTPUT_TAIL, max(0, size - OUTPUT_TAIL))
    return data.decode(errors="replace").strip()


# --------------------------------------------------------------------------- the moments


def runtime_create_hooks(config: Config, container_id: str, pid: int, report: Callable[[HookOutcome], None]) -> HookOutcome | None:
    """`prestart` then `createRuntime` (as runc orders them), in the caller's (the host's)
    namespaces, in the bundle: each outcome to `report`; the failed one, or None."""
    state_json = state(config, container_id, "creating", pid)
    for kind in ("prestart", "createRuntime"):
        for outcome in run_all(config.hooks.of(kind), kind, state_json, cwd=config.bundle):
            report(outcome)
            if not outcome.ok:
                return outcome
    return None


def container_hooks(
    config: Config, container_id: str, kind: str, status: str, pid: int, report: Callable[[HookOutcome], None], cwd: str | None
) -> None:
    """`createContainer` or `startContainer`, run by the init in the container's namespaces:
    each outcome to `report`; HookFailed (with the failed one's description) if one failed."""
    state_json = state(config, container_id, status, pid)
    for outcome in run_all(config.hooks.of(kind), kind, state_json, cwd=cwd):
        report(outcome)
        if not outcome.ok:
            raise HookFailed(outcome.describe(), container_id=container_id)


def to_message(outcome: HookOutcome) -> HookRan:
    # Not dataclasses.asdict: the init sends this after pivot_root, where nothing more can be imported.
    return HookRan(**{name: getattr(outcome, name) for name in field_names(outcome)})


def from_message(message: HookRan) -> HookOutcome:
    return HookOutcome(**message._asdict())


def host_pid() -> int:
    """This process's PID as the host sees it, read from the host's procfs (still at /proc
    before pivot_root): the state's `pid` is the host's view, even in a new PID namespace."""
    return int(os.readlink("/proc/self"))


# --------------------------------------------------------------------------- over the exec fifo
#
# The init runs startContainer after `start` opened the exec fifo, and the sync socket is
# closed by then: each outcome travels up the fifo as one line (an encoded HookRan report,
# JSON, never a pickle), before the "0" that says the program is about to run.


def fifo_line(outcome: HookOutcome) -> bytes:
    return encode(to_message(outcome)) + b"\n"


class FifoReader:
    """`start`'s side of the exec fifo: hook reports, then "0"."""

    def __init__(self) -> None:
        self.buffer = b""
        self.outcomes: list[HookOutcome] = []

    def feed(self, chunk: bytes) -> bool:
        """Take what was read; True once the init said "0" (it is about to execve)."""
        self.buffer += chunk
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            message = decode(line)
            if not isinstance(message, HookRan):
                raise ProtocolError(f"protocol: unexpected message on the exec fifo: {message!r}")
            self.outcomes.append(from_message(message))
        if self.buffer[:1] == b"0":
            return True
        if self.buffer and self.buffer[:1] != b"J":
            raise ProtocolError(f"protocol: unexpected bytes on the exec fifo: {self.buffer[:40]!r}")
        return False

    def failure(self, container_id: str) -> HookFailed | None:
        """The error of a failed startContainer hook, if the init reported one before it exited."""
        failed = first_failure(self.outcomes)
        if failed is None:
            return None
        return HookFailed(
            f"container {container_id!r}: {failed.describe()}",
            container_id=container_id,
            hooks=tuple(o.record() for o in self.outcomes),
        )
