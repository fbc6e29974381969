"""The deployment plan, the drill's arithmetic and the address takeover rules (no lab needed)."""
from __future__ import annotations

import pytest

from egovlab.inventory import loader
from egovlab.inventory.errors import EgovlabError
from egovlab.sdn import compiler
from egovlab.services import drill, placement
from egovlab.topology.model import emulation_plan

from .conftest import SCENARIOS


@pytest.fixture(scope="module")
def plan(dongthap):
    return emulation_plan(dongthap, prefix="eg")


def test_each_dc_gets_one_server_per_tier_and_its_own_bastion(dongthap, plan):
    dep = placement.plan_deployment(dongthap, plan)
    assert dep.primary.servers == {"cong-dvc": "web-dvc-1", "mot-cua": "app-motcua-1", "qlvb": "app-qlvb-1",
                                   "lgsp": "lgsp-1", "csdl": "db-1"}
    assert dep.standby.servers == {"cong-dvc": "bk-web-dvc-1", "mot-cua": "bk-app-motcua-1",
                                   "qlvb": "bk-app-qlvb-1", "lgsp": "bk-lgsp-1", "csdl": "bk-db-1"}
    assert (dep.primary.bastion, dep.standby.bastion, dep.ngsp) == ("jump-1", "bk-jump-1", "ngsp-1")
    assert dep.replication == dongthap.spec.resilience.replication
    assert placement.plan_deployment(dongthap, plan, "sync").replication == "sync"
    assert dep.service_address == str(plan.hosts[plan.node("web-dvc-1")].ipv4.ip)


def test_the_inventory_reaches_servers_on_their_management_address_through_their_dcs_bastion(dongthap, plan):
    dep = placement.plan_deployment(dongthap, plan, "sync")
    inv = placement.inventory(dongthap, plan, dep, root="/srv/x", ssh_dir="/k", ca_dir="/ca", python="/py",
                              schema="/s.sql", bastion_pids={"jump-1": 111, "bk-jump-1": 222})
    hosts = inv["all"]["children"]["egov_targets"]["hosts"]
    assert set(hosts) == set(dep.hosts())
    ip = lambda label: str(plan.hosts[plan.node(label)].ipv4.ip)  # noqa: E731
    for label, v in hosts.items():
        h = plan.hosts[plan.node(label)]
        assert v["ansible_host"] == str(h.mgmt_ipv4.ip) != str(h.ipv4.ip)
        pid = 111 if v["egov_dc"] == "provincial-dc" else 222
        assert f"nsenter -t {pid} -n nc %h %p" in v["ansible_ssh_common_args"]
    # each DC's services talk to their own DC's next tier
    assert hosts["bk-app-motcua-1"]["egov_env"]["QLVB_URL"] == f"http://{ip('bk-app-qlvb-1')}:8080"
    assert f"host={ip('bk-db-1')} " in hosts["bk-app-qlvb-1"]["egov_env"]["DB"]
    assert hosts["web-dvc-1"]["egov_env"]["MOTCUA_URL"] == f"http://{ip('app-motcua-1')}:8443"
    assert hosts["lgsp-1"]["egov_env"]["NGSP_URL"] == f"https://{ip('ngsp-1')}:443"
    assert "password={{ egov_db_password }}" in hosts["app-motcua-1"]["egov_env"]["DB"]  # never in the file
    # the standby portal's certificate names the address it takes over
    assert dep.service_address in hosts["bk-web-dvc-1"]["egov_tls_names"]
    assert hosts["db-1"]["egov_replication_peers"] == [ip("bk-db-1")]
    assert hosts["db-1"]["egov_sync_standby"] == "bk_db_1"
    groups = inv["all"]["children"]
    assert list(groups["postgresql_primary"]["hosts"]) == ["db-1"]
    assert list(groups["postgresql_standby"]["hosts"]) == ["bk-db-1"]


def test_a_scenario_without_a_backup_dc_cannot_be_drilled():
    sc = loader.load(SCENARIOS / "mini.yml")
    with pytest.raises(EgovlabError, match="provincial-dc and a backup-dc"):
        placement.plan_deployment(sc, emulation_plan(sc))


def test_the_drill_measures_rto_from_the_first_acknowledgement_after_the_failure_and_counts_losses():
    fail = 100.0
    attempts = [[98.0, 98.1, 201, "a"], [99.0, 99.1, 201, "b"], [99.9, 99.95, 201, "c"],  # before
                [100.1, 101.1, 0, None], [101.2, 102.2, 502, None], [103.0, 103.4, 201, "d"],  # outage, back
                [104.0, 104.1, 201, "e"]]
    out = drill.analyse(attempts, fail, present={"a", "b", "d", "e"})
    assert out["rto_s"] == pytest.approx(3.4)
    assert out["failed_during_outage"] == 2 and out["acknowledged"] == 5 and out["attempts"] == 7
    assert out["lost"] == 1 and out["rpo_s"] == pytest.approx(0.05)  # 'c' acknowledged 50 ms before
    nothing = drill.analyse(attempts, fail, present={"a", "b", "c", "d", "e"})
    assert nothing["lost"] == 0 and nothing["rpo_s"] == 0.0
    never = drill.analyse(attempts[:5], fail, present={"a", "b", "c"})
    assert never["rto_s"] is None and never["failed_during_outage"] == 2


def test_only_a_standby_of_the_same_service_may_take_over_an_address(dongthap, plan):
    web, bk_web, bk_db = (plan.node(x) for x in ("web-dvc-1", "bk-web-dvc-1", "bk-db-1"))
    assert compiler.takeover_allowed(dongthap, plan, web, bk_web)
    assert not compiler.takeover_allowed(dongthap, plan, web, bk_db)  # another zone and service
    assert not compiler.takeover_allowed(dongthap, plan, plan.node("db-1"), plan.node("internet-h1"))
    assert not compiler.takeover_allowed(dongthap, plan, web, web)
    programs = compiler.compile_network(dongthap, plan, takeovers={web: bk_web})
    old, new = plan.hosts[web].mac, plan.hosts[bk_web].mac
    for prog in programs.values():
        rewrite = [r for r in prog.rules if r.table == compiler.TABLE_FORWARD and r.priority == 200]
        forward = {dict(r.match)["eth_dst"]: r.actions for r in prog.rules
                   if r.table == compiler.TABLE_FORWARD and r.priority == 100}
        if new not in forward:
            assert not rewrite  # the out-of-band switches
            continue
        assert [dict(r.match) for r in rewrite] == [{"eth_dst": old}]
        assert rewrite[0].actions == (("set_eth_dst", new), *forward[new])
