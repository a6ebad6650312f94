"""A container's network, through netlink (pyroute2): links, addresses and routes
(links.py), and the host side's counters (stats.py).

Importing this package imports nothing heavy: pyroute2 (~100 ms) is imported by
the modules below, which the executor imports only for a container with a
network section. The loopback interface every new network namespace gets is
brought up by the init itself (init.loopback_up: one ioctl, no netlink).
"""
