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
