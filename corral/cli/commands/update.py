"""update: refused, clearly. The library has no API to change a created container's
resources yet; the flags are parsed (and a --resources file read and checked) so
that the error names what was asked for rather than failing on usage."""

from __future__ import annotations

import json
import sys

from corral.cli.commands.lifecycle import _load
from corral.cli.context import Context
from corral.errors import CorralError

_FLAGS = (
    "blkio_weight", "cpu_period", "cpu_quota", "cpu_share", "cpu_rt_period", "cpu_rt_runtime",
    "cpuset_cpus", "cpuset_mems", "kernel_memory", "kernel_memory_tcp", "memory",
    "memory_reservation", "memory_swap", "pids_limit", "l3_cache_schema", "mem_bw_schema",
)


def update(ctx: Context) -> int:
    args = ctx.args
    asked = [f"--{f.replace('_', '-')}" for f in _FLAGS if getattr(args, f) is not None]
    if args.resources:
        source = args.resources
        text = sys.stdin.read() if source == "-" else open(source).read()
        try:
            json.loads(text)
        except ValueError as exc:
            raise CorralError(f"update: --resources {source}: not JSON: {exc}") from exc
        asked.append(f"--resources {source}")
    box = _load(ctx)
    what = ", ".join(asked) if asked else "nothing to change"
    raise CorralError(
        f"update of container {box.id} ({what}): changing the resources of an existing container "
        "is not supported by corral yet; recreate the container with new linux.resources"
    )
