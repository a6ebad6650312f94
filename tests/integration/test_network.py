"""Networking against the real kernel: veth pairs on a test bridge, addresses, routes, stats.

Only 192.0.2.0/24 (TEST-NET-1) is used, on the containers' own interfaces: no
default route, no NAT, no address on the host, so no traffic leaves the test's
namespaces. The bridge gets a name made for this test and is removed at the end;
every check of the host's interfaces goes through pyroute2, never corral's records.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from corral import Config, Interface, Network, Process, Route, Runtime, Stdio, faults
from corral.errors import ConfigError, CorralError
from tests.integration.conftest import leaks_of, make_config, output_file

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[2]


def host_links() -> set[str]:
    with IPRoute() as ipr:
        return {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}


def unique_name(prefix: str) -> str:
    """A host interface name no one else uses: prefix + 8 random hex digits (at most 15 bytes)."""
    return f"{prefix}{secrets.token_hex(4)}"


@pytest.fixture
def bridge() -> Iterator[str]:
    """A bridge of this test's own, up, without addresses; removed at the end."""
    name = unique_name("crtbr")
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="bridge")
        try:
            index = ipr.link_lookup(ifname=name)[0]
            ipr.link("set", index=index, state="up")
            yield name
        finally:
            ipr.link("del", index=ipr.link_lookup(ifname=name)[0])
    assert name not in host_links()


@pytest.fixture
def host_names() -> Iterator[list[str]]:
    """Host-side names for this test's veths; at the end none may be left (removed if one is)."""
    names = [unique_name("crtv") for _ in range(4)]
    yield names
    left = set(names) & host_links()
    with IPRoute() as ipr:
        for name in left:
            ipr.link("del", index=ipr.link_lookup(ifname=name)[0])
    assert not left, f"veths left on the host: {sorted(left)}"


@pytest.fixture
def held_netns() -> Iterator[str]:
    """A network namespace that outlives any container joining it (held by a process of this test).

    Where the container's namespace dies with its init, the kernel removes the veths with it;
    in this one only corral's tear-down can.
    """
    holder = subprocess.Popen(["unshare", "--net", "sleep", "1000"])
    try:
        path = f"/proc/{holder.pid}/ns/net"
        deadline = time.monotonic() + 10
        while os.readlink(path) == os.readlink("/proc/self/ns/net") and time.monotonic() < deadline:
            time.sleep(0.01)  # unshare has not unshared yet
        yield path
    finally:
        holder.kill()
        holder.wait()


def joining(config: Config, path: str) -> Config:
    """The config, joining the network namespace at `path` instead of making one."""
    return dataclasses.replace(
        config, namespaces=tuple(dataclasses.replace(ns, path=path) if ns.type == "network" else ns for ns in config.namespaces)
    )


def veth(host_name: str | None, address: str, **changes: object) -> Interface:
    return dataclasses.replace(Interface(host_name=host_name, addresses=(address,)), **changes)


def networked(bundle: Path, cid: str, *interfaces: Interface) -> Config:
    return make_config(bundle, cid, "/bin/sleep", "1000", network=Network(interfaces))


def exec_output(box, tmp_path: Path, name: str, *args: str) -> tuple[int | None, str]:  # type: ignore[no-untyped-def]
    fd, out = output_file(tmp_path, f"{name}.out")
    try:
        proc = box.exec(Process(args=args), stdio=Stdio(stdout=fd, stderr=fd))
    finally:
        os.close(fd)
    return proc.wait(30), out.read_text()


def test_two_containers_on_one_bridge_reach_each_other(
    bridge: str, host_names: list[str], runtime: Runtime, bundle: Path, tmp_path: Path
) -> None:
    a = runtime.create("net-a", networked(bundle, "net-a", veth(host_names[0], "192.0.2.11/24", bridge=bridge)))
    b = runtime.create("net-b", networked(bundle, "net-b", veth(host_names[1], "192.0.2.12/24", bridge=bridge)))
    a.start()
    b.start()
    status, out = exec_output(a, tmp_path, "ping", "/bin/ping", "-c", "1", "-W", "5", "192.0.2.12")
    assert status == 0, out
    assert "1 packets received" in out, out
    a.destroy(force=True)
    b.destroy(force=True)
    assert not set(host_names[:2]) & host_links()


def test_the_interfaces_inside_are_those_of_the_config(
    host_names: list[str], runtime: Runtime, bundle: Path, tmp_path: Path
) -> None:
    config = networked(
        bundle,
        "net-inside",
        Interface(
            name="net0",
            host_name=host_names[0],
            mtu=1400,
            mac="02:00:c0:00:02:21",
            addresses=("192.0.2.21/25", "2001:db8::21/64"),
            routes=(Route("198.51.100.0/24", "192.0.2.1"),),
        ),
        Interface(host_name=host_names[1], name="eth1", addresses=("192.0.2.130/25",)),
        Interface(type="loopback", addresses=("127.0.0.2/8",)),
    )
    box = runtime.create("net-inside", config)
    assert {host_names[0], host_names[1]} <= host_links()  # made by create, before start
    box.start()
    _, names = exec_output(box, tmp_path, "ls", "/bin/ls", "/sys/class/net")
    assert sorted(names.split()) == ["eth1", "lo", "net0"]
    _, mtu = exec_output(box, tmp_path, "mtu", "/bin/cat", "/sys/class/net/net0/mtu", "/sys/class/net/lo/flags")
    assert mtu.split() == ["1400", "0x9"]  # lo: IFF_UP | IFF_LOOPBACK
    _, mac = exec_output(box, tmp_path, "mac", "/bin/cat", "/sys/class/net/net0/address")
    assert mac.strip() == "02:00:c0:00:02:21"
    _, addresses = exec_output(box, tmp_path, "addr", "/bin/ip", "-o", "addr", "show")
    found = {(line.split()[1], line.split()[3]) for line in addresses.splitlines()}
    assert {("net0", "192.0.2.21/25"), ("net0", "2001:db8::21/64"), ("eth1", "192.0.2.130/25"), ("lo", "127.0.0.2/8")} <= found
    _, routes = exec_output(box, tmp_path, "route", "/bin/ip", "route", "show")
    assert "198.51.100.0/24 via 192.0.2.1 dev net0" in routes, routes
    assert "default" not in routes
    _, state = exec_output(box, tmp_path, "state", "/bin/cat", "/sys/class/net/net0/operstate", "/sys/class/net/eth1/operstate")
    assert state.split() == ["up", "up"]
    with IPRoute() as ipr:
        link = ipr.link("get", ifname=host_names[0])[0]
        assert link.get_attr("IFLA_MTU") == 1400
        assert link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_KIND") == "veth"
    box.destroy(force=True)
    assert not set(host_names) & host_links()


def test_destroy_removes_the_veths_of_a_namespace_that_lives_on(
    host_names: list[str], held_netns: str, runtime: Runtime, bundle: Path, tmp_path: Path
) -> None:
    config = joining(networked(bundle, "net-joined", veth(host_names[0], "192.0.2.71/24")), held_netns)
    box = runtime.create("net-joined", config)
    box.start()
    _, out = exec_output(box, tmp_path, "addr", "/bin/ip", "-o", "addr", "show", "eth0")
    assert "192.0.2.71/24" in out, out
    box.destroy(force=True)
    assert host_names[0] not in host_links()  # the namespace still holds its peer: corral removed it


def test_lo_is_up_without_a_network_section(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    box = runtime.create("net-lo", make_config(bundle, "net-lo", "/bin/sleep", "1000"))
    box.start()
    _, out = exec_output(box, tmp_path, "lo", "/bin/cat", "/sys/class/net/lo/flags")
    assert int(out.strip(), 16) & 0x1, out
    status, out = exec_output(box, tmp_path, "ping-lo", "/bin/ping", "-c", "1", "-W", "5", "127.0.0.1")
    assert status == 0, out
    assert box.stats().interfaces == ()


def test_stats_count_the_traffic(
    bridge: str, host_names: list[str], runtime: Runtime, bundle: Path, tmp_path: Path
) -> None:
    a = runtime.create("net-sa", networked(bundle, "net-sa", veth(host_names[0], "192.0.2.31/24", bridge=bridge)))
    b = runtime.create("net-sb", networked(bundle, "net-sb", veth(host_names[1], "192.0.2.32/24", bridge=bridge)))
    a.start()
    b.start()
    before = a.stats().interfaces
    assert [(s.name, s.host_name) for s in before] == [("eth0", host_names[0])]
    count, size = 3, 1000
    status, out = exec_output(a, tmp_path, "ping", "/bin/ping", "-c", str(count), "-s", str(size), "-W", "5", "192.0.2.32")
    assert status == 0, out
    after = a.stats().interfaces[0]
    sent = count * size  # payload only: the counters also hold the headers
    assert after.tx_bytes - before[0].tx_bytes >= sent
    assert after.rx_bytes - before[0].rx_bytes >= sent  # the echo replies
    assert after.tx_packets - before[0].tx_packets >= count
    assert after.rx_packets - before[0].rx_packets >= count
    assert after.tx_errors == after.rx_errors == 0
    # Seen from the other container too: it received what a sent.
    assert b.stats().interfaces[0].rx_bytes >= sent
    a.destroy(force=True)
    b.destroy(force=True)
    assert not set(host_names[:2]) & host_links()


def test_stats_are_seen_from_the_container(
    bridge: str, host_names: list[str], runtime: Runtime, bundle: Path, tmp_path: Path
) -> None:
    """One-way traffic: b ignores echo requests, so a only sends and b only receives (as libcontainer
    reports them: the container's rx is its host side's tx)."""
    quiet = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}  # no ND chatter
    a_config = networked(bundle, "net-oa", veth(host_names[0], "192.0.2.91/24", bridge=bridge))
    b_config = networked(bundle, "net-ob", veth(host_names[1], "192.0.2.92/24", bridge=bridge))
    a = runtime.create("net-oa", dataclasses.replace(a_config, sysctl=quiet))
    b = runtime.create("net-ob", dataclasses.replace(b_config, sysctl={**quiet, "net.ipv4.icmp_echo_ignore_all": "1"}))
    a.start()
    b.start()
    a_before, b_before = a.stats().interfaces[0], b.stats().interfaces[0]
    count, size = 5, 1400
    ping = ("/bin/ping", "-c", str(count), "-i", "0.2", "-s", str(size), "-W", "1", "192.0.2.92")
    status, out = exec_output(a, tmp_path, "ping", *ping)
    assert status != 0 and "0 packets received" in out, out  # b is silent
    a_after, b_after = a.stats().interfaces[0], b.stats().interfaces[0]
    sent = count * size
    assert a_after.tx_bytes - a_before.tx_bytes >= sent
    assert a_after.rx_bytes - a_before.rx_bytes < sent / 4  # an ARP exchange, not the echoes
    assert b_after.rx_bytes - b_before.rx_bytes >= sent
    assert b_after.tx_bytes - b_before.tx_bytes < sent / 4
    a.destroy(force=True)
    b.destroy(force=True)
    assert not set(host_names[:2]) & host_links()


def test_bad_input_is_refused_before_anything_exists(
    bridge: str, host_names: list[str], runtime: Runtime, bundle: Path
) -> None:
    before = host_links()
    with pytest.raises(ConfigError) as taken:
        runtime.create("net-bad1", networked(bundle, "net-bad1", veth(bridge, "192.0.2.41/24")))
    assert taken.value.where == "network.interfaces[0].hostName"
    with pytest.raises(ConfigError) as no_bridge:
        runtime.create(
            "net-bad2",
            networked(bundle, "net-bad2", veth(host_names[0], "192.0.2.42/24"), veth(host_names[1], "192.0.2.43/24", name="eth1", bridge=unique_name("crtno"))),
        )
    assert no_bridge.value.where == "network.interfaces[1].bridge"
    with pytest.raises(ConfigError) as not_a_bridge:
        runtime.create("net-bad3", networked(bundle, "net-bad3", veth(host_names[0], "192.0.2.44/24", bridge="lo")))
    assert not_a_bridge.value.where == "network.interfaces[0].bridge"
    with pytest.raises(ConfigError) as shared:
        config = make_config(bundle, "net-bad4", "/bin/sleep", "1000")
        dataclasses.replace(
            config,
            namespaces=tuple(ns for ns in config.namespaces if ns.type != "network"),
            network=Network((veth(host_names[0], "192.0.2.45/24"),)),
        )
    assert shared.value.where == "network"
    with pytest.raises(ConfigError) as host_ns:
        config = networked(bundle, "net-bad5", veth(host_names[0], "192.0.2.46/24"))
        namespaces = tuple(ns for ns in config.namespaces if ns.type != "network")
        host_net = dataclasses.replace(next(ns for ns in config.namespaces if ns.type == "network"), path=f"/proc/{os.getpid()}/ns/net")
        runtime.create("net-bad5", dataclasses.replace(config, namespaces=(*namespaces, host_net)))
    assert host_ns.value.where == "network"
    assert runtime.list(include_destroyed=True) == []  # refused before anything was recorded
    assert host_links() == before


def test_a_failure_half_way_removes_every_interface_made(
    host_names: list[str], runtime: Runtime, bundle: Path
) -> None:
    # Both veths are made, then the kernel refuses the second's route (its gateway is on no link).
    config = networked(
        bundle,
        "net-half",
        veth(host_names[0], "192.0.2.51/24"),
        veth(host_names[1], "192.0.2.52/24", name="eth1", routes=(Route("198.51.100.0/24", "203.0.113.1"),)),
    )
    with pytest.raises(CorralError, match="network set-up failed"):
        runtime.create("net-half", config)
    assert runtime.load("net-half").state.value == "destroyed"
    assert not set(host_names) & host_links()


def test_set_up_itself_removes_what_it_made_when_it_fails(held_netns: str, host_names: list[str], bundle: Path) -> None:
    """The executor's own guarantee, without the lifecycle's rollback, in a namespace that lives on."""
    from corral.executor.network import links

    config = networked(
        bundle,
        "net-setup",
        veth(host_names[0], "192.0.2.81/24"),
        veth(host_names[1], "192.0.2.82/24", name="eth1", routes=(Route("198.51.100.0/24", "203.0.113.1"),)),
    )
    planned = tuple(links.HostInterface(name, nic.name or "", "corral test/net-setup") for name, nic in zip(host_names, config.network.interfaces))  # type: ignore[union-attr]
    holder = int(held_netns.split("/")[2])
    with pytest.raises(CorralError, match=r"routes\[0\]"):
        links.set_up("net-setup", config, planned, holder)
    assert not set(host_names) & host_links()


def _controller(runtime: Runtime, cid: str, config_file: Path, fault: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != faults.ENV}
    if fault:
        env[faults.ENV] = fault
    args = [sys.executable, "-m", "tests.integration.fault_controller", str(runtime.root), str(runtime.run_root), cid, "create", str(config_file)]
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("netns", ["own", "joined"])
def test_a_controller_killed_after_the_first_interface_leaves_none_after_recovery(
    host_names: list[str], held_netns: str, runtime: Runtime, bundle: Path, tmp_path: Path, netns: str
) -> None:
    config = networked(
        bundle, "net-crash", veth(host_names[0], "192.0.2.61/24"), veth(host_names[1], "192.0.2.62/24", name="eth1")
    )
    if netns == "joined":  # the namespace lives on: the veth made before the crash stays until recovery
        config = joining(config, held_netns)
    config_file = tmp_path / "config.json"
    config_file.write_text(config.to_json())
    done = _controller(runtime, "net-crash", config_file, "create.interface")
    assert done.returncode == -signal.SIGKILL, done.stderr
    record = runtime.load("net-crash").record
    assert [i.host_name for i in record.interfaces] == host_names[:2]  # recorded before they were made
    if netns == "joined":
        assert host_names[0] in host_links() and host_names[1] not in host_links()
    recovered = Runtime(runtime.root, run_root=runtime.run_root)
    try:
        report = recovered.last_recovery
        assert report is not None and report.failed == []
        assert recovered.load("net-crash").state.value == "destroyed"
        assert not set(host_names) & host_links()
        assert leaks_of(recovered, tmp_path) == []
    finally:
        recovered.close()


def test_a_controller_without_a_network_section_never_imports_pyroute2(bundle: Path, tmp_path: Path) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text(make_config(bundle, "net-none", "/bin/true").to_json())
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from corral import Config, Runtime\n"
        f"rt = Runtime({str(tmp_path / 'root')!r}, run_root={str(tmp_path / 'run')!r})\n"
        f"box = rt.create('net-none', Config.from_json(Path({str(config_file)!r}).read_text()))\n"
        "box.start(); box.wait(10); box.stats(); box.destroy()\n"
        "print(sorted(m for m in sys.modules if m.startswith('pyroute2')))\n"
        "rt.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
