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
    web = plan.hosts[plan.node("web-dvc-1")]
    assert dep.service_addresses() == {4: str(web.ipv4.ip), 6: str(web.ipv6.ip)}
    assert dep.url(6) == f"https://[{web.ipv6.ip}]" and dep.url(4) == f"https://{web.ipv4.ip}"


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
    # the standby portal's certificate names the addresses it takes over, in both IP versions
    for label in ("web-dvc-1", "bk-web-dvc-1"):
        own = plan.hosts[plan.node(label)]
        assert set(hosts[label]["egov_tls_names"]) == {*dep.service_addresses().values(), str(own.ipv4.ip),
                                                       str(own.ipv6.ip)}
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
    # sent early, answered late (TCP retransmissions over the outage): not when the service came back
    late = drill.analyse([*attempts, [100.2, 106.0, 201, "f"]], fail, present={"a", "b", "c", "d", "e", "f"})
    assert late["rto_s"] == pytest.approx(3.4) and late["acknowledged"] == 6


def test_the_longest_wait_for_an_acknowledgement_after_a_fault():
    attempts = [[9.0, 9.1, 201, "a"], [10.0, 10.1, 201, "b"], [10.2, 12.9, 0, None], [10.4, 13.5, 201, "c"],
                [13.6, 13.7, 201, "d"]]
    assert drill.longest_wait(attempts, since=10.15) == pytest.approx(3.35)  # 10.15 -> 13.5
    assert drill.longest_wait(attempts, since=10.0) == pytest.approx(3.4)  # 10.1 -> 13.5
    assert drill.longest_wait(attempts[:3], since=10.2) is None


def test_the_service_recovers_when_every_ip_version_has():
    v4 = {"rto_s": 3.1, "attempts": 300, "acknowledged": 280, "failed_during_outage": 20, "lost": 0, "rpo_s": 0.0}
    v6 = {"rto_s": 3.4, "attempts": 300, "acknowledged": 279, "failed_during_outage": 21, "lost": 1, "rpo_s": 0.2}
    both = drill.combine({"ipv4": v4, "ipv6": v6})
    assert both == {"rto_s": 3.4, "attempts": 600, "acknowledged": 559, "failed_during_outage": 41, "lost": 1,
                    "rpo_s": 0.2}
    assert drill.combine({"ipv4": v4, "ipv6": {**v6, "rto_s": None}})["rto_s"] is None  # v6 never came back


def test_a_citizen_submits_open_loop_so_a_hanging_submission_holds_no_other_back():
    """A real HTTP server on loopback that leaves the first submission hanging past the client's
    timeout: every other one is still sent on time and answered."""
    import asyncio

    from egovlab.services import loadgen

    async def scenario():
        seen = 0

        async def serve(reader, writer):
            nonlocal seen
            await reader.readuntil(b"\r\n\r\n")
            seen += 1
            if seen == 1:
                await asyncio.sleep(2.0)  # past the 0.5 s timeout
            body = b'{"id": "%d"}' % seen
            writer.write(b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                         b"connection: close\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await loadgen.submit(f"http://127.0.0.1:{port}/api/applications", None, rate=20, seconds=1.0,
                                        timeout_s=0.5)

    attempts = asyncio.run(scenario())
    assert len(attempts) == 20
    sent = [a[0] - attempts[0][0] for a in attempts]
    # on schedule, not after the hung one: a closed loop would send the second only at its 0.5 s
    # timeout; half that is slack for a loaded machine (CI saw one 0.05 s late)
    assert all(-0.01 < s - n / 20 < 0.25 for n, s in enumerate(sent)), sent
    assert attempts[0][2] == 0 and attempts[0][1] - attempts[0][0] >= 0.5  # the hung one timed out
    assert all(a[2] == 201 and a[3] for a in attempts[1:])
    # the analysis sees the first answer after the 'failure' at the first send, not the hung one's
    assert drill.analyse(attempts, attempts[0][0], present=set())["rto_s"] < 0.5


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
