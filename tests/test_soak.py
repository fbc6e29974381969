"""The soak's pure parts: which faults it draws (every kind in turn, the same ones for a seed), on
which targets, and the outage distribution it reports. The soak itself runs on the province in
tests/test_services.py (as root)."""
from __future__ import annotations

import pytest

from egovlab import soak
from egovlab.inventory import loader
from egovlab.sdn.resilience import Model, single
from egovlab.topology.model import emulation_plan
from egovlab.topology.state import LabError

from .conftest import DONGTHAP, SCENARIOS


@pytest.fixture(scope="module")
def province():
    sc = loader.load(DONGTHAP)
    plan = emulation_plan(sc)
    return sc, plan, Model(sc, plan)


def test_every_kind_has_targets_on_the_province_and_a_redundant_link_moves_flows_but_loses_none(province):
    sc, plan, model = province
    targets = soak.candidates(sc, plan, model, shards=24, controlled=True, deployed=True)
    assert set(targets) == set(soak.KINDS) and all(targets.values())
    for link in targets["link-cut"]:
        effect = model.effect(single(plan, "link", link))
        assert effect.moved and not effect.lost, link
    assert set(targets["internet-line-cut"]) == {l.name for l in sc.links if l.kind == "internet"}
    assert targets["dc-dark"] == ["provincial-dc"] and len(targets["ovs-restart"]) == 24
    assert not any(plan.switches[plan.node(s)].role == "oob" for s in targets["switch-down"])
    # a lab over one daemon, standalone, with nothing deployed: those kinds have no target
    bare = soak.candidates(sc, plan, model, shards=1, controlled=False, deployed=False)
    assert not bare["ovs-restart"] and not bare["controller-restart"] and not bare["dc-dark"]


def test_the_faults_cover_every_kind_in_turn_and_a_seed_gives_the_same_ones(province):
    sc, plan, model = province
    targets = soak.candidates(sc, plan, model, shards=24, controlled=True, deployed=True)
    drawn = soak.draw(targets, 20, seed=7)
    assert len(drawn) == 20 and drawn == soak.draw(targets, 20, seed=7) != soak.draw(targets, 20, seed=8)
    for start in range(0, 16, len(soak.KINDS)):  # each round of eight holds every kind once
        assert {f.kind for f in drawn[start:start + len(soak.KINDS)]} == set(soak.KINDS)
    assert all(f.target in targets[f.kind] for f in drawn)
    with pytest.raises(LabError, match="nothing a soak can fault"):
        soak.draw({k: [] for k in soak.KINDS}, 3, seed=1)


def test_a_small_lab_without_redundancy_still_soaks_what_it_has():
    sc = loader.load(SCENARIOS / "mini.yml")
    plan = emulation_plan(sc)
    targets = soak.candidates(sc, plan, Model(sc, plan), shards=1, controlled=True, deployed=False)
    kinds = {f.kind for f in soak.draw(targets, 10, seed=1)}
    assert kinds == {k for k, v in targets.items() if v} and "dc-dark" not in kinds


def test_the_outage_distribution_per_kind():
    def run(kind, outage, wait, problems=()):
        return soak.FaultReport(0, kind, "x", 0.0, outage, wait, 0.1, problems=list(problems))

    reports = [run("link-cut", o, 0.2) for o in (10.0, 30.0, 20.0, 0.0)] + [run("ovs-restart", 450.0, 0.9, ["x"])]
    summary = soak.summarize(reports)
    assert summary["link-cut"] == {"faults": 4, "failed": 0, "outage_ms": {"p50": 15.0, "p95": 30.0, "max": 30.0},
                                   "service_wait_s": {"p50": 0.2, "p95": 0.2, "max": 0.2}}
    assert summary["ovs-restart"]["failed"] == 1 and set(summary) == {"link-cut", "ovs-restart"}
    out = soak.report(reports, wall_s=12.3, seed=5)
    assert out["faults"] == 5 and out["failed"] == 1 and out["runs"][4]["passed"] is False


def test_a_stall_whose_datagrams_arrive_late_is_still_a_stall():
    from egovlab.topology.probes import silence_ms

    steady = [i * 0.01 for i in range(100)]
    assert silence_ms(steady, 0.01) == 0.0
    held = steady[:50] + [2.0 + i * 0.0001 for i in range(50)]  # queued through a cut, delivered at once after it
    assert silence_ms(held, 0.01) == 1500.0
    assert silence_ms([], 0.01) == 0.0


def test_the_service_wait_is_the_longest_over_the_families_that_were_answered_and_none_when_none_was():
    """(sent, answered, status, id) per attempt. A family with no acknowledgement after the
    fault (its citizens stopped first) does not hide the other's wait, nor crash the soak."""
    answered = [(9.0, 9.1, 201, "a"), (10.2, 10.3, 201, "b"), (10.4, 11.5, 201, "c")]
    silent = [(10.1, 10.6, 0, None), (10.3, 10.8, 0, None)]
    assert soak.service_wait({"ipv4": answered, "ipv6": silent}, began=10.0) == 1.2
    assert soak.service_wait({"ipv4": silent, "ipv6": silent}, began=10.0) is None
    assert soak.service_wait({"ipv4": answered, "ipv6": [(10.0, 10.5, 201, "d")]}, began=10.0) == 1.2
