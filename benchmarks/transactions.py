"""The store's transactions per lifecycle transition, counted from what SQLite itself runs (issue 15, item 2).

    .venv/bin/python benchmarks/transactions.py           # the fake executor: no root needed
    sudo .venv/bin/python benchmarks/transactions.py --real   # real containers (busybox rootfs)

Every connection corral opens (SQLAlchemy's and the plain sqlite3 reader's)
gets a trace callback before the Runtime opens, so each statement SQLite
executes is seen, BEGIN and COMMIT included. Per transition it prints the
read and write transactions, the statements, and which writes were durable
(fsync'd: `synchronous = FULL`), from a warm Runtime (the second lifecycle of
the run, so that first-use work such as schema checks is not counted).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_TRACE: list[str] = []
#: Put in the trace by a `begin` listener on the engine when the transaction commits with an fsync.
DURABLE = "-- durable (synchronous = FULL)"


@contextmanager
def traced() -> Iterator[list[str]]:
    """Every sqlite3 connection opened inside the block traces its statements into the list yielded.

    SQLAlchemy's pysqlite dialect calls sqlite3.dbapi2.connect, the reader sqlite3.connect.
    """
    real = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        con = real(*args, **kwargs)
        con.set_trace_callback(_TRACE.append)
        return con

    sqlite3.connect = sqlite3.dbapi2.connect = connect  # type: ignore[assignment]
    try:
        yield _TRACE
    finally:
        sqlite3.connect = sqlite3.dbapi2.connect = real  # type: ignore[assignment]


from corral import Config, Process, Root, Runtime  # noqa: E402

#: (transition, (read transactions, of which full record reads, write transactions, durable ones, statements))
Row = tuple[str, tuple[int, int, int, int, int, list[str]]]


def count(statements: list[str]) -> tuple[int, int, int, int, int, list[str]]:
    """(read transactions, of which read a record's row and paths, write transactions, durable
    commits, statements, the statements); the other reads check a kept record's version."""
    reads = full = writes = durable = 0
    in_txn: list[str] | None = None
    for sql in statements:
        head = sql.strip().split(None, 1)[0].upper() if sql.strip() else ""
        if head == "BEGIN":
            in_txn = [sql]
        elif head in ("COMMIT", "ROLLBACK") and in_txn is not None:
            if any(s.strip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE") for s in in_txn[1:]):
                writes += 1
                durable += DURABLE in in_txn
            else:
                reads += 1
                full += any(s.startswith("SELECT * FROM containers") for s in in_txn)
            in_txn = None
        elif in_txn is not None:
            in_txn.append(sql)
    return reads, full, writes, durable, sum(s != DURABLE for s in statements), statements


def measure(real: bool) -> list[Row]:
    """The second of two lifecycles in one Runtime: per transition, its transactions (see `count`)."""
    work = Path(tempfile.mkdtemp(prefix="corral-txbench-"))
    boot = work / "boot_id"
    boot.write_text("txbench\n")
    if real:
        from tests.rootfs import build_busybox_rootfs

        rootfs = build_busybox_rootfs(work / "rootfs")
        executor = None
        boot_id_file: Path | str = "/proc/sys/kernel/random/boot_id"
    else:
        from tests.fakes import FakeExecutor

        rootfs = work / "rootfs"
        rootfs.mkdir()
        executor = FakeExecutor(work / "kernel")
        boot_id_file = boot
    cgroup_parent = f"/corral-txbench-{os.getpid()}"
    config = Config(
        process=Process(args=("sleep", "1000"), env=("PATH=/bin:/usr/bin",)),
        root=Root(str(rootfs), readonly=True),
        cgroups_path=f"{cgroup_parent}/c" if real else None,
    )
    with traced():
        return _lifecycles(work, executor, boot_id_file, config, cgroup_parent if real else None)


def _lifecycles(work: Path, executor: Any, boot_id_file: Path | str, config: Config, cgroup_parent: str | None) -> list[Row]:
    from sqlalchemy import event

    runtime = Runtime(work / "root", executor, run_root=work / "run", boot_id_file=boot_id_file)

    def on_begin(connection: object) -> None:
        if connection.get_execution_options().get("corral_durable"):  # type: ignore[attr-defined]
            _TRACE.append(DURABLE)

    event.listen(runtime.context.store.engine, "begin", on_begin)
    rows: list[Row] = []
    try:
        for round_ in range(2):
            cid = f"c{round_}"
            box = None
            steps: list[tuple[str, Callable[[], object]]] = []

            def create() -> None:
                nonlocal box
                box = runtime.create(cid, config)

            steps = [
                ("create", create),
                ("start", lambda: box.start()),
                (".state (running)", lambda: box.state),
                ("pause", lambda: box.pause()),
                ("resume", lambda: box.resume()),
                ("signal (SIGKILL)", lambda: box.signal(9)),
                ("wait (records exited)", lambda: box.wait(10)),
                ("destroy", lambda: box.destroy()),
            ]
            for name, step in steps:
                del _TRACE[:]
                step()
                if round_ == 1:
                    rows.append((name, count(list(_TRACE))))
    finally:
        for box in runtime.list():
            try:
                box.destroy(force=True)
            except Exception as exc:  # noqa: BLE001 - report and go on cleaning
                print(f"cleanup of {box.id}: {exc}", file=sys.stderr)
        runtime.close()
        if cgroup_parent is not None:
            from teardown import remove_cgroup_parent

            remove_cgroup_parent(cgroup_parent)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", action="store_true", help="real containers (root), not the fake executor")
    parser.add_argument("--show", action="store_true", help="print every statement")
    options = parser.parse_args(argv)
    rows = measure(options.real)
    print(f"executor: {'LinuxExecutor' if options.real else 'FakeExecutor'}; the second lifecycle of one Runtime\n")
    print("| transition | read transactions | of which full record reads | write transactions | of which durable | statements |")
    print("|---|---|---|---|---|---|")
    for name, (reads, full, writes, durable, statements, _) in rows:
        print(f"| {name} | {reads} | {full} | {writes} | {durable} | {statements} |")
    if options.show:
        for name, (*_, statements) in rows:
            print(f"\n## {name}")
            for sql in statements:
                print("   ", " ".join(sql.split())[:160])
    return 0


if __name__ == "__main__":
    sys.exit(main())
