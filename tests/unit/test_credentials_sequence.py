"""The order of the credential calls, checked on a recording double (no root).

The order is what makes the drop irreversible and complete: the bounding set
is dropped while CAP_SETPCAP is still held; KEEPCAPS spans the uid change;
groups before gid before uid (after setresuid the process may no longer change
them); capset after the uid change (which clears the sets); ambient after
capset (it needs permitted and inheritable); no_new_privs last.
"""

from __future__ import annotations

import errno
import resource

import pytest

from corral.config import CAPABILITIES, Capabilities, Process, Rlimit, User
from corral.executor import credentials
from tests.unit.syscall_double import Call, RecordingSyscalls

LAST_CAP = 40
NET_BIND = CAPABILITIES["CAP_NET_BIND_SERVICE"]
CHOWN = CAPABILITIES["CAP_CHOWN"]


def make_process(**changes: object) -> Process:
    fields: dict[str, object] = {
        "args": ("sh",),
        "user": User(1000, 1001, (10, 20), 0o027),
        "capabilities": Capabilities(
            bounding=("CAP_CHOWN", "CAP_NET_BIND_SERVICE"),
            effective=("CAP_NET_BIND_SERVICE",),
            permitted=("CAP_CHOWN", "CAP_NET_BIND_SERVICE"),
            inheritable=("CAP_NET_BIND_SERVICE",),
            ambient=("CAP_NET_BIND_SERVICE", "CAP_CHOWN"),  # CHOWN is not inheritable: skipped
        ),
        "rlimits": (Rlimit("RLIMIT_NOFILE", 1024, 4096),),
        "no_new_privileges": True,
        "oom_score_adj": 100,
    }
    fields.update(changes)
    return Process(**fields)  # type: ignore[arg-type]


def make_kernel() -> RecordingSyscalls:
    return RecordingSyscalls(files={"/proc/sys/kernel/cap_last_cap": f"{LAST_CAP}\n"})


def calls(kernel: RecordingSyscalls) -> list[tuple[object, ...]]:
    return [(c.name, *c.args) for c in kernel.calls]


def drops(keep: set[int]) -> list[tuple[object, ...]]:
    return [("prctl", "PR_CAPBSET_DROP", cap) for cap in range(LAST_CAP + 1) if cap not in keep]


def test_the_whole_sequence() -> None:
    kernel = make_kernel()
    credentials.apply(make_process(), kernel=kernel)
    assert calls(kernel) == [
        ("setrlimit", resource.RLIMIT_NOFILE, (1024, 4096)),
        ("proc_write", "self/oom_score_adj", "100"),  # through the verified procfs (procfs.py)
        ("proc_read", "sys/kernel/cap_last_cap"),
        *drops({CHOWN, NET_BIND}),
        ("prctl", "PR_SET_KEEPCAPS", 1),
        ("setgroups", (10, 20)),
        ("setresgid", 1001, 1001, 1001),
        ("setresuid", 1000, 1000, 1000),
        ("prctl", "PR_SET_KEEPCAPS", 0),
        ("capset", 1 << NET_BIND, (1 << CHOWN) | (1 << NET_BIND), 1 << NET_BIND),
        ("prctl", "PR_CAP_AMBIENT", "CLEAR_ALL"),
        ("prctl", "PR_CAP_AMBIENT", "RAISE", NET_BIND),
        ("umask", "0o27"),
        ("prctl", "PR_SET_NO_NEW_PRIVS", 1),
    ]


def test_groups_then_gid_then_uid_then_capset() -> None:
    """The same order, said as the property it protects (a readable failure if it breaks)."""
    kernel = make_kernel()
    credentials.apply(make_process(), kernel=kernel)
    names = [c.name for c in kernel.calls]
    last_drop = max(i for i, c in enumerate(kernel.calls) if c.args[:1] == ("PR_CAPBSET_DROP",))
    keepcaps_on = kernel.calls.index(Call("prctl", ("PR_SET_KEEPCAPS", 1)))
    keepcaps_off = kernel.calls.index(Call("prctl", ("PR_SET_KEEPCAPS", 0)))
    assert last_drop < keepcaps_on < names.index("setgroups") < names.index("setresgid")
    assert names.index("setresgid") < names.index("setresuid") < keepcaps_off < names.index("capset")
    assert names.index("capset") < kernel.calls.index(Call("prctl", ("PR_CAP_AMBIENT", "RAISE", NET_BIND)))
    assert kernel.calls[-1] == Call("prctl", ("PR_SET_NO_NEW_PRIVS", 1))


def test_no_capabilities_means_none() -> None:
    kernel = make_kernel()
    credentials.apply(make_process(capabilities=None, no_new_privileges=False, rlimits=(), oom_score_adj=None), kernel=kernel)
    assert [c for c in calls(kernel) if c[0] == "prctl" and c[1] == "PR_CAPBSET_DROP"] == drops(set())
    assert ("capset", 0, 0, 0) in calls(kernel)
    assert ("prctl", "PR_CAP_AMBIENT", "CLEAR_ALL") in calls(kernel)
    assert not [c for c in calls(kernel) if c[1:3] == ("PR_CAP_AMBIENT", "RAISE")]
    assert ("prctl", "PR_SET_NO_NEW_PRIVS", 1) not in calls(kernel)


def test_an_unknown_capability_is_skipped_but_other_drop_errors_stop() -> None:
    kernel = make_kernel()
    kernel.fail_next("prctl", errno.EINVAL, lambda call: call.args == ("PR_CAPBSET_DROP", LAST_CAP))
    credentials.apply(make_process(), kernel=kernel)
    assert kernel.calls[-1] == Call("prctl", ("PR_SET_NO_NEW_PRIVS", 1))

    kernel = make_kernel()
    kernel.fail_next("prctl", errno.EPERM, lambda call: call.args == ("PR_CAPBSET_DROP", 5))
    with pytest.raises(PermissionError):
        credentials.apply(make_process(), kernel=kernel)
    assert kernel.calls[-1] == Call("prctl", ("PR_CAPBSET_DROP", 5))
    assert kernel.of("setresuid") == []


@pytest.mark.parametrize("failing", ["setgroups", "setresgid", "setresuid", "capset"])
def test_a_failed_identity_call_stops_before_anything_later(failing: str) -> None:
    kernel = make_kernel()
    kernel.fail_next(failing, errno.EPERM)
    with pytest.raises(OSError) as info:
        credentials.apply(make_process(), kernel=kernel)
    assert info.value.errno == errno.EPERM
    assert kernel.calls[-1].name == failing
    assert Call("prctl", ("PR_SET_NO_NEW_PRIVS", 1)) not in kernel.calls


def test_without_cap_last_cap_the_known_capabilities_are_dropped() -> None:
    kernel = RecordingSyscalls()  # /proc/sys/kernel/cap_last_cap is missing
    credentials.apply(make_process(), kernel=kernel)
    dropped = [c.args[1] for c in kernel.calls if c.args[:1] == ("PR_CAPBSET_DROP",)]
    assert max(dropped) == max(CAPABILITIES.values())
