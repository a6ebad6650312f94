"""A process as the kernel knows it, and how it ended: the two values every call handles.

They live apart from corral.types because the one-shot command-line calls
(`start`, `kill`, `pause`, `resume`, `delete`) need these two and nothing else of
the vocabulary, and corral.types builds a dozen dataclasses: importing
`dataclasses` (which imports `inspect`, `ast`, `dis`, `tokenize`) and building the
classes cost such a call ~10 ms of its ~45. Named tuples are built once, cheaply,
from `typing`, which those calls import anyway. corral.types re-exports both.
"""

from __future__ import annotations

import os
from typing import NamedTuple


class ProcessIdentity(NamedTuple):
    """A process as the kernel knows it within one boot: a PID alone is reused, a PID
    and its start time are not. The boot id that completes it is the record's
    (the Runtime reads it, so that tests can fake a reboot).
    """

    pid: int
    start_time: int  # field 22 of /proc/<pid>/stat: clock ticks after boot


class ExitStatus(NamedTuple):
    """How a process ended.

    `status` follows the shell and runc/containerd convention: the exit code, or
    128 + the signal number when a signal killed it. `None` means nobody could
    observe it (the monitor was gone, or the host restarted): corral says so
    rather than invent one, and `reason` says why (it is journalled, so that an
    unknown status is never a silent None). Not part of equality: two unknown
    statuses are the same status whatever the cause.
    """

    status: int | None
    signal: int | None = None
    oom_killed: bool = False
    reason: str | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExitStatus):
            return NotImplemented
        return self[:3] == other[:3]

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(self[:3])

    @property
    def known(self) -> bool:
        return self.status is not None

    @classmethod
    def from_wait_status(cls, wait_status: int) -> ExitStatus:
        if os.WIFSIGNALED(wait_status):
            sig = os.WTERMSIG(wait_status)
            return cls(status=128 + sig, signal=sig)
        return cls(status=os.WEXITSTATUS(wait_status))

    @classmethod
    def unknown(cls, reason: str | None = None) -> ExitStatus:
        return cls(status=None, reason=reason)
