"""Tests written against mutants of store/ that survived the unit suite (tests/README.md, "Run of
2026-12-03"); each names what it kills.

They run without root, on the fake executor where a runtime is needed.
"""

from __future__ import annotations

from pathlib import Path

from corral import Runtime
from corral.config import Config
from corral.store import peek
from corral.store.readonly import BUSY_TIMEOUT_S

# -- peek.py -----------------------------------------------------------------------------------


def test_a_one_shot_read_waits_the_store_s_busy_timeout_for_a_writer(runtime: Runtime, config: Config) -> None:
    """Kills peek.connect__mutmut_14 (`timeout` left out: sqlite3's 5 s, not the store's 30 s), read
    from SQLite itself: a writer holding the lock 6 s would fail a one-shot `state` for nothing."""
    runtime.create("c", config)
    con = peek.connect(str(runtime.root))
    assert con is not None
    try:
        assert con.execute("PRAGMA busy_timeout").fetchone() == (int(BUSY_TIMEOUT_S * 1000),)
    finally:
        con.close()
