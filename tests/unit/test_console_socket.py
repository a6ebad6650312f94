"""runc's --console-socket protocol, both ends, without root: a pty master crosses a unix socket."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from corral import ConsoleSocketError, receive_console, send_console


def _listener(tmp_path: Path) -> tuple[socket.socket, str]:
    path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    return listener, path


def test_the_master_arrives_and_talks_to_its_slave(tmp_path: Path) -> None:
    listener, path = _listener(tmp_path)
    master, slave = os.openpty()
    try:
        sender = threading.Thread(target=send_console, args=(path, master))
        sender.start()
        received = receive_console(listener, timeout=10)
        sender.join()
        os.close(master)  # the sender's copy: the receiver's is now the only one
        try:
            assert received.name == "/dev/ptmx"  # what runc sends with it
            assert received.fd != master and not os.get_inheritable(received.fd)
            os.write(received.fd, b"hi\n")
            assert os.read(slave, 16).strip() == b"hi"
        finally:
            os.close(received.fd)
    finally:
        os.close(slave)
        listener.close()


def test_anything_but_one_character_device_is_refused_and_closed(tmp_path: Path) -> None:
    listener, path = _listener(tmp_path)
    r, w = os.pipe()
    try:
        sender = threading.Thread(target=send_console, args=(path, r))
        sender.start()
        with pytest.raises(ConsoleSocketError, match="not a terminal"):
            receive_console(listener, timeout=10)
        sender.join()
        before = set(os.listdir("/proc/self/fd"))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(path)
            client.sendall(b"/dev/ptmx")  # no descriptor at all
            with pytest.raises(ConsoleSocketError, match="0 descriptors"):
                receive_console(listener, timeout=10)
        assert set(os.listdir("/proc/self/fd")) <= before  # nothing received was kept
    finally:
        os.close(r)
        os.close(w)
        listener.close()


def test_a_socket_nobody_listens_on_is_a_clear_error(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        with pytest.raises(ConsoleSocketError, match=r"--console-socket .*nowhere.sock: cannot send the terminal"):
            send_console(str(tmp_path / "nowhere.sock"), master)
    finally:
        os.close(master)
        os.close(slave)


def test_no_terminal_in_time_is_a_clear_error(tmp_path: Path) -> None:
    listener, _ = _listener(tmp_path)
    with listener, pytest.raises(ConsoleSocketError, match="within 0.1 s"):
        receive_console(listener, timeout=0.1)
