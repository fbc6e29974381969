"""Work inside an emulated host's network namespace from a thread of this process.

setns(2) moves only the calling thread, so a worker thread can enter a host's namespace, open
netlink (pyroute2 IPRoute) and ethtool sockets there, and come back: no helper process per
host (bringing up 260 hosts this way takes about a second).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
from typing import Iterator

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def inside(pid: int | None = None, name: str | None = None) -> Iterator[None]:
    """Run the block (in this thread) inside the network namespace of process `pid`, or the
    named one (`ip netns add NAME`)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}" if name else f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


@contextlib.contextmanager
def iproute(space: str | None = None) -> Iterator:
    """A pyroute2 IPRoute in the root namespace, or in the named one (used inside the block)."""
    from pyroute2 import IPRoute

    with (inside(name=space) if space else contextlib.nullcontext()), IPRoute() as ipr:
        yield ipr


def locate(names: list[str], spaces: list[str | None]) -> dict[str | None, list[tuple[str, int]]]:
    """Where each interface is: namespace (None: root) -> [(name, index)]. KeyError names the
    first interface found in none of them."""
    found: dict[str | None, list[tuple[str, int]]] = {}
    missing = list(names)
    for space in spaces:
        if not missing:
            break
        with iproute(space) as ipr:
            for name in list(missing):
                idx = ipr.link_lookup(ifname=name)
                if idx:
                    found.setdefault(space, []).append((name, idx[0]))
                    missing.remove(name)
    if missing:
        raise KeyError(missing[0])
    return found


def command(pid: int) -> list[str]:
    """The prefix that runs a program inside the network namespace of process `pid`."""
    return ["nsenter", "-t", str(pid), "-n", "--"]
