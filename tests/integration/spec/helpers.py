"""What every spec-area test does, in the style of crun's suite: take the config
`runc spec` writes, change one thing, run it, and read the answer from inside.

The config is `corral.cli.commands.spec.default_spec()` as JSON, read back with
`Config.from_dict` (so the change goes through the parser, as a bundle's would),
with `process.terminal` false (these tests read stdout, not a pty).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corral import Config, Runtime
from corral.cli.commands.spec import default_spec
from corral.executor.interface import Stdio
from tests.integration.conftest import output_file

Change = Callable[[dict[str, Any]], None]


def spec_data(*args: str) -> dict[str, Any]:
    data = default_spec()
    data["process"]["terminal"] = False
    data["process"]["args"] = list(args)
    return data


def spec_config(bundle: Path, *args: str, change: Change | None = None) -> Config:
    data = spec_data(*args)
    if change is not None:
        change(data)
    return Config.from_dict(data, bundle=str(bundle))


def namespace_list(data: dict[str, Any]) -> list[dict[str, Any]]:
    namespaces: list[dict[str, Any]] = data["linux"]["namespaces"]
    return namespaces


def without_namespace(data: dict[str, Any], ns_type: str) -> None:
    data["linux"]["namespaces"] = [ns for ns in namespace_list(data) if ns["type"] != ns_type]


def run(runtime: Runtime, cid: str, config: Config, tmp_path: Path, timeout: float = 20) -> tuple[int | None, str]:
    """Create, start and wait for the container; its exit status and what it wrote."""
    fd, out = output_file(tmp_path, f"{cid}.out")
    try:
        box = runtime.create(cid, config, stdio=Stdio(stdout=fd, stderr=fd))
    finally:
        os.close(fd)
    box.start()
    status = box.wait(timeout)
    box.destroy(force=status is None)
    return status, out.read_text()


def run_ok(runtime: Runtime, cid: str, config: Config, tmp_path: Path) -> str:
    status, text = run(runtime, cid, config, tmp_path)
    assert status == 0, text
    return text


def sh(runtime: Runtime, bundle: Path, tmp_path: Path, cid: str, script: str, change: Change | None = None) -> str:
    """`sh -c script` in the runc-spec container with `change`; its output (it must exit 0)."""
    return run_ok(runtime, cid, spec_config(bundle, "sh", "-c", script, change=change), tmp_path)
