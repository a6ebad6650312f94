"""Signal names and numbers as `runc kill` takes them: `9`, `KILL`, `SIGKILL`, `sigkill`, `RTMIN+3`."""

from __future__ import annotations

import signal

from corral.errors import CorralError

#: Signals that `run` and `exec` in the foreground pass on to the container's process, as runc does.
FORWARDED = (
    signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH,
)


def parse_signal(raw: str) -> int:
    """The signal number `raw` names; CorralError("unknown signal ...") if none.

    A number is taken as it is if the kernel has such a signal (1..SIGRTMAX);
    a name, in any case, with or without the `SIG` prefix, as runc's parseSignal.
    """
    text = raw.strip()
    if text.isdigit():
        number = int(text)
        if 1 <= number <= signal.SIGRTMAX:
            return number
        raise CorralError(f"unknown signal {raw!r}")
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    for base in ("SIGRTMIN", "SIGRTMAX"):
        if name.startswith(base + "+") or name.startswith(base + "-"):
            offset = name[len(base) + 1 :]
            if offset.isdigit():
                number = getattr(signal, base) + (int(offset) if name[len(base)] == "+" else -int(offset))
                if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
                    return int(number)
            raise CorralError(f"unknown signal {raw!r}")
    member = getattr(signal.Signals, name, None) if name.isidentifier() else None
    if not isinstance(member, signal.Signals):
        raise CorralError(f"unknown signal {raw!r}")
    return int(member)
