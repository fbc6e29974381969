"""The deployment plan, the drill's arithmetic and the address takeover rules (no lab needed)."""
from __future__ import annotations

import pytest

from egovlab.inventory import loader
from egovlab.inventory.errors import EgovlabError
from egovlab.inventory.policy import Intent
from egovlab.sdn import compiler, forwarding, verify
from egovlab.services import drill, placement
from egovlab.topology.model import emulation_plan

from .conftest import SCENARIOS
from .flows import lookup


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
    old, new = plan.hosts[web], plan.hosts[bk_web]
    plain = compiler.compile_network(dongthap, plan)
    for prog in programs.values():
        rewrite = [r for r in prog.rules if r.table == compiler.TABLE_FORWARD and r.priority == forwarding.TAKEOVER]
        if plan.switches[prog.name].role == "oob":
            assert not rewrite
            continue
        # the old addresses, both versions, host-routed to the standby with its MAC set on the way
        assert sorted(dict(r.match).get("ipv4_dst") or dict(r.match)["ipv6_dst"] for r in rewrite) == \
            sorted([str(old.ipv4.ip), str(old.ipv6.ip)])
        to_new = lookup(plain[prog.dpid], compiler.TABLE_FORWARD, {"eth_type": 0x0800, "ipv4_dst": str(new.ipv4.ip),
                                                                    "eth_dst": new.mac}).actions
        assert all(r.actions == (("set_eth_dst", new.mac), *to_new) for r in rewrite)
        # and nothing else of the program moved
        assert set(prog.rules) - set(rewrite) == set(plain[prog.dpid].rules)


def test_after_a_takeover_every_host_still_reaches_every_host_and_the_old_address_reaches_the_standby():
    """The drill's takeover through the prefix routes (walked as the switches run them): every
    connection the policy allows to the old host's addresses reaches the standby and its reply
    comes back, from hosts that still send to the old MAC; every other pair is as it was."""
    sc = loader.load(SCENARIOS / "small-dc.yml")
    plan = emulation_plan(sc)
    web1, web2 = plan.by_label["web-1"], plan.by_label["web-2"]
    assert compiler.takeover_allowed(sc, plan, web1, web2)
    programs = compiler.compile_network(sc, plan, takeovers={web1: web2})
    intent = Intent(sc)
    report = verify.verify(intent, plan, programs)
    # what differs is the old host's address only (what it sends is answered to the standby)
    assert report.differences and all("web-1" in (d["source"], d["destination"]) for d in report.differences)
    walker = verify.Walker(plan, programs)
    reached = 0
    for src in compiler.attachments(plan):
        if src in (web1, web2):
            continue
        for v, ports in intent.ports(plan.hosts[src].label, "web-1").items():
            for port in ports - {"any"}:
                proto, number = port.split("/")
                out = verify.connect(walker, src, web1, v, verify.PortClass(proto, int(number)), held_by=web2)
                assert out.kind == "delivered" and out.host == web2, (plan.hosts[src].label, v, port, out.kind)
                reached += 1
    assert reached > 0
