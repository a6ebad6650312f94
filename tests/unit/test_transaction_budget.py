"""Issue 15, item 2: what each transition costs the store, counted from the statements SQLite runs
(benchmarks/transactions.py over the fake executor; run here so that it cannot rot).

The budget: at most one read transaction per call, and it never reads back a record this
process just wrote (a version check instead); two writes for a transition with kernel work
(the intent first, issue 10's durability, then the outcome), one for an observed `exited`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _transactions() -> ModuleType:
    spec = importlib.util.spec_from_file_location("corral_bench_transactions", BENCHMARKS / "transactions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_each_transition_makes_one_read_at_most_and_writes_its_intent_and_outcome() -> None:
    rows = dict(_transactions().measure(real=False))
    writes = {name: row[2] for name, row in rows.items()}
    assert writes == {
        "create": 2, "start": 2, ".state (running)": 0, "pause": 2, "resume": 2,
        "signal (SIGKILL)": 2, "wait (records exited)": 1, "destroy": 2,
    }
    assert {name: row[0] for name, row in rows.items() if row[0] > 1} == {}  # read transactions
    assert {name: row[1] for name, row in rows.items() if row[1]} == {}  # none re-reads its own write
    assert {name: row[3] for name, row in rows.items() if row[3]} == {"create": 2, "destroy": 2}  # fsync'd
