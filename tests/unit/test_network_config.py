"""corral's network section: validation naming the field, the annotation round trip, and the
lifecycle's use of it on the fake executor (recorded before made, removed on failure and destroy)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from corral import Config, Interface, Network, Process, Root, Route, Runtime
from corral.config import NETWORK_ANNOTATION
from corral.errors import ConfigError, ExecutorError
from tests.fakes import FakeExecutor
from tests.unit.test_config import minimal


def config(*interfaces: Interface, **changes: Any) -> Config:
    base = Config(process=Process(args=("sh",)), root=Root("/srv/rootfs"), network=Network(interfaces))
    return dataclasses.replace(base, **changes)


def where(*interfaces: Interface, **changes: Any) -> str:
    with pytest.raises(ConfigError) as info:
        config(*interfaces, **changes)
    return info.value.where


def test_a_full_section_is_valid_and_has_defaults() -> None:
    c = config(
        Interface(
            host_name="vethweb0",
            mtu=1400,
            mac="02:00:00:00:00:01",
            addresses=("192.0.2.2/24", "2001:db8::2/64"),
            routes=(Route("0.0.0.0/0", "192.0.2.1"), Route("198.51.100.0/24")),
            bridge="br0",
        ),
        Interface(type="loopback", addresses=("127.0.0.2/8",)),
    )
    assert c.network is not None
    assert [nic.name for nic in c.network.interfaces] == ["eth0", "lo"]
    assert [i for i, _ in c.network.veths] == [0]


@pytest.mark.parametrize(
    ("interface", "field"),
    [
        (Interface(addresses=("192.0.2.2/33",)), "network.interfaces[0].addresses[0]"),
        (Interface(addresses=("192.0.2.2",)), "network.interfaces[0].addresses[0]"),
        (Interface(addresses=("192.0.2.256/24",)), "network.interfaces[0].addresses[0]"),
        (Interface(addresses=("2001:db8::2/129",)), "network.interfaces[0].addresses[0]"),
        (Interface(addresses=("eth0",)), "network.interfaces[0].addresses[0]"),
        (Interface(host_name="x" * 16), "network.interfaces[0].hostName"),
        (Interface(host_name=""), "network.interfaces[0].hostName"),
        (Interface(host_name="a/b"), "network.interfaces[0].hostName"),
        (Interface(host_name="a b"), "network.interfaces[0].hostName"),
        (Interface(name="eth:0"), "network.interfaces[0].name"),
        (Interface(name="."), "network.interfaces[0].name"),
        (Interface(name="lo"), "network.interfaces[0].name"),
        (Interface(bridge="b" * 16), "network.interfaces[0].bridge"),
        (Interface(mtu=67), "network.interfaces[0].mtu"),
        (Interface(mtu=65536), "network.interfaces[0].mtu"),
        (Interface(mtu=1000, addresses=("2001:db8::2/64",)), "network.interfaces[0].mtu"),
        (Interface(mac="01:00:5e:00:00:01"), "network.interfaces[0].mac"),  # multicast
        (Interface(mac="00:00:00:00:00:00"), "network.interfaces[0].mac"),
        (Interface(mac="02:00:00:00:00"), "network.interfaces[0].mac"),
        (Interface(routes=(Route("192.0.2.1/24"),)), "network.interfaces[0].routes[0].destination"),
        (Interface(routes=(Route("default"),)), "network.interfaces[0].routes[0].destination"),
        (Interface(routes=(Route("0.0.0.0/0", "2001:db8::1"),)), "network.interfaces[0].routes[0].gateway"),
        (Interface(routes=(Route("0.0.0.0/0", "gateway"),)), "network.interfaces[0].routes[0].gateway"),
        (Interface(type="tap"), "network.interfaces[0].type"),
        (Interface(type="loopback", name="lo0"), "network.interfaces[0].name"),
        (Interface(type="loopback", host_name="x"), "network.interfaces[0].hostName"),
        (Interface(type="loopback", routes=(Route("0.0.0.0/0"),)), "network.interfaces[0].routes"),
    ],
)
def test_bad_input_is_a_config_error_naming_the_field(interface: Interface, field: str) -> None:
    assert where(interface) == field


def test_names_are_unique_on_both_sides() -> None:
    assert where(Interface(), Interface()) == "network.interfaces[1].name"
    assert where(Interface(host_name="v0"), Interface(name="eth1", host_name="v0")) == "network.interfaces[1].hostName"


def test_interfaces_need_the_containers_own_network_namespace() -> None:
    namespaces = tuple(ns for ns in config().namespaces if ns.type != "network")
    assert where(Interface(), namespaces=namespaces) == "network"
    assert config(namespaces=namespaces).network == Network()  # an empty section needs nothing


def test_too_many_interfaces() -> None:
    assert where(*(Interface(name=f"eth{i}") for i in range(33))) == "network.interfaces"


def test_the_section_is_an_annotation_in_json_and_round_trips() -> None:
    c = config(Interface(host_name="v0", mtu=1400, addresses=("192.0.2.2/24",), routes=(Route("0.0.0.0/0", "192.0.2.1"),)))
    data = c.to_dict()
    section = json.loads(data["annotations"][NETWORK_ANNOTATION])
    assert section == {
        "interfaces": [
            {
                "type": "veth",
                "name": "eth0",
                "hostName": "v0",
                "mtu": 1400,
                "addresses": ["192.0.2.2/24"],
                "routes": [{"destination": "0.0.0.0/0", "gateway": "192.0.2.1"}],
            }
        ]
    }
    again = Config.from_dict(data)
    assert again == c and dict(again.annotations) == {}
    assert Config.from_json(c.to_json()) == c


def test_a_bundles_annotation_is_read_and_checked() -> None:
    data = minimal()
    section = {"interfaces": [{"type": "veth", "addresses": ["192.0.2.2/24"], "bridge": "br0"}]}
    data["annotations"] = {NETWORK_ANNOTATION: json.dumps(section), "other": "kept"}
    data["linux"] = {"namespaces": [{"type": "mount"}, {"type": "network"}]}
    c = Config.from_dict(data)
    assert c.network == Network((Interface(addresses=("192.0.2.2/24",), bridge="br0"),))
    assert dict(c.annotations) == {"other": "kept"}
    for bad, field in [
        ("not json", "network"),
        (json.dumps({"interfaces": [{"adresses": []}]}), "network.interfaces[0].adresses"),
        (json.dumps({"interfaces": {}}), "network.interfaces"),
        (json.dumps({"interfaces": [{"routes": [{"gateway": "192.0.2.1"}]}]}), "network.interfaces[0].routes[0].destination"),
        (json.dumps({"interfaces": [{"addresses": ["192.0.2.2/99"]}]}), "network.interfaces[0].addresses[0]"),
    ]:
        data["annotations"] = {NETWORK_ANNOTATION: bad}
        with pytest.raises(ConfigError) as info:
            Config.from_dict(data)
        assert info.value.where == field, bad
    data["annotations"] = {NETWORK_ANNOTATION: {"interfaces": []}}
    with pytest.raises(ConfigError) as info:
        Config.from_dict(data)
    assert info.value.where == f'annotations["{NETWORK_ANNOTATION}"]'


def test_the_annotation_is_refused_in_python_where_network_is_meant() -> None:
    """Else to_dict would write it and from_dict read it back as `network`: no round trip."""
    assert where(annotations={NETWORK_ANNOTATION: "{}"}) == f'annotations["{NETWORK_ANNOTATION}"]'


# --------------------------------------------------------------------------- the lifecycle (fake executor)


def two_veths(tmp_path: Path) -> Config:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir(exist_ok=True)
    return Config(
        process=Process(args=("/bin/sleep", "1000")),
        root=Root(str(rootfs)),
        network=Network((Interface(host_name="v0", addresses=("192.0.2.2/24",)), Interface(name="eth1"))),
    )


def test_interfaces_are_recorded_with_the_plan_and_removed_by_destroy(runtime: Runtime, tmp_path: Path) -> None:
    fake: FakeExecutor = runtime.context.executor  # type: ignore[assignment]
    box = runtime.create("web", two_veths(tmp_path))
    names = [i.host_name for i in box.record.interfaces]
    assert names[0] == "v0" and names[1].startswith("cr") and len(names[1]) <= 15
    assert fake.kernel("web")["interfaces"] == names
    assert [(s.name, s.host_name) for s in box.stats().interfaces] == [("eth0", "v0"), ("eth1", names[1])]
    box.destroy(force=True)
    assert not fake.leaked("web")
    assert runtime.load("web").record.interfaces == box.record.interfaces  # the tombstone keeps them


def test_a_failure_half_way_removes_the_interfaces_made(runtime: Runtime, tmp_path: Path) -> None:
    fake: FakeExecutor = runtime.context.executor  # type: ignore[assignment]
    fake.fail_next("attach_network")
    with pytest.raises(ExecutorError):
        runtime.create("web", two_veths(tmp_path))
    assert runtime.load("web").state.value == "destroyed"
    assert not fake.leaked("web")


def test_cli_events_report_interfaces_as_libcontainer_names_them() -> None:
    from corral.cli.commands.inspect import _stats_data
    from corral.types import InterfaceStats, Stats

    data = _stats_data(Stats(interfaces=(InterfaceStats("eth0", "v0", 1, 2, 3, 4, 5, 6, 7, 8),)))
    assert data == {
        "network_interfaces": [
            {
                "name": "v0",
                "rx_bytes": 1, "rx_packets": 2, "rx_errors": 3, "rx_dropped": 4,
                "tx_bytes": 5, "tx_packets": 6, "tx_errors": 7, "tx_dropped": 8,
            }
        ]
    }
    assert "network_interfaces" not in _stats_data(Stats())
