"""Per-interface counters of a container's veths, read on the host side through netlink.

As libcontainer reports them: from the container's point of view, so the host
side's tx is the container's rx and the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyroute2 import IPRoute

from corral.types import HostInterface, InterfaceStats


def read(interfaces: Sequence[HostInterface]) -> tuple[InterfaceStats, ...]:
    """The counters of each recorded interface that still exists (a stopped container's are gone)."""
    if not interfaces:
        return ()
    wanted = {h.host_name: h for h in interfaces}
    found: dict[str, InterfaceStats] = {}
    ipr = IPRoute()
    try:
        for link in ipr.get_links():  # one dump: cheaper than one request per interface
            name = link.get_attr("IFLA_IFNAME")
            host = wanted.get(name)
            if host is None:
                continue
            s = link.get_attr("IFLA_STATS64") or link.get_attr("IFLA_STATS") or {}
            found[name] = InterfaceStats(
                name=host.name,
                host_name=name,
                rx_bytes=s.get("tx_bytes", 0),
                rx_packets=s.get("tx_packets", 0),
                rx_errors=s.get("tx_errors", 0),
                rx_dropped=s.get("tx_dropped", 0),
                tx_bytes=s.get("rx_bytes", 0),
                tx_packets=s.get("rx_packets", 0),
                tx_errors=s.get("rx_errors", 0),
                tx_dropped=s.get("rx_dropped", 0),
            )
    finally:
        ipr.close()
    return tuple(found[h.host_name] for h in interfaces if h.host_name in found)
