"""corral's network section: the interfaces a container gets in its new network namespace.

Not part of the OCI runtime spec (which leaves networking to hooks and CNI), so it
lives beside it: `Config.network` in Python, and in a bundle the annotation
``io.corral.network`` of config.json, whose value is this section as a JSON
string (an annotation, rather than a file beside config.json, so that it travels
with the config wherever the config goes: through containerd's annotations, into
the store, and back). Errors name ``network.interfaces[i].<key>`` either way.

Validated on construction of the Config, with the standard library only and
nothing imported until a config has a network section (`ipaddress` is loaded
then): a config without one pays nothing. What only the host can say (a name
already taken, a bridge that does not exist) is checked by the executor's plan,
before anything is created.
"""

from __future__ import annotations

import json
import re
from typing import Any

from corral.config.checks import check_list, fail, is_int, json_type
from corral.records import field, record

#: The annotation of a bundle's config.json that holds the network section (a JSON string).
NETWORK_ANNOTATION = "io.corral.network"

TYPES = ("veth", "loopback")
#: IFNAMSIZ - 1: the kernel refuses longer interface names.
MAX_NAME = 15
#: Enough for any container; keeps a derived host name (cr<10 hex>x<index>) within 15 characters.
MAX_INTERFACES = 32
#: ETH_MIN_MTU and the largest MTU a veth takes.
MIN_MTU, MAX_MTU = 68, 65535
#: Below it the kernel turns IPv6 off on the interface, so an IPv6 address would vanish.
MIN_IPV6_MTU = 1280

_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")


@record
class Route:
    """A route through the interface it is listed under: to `destination` (a network in
    CIDR form; ``0.0.0.0/0`` or ``::/0`` is the default route), via `gateway` if given."""

    destination: str
    gateway: str | None = None


@record
class Interface:
    """One interface of the container.

    ``veth``: a pair, one end (`host_name`) on the host, attached to `bridge` if
    given, the other (`name`, default ``eth0``) in the container. ``loopback``:
    the container's own ``lo`` (always up anyway), to give it more addresses or
    another MTU. `host_name` left out is derived from the container id when it is
    created (``cr`` + 10 hex digits + ``x`` + the interface's index).
    """

    type: str = "veth"
    name: str | None = None  # container side; None: eth0 (veth) or lo (loopback)
    host_name: str | None = None
    mtu: int | None = None
    mac: str | None = None
    addresses: tuple[str, ...] = ()  # "192.0.2.2/24", "2001:db8::2/64"
    routes: tuple[Route, ...] = ()
    bridge: str | None = None  # an existing bridge on the host

    def __post_init__(self) -> None:
        for name in ("addresses", "routes"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if self.name is None and self.type in TYPES:
            object.__setattr__(self, "name", "lo" if self.type == "loopback" else "eth0")


@record
class Network:
    """The container's interfaces, set up by `create` in its new network namespace."""

    interfaces: tuple[Interface, ...] = field(default=())

    def __post_init__(self) -> None:
        if isinstance(self.interfaces, list):
            object.__setattr__(self, "interfaces", tuple(self.interfaces))

    @property
    def veths(self) -> tuple[tuple[int, Interface], ...]:
        """The veth interfaces with their index in `interfaces` (what exists on the host)."""
        return tuple((i, nic) for i, nic in enumerate(self.interfaces) if nic.type == "veth")


# --------------------------------------------------------------------------- validation


def check_ifname(value: object, where: str) -> str:
    """What the kernel's dev_valid_name accepts: 1-15 bytes, no '/', ':' or blank, not . or .."""
    if not isinstance(value, str):
        fail(where, f"must be a string, not {json_type(value)}")
    if not value or len(value.encode()) > MAX_NAME:
        fail(where, f"{value!r}: an interface name has 1 to {MAX_NAME} bytes")
    if value in (".", "..") or any(c in value for c in "/:") or any(c.isspace() for c in value):
        fail(where, f"{value!r}: not a valid interface name (no '/', ':' or blanks, not '.' or '..')")
    return value


def validate_network(network: object, where: str = "network") -> None:
    """Raise ConfigError, naming the field, for the first problem of a network section."""
    import ipaddress  # only configs with a network section pay for it

    if not isinstance(network, Network):
        fail(where, f"must be a corral.config.Network, not {type(network).__name__}")
    interfaces = check_list(network.interfaces, f"{where}.interfaces", "interfaces")
    if len(interfaces) > MAX_INTERFACES:
        fail(f"{where}.interfaces", f"at most {MAX_INTERFACES} interfaces, not {len(interfaces)}")
    names: dict[str, str] = {}
    host_names: dict[str, str] = {}
    for i, nic in enumerate(interfaces):
        w = f"{where}.interfaces[{i}]"
        if not isinstance(nic, Interface):
            fail(w, f"must be a corral.config.Interface, not {type(nic).__name__}")
        if nic.type not in TYPES:
            fail(f"{w}.type", f"{nic.type!r}: must be one of {', '.join(TYPES)}")
        name = check_ifname(nic.name, f"{w}.name")
        if name in names:
            fail(f"{w}.name", f"{name!r} is already the name of {names[name]}")
        names[name] = w
        if nic.type == "loopback":
            if name != "lo":
                fail(f"{w}.name", f"a loopback interface is the container's 'lo', not {name!r}")
            for key in ("host_name", "mac", "bridge"):
                if getattr(nic, key) is not None:
                    fail(f"{w}.{_json_key(key)}", "a loopback interface has no host side, MAC or bridge")
        else:
            if name == "lo":
                fail(f"{w}.name", "'lo' is the container's loopback interface")
            if nic.host_name is not None:
                host = check_ifname(nic.host_name, f"{w}.hostName")
                if host in host_names:
                    fail(f"{w}.hostName", f"{host!r} is already the host name of {host_names[host]}")
                host_names[host] = w
            if nic.bridge is not None:
                check_ifname(nic.bridge, f"{w}.bridge")
            if nic.mac is not None:
                _check_mac(nic.mac, f"{w}.mac")
        if nic.mtu is not None and (not is_int(nic.mtu) or not MIN_MTU <= nic.mtu <= MAX_MTU):
            fail(f"{w}.mtu", f"{nic.mtu!r}: must be an integer from {MIN_MTU} to {MAX_MTU}")
        addresses = check_list(nic.addresses, f"{w}.addresses", "addresses")
        for j, address in enumerate(addresses):
            aw = f"{w}.addresses[{j}]"
            if not isinstance(address, str) or "/" not in address:
                fail(aw, f"{address!r}: must be an address with its prefix length (192.0.2.2/24, 2001:db8::2/64)")
            try:
                parsed = ipaddress.ip_interface(address)
            except ValueError as exc:
                fail(aw, f"{address!r}: not an IPv4 or IPv6 address with a valid prefix length ({exc})")
            if parsed.version == 6 and nic.mtu is not None and nic.mtu < MIN_IPV6_MTU:
                fail(f"{w}.mtu", f"{nic.mtu}: an interface with an IPv6 address needs an MTU of at least {MIN_IPV6_MTU}")
        routes = check_list(nic.routes, f"{w}.routes", "routes")
        if routes and nic.type == "loopback":
            fail(f"{w}.routes", "routes go through a veth interface")
        for j, route in enumerate(routes):
            _check_route(route, f"{w}.routes[{j}]", ipaddress)


def _check_mac(value: object, where: str) -> None:
    if not isinstance(value, str) or not _MAC.match(value):
        fail(where, f"{value!r}: must be six hexadecimal bytes separated by ':' (02:00:00:00:00:01)")
    first = int(value[:2], 16)
    if first & 1:
        fail(where, f"{value!r}: a multicast address (the first byte is odd) cannot name one interface")
    if int(value.replace(":", ""), 16) == 0:
        fail(where, f"{value!r}: the all-zero address is not an interface's")


def _check_route(route: object, where: str, ipaddress: Any) -> None:
    if not isinstance(route, Route):
        fail(where, f"must be a corral.config.Route, not {type(route).__name__}")
    if not isinstance(route.destination, str) or "/" not in route.destination:
        fail(f"{where}.destination", f"{route.destination!r}: must be a network in CIDR form (0.0.0.0/0 for the default route)")
    try:
        destination = ipaddress.ip_network(route.destination)
    except ValueError as exc:
        fail(f"{where}.destination", f"{route.destination!r}: not a network with a valid prefix ({exc})")
    if route.gateway is not None:
        try:
            gateway = ipaddress.ip_address(route.gateway)
        except ValueError:
            fail(f"{where}.gateway", f"{route.gateway!r}: not an IPv4 or IPv6 address")
        if gateway.version != destination.version:
            fail(f"{where}.gateway", f"{route.gateway!r}: not of the destination's family (IPv{destination.version})")


# --------------------------------------------------------------------------- JSON

_INTERFACE_KEYS = {
    "type": "type",
    "name": "name",
    "hostName": "host_name",
    "mtu": "mtu",
    "mac": "mac",
    "addresses": "addresses",
    "routes": "routes",
    "bridge": "bridge",
}
_ROUTE_KEYS = {"destination": "destination", "gateway": "gateway"}


def _json_key(attribute: str) -> str:
    return next(k for k, v in _INTERFACE_KEYS.items() if v == attribute)


def _members(value: object, where: str, keys: dict[str, str]) -> dict[str, Any]:
    """An object's members by attribute name; our own section, so an unknown key is refused."""
    if not isinstance(value, dict):
        fail(where, f"must be an object, not {json_type(value)}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key not in keys:
            fail(f"{where}.{key}", f"not a key of corral's network section (one of {', '.join(keys)})")
        if item is not None:
            out[keys[key]] = item
    return out


def parse_network(value: object, where: str = "network") -> Network:
    """The section from its JSON form (a dict); the values are checked by `validate_network`."""
    d = _members(value, where, {"interfaces": "interfaces"})
    interfaces = d.get("interfaces", [])
    if not isinstance(interfaces, list):
        fail(f"{where}.interfaces", f"must be a list, not {json_type(interfaces)}")
    parsed = []
    for i, item in enumerate(interfaces):
        w = f"{where}.interfaces[{i}]"
        members = _members(item, w, _INTERFACE_KEYS)
        for key in ("addresses", "routes"):
            if key in members and not isinstance(members[key], list):
                fail(f"{w}.{key}", f"must be a list, not {json_type(members[key])}")
        routes = []
        for j, r in enumerate(members.get("routes", [])):
            route = _members(r, f"{w}.routes[{j}]", _ROUTE_KEYS)
            if "destination" not in route:
                fail(f"{w}.routes[{j}].destination", "required")
            routes.append(Route(**route))
        members["routes"] = tuple(routes)
        members["addresses"] = tuple(members.get("addresses", ()))
        parsed.append(Interface(**members))
    return Network(tuple(parsed))


def parse_annotation(text: str) -> Network:
    """The section from the annotation's value (a JSON string)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        fail("network", f"the annotation {NETWORK_ANNOTATION} is not JSON: {exc}")
    return parse_network(value)


def network_to_dict(network: Network) -> dict[str, Any]:
    interfaces = []
    for nic in network.interfaces:
        out: dict[str, Any] = {}
        for key, attribute in _INTERFACE_KEYS.items():
            value = getattr(nic, attribute)
            if attribute == "routes":
                value = [{k: v for k, v in (("destination", r.destination), ("gateway", r.gateway)) if v is not None} for r in value]
            elif attribute == "addresses":
                value = list(value)
            if value not in (None, []):
                out[key] = value
        interfaces.append(out)
    return {"interfaces": interfaces}


def network_to_annotation(network: Network) -> str:
    return json.dumps(network_to_dict(network), sort_keys=True, separators=(",", ":"))
