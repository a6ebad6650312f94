"""The `--log` file, as runc writes it and containerd's shim reads it.

containerd shows the user the `msg` of the last `"level":"error"` line of
`<bundle>/log.json` (`--log-format json`), so an error must reach that file as
one JSON object on one line, and also stderr for a person at a terminal. The
text format is logrus's (`time="..." level=error msg="..."`), as runc's.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: the log is imported by every call, and writes a line in few
if TYPE_CHECKING:  # pragma: no cover
    from typing import TextIO

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def _now() -> str:
    from datetime import datetime, timezone  # only when a line is written (json's, too)

    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def format_line(level: str, msg: str, fmt: str, time: str | None = None) -> str:
    import json

    time = time or _now()
    if fmt == "json":
        return json.dumps({"level": level, "msg": msg, "time": time}, separators=(",", ":")) + "\n"
    return f"time={json.dumps(time)} level={level} msg={json.dumps(msg)}\n"


class Log:
    """Where this call's log lines go: the `--log` file, else stderr (debug lines only with --debug)."""

    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.fmt = fmt
        self.threshold = LEVELS["debug" if debug else "info"]

    def _write(self, level: str, msg: str) -> None:
        if LEVELS[level] < self.threshold:
            return
        line = format_line(level, msg, self.fmt)
        if self.path is None:
            if level != "error":  # errors reach stderr once, plainly, through error()
                sys.stderr.write(line)
            return
        try:
            # O_APPEND: several calls (and the shim) may write one file; one write per line.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            sys.stderr.write(f"corral: cannot write the log {self.path}: {exc}\n")

    def debug(self, msg: str) -> None:
        self._write("debug", msg)

    def info(self, msg: str) -> None:
        self._write("info", msg)

    def warning(self, msg: str) -> None:
        self._write("warning", msg)

    def error(self, msg: str, stderr: TextIO | None = None) -> None:
        """An error: one line in the log, and the plain message on stderr."""
        self._write("error", msg)
        (stderr or sys.stderr).write(f"{msg}\n")
