"""The spawn helper runs from a sealed in-memory copy of the interpreter (CVE-2019-5736).

Every process corral forks into a container (the init before its final execve,
each process joining for `exec`) and the monitor beside it is a fork of the
spawn helper, so they all share the helper's `/proc/<pid>/exe`. If that were the
host's interpreter, a container could run it (a program `#!/proc/self/exe`),
keep a descriptor of it, and write the host's Python once no corral process
runs it any more: runc's CVE-2019-5736. As runc's `cloned_binary` does, the
helper is therefore started from a `memfd` copy of the interpreter, sealed
against every change, so that what a container can reach is a private copy
nobody can write.

The copy is made by the controller when it starts the helper (once per helper
start, never per container) and executed through `/proc/self/fd/N` with argv[0]
still the real interpreter's path, so that Python computes the same prefix and
finds the same stdlib, venv and site-packages as before. The helper checks at
its start that it really runs sealed (`require_sealed`) and refuses to serve
otherwise.

The memfd costs the interpreter binary's size once per helper (17.6 KB for a
build with a shared libpython, 6.8 MB for Debian's static python3.11) and its
copy 0.1 to 7 ms at helper start; nothing per container.
"""

from __future__ import annotations

import fcntl
import os
import sys

# From linux/memfd.h and linux/fcntl.h (Python's os/fcntl lack some of them).
MFD_CLOEXEC = 0x0001
MFD_ALLOW_SEALING = 0x0002
MFD_EXEC = 0x0010  # Linux 6.3+: executable even where vm.memfd_noexec defaults otherwise
F_ADD_SEALS = 1024 + 9
F_GET_SEALS = 1024 + 10
F_SEAL_SEAL = 0x0001
F_SEAL_SHRINK = 0x0002
F_SEAL_GROW = 0x0004
F_SEAL_WRITE = 0x0008
SEALS = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE

#: What `readlink /proc/<pid>/exe` shows for a sealed process: `/memfd:corral-python (deleted)`.
MEMFD_NAME = "corral-python"


class NotSealed(RuntimeError):
    """This process does not run from a sealed copy (raised by `require_sealed`)."""


def _memfd() -> int:
    try:
        return os.memfd_create(MEMFD_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC)
    except OSError:  # EINVAL before Linux 6.3, which does not know MFD_EXEC (and needs none)
        return os.memfd_create(MEMFD_NAME, MFD_CLOEXEC | MFD_ALLOW_SEALING)


def sealed_copy(path: str = sys.executable) -> int:
    """A close-on-exec memfd holding the bytes of `path` (symlinks followed), sealed read-only."""
    memfd = _memfd()
    try:
        with open(path, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            offset = 0
            while offset < size:
                sent = os.sendfile(memfd, source.fileno(), offset, size - offset)
                if sent == 0:
                    raise OSError(f"{path} shrank while being copied")
                offset += sent
        fcntl.fcntl(memfd, F_ADD_SEALS, SEALS)
    except BaseException:
        os.close(memfd)
        raise
    return memfd


def exec_path(memfd: int) -> str:
    """The path to give execve (or Popen's `executable`) to run `memfd` in a child that inherits it."""
    return f"/proc/self/fd/{memfd}"


def seals_of(path: str) -> int | None:
    """The seals of the file at `path`; None for a file that cannot be sealed (not a memfd)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return int(fcntl.fcntl(fd, F_GET_SEALS))
    except OSError:
        return None
    finally:
        os.close(fd)


def require_sealed() -> None:
    """Refuse to go on unless this process runs from a memfd carrying every seal of SEALS."""
    seals = seals_of("/proc/self/exe")
    if seals is None or seals & SEALS != SEALS:
        raise NotSealed(
            f"the spawn helper must run from a sealed copy of the interpreter, not {os.readlink('/proc/self/exe')!r} "
            "(it is started by corral.executor.spawn.Helper)"
        )
