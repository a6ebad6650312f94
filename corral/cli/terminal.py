"""The foreground terminal of `exec --tty` without `--console-socket`: runc's tty.go.

runc, asked for a terminal with no console socket to send it to and not
detached, keeps the pty master itself and joins it to its own terminal: that
terminal goes raw (output processing kept, so the master's bare newlines are
shown as lines), the master's ONLCR is cleared (the host terminal adds the
carriage returns), the window size follows SIGWINCH, and the bytes are copied
both ways until the process's side of the pty closes. corral does the same.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import signal
import termios
from collections.abc import Iterator
from contextlib import contextmanager

from corral.errors import CorralError

STDIN, STDOUT = 0, 1


def host_terminal() -> int:
    """The terminal this process talks to: stderr, stdout or stdin if one is a tty (as runc
    looks), else /dev/tty; CorralError if there is none."""
    for fd in (2, 1, 0):
        try:
            if os.isatty(fd):
                return os.dup(fd)
        except OSError:
            continue
    try:
        return os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise CorralError(
            f"--tty: this command has no terminal ({exc.strerror}); pass --console-socket to hand "
            "the terminal to another process, or drop --tty"
        ) from None


def _copy_size(host: int, master: int) -> None:
    try:
        size = fcntl.ioctl(host, termios.TIOCGWINSZ, bytes(8))
        fcntl.ioctl(master, termios.TIOCSWINSZ, size)
    except OSError:
        pass  # a size is a courtesy: never a reason to fail


@contextmanager
def _raw(host: int) -> Iterator[None]:
    """`host` raw (no echo, no line editing, no signals from keys) but with output processing,
    as runc's console.SetRaw; restored on the way out."""
    saved = termios.tcgetattr(host)
    raw = termios.tcgetattr(host)
    raw[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
                | termios.IGNCR | termios.ICRNL | termios.IXON)
    raw[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    raw[2] = (raw[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    raw[6][termios.VMIN], raw[6][termios.VTIME] = 1, 0
    termios.tcsetattr(host, termios.TCSANOW, raw)
    try:
        yield
    finally:
        termios.tcsetattr(host, termios.TCSANOW, saved)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def proxy(master: int, host: int) -> None:
    """Join `master` to this process's terminal `host` (host_terminal(), closed here) until the
    process side of the pty is closed."""
    attrs = termios.tcgetattr(master)
    attrs[1] &= ~termios.ONLCR  # the host terminal turns "\n" into "\r\n" itself
    termios.tcsetattr(master, termios.TCSANOW, attrs)
    previous = signal.signal(signal.SIGWINCH, lambda _signum, _frame: _copy_size(host, master))
    try:
        _copy_size(host, master)
        with _raw(host):
            _pump(master)
    finally:
        signal.signal(signal.SIGWINCH, previous)
        os.close(host)


def _pump(master: int) -> None:
    """Stdin to the master, the master to stdout; ends at the master's EIO (the process side is
    closed). The end of stdin only stops that direction, as runc's copy does."""
    sources = [master]
    try:
        os.fstat(STDIN)
        sources.append(STDIN)
    except OSError:
        pass  # no stdin: only the output is copied
    while True:
        try:
            ready, _, _ = select.select(sources, [], [])
        except InterruptedError:  # SIGWINCH
            continue
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError as exc:
                if exc.errno == errno.EIO:
                    return
                raise
            if not data:
                return
            _write_all(STDOUT, data)
        if STDIN in ready:
            data = os.read(STDIN, 65536)
            if data:
                _write_all(master, data)
            else:
                sources.remove(STDIN)
