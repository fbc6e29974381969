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
def inside(pid: int) -> Iterator[None]:
    """Run the block (in this thread) inside the network namespace of process `pid`."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


def command(pid: int) -> list[str]:
    """The prefix that runs a program inside the network namespace of process `pid`."""
    return ["nsenter", "-t", str(pid), "-n", "--"]
