"""Tests written against mutants of statemachine/ that survived the unit suite (tests/README.md,
"Run of 2026-12-03"); each names what it kills.

They run on the fake executor, without root.
"""

from __future__ import annotations
