"""cgroupfs helpers shared by the v1 and v2 managers: read, write, walk, remove, kill.

cgroupfs files are tiny and report errors at write(2) time (EINVAL, EBUSY,
ENOSPC...), so every write is one `os.write` on a fresh descriptor and the errno
is kept for the message. A cgroup can vanish between any two calls (another
process destroyed it, its parent was removed), so readers that feed status and
listings treat ENOENT/ENODEV as "gone" instead of failing. Stdlib only: this is
imported by short-lived, latency-sensitive processes.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from collections.abc import Iterable
from typing import NamedTuple

from corral.errors import CgroupError, ConfigError

#: errnos meaning "this cgroup (or file) is not there any more".
GONE_ERRNOS = frozenset({errno.ENOENT, errno.ENODEV, errno.ESRCH})

#: At or above this a limit is the kernel's "unlimited" (v1 shows PAGE_COUNTER_MAX
#: pages in bytes, 9223372036854771712 with 4 KiB pages).
UNLIMITED_THRESHOLD = 1 << 62


# --- reading and writing -------------------------------------------------------------------


def describe(err: OSError) -> str:
    """`[Errno 22] Invalid argument`, without the file name Python appends (we name it ourselves)."""
    if err.errno is None:
        return str(err)
    return f"[Errno {err.errno}] {err.strerror}"


def read_text(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as f:
        return f.read()


def read_optional(path: str) -> str | None:
    """The file's content, or None when it (or its cgroup) does not exist."""
    try:
        return read_text(path)
    except OSError as err:
        if err.errno in GONE_ERRNOS:
            return None
        raise


def read_int(path: str) -> int | None:
    """An integer file; None when absent; `max` (unlimited) is None too."""
    text = read_optional(path)
    if text is None:
        return None
    text = text.strip()
    if text == "max":
        return None
    return int(text)


def limit_or_none(value: int | None) -> int | None:
    """A limit as corral reports it: None when the kernel means "unlimited"."""
    if value is None or value >= UNLIMITED_THRESHOLD or value < 0:
        return None
    return value


def parse_keyed(text: str) -> dict[str, int]:
    """`key value` lines (memory.events, cpu.stat, memory.oom_control, cgroup.events)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def read_keyed(path: str) -> dict[str, int] | None:
    text = read_optional(path)
    return None if text is None else parse_keyed(text)


#: While an update runs in a thread (`undo_log`): each file it wrote, with what it held before, in order.
_local = threading.local()


class undo_log:
    """Record, for the block it guards, each file `write_file` changes and its old content.

    `Cgroup.update` undoes a refused update with it: the old contents written
    back in reverse order retrace states the kernel already accepted.
    """

    def __enter__(self) -> list[tuple[str, str]]:
        _local.undo = []
        written: list[tuple[str, str]] = _local.undo
        return written

    def __exit__(self, *exc: object) -> None:
        _local.undo = None


def write_file(path: str, value: str) -> None:
    """One write(2) on a fresh descriptor, so the kernel's errno reaches the caller."""
    undo: list[tuple[str, str]] | None = getattr(_local, "undo", None)
    if undo is not None and path not in (p for p, _ in undo):
        old = read_optional(path)
        if old is not None:
            undo.append((path, old.strip()))
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def write_resource(path: str, value: str | int, where: str) -> None:
    """Write a limit; a refusal becomes a ConfigError naming the value, the file and the errno."""
    try:
        write_file(path, str(value))
    except OSError as err:
        raise ConfigError(
            where, f"the kernel refused {value} for {path}: {describe(err)}"
        ) from err


# --- walking ------------------------------------------------------------------------------


def dirs_bottom_up(top: str) -> list[str]:
    """`top` and every cgroup below it, children before parents (the order rmdir needs)."""
    out: list[str] = []

    def visit(path: str) -> None:
        try:
            entries = list(os.scandir(path))
        except OSError as err:
            if err.errno in GONE_ERRNOS:
                return
            raise
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                visit(entry.path)
        out.append(path)

    if os.path.isdir(top):
        visit(top)
    return out


def read_procs(directory: str) -> list[int]:
    """The PIDs in one cgroup's cgroup.procs; [] when it is gone."""
    text = read_optional(os.path.join(directory, "cgroup.procs"))
    if not text:
        return []
    return [int(line) for line in text.split()]


def procs_recursive(top: str) -> list[int]:
    """Every PID in `top` and its descendants, deduplicated and sorted."""
    pids: set[int] = set()
    for directory in dirs_bottom_up(top):
        pids.update(read_procs(directory))
    return sorted(pids)


# --- removing -----------------------------------------------------------------------------


def rmdir_retrying(path: str, deadline: float) -> OSError | None:
    """Remove one empty cgroup, retrying EBUSY until `deadline`; the last error, or None.

    EBUSY right after the last task left is normal (v1 memory: the css is still
    going offline; v2: exiting tasks still counted), so it is retried briefly.
    """
    delay = 0.001
    while True:
        try:
            os.rmdir(path)
            return None
        except FileNotFoundError:
            return None
        except OSError as err:
            if err.errno != errno.EBUSY or time.monotonic() >= deadline:
                return err
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def remove_tree(top: str, deadline: float) -> list[str]:
    """rmdir `top` and its child cgroups, children first; one line per directory that stayed."""
    failures: list[str] = []
    for directory in dirs_bottom_up(top):
        err = rmdir_retrying(directory, deadline)
        if err is not None:
            failures.append(f"{directory}: {describe(err)}")
    return failures


def remove_empty_parents(path: str, stop_at: str) -> list[str]:
    """Remove `path` and then its ancestors while they are empty, stopping below `stop_at`.

    For cleaning a shared parent such as ``/corral`` once nobody uses it: a
    directory that is busy or not empty (another container, a process) is left
    alone silently, and so is everything above it. `stop_at` (typically the
    hierarchy's mount point) is never removed. Returns the directories removed.
    """
    removed: list[str] = []
    stop = os.path.normpath(stop_at)
    current = os.path.normpath(path)
    while current != stop and current.startswith(stop + "/"):
        try:
            os.rmdir(current)
            removed.append(current)
        except FileNotFoundError:
            pass
        except OSError as err:
            if err.errno in (errno.EBUSY, errno.ENOTEMPTY, errno.EEXIST):
                break
            raise
        current = os.path.dirname(current)
    return removed


def remove_if_empty(path: str) -> bool:
    """rmdir a cgroup that has no process and no child; False (and no error) when it has either."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        if err.errno in (errno.EBUSY, errno.ENOTEMPTY, errno.EEXIST):
            return False
        raise
    return True


def relative_cgroup_path(cgroups_path: str) -> str:
    """`/corral/abc` → `corral/abc`; refuses paths that would leave the hierarchy."""
    parts = [p for p in cgroups_path.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ConfigError(
            "linux.cgroupsPath",
            f"{cgroups_path!r} must name a cgroup below the hierarchy root, without '..' "
            "(e.g. '/corral/<id>')",
        )
    return "/".join(parts)


# --- processes ----------------------------------------------------------------------------


def kill_pids(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    """Signal each PID; one that already exited is not an error."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def describe_pids(pids: Iterable[int]) -> str:
    """`123 (sleep, state D), 456 (sh, state S)`: what is left, for error messages."""
    out = []
    for pid in pids:
        try:
            stat = read_text(f"/proc/{pid}/stat")
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            state = stat[stat.rindex(")") + 2 :].split()[0]
            out.append(f"{pid} ({comm}, state {state})")
        except (OSError, ValueError, IndexError):
            out.append(f"{pid} (gone)")
    return ", ".join(out)


def pause(delay: float) -> float:
    """Sleep `delay` and return the next, longer one: polls start fast and settle at 10 ms."""
    time.sleep(delay)
    return min(delay * 2, 0.01)


def cgroup_error(what: str, path: str, err: OSError) -> CgroupError:
    return CgroupError(f"cannot {what} {path}: {describe(err)}")


# --- /proc/self/mountinfo -------------------------------------------------------------------


class MountEntry(NamedTuple):
    mountpoint: str
    root: str  # the directory of the filesystem mounted there ("/" unless a bind or cgroupns)
    fstype: str
    super_options: tuple[str, ...]


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    if "\\" not in field:
        return field
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def parse_mountinfo(text: str) -> list[MountEntry]:
    """The mounts in a mountinfo text (see proc(5)): fields before ``-`` vary in number."""
    entries: list[MountEntry] = []
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < sep + 4:
            continue
        entries.append(
            MountEntry(
                mountpoint=_unescape(fields[4]),
                root=_unescape(fields[3]),
                fstype=fields[sep + 1],
                super_options=tuple(fields[sep + 3].split(",")),
            )
        )
    return entries


def read_mountinfo(path: str = "/proc/self/mountinfo") -> list[MountEntry]:
    return parse_mountinfo(read_text(path))


def mount_containing(
    path: str, mounts: Iterable[MountEntry], fstypes: tuple[str, ...]
) -> MountEntry | None:
    """The mount of one of `fstypes` whose mount point is the longest prefix of `path`."""
    best: MountEntry | None = None
    path = os.path.normpath(path)
    for entry in mounts:
        if entry.fstype not in fstypes:
            continue
        mp = entry.mountpoint.rstrip("/") or "/"
        inside = path == mp or path.startswith(mp + "/") or mp == "/"
        if inside and (best is None or len(mp) >= len(best.mountpoint)):
            best = entry
    return best
