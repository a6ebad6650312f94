"""SELinux labels and AppArmor profiles: ignored where the LSM is off, refused where it is on.

runtime-spec leaves a label to the LSM that enforces it; where that LSM is not
enabled, a label means nothing and crun ignores it. corral does the same, with a
warning on the ``corral`` logger. Where the LSM is enabled, a label is a
security promise corral cannot keep yet (it does not write
``/proc/self/attr/...`` nor pass ``context=`` mount options): refused with the
reason, so that no container runs unconfined when it asked to be confined.
Host-dependent, so decided when the container is planned, not when its config is read.
"""

from __future__ import annotations

import os

from corral.config import Config, Process
from corral.errors import ConfigError


SELINUX_ENFORCE = "/sys/fs/selinux/enforce"
APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"
LSM_LIST = "/sys/kernel/security/lsm"


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _active_lsms(lsm_list: str) -> set[str] | None:
    text = _read(lsm_list)
    return None if text is None else set(text.split(","))


def selinux_enabled(enforce: str = SELINUX_ENFORCE, lsm_list: str = LSM_LIST) -> bool:
    """selinuxfs is there (its `enforce` file), or the kernel lists selinux as active."""
    return os.path.exists(enforce) or "selinux" in (_active_lsms(lsm_list) or ())


def apparmor_enabled(enabled: str = APPARMOR_ENABLED, lsm_list: str = LSM_LIST) -> bool:
    """The module says 'Y', or the kernel lists apparmor as active."""
    return _read(enabled) == "Y" or "apparmor" in (_active_lsms(lsm_list) or ())


def check_labels(config: Config, process: Process | None = None, *, selinux: bool | None = None,
                 apparmor: bool | None = None) -> list[str]:
    """The warnings for labels that are ignored; ConfigError for one the host would enforce.

    `process` is an exec'd one (default: the container's). `selinux`/`apparmor`
    override the host's state (tests).
    """
    process = process if process is not None else config.process
    selinux = selinux_enabled() if selinux is None else selinux
    apparmor = apparmor_enabled() if apparmor is None else apparmor
    warnings: list[str] = []
    for where, value, name, enabled in (
        ("linux.mountLabel", config.mount_label, "SELinux", selinux),
        ("process.selinuxLabel", process.selinux_label, "SELinux", selinux),
        ("process.apparmorProfile", process.apparmor_profile, "AppArmor", apparmor),
    ):
        if value is None:
            continue
        if enabled:
            what = "profiles" if name == "AppArmor" else "labels"
            raise ConfigError(
                where, f"{name} is enabled on this host and applying {name} {what} is not supported yet"
            )
        message = f"{where}: ignored ({name} is not enabled on this host)"
        import logging  # here, not at the top: a CLI create would pay ~2-4 ms for it

        logging.getLogger("corral").warning("%s", message)
        warnings.append(message)
    return warnings
