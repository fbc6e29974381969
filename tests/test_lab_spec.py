"""The lab spec's derived facts, read one way everywhere (no root needed)."""
from __future__ import annotations


def test_own_controller_is_read_one_way_by_every_verb():
    """A lab is under egovlab's own controller only with --sdn and no outside controller: the
    lifecycle (start it, wait for it), the suites (predict with it) and the prober (ARP answered,
    so every source probes at once) all read LabSpec.own_controller."""
    from egovlab.topology.state import LabSpec

    assert LabSpec(prefix="x").own_controller
    assert not LabSpec(prefix="x", sdn=False).own_controller
    assert not LabSpec(prefix="x", controller=("127.0.0.1", 6653)).own_controller
