"""Work inside an emulated host's network namespace from a thread of this process.

setns(2) moves only the calling thread, so a worker thread can enter a host's namespace, open
netlink (pyroute2 IPRoute) and ethtool sockets there, and come back: no helper process per
host (bringing up 260 hosts this way takes about a second).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import threading
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


INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM held back until the block ends, then acted on. pyroute2 runs each
    netlink call in an asyncio loop of its own; the KeyboardInterrupt an interrupt raises inside
    one left that loop closed ("Event loop is closed") for the cleanup that followed, or hung it
    (test_interrupts, on a loaded machine).

    Blocking them is not enough where other threads run (the controller relay's): the kernel
    hands the signal to a thread that does not block it, and CPython runs the Python handler on
    the main thread all the same, inside the call. So the block also swaps in a handler that only
    records the signal; at its end the handlers come back and the first signal recorded is raised
    again, for them to act on. The mask stays too: a process forked inside the block (the
    simulation's pool) inherits it, not the recording."""
    caught: list[int] = []
    main = threading.current_thread() is threading.main_thread()  # only it may set handlers
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum)) for sig in INTERRUPTS} \
        if main else {}
    held = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # runs the recorder for what was pending
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            signal.raise_signal(caught[0])


@contextlib.contextmanager
def signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored for the block: a removal a second Ctrl-C or `down` must not cut
    short (a session's teardown, a half-built lab's)."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in INTERRUPTS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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
