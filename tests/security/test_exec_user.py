"""crun CVE-2026-30892: `exec` with a user parsed wrong runs the process as another user.

Every form of user an exec can be given must give the process exactly those
ids, or be refused: corral.Process(user=User(uid, gid, additional_gids)) through
the library, and the CLI's `--user UID[:GID]` (with `--additional-gids`) through
its parser. The ids are read on the host, from /proc/<pid>/status of the
exec'd program (real, effective, saved and filesystem ids, and the groups).

The edge that matters is 4294967295: it is `(uid_t)-1`, which setresuid and
setresgid read as "leave this id alone", so a process given it would keep the
root ids of the process that set them. It must be refused, never run.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import Container, Process, Runtime, User
from corral.cli.commands.exec import build_process
from corral.cli.parser import UsageError
from corral.errors import CorralError
from tests.integration.conftest import PATH_ENV, make_config
from tests.security.cli import CorralCli

pytestmark = pytest.mark.root

NO_ID = 2**32 - 1  # (uid_t)-1: "unchanged" to setresuid(2)


@pytest.fixture
def box(runtime: Runtime, bundle: Path) -> Iterator[Container]:
    container = runtime.create("users", make_config(bundle, "users", "/bin/sleep", "1000"))
    container.start()
    yield container
    container.destroy(force=True)


def _status_ids(pid: int, marker: str) -> dict[str, tuple[int, ...]]:
    """Uid, Gid (real, effective, saved, fs) and Groups of `pid`, once it runs the exec'd program."""
    deadline = time.monotonic() + 10
    while True:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if marker.encode() in cmdline:
            break
        assert time.monotonic() < deadline, f"pid {pid} never ran the program: {cmdline}"
        time.sleep(0.02)
    ids: dict[str, tuple[int, ...]] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid", "Groups"):
            ids[key] = tuple(int(v) for v in value.split())
    return ids


def _run_as(box: Container, user: User, marker: str) -> dict[str, tuple[int, ...]]:
    process = box.exec(Process(args=("/bin/sleep", marker), env=(PATH_ENV,), user=user))
    try:
        return _status_ids(process.pid, marker)
    finally:
        os.kill(process.pid, 9)
        process.wait(10)


def _expected(user: User) -> dict[str, tuple[int, ...]]:
    return {"Uid": (user.uid,) * 4, "Gid": (user.gid,) * 4, "Groups": tuple(sorted(set(user.additional_gids)))}


USERS = [
    User(0, 0),
    User(1000, 1000),
    User(1000, 2000),
    User(0, 1234, (5,)),
    User(1000, 1000, (3000, 4000, 1000)),
    User(65534, 65534),
    User(NO_ID - 1, NO_ID - 1, (NO_ID - 1,)),  # the largest valid id
]


@pytest.mark.parametrize("user", USERS, ids=[f"{u.uid}:{u.gid}:{','.join(map(str, u.additional_gids))}" for u in USERS])
def test_an_exec_runs_with_exactly_the_ids_asked_for(box: Container, user: User) -> None:
    ids = _run_as(box, user, f"{300 + USERS.index(user)}")
    ids["Groups"] = tuple(sorted(set(ids["Groups"])))
    assert ids == _expected(user)


@pytest.mark.parametrize(
    "user",
    [User(NO_ID, NO_ID), User(1000, NO_ID), User(NO_ID, 1000), User(1000, 1000, (NO_ID,)), User(-1, 0), User(2**32, 0)],
    ids=["both-minus-one", "gid-minus-one", "uid-minus-one", "group-minus-one", "negative", "too-large"],
)
def test_an_id_the_kernel_reads_as_unchanged_is_refused(box: Container, user: User) -> None:
    """Never run: such a process would keep the root ids of the process that exec'd it."""
    try:
        ids = _run_as(box, user, "399")
    except CorralError as exc:
        assert "uid" in str(exc).lower() or "gid" in str(exc).lower(), str(exc)
        return
    pytest.fail(f"{user} ran, with {ids}")


def _cli_process(base: Process, *flags: str) -> Process:
    args = argparse.Namespace(
        process="", args=["/bin/sleep", "398"], env=[], user="", additional_gids=[], cwd="", tty=False,
        no_new_privs=False, cap=[],
    )
    i = 0
    while i < len(flags):
        if flags[i] == "--user":
            args.user = flags[i + 1]
        else:
            args.additional_gids.append(int(flags[i + 1]))
        i += 2
    return build_process(args, base)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--user", "1000"), User(1000, 0)),  # the container's gid (0) is kept, as runc does
        (("--user", "1000:2000"), User(1000, 2000)),
        (("--user", "0:1234", "--additional-gids", "5"), User(0, 1234, (5,))),
        (("--user", "4294967294:4294967294"), User(NO_ID - 1, NO_ID - 1)),
    ],
)
def test_the_cli_s_user_runs_with_exactly_those_ids(box: Container, flags: tuple[str, ...], expected: User) -> None:
    process = _cli_process(box.config.process, *flags)
    assert (process.user.uid, process.user.gid, process.user.additional_gids) == (
        expected.uid, expected.gid, expected.additional_gids,
    )
    ids = _run_as(box, process.user, "397")
    ids["Groups"] = tuple(sorted(set(ids["Groups"])))
    assert ids == _expected(expected)


@pytest.mark.parametrize(
    "text",
    ["root", "nobody", "1000:users", "4294967295", "1000:4294967295", "-1", "1000:-1", "1_000", "+1000",
     " 1000", "1000 ", "\u0661\u0660\u0660\u0660", "0x10", "1000:1000:1000", "1000:", ":1000", ":"],
)
def test_the_cli_refuses_a_user_string_it_cannot_read_exactly(box: Container, text: str) -> None:
    """Names are not read from the rootfs: refused, as are the unchanged-id and non-ASCII spellings."""
    with pytest.raises((UsageError, CorralError)):  # the parser, or the config's validation
        _cli_process(box.config.process, "--user", text)


def test_exec_users_through_the_cli(corral_cli: CorralCli, bundle: Path, tmp_path: Path) -> None:
    """`corral exec -d --user ... --additional-gids ...` as a process, read on the host; the
    unchanged-id spelling refused by the command."""
    results: dict[str, object] = {}

    def while_running(_: int) -> None:
        for n, (flags, expected) in enumerate([
            (("--user", "1000:2000"), User(1000, 2000)),
            (("--user", "0:1234", "--additional-gids", "5"), User(0, 1234, (5,))),
        ]):
            marker, pid_file = f"{390 + n}", tmp_path / f"exec{n}.pid"
            done = corral_cli.exec("-d", "--pid-file", str(pid_file), *flags, "users", "/bin/sleep", marker)
            assert done.returncode == 0, done.stderr
            pid = int(pid_file.read_text())
            try:
                ids = _status_ids(pid, marker)
            finally:
                os.kill(pid, 9)
            ids["Groups"] = tuple(sorted(set(ids["Groups"])))
            results[" ".join(flags)] = (ids, _expected(expected))
        refused = corral_cli.exec("-d", "--user", "4294967295", "users", "/bin/sleep", "389")
        results["refused"] = (refused.returncode, refused.stderr)

    run = corral_cli.run("users", make_config(bundle, "users", "/bin/sleep", "1000"), bundle,
                         while_running=while_running, wait=0)
    assert run.created, run.error
    for flags, (ids, expected) in ((k, v) for k, v in results.items() if k != "refused"):
        assert ids == expected, flags
    code, stderr = results["refused"]  # type: ignore[misc]
    assert code != 0, stderr
