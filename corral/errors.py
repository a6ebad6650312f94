"""The one exception hierarchy of corral.

Every error a caller can get from corral is a `CorralError`, so that a controller
can catch one class at its boundary. Messages name the container, its state and
what to do about it, because they end up in logs read by someone who did not
write the call.
"""

from __future__ import annotations

from collections.abc import Iterable


class CorralError(Exception):
    """Base of every error corral raises on purpose."""


class InvalidID(CorralError, ValueError):
    """A container id that is not allowed; it is never turned into a path."""

    def __init__(self, container_id: object, reason: str) -> None:
        self.container_id = container_id
        super().__init__(
            f"invalid container id {container_id!r}: {reason}; use 1-128 letters, digits, "
            "'_', '.' or '-', not starting with '.' or '-'"
        )


class ConfigError(CorralError, ValueError):
    """A container configuration that corral cannot honour exactly.

    `where` is the JSON path inside config.json (``process.args``), so that the
    message points at the line to fix.
    """

    def __init__(self, where: str, problem: str, *, source: str | None = None) -> None:
        self.where = where
        self.problem = problem
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__(f"{prefix}{where}: {problem}")


class InvalidStdio(ConfigError):
    """A file descriptor given in `Stdio` that cannot be handed to the container.

    Raised by the executor before anything is spawned; `where` is
    ``stdio.stdin``, ``stdio.stdout`` or ``stdio.stderr``.
    """

    def __init__(self, stream: str, fd: object, problem: str) -> None:
        self.stream = stream
        self.fd = fd
        super().__init__(f"stdio.{stream}", f"fd {fd!r} {problem}")


class ContainerNotFound(CorralError, LookupError):
    def __init__(self, container_id: str, root: str) -> None:
        self.container_id = container_id
        super().__init__(f"container {container_id!r} does not exist in {root}")


class LogsUnavailable(CorralError, LookupError):
    """The container keeps no log to read: it was not created with `Stdio.logged()`, or it was destroyed
    (the log lives in its run dir, removed with it)."""

    def __init__(self, container_id: str, path: str) -> None:
        self.container_id = container_id
        super().__init__(
            f"container {container_id!r} has no log at {path}: create it with stdio=Stdio.logged() "
            "to keep its output; a destroyed container's log is removed with it"
        )


class ContainerExists(CorralError):
    def __init__(self, container_id: str, state: str) -> None:
        self.container_id = container_id
        super().__init__(
            f"container {container_id!r} already exists (state {state}); "
            "destroy it first or choose another id"
        )


class InvalidTransition(CorralError):
    """An event that the lifecycle table does not allow in the current state.

    Raised before anything is changed, in memory, in the store or in the kernel.
    """

    def __init__(
        self, container_id: str, state: str, event: str, allowed: Iterable[str], hint: str = ""
    ) -> None:
        self.container_id = container_id
        self.state = state
        self.event = event
        self.allowed = tuple(allowed)
        allowed_text = ", ".join(self.allowed) if self.allowed else "none"
        extra = f"; {hint}" if hint else ""
        super().__init__(
            f"cannot {event} container {container_id!r}: it is {state}; "
            f"allowed in {state}: {allowed_text}{extra}"
        )


class ConcurrentModification(CorralError):
    """Another process or thread changed the container's record first.

    The write that raised this was not applied; reload and decide again.
    """

    def __init__(self, container_id: str, detail: str = "") -> None:
        self.container_id = container_id
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"container {container_id!r} was changed by another process or thread{extra}; "
            "nothing was written: reload it and retry"
        )


class StoreError(CorralError):
    """The SQLite store cannot be used as it is. It is left untouched."""


class StoreUnreadable(StoreError):
    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        super().__init__(
            f"{path}: cannot be read as a corral database ({reason}); the file was not "
            "changed: restore it from a backup or move it away to start an empty store"
        )


class StoreAccessDenied(StoreError):
    """corral may not read or write a file of its store: a permission problem, not a damaged file."""

    def __init__(self, path: str, reason: str = "permission denied") -> None:
        self.path = path
        super().__init__(
            f"corral needs read and write access to {path}: {reason}; run corral as the user "
            "that owns the store (or as root), or fix the owner and mode of the file; "
            "nothing was changed"
        )


class StoreReplaced(StoreError):
    """The database file was deleted or replaced while a Runtime had it open."""

    def __init__(self, path: str, what: str) -> None:
        self.path = path
        self.what = what
        if what.startswith("deleted"):
            advice = (
                "other processes no longer see this store. Put the file back (or restore it "
                "from a backup) before opening a new Runtime: a new, empty store does not know "
                "the containers this one recorded"
            )
        else:
            advice = "close this Runtime and open a new one to use the new file, or put the original back"
        super().__init__(
            f"{path}: the store's database file was {what} while this corral had it open; "
            f"nothing more was written to it: {advice}"
        )


class LockError(StoreError):
    """The lock file beside the store cannot be opened or locked."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        super().__init__(
            f"{path}: cannot open or lock corral's lock file ({reason}); corral needs read and "
            "write access to its root on a writable filesystem: fix the owner and mode, or "
            "remount it read-write, or run corral as the store's owner (or root)"
        )


class UnknownRevision(StoreError):
    def __init__(self, path: str, revision: str, head: str) -> None:
        self.path = path
        self.revision = revision
        super().__init__(
            f"{path}: schema revision {revision!r} is unknown to this corral (its newest is "
            f"{head!r}); it was probably written by a newer corral: upgrade corral. "
            "The file was not changed"
        )


class ExecutorError(CorralError):
    """Kernel work failed; the message carries what the kernel or init said."""

    def __init__(self, message: str, *, container_id: str | None = None) -> None:
        self.container_id = container_id
        super().__init__(message)


class InitError(ExecutorError):
    """The container's init reported a failure before it could run the user's process."""


class HookFailed(InitError):
    """A hook of the container's config failed where the runtime spec says that fails the
    operation: prestart, createRuntime or createContainer fail `create`, startContainer `start`.

    `hooks` holds how every hook the operation ran ended (the journal's records, plain
    dicts: kind, path, exit_status, signal, timed_out, duration_ms), the failed one last.
    """

    def __init__(
        self, message: str, *, container_id: str | None = None, hooks: tuple[dict[str, object], ...] = ()
    ) -> None:
        self.hooks = hooks
        super().__init__(message, container_id=container_id)


class MountError(ExecutorError):
    """Setting up the container's filesystem failed: names the mount (its destination, as
    the config gives it) because the kernel's call only shows a /proc/self/fd target."""

    def __init__(self, destination: str, cause: OSError, *, what: str = "mount") -> None:
        self.destination = destination
        self.errno = cause.errno
        super().__init__(f"{what} {destination!r}: {cause}")


class CgroupError(ExecutorError):
    """A cgroup operation failed (creating, joining, freezing, removing)."""


class FreezeTimeout(CgroupError):
    """The freezer did not reach the requested state in time; it was thawed again."""


class WaitTimeout(CorralError, TimeoutError):
    def __init__(self, what: str, timeout: float) -> None:
        super().__init__(f"{what}: still running after {timeout:g} s")


class ProcessGone(ExecutorError):
    """The recorded process no longer exists (or its PID now belongs to another process)."""


class RunDirError(ExecutorError):
    """The container's run directory (exec fifo, exit file) cannot be made or is gone.

    Says which directory and what to do, since the cause is the host (a full or
    read-only run root, someone removing files under it), not the container.
    """

    def __init__(self, message: str, run_dir: str, *, container_id: str | None = None) -> None:
        self.run_dir = run_dir
        super().__init__(message, container_id=container_id)


class NeedsRoot(ExecutorError):
    """The caller may not create what a container needs (cgroups): corral runs as root."""

    def __init__(self, path: str, cause: BaseException) -> None:
        self.path = path
        super().__init__(f"corral needs root (or write access to {path}) to create containers: {cause}")
