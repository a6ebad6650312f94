"""A foreground `exec` (and `run`) catches the signals it passes on before its process exists (cli/forwarding.py).

A caller may signal `corral exec` as soon as the process shows a sign of life; the
handlers used to be set only once `box.exec` had returned, so a SIGTERM in between
killed the command line instead of reaching the process (test_cli_exec's flake).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from corral.cli.forwarding import Forwarding
from corral.cli.log import Log


def test_a_signal_before_the_process_exists_reaches_it_once_it_does() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        with Forwarding(Log()) as forwarding:
            os.kill(os.getpid(), signal.SIGTERM)  # held: there is no process yet
            assert child.poll() is None
            forwarding.to(child.pid)
            assert child.wait(timeout=10) == -signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # put back
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_signal_held_for_a_process_that_never_came_does_what_it_would_have_done() -> None:
    program = textwrap.dedent(
        """
        import os, signal
        from corral.cli.forwarding import Forwarding
        from corral.cli.log import Log
        try:
            with Forwarding(Log()):
                os.kill(os.getpid(), signal.SIGTERM)
                raise RuntimeError("exec failed")
        except RuntimeError:
            pass
        print("survived")
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGTERM and "survived" not in done.stdout, done
