"""The store read with `sqlite3` and nothing else, for a command-line call that only reads.

`state`, `ps` and `list` are answered in a process that lives for one call
(corral/cli/oneshot.py), where each imported module costs more than the read
itself: readonly.py's NamedTuple pulls in `typing`, its caller parses the
config with `json` (which pulls in `re`). This module imports `os` and
`sqlite3` only. It lets SQLite's JSON functions pick the few config fields a
state shows (`ociVersion`, `root.path`, `annotations`) and hands back plain
tuples; the caller formats them.

It answers only the plain case and says None (or False) for everything else,
so that the caller hands the whole call to the library's path, which decides
it: a store that is missing or not at `SCHEMA_REVISION`, a host restarted
since the last full recovery, any intent pending (even one whose holder is
alive: whose lock is held is left to readonly.py's check), a config whose
fields are not of the plain types. The queries are readonly.py's (`find`,
`live`, `cgroup_paths`); tests/unit/test_cli_oneshot.py checks that both read
the same records and that the revision is readonly.py's.
"""

from __future__ import annotations

import os
import sqlite3

from corral.store.sqlite_uri import file_uri

#: The Alembic revision whose schema the queries read (readonly.SCHEMA_REVISION; a unit test checks).
SCHEMA_REVISION = "0007_list_index"
DB_NAME = "corral.db"
BUSY_TIMEOUT_S = 30.0

#: The columns of one record, then the config fields a state shows, each with its JSON type
#: (NULL when absent) so that the caller can tell a plain value from one only the library formats.
_COLUMNS = (
    "key, id, state, pending_event, init_pid, init_start_time, boot_id, bundle, created_at, "
    "json_type(config), json_type(config, '$.ociVersion'), json_extract(config, '$.ociVersion'), "
    "json_type(config, '$.root.path'), json_extract(config, '$.root.path'), "
    "json_type(config, '$.annotations')"
)

TYPE_CHECKING = False  # not `from typing import TYPE_CHECKING`: typing is what this module avoids
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    #: One record as `_COLUMNS` lists it (a plain tuple: a NamedTuple would import `typing`).
    Row = tuple[Any, ...]


def connect(root: str) -> sqlite3.Connection | None:
    """A read-only connection to `<root>/corral.db` at `SCHEMA_REVISION`, or None (nothing created)."""
    path = os.path.join(root, DB_NAME)
    if not os.path.isfile(path):
        return None
    try:
        con = sqlite3.connect(file_uri(path, "ro"), uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error:
        return None
    try:
        revisions = con.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        con.close()
        return None
    if revisions != [(SCHEMA_REVISION,)]:
        con.close()
        return None
    return con


def settled(con: sqlite3.Connection, boot_id: str) -> bool:
    """Nothing for recovery to finish: the last full recovery ran in this boot and no intent is
    pending anywhere (two indexed reads, as readonly.ReadonlyStore.recovery_needed)."""
    row = con.execute("SELECT boot_id FROM recovered_boot WHERE slot = 1").fetchone()
    if row is None or row[0] != boot_id:
        return False
    return con.execute("SELECT 1 FROM containers WHERE pending_event IS NOT NULL LIMIT 1").fetchone() is None


def find(con: sqlite3.Connection, container_id: str) -> Row | None:
    """The live container with this id, else its latest tombstone (readonly.ReadonlyStore.find),
    with `live_id IS NOT NULL` as its last field."""
    return con.execute(  # type: ignore[no-any-return]
        f"SELECT {_COLUMNS}, live_id IS NOT NULL FROM containers WHERE id = ? "
        "ORDER BY live_id IS NULL, key DESC LIMIT 1",
        (container_id,),
    ).fetchone()


def live(con: sqlite3.Connection) -> list[Row]:
    """Every container not destroyed, oldest first (readonly.ReadonlyStore.live)."""
    return con.execute(f"SELECT {_COLUMNS}, 1 FROM containers WHERE live_id IS NOT NULL ORDER BY key").fetchall()


def annotations_of(con: sqlite3.Connection, key: int) -> list[tuple[str, Any, str]]:
    """The config's annotations of record `key`: (name, value, JSON type) in the order written,
    duplicates included (the caller keeps the last, as `json.loads` does)."""
    return con.execute(
        "SELECT each.key, each.value, each.type FROM containers, json_each(containers.config, '$.annotations') AS each "
        "WHERE containers.key = ?",
        (key,),
    ).fetchall()


def cgroup_paths(con: sqlite3.Connection, key: int) -> dict[str, str]:
    """The container's cgroup directory per hierarchy (readonly.ReadonlyStore.cgroup_paths)."""
    return dict(con.execute("SELECT hierarchy, path FROM cgroup_paths WHERE container_key = ?", (key,)).fetchall())
