"""The host-side veths, the container-side interfaces, their addresses and routes.

The host side is made from the controller, in the host's network namespace, with
its peer created directly in the container's namespace (by the init's PID) under
its final name, so the container's name never exists on the host even for a
moment. The container side is then configured through a netlink socket opened
inside the container's namespace by a short-lived thread that `setns`es into it:
the controller never forks (pyroute2's own netns support forks a child), and no
other thread changes namespace.

Ownership: each host-side interface is recorded (with an owner tag) before it is
made, and gets the tag as its alias right after; tear-down removes an interface
of a recorded name only if it is a veth whose alias is that tag, or has none yet
(a controller killed between the two steps). So tear-down never removes an
interface someone else made under that name meanwhile.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from corral.config import Config
from corral.config.network import Interface
from corral.errors import ConfigError, ExecutorError
from corral.executor import syscalls as sc
from corral.types import HostInterface

#: rtnetlink's scope of an address valid only on this host: the kernel requires it for 127.0.0.0/8.
RT_SCOPE_HOST = 254


def derived_host_name(store: str, container_id: str, index: int) -> str:
    """``cr`` + 10 hex digits of (store, id) + ``x<index>``: at most 15 characters, unique
    to the store and the container, so two stores creating the same id never collide."""
    digest = hashlib.sha256(f"{store}/{container_id}".encode()).hexdigest()[:10]
    return f"cr{digest}x{index}"


def owner_tag(store: str, container_id: str) -> str:
    return f"corral {store}/{container_id}"


@contextmanager
def _host() -> Iterator[IPRoute]:
    ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def _link(ipr: IPRoute, name: str) -> object | None:
    """The link named `name` in this socket's namespace, or None."""
    try:
        links = ipr.link("get", ifname=name)
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise
    return links[0] if links else None


def _kind(link: object) -> str | None:
    info = link.get_attr("IFLA_LINKINFO")  # type: ignore[attr-defined]
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None


def plan(container_id: str, config: Config, store: str) -> tuple[HostInterface, ...]:
    """The host-side interfaces `create` will make; ConfigError for what the host refuses.

    Checked here, before anything is recorded or made: a host name already in use,
    a bridge that does not exist (or is not a bridge), a network namespace joined by
    path that is the host's own.
    """
    assert config.network is not None
    ns = config.namespace("network")
    if ns is not None and ns.path is not None:
        try:
            theirs, ours = os.stat(ns.path), os.stat("/proc/self/ns/net")
        except OSError as exc:
            raise ConfigError("linux.namespaces", f"network namespace {ns.path}: {exc.strerror}") from exc
        if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
            raise ConfigError("network", f"{ns.path} is the host's network namespace: interfaces need the container's own")
    planned: list[HostInterface] = []
    with _host() as ipr:
        for i, nic in config.network.veths:
            where = f"network.interfaces[{i}]"
            host_name = nic.host_name or derived_host_name(store, container_id, i)
            if _link(ipr, host_name) is not None:
                derived = "" if nic.host_name else " (derived from the container id: a leftover? destroy it or set hostName)"
                raise ConfigError(f"{where}.hostName", f"{host_name!r} already exists on the host{derived}")
            if nic.bridge is not None:
                bridge = _link(ipr, nic.bridge)
                if bridge is None:
                    raise ConfigError(f"{where}.bridge", f"{nic.bridge!r}: no such interface on the host")
                if _kind(bridge) != "bridge":
                    raise ConfigError(f"{where}.bridge", f"{nic.bridge!r} is not a bridge (it is a {_kind(bridge) or 'device'})")
            assert nic.name is not None
            planned.append(HostInterface(host_name, nic.name, owner_tag(store, container_id)))
    return tuple(planned)


def set_up(
    container_id: str,
    config: Config,
    interfaces: Sequence[HostInterface],
    init_pid: int,
    after_each: Callable[[], None] = lambda: None,
) -> None:
    """Make and configure every interface; on failure remove those made so far, then raise."""
    assert config.network is not None
    made: list[HostInterface] = []
    try:
        with _host() as ipr:
            for (i, nic), host in zip(config.network.veths, interfaces, strict=True):
                _make_veth(ipr, container_id, i, nic, host, init_pid)
                made.append(host)
                _configure_host(ipr, i, nic, host)
                after_each()
        _inside(init_pid, lambda ipr: _configure_inside(ipr, config))
    except BaseException as exc:
        try:
            tear_down(container_id, made)
        except ExecutorError as cleanup:
            exc.add_note(f"removing the interfaces made so far also failed: {cleanup}")
        if isinstance(exc, NetlinkError):
            raise ExecutorError(f"container {container_id!r}: network set-up failed: {exc}", container_id=container_id) from exc
        if isinstance(exc, ExecutorError) and exc.container_id is None:
            raise ExecutorError(f"container {container_id!r}: {exc}", container_id=container_id) from exc
        raise


def _make_veth(ipr: IPRoute, container_id: str, i: int, nic: Interface, host: HostInterface, init_pid: int) -> None:
    try:
        ipr.link("add", ifname=host.host_name, kind="veth", peer={"ifname": nic.name, "net_ns_pid": init_pid})
    except NetlinkError as exc:
        if exc.code == errno.EEXIST and _link(ipr, host.host_name) is not None:  # made since plan() looked
            raise ConfigError(f"network.interfaces[{i}].hostName", f"{host.host_name!r} already exists on the host") from exc
        if exc.code == errno.EEXIST:
            raise ConfigError(
                f"network.interfaces[{i}].name", f"{nic.name!r} already exists in the container's network namespace"
            ) from exc
        raise ExecutorError(
            f"container {container_id!r}: cannot make veth {host.host_name!r} (network.interfaces[{i}]): {exc}",
            container_id=container_id,
        ) from exc


def _configure_host(ipr: IPRoute, i: int, nic: Interface, host: HostInterface) -> None:
    """The host side: the owner tag as its alias first, then MTU and bridge, then up."""
    index = ipr.link_lookup(ifname=host.host_name)[0]
    changes: dict[str, object] = {"ifalias": host.owner}
    if nic.mtu is not None:
        changes["mtu"] = nic.mtu
    if nic.bridge is not None:
        bridges = ipr.link_lookup(ifname=nic.bridge)
        if not bridges:
            raise ConfigError(f"network.interfaces[{i}].bridge", f"{nic.bridge!r}: no such interface on the host")
        changes["master"] = bridges[0]
    ipr.link("set", index=index, **changes)
    ipr.link("set", index=index, state="up")


def _configure_inside(ipr: IPRoute, config: Config) -> None:
    """In the container's namespace: MTU, MAC, addresses, links up, then routes."""
    assert config.network is not None
    for i, nic in enumerate(config.network.interfaces):
        where = f"network.interfaces[{i}]"
        found = ipr.link_lookup(ifname=nic.name)
        if not found:
            raise ExecutorError(f"{where}: interface {nic.name!r} is not in the container's network namespace")
        index = found[0]
        changes: dict[str, object] = {}
        if nic.mtu is not None:
            changes["mtu"] = nic.mtu
        if nic.mac is not None:
            changes["address"] = nic.mac.lower()
        if changes:
            _netlink(f"{where}: setting {', '.join(changes)} of {nic.name}", ipr.link, "set", index=index, **changes)
        for j, address in enumerate(nic.addresses):
            ip, prefix = address.split("/")
            extra = {"scope": RT_SCOPE_HOST} if ipaddress.ip_address(ip).is_loopback else {}  # the kernel insists
            _netlink(
                f"{where}.addresses[{j}]: adding {address}",
                ipr.addr,
                "add",
                index=index,
                address=ip,
                prefixlen=int(prefix),
                **extra,
            )
        _netlink(f"{where}: bringing {nic.name} up", ipr.link, "set", index=index, state="up")
    for i, nic in enumerate(config.network.interfaces):
        index = ipr.link_lookup(ifname=nic.name)[0]
        for j, route in enumerate(nic.routes):
            spec: dict[str, object] = {"dst": route.destination, "oif": index}
            if route.gateway is not None:
                spec["gateway"] = route.gateway
            where = f"network.interfaces[{i}].routes[{j}]"
            _netlink(f"{where}: adding the route to {route.destination}", ipr.route, "add", **spec)


def _netlink(what: str, call: Callable[..., object], *args: object, **kwargs: object) -> None:
    """One netlink request; the kernel's refusal is an ExecutorError saying what was asked."""
    try:
        call(*args, **kwargs)
    except NetlinkError as exc:
        raise ExecutorError(f"network set-up failed: {what}: {os.strerror(exc.code)} ({exc})") from exc


def _inside(init_pid: int, work: Callable[[IPRoute], None]) -> None:
    """Run `work` on a netlink socket in the init's network namespace, from a thread of its own.

    The thread `setns`es into the namespace and ends after the work: only it ever
    leaves the host's namespace, and it never comes back to run anything else.
    """
    failure: list[BaseException] = []

    def run() -> None:
        try:
            fd = os.open(f"/proc/{init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                sc.setns(fd, sc.CLONE_NEWNET)
            finally:
                os.close(fd)
            with _host() as ipr:
                work(ipr)
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="corral-netns")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def tear_down(container_id: str, interfaces: Sequence[HostInterface]) -> None:
    """Remove the host side of each interface (its container side goes with it).

    One already gone is fine, and so is one that is not ours (another owner's alias,
    or not a veth: someone else's under the recorded name); any other failure is an
    ExecutorError naming the interface.
    """
    if not interfaces:
        return
    with _host() as ipr:
        for host in interfaces:
            try:
                link = _link(ipr, host.host_name)
                if link is None or not _ours(link, host):
                    continue
                ipr.link("del", index=link["index"])  # type: ignore[index]
            except NetlinkError as exc:
                if exc.code == errno.ENODEV:
                    continue
                raise ExecutorError(
                    f"container {container_id!r}: cannot remove its interface {host.host_name!r}: {exc}",
                    container_id=container_id,
                ) from exc


def _ours(link: object, host: HostInterface) -> bool:
    alias = link.get_attr("IFLA_IFALIAS")  # type: ignore[attr-defined]
    return _kind(link) == "veth" and alias in (None, "", host.owner)


def present(interfaces: Sequence[HostInterface]) -> list[str]:
    """The recorded host-side interfaces that exist and are ours (for leftovers)."""
    if not interfaces:
        return []
    with _host() as ipr:
        return [h.host_name for h in interfaces if (link := _link(ipr, h.host_name)) is not None and _ours(link, h)]
