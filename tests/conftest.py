"""Shared test set-up: root-only tests skip with a reason when run without root."""

from __future__ import annotations

import os

import pytest

IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IS_ROOT:
        return
    skip = pytest.mark.skip(reason="needs root: real namespaces, cgroups and mounts (CI runs it as root)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
