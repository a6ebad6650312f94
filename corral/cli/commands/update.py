"""update: change a container's resource limits, as `runc update` does.

Either a JSON file of linux.resources (`--resources FILE`, `-` for stdin) or
the flags, with runc's names and runc's sizes (`--memory 64m`: binary
multiples, `-1` unlimited); runc reads the flags only without a file, corral
refuses both at once rather than ignore some. What no Resources field holds
(real-time CPU, kernel memory, Intel RDT) is refused, never dropped.
"""

from __future__ import annotations

import re
import sys
from argparse import Namespace
from typing import Any

from corral.cli.context import Context
from corral.cli.parser import UsageError
from corral.errors import CorralError

#: Flags no linux.resources field of corral's holds: refused by name.
_UNSUPPORTED = ("cpu_rt_period", "cpu_rt_runtime", "kernel_memory", "kernel_memory_tcp", "l3_cache_schema",
                "mem_bw_schema")
#: docker/go-units RAMInBytes: a number, then an optional binary unit (k, m, g, t, p; "b", "ib" suffixes).
_SIZE = re.compile(r"(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(flag: str, text: str) -> int:
    """A size as runc takes it ("64m", "1.5g", "1024", "-1" for unlimited)."""
    if text.strip() == "-1":
        return -1
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise UsageError(f"update: --{flag} {text!r}: not a size (such as 64m, 1g or -1)")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])


def _integer(flag: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"update: --{flag} {text!r}: not an integer") from None


def resources_json_from_flags(args: Namespace) -> dict[str, Any]:
    """The flags as a LinuxResources JSON object (only those given)."""
    for name in _UNSUPPORTED:
        if getattr(args, name) is not None:
            raise CorralError(f"update: --{name.replace('_', '-')}: not supported by corral (no such resource)")
    out: dict[str, dict[str, Any]] = {}

    def put(section: str, key: str, value: Any) -> None:
        out.setdefault(section, {})[key] = value

    for flag, key in (("memory", "limit"), ("memory_reservation", "reservation"), ("memory_swap", "swap")):
        if getattr(args, flag) is not None:
            put("memory", key, ram_in_bytes(flag.replace("_", "-"), getattr(args, flag)))
    for flag, key in (("cpu_share", "shares"), ("cpu_quota", "quota"), ("cpu_period", "period")):
        if getattr(args, flag) is not None:
            put("cpu", key, _integer(flag.replace("_", "-"), getattr(args, flag)))
    for flag, key in (("cpuset_cpus", "cpus"), ("cpuset_mems", "mems")):
        if getattr(args, flag) is not None:
            put("cpu", key, getattr(args, flag))
    if args.pids_limit is not None:
        put("pids", "limit", _integer("pids-limit", args.pids_limit))
    if args.blkio_weight is not None:
        put("blockIO", "weight", _integer("blkio-weight", args.blkio_weight))
    return out


def _read_resources(source: str) -> object:
    import json

    try:
        text = sys.stdin.read() if source == "-" else open(source).read()
    except OSError as exc:
        raise CorralError(f"update: --resources {source}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CorralError(f"update: --resources {source}: not JSON: {exc}") from exc


def update(ctx: Context) -> int:
    from corral.config.update import resources_from_json

    args = ctx.args
    flags = resources_json_from_flags(args)
    if args.resources:
        if flags:
            raise UsageError("update: give --resources or the limit flags, not both")
        document = _read_resources(args.resources)
    else:
        document = flags
    resources = resources_from_json(document)
    box = ctx.load()
    if document:
        box.update(resources)
    return 0
