"""The Repository's record reads (store/reader.py): kept while nothing commits, never stale after a commit."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from corral.store.repository import Repository


def _insert(repo: Repository, cid: str = "c"):  # type: ignore[no-untyped-def]
    return repo.insert(container_id=cid, state="creating", pending_event=None, config="{}", bundle=None,
                       run_dir=f"/r/{cid}", boot_id="b", cgroup_paths={"memory": f"/sys/fs/cgroup/memory/{cid}"},
                       journal_event="create")


def test_a_kept_record_is_used_until_anything_commits(tmp_path: Path) -> None:
    repo, other = Repository(tmp_path), Repository(tmp_path)
    try:
        r = _insert(repo)
        first = repo.get(r.key)
        assert repo.get(r.key) is first  # nothing committed: the kept record, no query
        other.update(r.key, r.version, state="created")  # another Repository (another process's view)
        assert repo.get(r.key).state == "created"
        kept = repo.get(r.key)
        repo.update(kept.key, kept.version, base=kept, state="running")  # this Repository's own writer
        assert repo.get(r.key).state == "running"
        con = sqlite3.connect(tmp_path / "corral.db")  # anyone else
        with con:
            con.execute("UPDATE containers SET last_error = 'x', version = version + 1 WHERE key = ?", (r.key,))
        con.close()
        assert repo.get(r.key).last_error == "x"
        assert repo.get(r.key).cgroup_paths == {"memory": "/sys/fs/cgroup/memory/c"}
    finally:
        repo.close()
        other.close()


def test_records_read_through_sqlite3_equal_what_the_writer_returns(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    try:
        r = _insert(repo)
        written = repo.update(r.key, r.version, base=r, state="stopped", exit_status=3, oom_killed=True)
        assert repo.get(r.key) == written
        assert repo.find("c") == written and repo.all() == [written]
        destroyed = repo.update(written.key, written.version, base=written, state="destroyed")
        assert repo.all() == [] and repo.all(include_destroyed=True) == [destroyed] == [repo.find("c")]
    finally:
        repo.close()


def test_each_thread_reads_on_its_own_connection(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    try:
        r = _insert(repo)
        seen: list[str] = []
        thread = threading.Thread(target=lambda: seen.append(repo.get(r.key).state))
        thread.start()
        thread.join()
        assert seen == ["creating"]
    finally:
        repo.close()


def _row_reads(monkeypatch, repo: Repository) -> list[str]:  # type: ignore[no-untyped-def]
    """The WHERE of every full record read (row and paths) this Repository's reader makes."""
    from corral.store.reader import RecordReader

    reads: list[str] = []
    real = RecordReader._select

    def spy(self, local, version, where, *args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(where)
        return real(self, local, version, where, *args, **kwargs)

    monkeypatch.setattr(RecordReader, "_select", spy)
    return reads


def test_what_this_process_wrote_is_checked_by_its_version_not_read_again(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    repo = Repository(tmp_path)
    try:
        reads = _row_reads(monkeypatch, repo)
        r = _insert(repo)
        assert repo.get(r.key) is r  # the inserted record, its stamp checked
        written = repo.update(r.key, r.version, base=r, state="created", init_pid=7)
        assert repo.get(r.key) is written
        assert reads == []
        fresh = Repository(tmp_path)
        try:
            assert fresh.get(r.key) == written  # what a reader that never wrote reads
        finally:
            fresh.close()
    finally:
        repo.close()


def test_a_kept_record_is_read_again_once_anyone_else_wrote_it(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    repo = Repository(tmp_path)
    try:
        r = _insert(repo)
        reads = _row_reads(monkeypatch, repo)
        con = sqlite3.connect(tmp_path / "corral.db")  # a monitor or the lean CLI: they bump the version
        with con:
            con.execute("UPDATE containers SET state = 'stopped', version = version + 1 WHERE key = ?", (r.key,))
        assert repo.get(r.key).state == "stopped"
        assert reads == ["key = ?"]
        # Another incarnation under the same key (a purged tombstone's rowid reused) with the
        # same id and version is not taken for the kept record: its created_at differs.
        kept = repo.get(r.key)
        with con:
            con.execute(
                "UPDATE containers SET state = 'running', created_at = '2000-01-01 00:00:00.000000' WHERE key = ?",
                (r.key,),
            )
        assert repo.get(r.key).state == "running" and kept.state == "stopped"
        con.close()
    finally:
        repo.close()
