"""Link state as the lab reports it (faults, the API, metrics, the controller's compare), read
from the kernel, as root: a veth pair of its own in the root namespace, no addresses."""
from __future__ import annotations


import pytest
from pyroute2 import IPRoute

from egovlab.topology import netstate

A, B = "egtst-a", "egtst-b"


@pytest.fixture
def veth():
    with IPRoute() as ipr:
        for name in (A, B):
            if ipr.link_lookup(ifname=name):
                ipr.link("del", ifname=name)
        ipr.link("add", ifname=A, kind="veth", peer=B)
        try:
            for name in (A, B):
                ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
            yield ipr
        finally:
            ipr.link("del", ifname=A)  # takes its peer with it


def set_state(ipr, name: str, state: str) -> None:
    ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state=state)


def test_a_cut_and_a_restore_read_at_once_on_both_ends(veth):
    """Read straight after the change, as a fault's caller does: from the carrier the kernel sets
    in the same call, not operstate, which its linkwatch worker catches up with later."""
    for _ in range(50):
        set_state(veth, B, "down")
        assert netstate.interfaces_down({A, B}) == {A, B}  # the peer of a downed veth loses carrier
        set_state(veth, B, "up")
        assert netstate.interfaces_down({A, B}) == set()
    links = netstate.root_links([A, B])
    assert links[A]["up"] and links[A]["enabled"] and links[B]["up"]


def test_a_missing_interface_counts_as_down(veth):
    assert netstate.interfaces_down({A, "egtst-none"}) == {"egtst-none"}
