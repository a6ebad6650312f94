"""When the monitor forks the init itself (no namespaces stage between): init.forks_init_directly.

The direct path is the fast one, and it is only right where the order of namespaces
does not matter: a user namespace must exist before the others (it owns them, and its
maps are written in between), and a PID namespace joined by path is the namespaces
stage's to enter. Integration tests run both paths (test_containers.py: the user
namespace and the joined network namespace; test_hooks.py: the monitor's later
children, the hooks, are back in the host's PID namespace).
"""

from __future__ import annotations

import pytest

from corral import Config, Process, Root
from corral.executor.init import forks_init_directly
from corral.executor.protocol import CreateRequest


def _request(new: tuple[str, ...], join: tuple[tuple[str, str], ...] = ()) -> CreateRequest:
    return CreateRequest(
        id="box",
        config=Config(process=Process(args=("/bin/true",)), root=Root("/")),
        cgroup_procs=(),
        cgroup_paths={},
        fifo="/run/corral/box/exec.fifo",
        exit_file="/run/corral/box/init.exit",
        join=join,
        new=new,
        uid_map="",
        gid_map="",
    )


@pytest.mark.parametrize(
    ("new", "join", "direct"),
    [
        (("mount", "pid", "network", "ipc", "uts", "cgroup"), (), True),  # runc spec's namespaces
        (("mount",), (), True),  # the host's PID namespace: no unshare, a plain fork
        (("mount", "pid"), (("network", "/proc/1/ns/net"),), True),
        (("user", "mount", "pid"), (), False),
        (("mount", "pid"), (("user", "/proc/1/ns/user"),), False),
        (("mount", "network"), (("pid", "/proc/1/ns/pid"),), False),
    ],
)
def test_the_monitor_forks_the_init_itself_unless_order_matters(
    new: tuple[str, ...], join: tuple[tuple[str, str], ...], direct: bool
) -> None:
    assert forks_init_directly(_request(new, join)) is direct

