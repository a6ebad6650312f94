"""Whether a create or exec asked for the terminal its process has, before anything is made.

A process with `terminal: true` gets a new pty (executor/pty.py); its master is
the only way to talk to that process, so the caller must say it will take it
(`console=True`), and gets it as a file descriptor it owns
(`Container.console_fd`, `ExecProcess.console_fd`). Asked the other way round,
or with stdio that the terminal would replace, the call is refused up front
rather than half-honoured: runc refuses `--console-socket` without a terminal too.
"""

from __future__ import annotations

from corral.errors import ConfigError
from corral.types import Stdio


def check_console(terminal: bool, console: bool, stdio: Stdio | None, *, where: str, call: str) -> None:
    """Refuse a terminal nobody will hold, a console without a terminal, and stdio beside a terminal."""
    if terminal and not console:
        raise ConfigError(
            f"{where}.terminal",
            f"is true, so the process gets a new terminal: pass console=True to {call} to receive its "
            "master as a file descriptor (.console_fd), or set terminal to false",
        )
    if console and not terminal:
        raise ConfigError(
            f"{where}.terminal", f"is false, but console=True was passed to {call}: set terminal to true for a terminal"
        )
    if terminal and stdio is not None and stdio != Stdio(extra_fds=stdio.extra_fds):
        raise ConfigError(
            "stdio", f"{where}.terminal is true: the terminal is the process's stdin, stdout and stderr; pass no stdio"
        )
