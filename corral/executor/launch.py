"""Starting the spawn helper process (corral.executor.zygote), and nothing else.

spawn.Helper starts it on first need. A one-shot command line `create` starts
it first instead, before it imports the config and the executor: the helper's
own start (a new interpreter importing everything a monitor and an init need)
then runs on another core while the command parses the bundle and writes the
record, and the command adopts it (`Helper.adopt`). So this module imports
neither the protocol nor the config: only what the start itself needs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from corral.executor import sealed


def python_path() -> str:
    """Where the helper, started with -S (no site: faster), finds corral and cffi's backend."""
    import _cffi_backend  # type: ignore[import-not-found]

    package_parent = Path(__file__).resolve().parents[2]  # .../corral/executor/launch.py -> ...
    paths = [
        str(package_parent),
        os.path.dirname(os.path.abspath(_cffi_backend.__file__)),
    ]
    return os.pathsep.join(dict.fromkeys(paths))


def start_helper() -> tuple[subprocess.Popen[bytes], socket.socket]:
    """Start a helper from a sealed copy of the interpreter (CVE-2019-5736); its process and our end of its socket.

    The socket is protocol.pair()'s kind (SOCK_SEQPACKET). Requests sent before the
    helper has finished importing wait in the socket for it.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    env = dict(os.environ)
    env["PYTHONPATH"] = python_path()
    try:
        interpreter = sealed.sealed_copy()  # what the helper and every fork of it run
        try:
            process = subprocess.Popen(
                [sys.executable, "-S", "-m", "corral.executor.zygote", str(theirs.fileno())],
                executable=sealed.exec_path(interpreter),
                pass_fds=[theirs.fileno(), interpreter],
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        finally:
            os.close(interpreter)
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return process, ours
