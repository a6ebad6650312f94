"""The container's terminal: a pty of the container's own devpts, made a process's controlling terminal.

Runs in the init (before pivot_root, reaching the rootfs through an fd) and in an
exec'd process (after it joined the container's mount namespace), as runc's
`setupConsole` does: the pty is allocated *inside* the container, from the
`/dev/ptmx` of the devpts instance mounted at its `/dev/pts`, so that the
process sees its terminal as `/dev/pts/N` and `tty` says so. The master goes
to the controller (protocol.Console, SCM_RIGHTS); the slave becomes the
controlling terminal and fds 0, 1 and 2.

Nothing here follows a path the container could have pointed elsewhere: the
multiplexer is opened with openat2(RESOLVE_IN_ROOT) and checked to be one
(char 5:2), the slave is reached from the master (TIOCGPTPEER) rather than by
its name, and that name is then checked to be the very node in the
container's /dev/pts.

The ioctl numbers are those of the generic Linux ABI (x86-64, arm64, riscv64, s390x).
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
import termios

from corral.config import ConsoleSize
from corral.errors import ExecutorError
from corral.executor.kernel import LINUX, Syscalls
from corral.executor.rootfs import open_in_root
from corral.records import record

#: /dev/ptmx and every devpts instance's `ptmx` node.
PTMX_DEVICE = os.makedev(5, 2)
TIOCGPTN = 0x80045430  # _IOR('T', 0x30, unsigned int): the pty's number
TIOCSPTLCK = 0x40045431  # _IOW('T', 0x31, int): (un)lock the slave
TIOCGPTPEER = 0x5441  # _IO('T', 0x41): open the slave from the master (Linux 4.13)


@record
class Pty:
    """A pty pair held by this process; `name` is the slave's path inside the container."""

    master: int
    slave: int
    name: str


def allocate(root_fd: int, size: ConsoleSize | None, *, kernel: Syscalls = LINUX) -> Pty:
    """A new pty from the container's devpts (`root_fd` is the container's `/`), sized `size`."""
    flags = os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC
    try:
        master = open_in_root(root_fd, "/dev/ptmx", flags, kernel=kernel)
    except OSError as exc:
        raise ExecutorError(
            f"process.terminal: cannot open /dev/ptmx in the container ({exc.strerror}); "
            "a terminal needs a devpts mount at /dev/pts (as `runc spec` writes it)"
        ) from exc
    try:
        st = os.fstat(master)
        if not stat.S_ISCHR(st.st_mode) or st.st_rdev != PTMX_DEVICE:
            raise ExecutorError("process.terminal: /dev/ptmx in the container is not the pty multiplexer (char 5:2)")
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, bytes(4)))[0]
        slave = fcntl.ioctl(master, TIOCGPTPEER, flags)
        name = f"/dev/pts/{number}"
        try:
            _check_is_node(root_fd, name, slave, kernel)
            if size is not None and size.height and size.width:
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0))
            # The line discipline stays the kernel's (ONLCR: "\n" reads "\r\n" from the master), as
            # runc's libcontainer hands it over --console-socket: the reader decides (runc's own
            # foreground terminal clears ONLCR; containerd's shim and conmon copy it as it is).
        except BaseException:
            os.close(slave)
            raise
    except BaseException:
        os.close(master)
        raise
    return Pty(master, slave, name)


def _check_is_node(root_fd: int, name: str, slave: int, kernel: Syscalls) -> None:
    """The slave must be the container's own /dev/pts/N: a /dev/ptmx that led to another
    devpts (the host's) would hand the container a terminal it cannot name, or the host's."""
    try:
        node = open_in_root(root_fd, name, os.O_PATH | os.O_CLOEXEC, kernel=kernel)
    except OSError as exc:
        raise ExecutorError(
            f"process.terminal: the new pty is not {name} in the container ({exc.strerror}): "
            "its /dev/ptmx is not the one of the devpts mounted at /dev/pts"
        ) from exc
    try:
        here, there = os.fstat(node), os.fstat(slave)
    finally:
        os.close(node)
    if (here.st_dev, here.st_ino) != (there.st_dev, there.st_ino):
        raise ExecutorError(
            f"process.terminal: {name} in the container is not the new pty: "
            "its /dev/ptmx is not the one of the devpts mounted at /dev/pts"
        )


def make_controlling(slave: int) -> None:
    """A new session whose controlling terminal is `slave` (what a login shell expects)."""
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)


def is_master(fd: int) -> bool:
    """What the controller checks of the fd it receives: a pty master, not anything else."""
    st = os.fstat(fd)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == PTMX_DEVICE
