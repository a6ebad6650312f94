"""What `Container.update` asks for, laid over what the container has: runc update's merge.

`runc update` changes only what it is given: each setting present in the new
resources replaces the container's, each absent one stays. The merged
resources then go through the same validation as a config at create (by
building the new Config), so an update can never record what create would
refuse. Device rules are not updatable (runc ignores them; a changed rule list
would need the device program or files rewritten as a whole): asking for other
rules is an error. The container's own rules, unchanged, are no change: containerd's
CRI sends the whole of linux.resources from the spec, devices included, on every
update (UpdateContainerResources).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from corral.config.checks import fail
from corral.config.oci import parse_resources
from corral.config.spec import Config
from corral.config.types import HugepageLimit, Resources

_T = TypeVar("_T")


def _overlay(old: _T | None, new: _T | None) -> _T | None:
    """`new`'s set (non-None) fields over `old`'s."""
    if new is None:
        return old
    if old is None:
        return new
    changes: dict[str, Any] = {
        f.name: getattr(new, f.name) for f in dataclasses.fields(new) if getattr(new, f.name) is not None  # type: ignore[arg-type]
    }
    return dataclasses.replace(old, **changes)  # type: ignore[type-var]


def _hugepages(old: tuple[HugepageLimit, ...], new: tuple[HugepageLimit, ...]) -> tuple[HugepageLimit, ...]:
    """Per page size: the new limit replaces the old one; other sizes stay."""
    by_size = {h.page_size: h for h in old}
    by_size.update({h.page_size: h for h in new})
    return tuple(by_size.values())


def merge_resources(old: Resources | None, new: Resources) -> Resources:
    """`new` over `old`, as runc update merges (ConfigError for device rules other than the container's)."""
    base = old or Resources()
    if new.devices and new.devices != base.devices:
        fail("linux.resources.devices", "device rules cannot be updated; recreate the container to change them")
    return Resources(
        memory=_overlay(base.memory, new.memory),
        cpu=_overlay(base.cpu, new.cpu),
        pids=_overlay(base.pids, new.pids),
        block_io=_overlay(base.block_io, new.block_io),
        devices=base.devices,
        hugepage_limits=_hugepages(base.hugepage_limits, new.hugepage_limits),
    )


def updated_config(config: Config, new: Resources) -> Config:
    """The container's config with `new` merged in, validated as create validates (ConfigError)."""
    return dataclasses.replace(config, resources=merge_resources(config.resources, new))


def resources_from_json(value: object) -> Resources:
    """A LinuxResources JSON object (runc update --resources) as Resources; ConfigError naming the key."""
    return parse_resources(value, "linux.resources")
