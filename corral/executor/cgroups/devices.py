"""The device cgroup rules a container gets: deny everything, then allow what it needs.

As runc does: whatever the config says, a container starts from "deny all"
(otherwise root in a container with CAP_MKNOD could make a node for the host's
disk and read it), then the config's own rules, then an allow rule for each
device the config asks to be created, then the devices every container needs
(null, zero, full, random, urandom, tty, ptmx, the pts range) and mknod of any
node (creating one is harmless; using it is what the rules decide).

Both layouts enforce this one list, in order (a later rule overrides an
earlier one): cgroup v1 writes it to the devices controller's files, cgroup v2
compiles it into an eBPF device program (bpf_devices.py).
"""

from __future__ import annotations

from corral.config import Config, DeviceRule, Resources
from corral.records import replace  # not dataclasses': create imports no `inspect`

DEFAULT_ALLOWED: tuple[DeviceRule, ...] = (
    DeviceRule(allow=True, type="c", access="m"),
    DeviceRule(allow=True, type="b", access="m"),
    DeviceRule(allow=True, type="c", major=1, minor=3, access="rwm"),  # null
    DeviceRule(allow=True, type="c", major=1, minor=5, access="rwm"),  # zero
    DeviceRule(allow=True, type="c", major=1, minor=7, access="rwm"),  # full
    DeviceRule(allow=True, type="c", major=1, minor=8, access="rwm"),  # random
    DeviceRule(allow=True, type="c", major=1, minor=9, access="rwm"),  # urandom
    DeviceRule(allow=True, type="c", major=5, minor=0, access="rwm"),  # tty
    DeviceRule(allow=True, type="c", major=5, minor=2, access="rwm"),  # ptmx
    DeviceRule(allow=True, type="c", major=136, access="rwm"),  # /dev/pts/*
)

DENY_ALL = DeviceRule(allow=False, access="rwm")


def with_device_rules(config: Config) -> Resources:
    """The config's resources with the full device rule list every container gets."""
    resources = config.resources or Resources()
    for_devices = tuple(
        DeviceRule(allow=True, type="c" if d.type == "u" else d.type, major=d.major, minor=d.minor, access="rwm")
        for d in config.devices
        if d.type in ("c", "b", "u")
    )
    rules = (DENY_ALL, *resources.devices, *for_devices, *DEFAULT_ALLOWED)
    return replace(resources, devices=rules)


def device_rule_line(rule: DeviceRule) -> str:
    """A DeviceRule as v1 devices.allow/deny want it: ``c 1:3 rwm``, ``a *:* rwm``."""
    major = "*" if rule.major is None or rule.major < 0 else str(rule.major)
    minor = "*" if rule.minor is None or rule.minor < 0 else str(rule.minor)
    return f"{rule.type or 'a'} {major}:{minor} {rule.access or 'rwm'}"
