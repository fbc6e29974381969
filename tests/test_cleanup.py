"""Removing a lab's links by name in one batch: exactly the lab's, whatever else is on the machine.
Root only: it makes veth pairs in the root namespace (prefix `pq`, which no other test uses)."""
from __future__ import annotations

import os

import pytest
from pyroute2 import IPRoute

from egovlab.topology import cleanup

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make links")


@pytest.fixture
def links():
    ipr = IPRoute()
    made = [f"pqs{i}-eth1" for i in range(30)] + ["prs1-eth1", "pqx1"]
    try:
        for i in range(30):
            ipr.link("add", ifname=f"pqs{i}-eth1", kind="veth", peer=f"pqs{i}-eth2")
        ipr.link("add", ifname="prs1-eth1", kind="veth", peer="prs1-eth2")  # another lab's
        ipr.link("add", ifname="pqx1", kind="veth", peer="pqx2")  # not a lab name
        # already in the group this process would pick, as a teardown that died would leave it
        ipr.link("set", index=ipr.link_lookup(ifname="pqx1")[0], group=(1 << 30) + os.getpid())
        yield ipr
    finally:
        for name in made:
            if ipr.link_lookup(ifname=name):
                ipr.link("del", ifname=name)
        ipr.close()


def names(ipr: IPRoute) -> set[str]:
    return {link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}


def test_delete_links_takes_the_lab_s_and_nothing_else(links):
    found = cleanup.lab_links("pq")
    assert sorted(found) == sorted([f"pqs{i}-eth{e}" for i in range(30) for e in (1, 2)])
    deleted = cleanup.delete_links(found)
    assert set(deleted) <= set(found) and deleted
    left = names(links)
    assert not {n for n in left if n.startswith("pqs")}
    assert {"prs1-eth1", "prs1-eth2", "pqx1", "pqx2"} <= left
    assert cleanup.delete_links(["pqs1-eth1"]) == []  # gone already: nothing, no error
