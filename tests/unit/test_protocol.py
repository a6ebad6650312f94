"""The spawn protocol's messages and transport, without root: no container is started."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import socket
import typing
from collections.abc import Iterator

import pytest

from corral.config import Config, Process, Root
from corral.errors import InvalidStdio
from corral.executor import protocol
from corral.executor.interface import Stdio
from corral.executor.protocol import (
    Confirm,
    Console,
    CreateRequest,
    ExecForked,
    ExecRequest,
    ExecStarted,
    Exited,
    Failed,
    Forked,
    Go,
    InitForked,
    InitReady,
    Ping,
    Pong,
    Ready,
    Refused,
    Spawned,
    UsernsCreated,
)
from corral.executor.spawn import check_stdio

MIB = 1024 * 1024


def _config(**changes: typing.Any) -> Config:
    return dataclasses.replace(
        Config(process=Process(args=("/bin/true",)), root=Root("/tmp"), hostname="box"), **changes
    )


def _create(config: Config | None = None) -> CreateRequest:
    return CreateRequest(
        id="box",
        config=config or _config(),
        cgroup_procs=("/sys/fs/cgroup/pids/corral/box/cgroup.procs",),
        cgroup_paths={"pids": "/sys/fs/cgroup/pids/corral/box"},
        fifo="/run/corral/box/exec.fifo",
        exit_file="/run/corral/box/init.exit",
        join=(("network", "/proc/1/ns/net"),),
        new=("user", "mount", "pid"),
        uid_map="0 100000 65536\n",
        gid_map="0 100000 65536\n",
    )


EXAMPLES: list[protocol.Message] = [
    _create(),
    ExecRequest("box", 42, 123456, ("mount", "pid"), ("/sys/fs/cgroup/pids/x/cgroup.procs",),
                Process(args=("/bin/sh", "-c", "exit 3"), env=("PATH=/bin",), cwd="/tmp")),
    Ping(),
    Pong(7),
    Forked(8),
    Refused("fork: out of memory"),
    Go(),
    UsernsCreated(9),
    InitForked(10),
    InitReady(),
    Console("/dev/pts/0"),
    ExecForked(11),
    Failed("setting up the rootfs", "mount /proc: permission denied"),
    Spawned(12),
    Ready(13),
    ExecStarted(14, 99887766),
    ExecStarted(15, None),
    Exited(137, 9),
    Exited(None, None),
    Confirm(),
    protocol.HooksDue(4242),
    protocol.HookRan("createRuntime", "/usr/bin/hook", 0, None, False, 0.125, None),
    protocol.HookRan("startContainer", "/hook", None, 9, True, 1.0, "killed"),
]


def test_the_examples_cover_every_message_type() -> None:
    assert {type(m) for m in EXAMPLES} == set(typing.get_args(protocol.Message))


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_encode_and_decode(message: protocol.Message) -> None:
    decoded = protocol.decode(protocol.encode(message), allow_pickle=True)
    assert type(decoded) is type(message) and decoded == message  # named tuples' == ignores the type


@pytest.fixture
def sockets() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = protocol.pair()
    yield a, b
    a.close()
    b.close()


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips_through_a_socket(
    message: protocol.Message, sockets: tuple[socket.socket, socket.socket]
) -> None:
    a, b = sockets
    protocol.send(a, message)
    received, fds = protocol.recv_request(b)
    assert type(received) is type(message) and received == message and fds == []


def test_a_request_brings_its_file_descriptors(sockets: tuple[socket.socket, socket.socket]) -> None:
    a, b = sockets
    r, w = os.pipe()
    try:
        protocol.send(a, _create(), [r, w])
        received, fds = protocol.recv_request(b)
    finally:
        os.close(r)
        os.close(w)
    assert received == _create() and len(fds) == 2
    os.write(fds[1], b"x")
    assert os.read(fds[0], 1) == b"x"
    for fd in fds:
        os.close(fd)


def _huge_config() -> Config:
    annotations = {f"org.example.{i}": f"{i:06d}" + "v" * 1018 for i in range(4 * 1024 + 16)}  # distinct: no pickle memo
    return _config(annotations=annotations)


def test_a_4_mib_config_round_trips_through_a_sealed_memfd(sockets: tuple[socket.socket, socket.socket]) -> None:
    a, b = sockets
    request = _create(_huge_config())
    assert len(json.dumps(request.config.to_dict())) > 4 * MIB
    r, w = os.pipe()
    try:
        protocol.send(a, request, [r, w])
        protocol.send(a, request, [r, w])
    finally:
        os.close(r)
        os.close(w)
    # On the wire: a one-byte datagram, the caller's fds, and the memfd last, sealed.
    data, fds, flags, _ = socket.recv_fds(b, protocol.INLINE_MAX, protocol.MAX_FDS + 1)
    try:
        assert data == b"M" and len(fds) == 3 and not flags & socket.MSG_TRUNC
        seals = fcntl.fcntl(fds[-1], fcntl.F_GET_SEALS)
        assert seals & fcntl.F_SEAL_WRITE and seals & fcntl.F_SEAL_GROW and seals & fcntl.F_SEAL_SHRINK
        assert os.fstat(fds[-1]).st_size > 4 * MIB
    finally:
        for fd in fds:
            os.close(fd)
    received, fds = protocol.recv_request(b)
    assert received == request
    assert len(fds) == 2  # the memfd is read and closed; the caller's fds are handed on
    for fd in fds:
        os.close(fd)


def test_a_large_report_goes_through_a_memfd_too(sockets: tuple[socket.socket, socket.socket]) -> None:
    a, b = sockets
    failed = Failed("mounting", "x" * (2 * protocol.INLINE_MAX))
    protocol.send(a, failed)
    assert protocol.recv(b) == failed


def test_the_config_is_not_validated_again_when_it_is_received(monkeypatch: pytest.MonkeyPatch) -> None:
    request = _create()
    data = protocol.encode(request)
    exec_data = protocol.encode(EXAMPLES[1])

    def refuse(self: object) -> None:
        raise AssertionError("validated again")

    monkeypatch.setattr(Config, "__post_init__", refuse)
    monkeypatch.setattr(Process, "__post_init__", refuse)
    monkeypatch.setattr(Config, "validate", refuse)
    assert protocol.decode(data, allow_pickle=True) == request
    assert protocol.decode(exec_data, allow_pickle=True) == EXAMPLES[1]


def test_a_report_reader_refuses_a_pickle(sockets: tuple[socket.socket, socket.socket]) -> None:
    a, b = sockets
    protocol.send(a, _create())
    with pytest.raises(protocol.ProtocolError, match="only reports"):
        protocol.recv(b)


def test_a_report_reader_closes_file_descriptors_it_did_not_ask_for(sockets: tuple[socket.socket, socket.socket]) -> None:
    a, b = sockets
    r, w = os.pipe()
    protocol.send(a, Go(), [r])
    os.close(r)
    with pytest.raises(protocol.ProtocolError, match="file descriptors"):
        protocol.recv(b)
    with pytest.raises(BrokenPipeError):  # the only read end, passed over, was closed
        os.write(w, b"x")
    os.close(w)


def test_a_closed_peer_reads_as_none(sockets: tuple[socket.socket, socket.socket]) -> None:
    a, b = sockets
    a.close()
    assert protocol.recv(b) is None
    assert protocol.recv_request(b) == (None, [])


@pytest.mark.parametrize(
    "data",
    [
        b'J{"type":"Ready","pid":"1"}',
        b'J{"type":"Ready","pid":true}',
        b'J{"type":"Ready"}',
        b'J{"type":"Ready","pid":1,"extra":2}',
        b'J{"type":"Nope"}',
        b'J{"pid":1}',
        b"J[1]",
        b"Jnot json",
        b"X{}",
    ],
)
def test_a_malformed_report_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(data)


def test_encode_refuses_what_is_not_a_message() -> None:
    @dataclasses.dataclass(frozen=True)
    class Ready:  # same name, not the protocol's class
        pid: int

    with pytest.raises(protocol.ProtocolError):
        protocol.encode(Ready(1))  # type: ignore[arg-type]


def test_the_exit_file_round_trips_and_keeps_its_format(tmp_path: typing.Any) -> None:
    path = str(tmp_path / "init.exit")
    protocol.write_exit_file(path, Exited(137, 9))
    assert json.loads(open(path).read()) == {"status": 137, "signal": 9}
    assert protocol.read_exit_file(path) == Exited(137, 9)
    assert protocol.read_exit_file(str(tmp_path / "missing")) is None
    for text in ("", "[]", '{"status": "0"}', "{"):
        with open(path, "w") as f:
            f.write(text)
        assert protocol.read_exit_file(path) is None


def test_check_stdio_names_the_stream_and_the_fd() -> None:
    r, w = os.pipe()
    check_stdio(Stdio(stdin=r, stdout=w, stderr=None))
    os.close(r)
    os.close(w)
    with pytest.raises(InvalidStdio, match=rf"stdio\.stdout: fd {w} is not open") as caught:
        check_stdio(Stdio(stdout=w))
    assert (caught.value.stream, caught.value.fd, caught.value.where) == ("stdout", w, "stdio.stdout")
    # What is not a descriptor at all never makes a Stdio (tests/unit/test_config_bad_input.py).


def test_a_console_report_carries_exactly_one_descriptor(sockets: tuple[socket.socket, socket.socket]) -> None:
    """The pty master travels with its report (SCM_RIGHTS); no other report may carry one,
    and `recv` (the reader that expects none) closes any that came."""
    a, b = sockets
    r, w = os.pipe()
    try:
        protocol.send(a, Console("/dev/pts/3"), [r])
        message, fds = protocol.recv_report(b)
        assert message == Console("/dev/pts/3") and len(fds) == 1
        os.close(fds[0])
        protocol.send(a, Console("/dev/pts/3"))
        with pytest.raises(protocol.ProtocolError, match="Console came with 0"):
            protocol.recv_report(b)
        protocol.send(a, InitReady(), [r])
        with pytest.raises(protocol.ProtocolError, match="InitReady came with 1"):
            protocol.recv_report(b)
        protocol.send(a, Console("/dev/pts/3"), [r])
        with pytest.raises(protocol.ProtocolError):
            protocol.recv(b)
    finally:
        os.close(r)
        os.close(w)
