"""A process that swaps a directory and a symlink in a shared volume, as fast as it can.

The attacker of CVE-2021-30465 and CVE-2024-45310 is another container that
shares a volume with the one being created and exchanges, with
renameat2(RENAME_EXCHANGE), a directory the new container mounts on (or
creates under) with a symlink that leads out of its rootfs. The busybox image
has no renameat2, so the swapping process runs on the host, in the shared
directory itself: the runtime sees exactly what a container's swaps would do
to that directory (the same inodes renamed in place), and nothing else.

`Racer` starts it (a Python subprocess calling renameat2 through ctypes in a
loop), and reports how many swaps it made, so a test can show the race ran.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType

_SWAPPER = r"""
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
a, b, out = sys.argv[1].encode(), sys.argv[2].encode(), sys.argv[3]
count = 0
def stop(*_):
    with open(out, "w") as f:
        f.write(str(count))
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
renameat2 = libc.renameat2
while True:
    if renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0:
        count += 1
"""


class Racer:
    """Swaps `a` and `b` (a directory and a symlink, both in the shared directory) until stopped."""

    def __init__(self, a: Path, b: Path, tmp_path: Path) -> None:
        self.a, self.b = a, b
        self.count_file = tmp_path / "swaps"
        self.process: subprocess.Popen[str] | None = None
        self.swaps = 0

    def __enter__(self) -> Racer:
        self.process = subprocess.Popen(
            [sys.executable, "-S", "-c", _SWAPPER, str(self.a), str(self.b), str(self.count_file)],
            stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self.count_file.exists():
            self.swaps = int(self.count_file.read_text() or 0)


def tree(path: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every entry under `path` (not following symlinks): mode, owner, and a file's bytes."""
    found: dict[str, tuple[int, int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            data = Path(full).read_bytes() if os.path.isfile(full) and not os.path.islink(full) else b""
            found[os.path.relpath(full, path)] = (st.st_mode, st.st_uid, data)
    return found


def sentinel(path: Path) -> Path:
    """A host directory the racing symlink names, with a file in it, both with set modes."""
    path.mkdir()
    os.chmod(path, 0o751)
    (path / "sentinel").write_bytes(b"host sentinel: never written by a container's set-up\n")
    os.chmod(path / "sentinel", 0o640)
    return path
