"""What a controller uses besides the lifecycle (issue 13, items 3-5), over the fake executor:
run(), labels and states in list(), purge(), the log's format and reader, Stdio's streams,
and a docstring on every public method that says what it raises."""

from __future__ import annotations

import inspect
import os
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from corral import Config, Container, ExecProcess, LogsUnavailable, Runtime, State, Stdio
from corral.errors import ConfigError, InitError, InvalidStdio
from corral.executor import logwriter
from corral.executor import stdio as stdio_fds
from corral.statemachine import logs
from tests.unit.conftest import simple_config


def labelled(tmp_path: Path, **annotations: str) -> Config:
    config = simple_config(tmp_path, "/bin/sleep", "100")
    return Config(process=config.process, root=config.root, annotations=annotations)


# --------------------------------------------------------------------------- run, list


def test_run_creates_and_starts(runtime: Runtime, config: Config) -> None:
    box = runtime.run("web", config)
    assert box.state is State.RUNNING
    assert [e.event for e in box.history()] == ["create", "create", "start"]


def test_run_destroys_what_it_created_when_start_fails(runtime: Runtime, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise InitError("no such program")

    monkeypatch.setattr(runtime.context.executor, "start", refuse)
    with pytest.raises(InitError, match="no such program"):
        runtime.run("web", config)
    assert runtime.load("web").state is State.DESTROYED


def test_list_filters_by_labels_and_states_in_the_store(runtime: Runtime, tmp_path: Path) -> None:
    runtime.create("a", labelled(tmp_path, **{"app": "web", "tier.example.com/x": "1"}))
    runtime.run("b", labelled(tmp_path, app="web"))
    runtime.run("c", labelled(tmp_path, app="db"))
    runtime.create("d", simple_config(tmp_path)).destroy(force=True)
    ids = lambda boxes: [b.id for b in boxes]  # noqa: E731

    assert ids(runtime.list(labels={"app": "web"})) == ["a", "b"]
    assert ids(runtime.list(labels={"app": "web", "tier.example.com/x": "1"})) == ["a"]
    assert ids(runtime.list(labels={"tier.example.com/x": None})) == ["a"]  # None: any value
    assert ids(runtime.list(labels={"app": "nope"})) == []
    assert ids(runtime.list(states=[State.RUNNING])) == ["b", "c"]
    assert ids(runtime.list(states=["created", "running"], labels={"app": "web"})) == ["a", "b"]
    assert ids(runtime.list(states=["destroyed"])) == ["d"]  # asking for tombstones includes them
    assert ids(runtime.list()) == ["a", "b", "c"]
    with pytest.raises(ValueError):
        runtime.list(states=["runing"])


# --------------------------------------------------------------------------- purge


def _rows(root: Path) -> tuple[list[tuple[int, str, str]], list[int]]:
    with sqlite3.connect(root / "corral.db") as db:
        containers = db.execute("SELECT key, id, state FROM containers ORDER BY key").fetchall()
        journal = [k for (k,) in db.execute("SELECT DISTINCT container_key FROM journal ORDER BY container_key")]
    return containers, journal


def test_purge_removes_old_tombstones_and_their_journal_never_a_live_record(runtime: Runtime, tmp_path: Path) -> None:
    old = runtime.run("old", simple_config(tmp_path))
    old.destroy(force=True)
    runtime.create("old", simple_config(tmp_path))  # a live incarnation of the same id
    live = runtime.run("live", simple_config(tmp_path))
    stopped = runtime.run("stopped", simple_config(tmp_path))
    stopped.signal(9)
    stopped.wait()
    keys_before, journal_before = _rows(tmp_path / "root")
    assert len(keys_before) == 4 and len(journal_before) == 4

    assert runtime.purge(older_than=timedelta(hours=1)) == []  # too young
    assert _rows(tmp_path / "root") == (keys_before, journal_before)

    purged = runtime.purge(older_than=0)
    assert [(r.id, r.state) for r in purged] == [("old", "destroyed")]
    containers, journal = _rows(tmp_path / "root")
    assert [(i, s) for _, i, s in containers] == [("old", "created"), ("live", "running"), ("stopped", "stopped")]
    assert journal == [k for k, _, _ in containers]  # the tombstone's journal went with it
    assert all(cid != "old" or e.event == "create" for cid, e in runtime.journal())
    assert live.state is State.RUNNING and runtime.purge(older_than=0) == []


def test_purge_keeps_a_tombstone_whose_cgroup_is_still_there(runtime: Runtime, tmp_path: Path) -> None:
    box = runtime.run("busy", simple_config(tmp_path))
    box.destroy(force=True)
    record = box.record
    for path in record.cgroup_paths.values():  # as if the sweep had found it busy
        os.makedirs(path, exist_ok=True)
    assert runtime.purge(older_than=0) == []
    for path in record.cgroup_paths.values():
        os.rmdir(path)
    assert [r.key for r in runtime.purge(older_than=0)] == [record.key]


def test_purge_refuses_a_negative_age(runtime: Runtime) -> None:
    with pytest.raises(ConfigError, match="older_than"):
        runtime.purge(older_than=-1)


def test_the_repository_never_purges_a_live_record_whatever_it_is_given(runtime: Runtime, config: Config) -> None:
    box = runtime.run("web", config)
    assert runtime.context.store.purge([box.record.key]) == []
    assert box.state is State.RUNNING and box.history()


# --------------------------------------------------------------------------- the log


def test_records_are_cri_lines_split_at_the_record_size() -> None:
    now = 1_700_000_000_123_456_789
    assert logwriter.records(b"stdout", b"a\nbc\n", now) == (
        b"2023-11-14T22:13:20.123456789Z stdout F a\n2023-11-14T22:13:20.123456789Z stdout F bc\n"
    )
    assert logwriter.records(b"stderr", b"no newline", now) == b"2023-11-14T22:13:20.123456789Z stderr P no newline\n"
    long = logwriter.records(b"stdout", b"x" * (logwriter.MAX_RECORD + 5) + b"\n", now).splitlines()
    assert [r.split(b" ")[2] for r in long] == [b"P", b"F"]
    assert len(long[0].split(b" ", 3)[3]) == logwriter.MAX_RECORD


def test_the_log_rotates_and_never_exceeds_its_bound(tmp_path: Path) -> None:
    path = str(tmp_path / logwriter.LOG_NAME)
    log = logwriter.RotatingLog(path, 64 * 1024)
    for i in range(3000):
        log.write(logwriter.records(b"stdout", f"line {i}\n".encode() * 7, time.time_ns()))
        sizes = [os.path.getsize(p) for p in (path, path + ".1") if os.path.exists(p)]
        assert max(sizes) <= 32 * 1024 and sum(sizes) <= 64 * 1024
    log.close()
    lines = list(logs.read(str(tmp_path), "c"))
    assert lines[-1].text == "line 2999" and lines[-1].stream == "stdout"
    numbers = [int(line.text.split()[1]) for line in lines]
    assert numbers == sorted(numbers) and numbers[0] > 0  # the oldest went, the rest in order


def test_the_reader_joins_pieces_per_stream_and_applies_since_and_tail(tmp_path: Path) -> None:
    path = tmp_path / logwriter.LOG_NAME
    t0 = 1_700_000_000 * 10**9
    path.write_bytes(
        logwriter.records(b"stdout", b"hel", t0)
        + logwriter.records(b"stderr", b"oops\n", t0 + 1)
        + logwriter.records(b"stdout", b"lo\nlater\n", t0 + 2 * 10**9)
        + b"torn line without fields\n"
    )
    lines = list(logs.read(str(tmp_path), "c"))
    assert [(line.stream, line.data) for line in lines] == [("stderr", b"oops"), ("stdout", b"hello"), ("stdout", b"later")]
    assert lines[1].time == datetime.fromtimestamp(1_700_000_000, timezone.utc)  # the first piece's time
    assert [line.text for line in logs.read(str(tmp_path), "c", since=1_700_000_001)] == ["later"]
    since = datetime(2023, 11, 14, 22, 13, 21)  # naive: UTC
    assert [line.text for line in logs.read(str(tmp_path), "c", since=since)] == ["later"]
    assert [line.text for line in logs.read(str(tmp_path), "c", tail=2)] == ["hello", "later"]
    assert list(logs.read(str(tmp_path), "c", tail=0)) == []


def test_follow_reads_across_rotations_until_the_writer_is_done(tmp_path: Path) -> None:
    path = str(tmp_path / logwriter.LOG_NAME)
    log = logwriter.RotatingLog(path, 128 * 1024)
    log.write(logwriter.records(b"stdout", b"first\n", time.time_ns()))
    done = threading.Event()
    pad = "x" * 100

    def write() -> None:
        # About 300 KiB of records, so the 64 KiB file rotates four times or more; at about
        # 150 KiB/s a reader idle for its 0.1 s poll misses no file (only a reader more than a
        # whole file behind loses lines: the bound's price).
        for i in range(2000):
            log.write(logwriter.records(b"stdout", f"n {i} {pad}\n".encode(), time.time_ns()))
            if i % 10 == 0:
                time.sleep(0.01)
        log.close()
        done.set()

    writer = threading.Thread(target=write)
    followed = logs.read(str(tmp_path), "c", follow=True, running=lambda: not done.is_set())
    writer.start()
    texts = [line.text for line in followed]
    writer.join()
    assert os.path.exists(path + logwriter.ROTATED_SUFFIX)
    assert texts == ["first"] + [f"n {i} {pad}" for i in range(2000)]  # none lost, none twice, in order


def test_logs_of_a_container_without_a_log_say_how_to_get_one(runtime: Runtime, config: Config) -> None:
    box = runtime.create("quiet", config)
    with pytest.raises(LogsUnavailable, match=r"Stdio\.logged\(\)") as caught:
        box.logs()
    assert isinstance(caught.value, LookupError)


def test_exec_refuses_a_logged_stdio(runtime: Runtime, config: Config) -> None:
    box = runtime.run("web", config)
    with pytest.raises(ConfigError, match=r"^stdio\.log: only the container's own process is logged"):
        box.exec(config.process, stdio=Stdio.logged())


# --------------------------------------------------------------------------- Stdio's streams


def test_stdio_opens_paths_for_append_and_lends_file_objects(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("before\n")
    with open(tmp_path / "err", "w") as err:
        err.write("buffered by Python\n")
        opened = stdio_fds.open_stdio(Stdio(stdout=out, stderr=err))
        try:
            assert len(opened.fds) == 3 and len(opened.opened) == 2  # /dev/null for stdin, and the path
            assert opened.fds[2] == err.fileno()
            os.write(opened.fds[1], b"after\n")
        finally:
            opened.close()
        assert (tmp_path / "err").read_text() == "buffered by Python\n"  # flushed before it was lent
    assert out.read_text() == "before\nafter\n"


def test_stdio_refuses_an_unopenable_path_or_a_closed_file_before_anything(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^stdio\.stdout: cannot open '.*/missing/out'"):
        stdio_fds.check(Stdio(stdout=tmp_path / "missing" / "out"))
    with open(tmp_path / "f", "w") as f:
        stdio = Stdio(stderr=f)
    with pytest.raises(InvalidStdio, match=r"^stdio\.stderr: .* has no open file descriptor"):
        stdio_fds.check(stdio)


# --------------------------------------------------------------------------- docstrings


def _public_methods(cls: type) -> list[tuple[str, object]]:
    found = []
    for name, member in vars(cls).items():
        if name.startswith("_") and name not in ("__init__", "__exit__"):
            continue
        if "ǁ" in name:  # mutmut's copies of a method (xǁClassǁname__mutmut_N), under mutation testing only
            continue
        function = member.fget if isinstance(member, property) else member
        if inspect.isfunction(function):
            found.append((name, function))
    return found


@pytest.mark.parametrize("cls", [Runtime, Container, ExecProcess])
def test_every_public_method_says_what_it_raises(cls: type) -> None:
    missing = []
    for name, function in _public_methods(cls):
        doc = inspect.getdoc(function) or ""
        if name == "__init__":
            doc = inspect.getdoc(cls) or ""  # the class says what opening it raises
        if "Raises" not in doc and "raises nothing" not in doc.lower():
            missing.append(name)
    assert missing == [], f"{cls.__name__}: no 'Raises' in the docstring of {missing}"


def test_since_a_lines_own_time_never_excludes_that_line() -> None:
    """`logs(since=line.time)` keeps the line: the datetime is turned into the log's nanosecond
    stamp in integers (through a float of Unix seconds, ~256 ns coarse, it could come out later)."""
    from datetime import datetime, timezone

    from corral.statemachine.logs import since_key

    for micro in (0, 1, 123456, 999999, 480123, 777777):
        when = datetime(2026, 12, 1, 16, 18, 20, micro, tzinfo=timezone.utc)
        assert since_key(when) == f"2026-12-01T16:18:20.{micro:06d}000Z".encode()
        assert since_key(when.replace(tzinfo=None)) == since_key(when)
