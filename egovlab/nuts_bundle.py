"""A NUTS (Network Unit Testing System) bundle of a lab, from its plan: what every switch's LLDP
neighbours and interfaces must be, and pings that the policy allows (SUCCESS) or denies (FAIL),
run by NUTS through egovlab's NAPALM driver and Nornir inventory against the running lab.

    egovlab export nuts dongthap -o out/nuts            # writes nr-config.yaml and test-egovlab.yaml
    EGOVLAB_TOKEN=... EGOVLAB_API=http://127.0.0.1:8765 pytest out/nuts/test-egovlab.yaml \\
        --nornir-config out/nuts/nr-config.yaml

Interface names carry the lab's prefix (`egs12-eth2`), so a bundle is for one prefix.
"""
from __future__ import annotations

import yaml

from egovlab.inventory.policy import Intent, covers
from egovlab.inventory.scenario import Scenario
from egovlab.topology import devices, probes
from egovlab.topology.model import EmulationPlan

MAX_DROP = 1  # of 5 pings: the first may wait for neighbour discovery


def nornir_config(plan: EmulationPlan) -> dict:
    """The Nornir configuration NUTS reads: the lab's inventory (token and API from the
    environment: EGOVLAB_TOKEN, EGOVLAB_API)."""
    return {"inventory": {"plugin": "EgovlabInventory", "options": {"lab": plan.prefix}},
            "runner": {"plugin": "threaded", "options": {"num_workers": 20}}}


def bundle(sc: Scenario, plan: EmulationPlan) -> list[dict]:
    lldp, counts, interfaces = [], [], []
    for node in plan.switches:
        name = devices.name_of(plan, node)
        neighbours = devices.lldp_neighbors(plan, node)
        counts.append({"host": name, "neighbor_count": len(neighbours)})
        for port, (peer,) in neighbours.items():
            lldp.append({"host": name, "local_port": port, "remote_host": peer["hostname"],
                         "remote_port": peer["port"]})
            interfaces.append({"host": name, "name": port, "is_up": True, "is_enabled": True})
    return [
        {"test_module": "nuts.base_tests.napalm_lldp_neighbors", "test_class": "TestNapalmLldpNeighbors",
         "label": "every switch sees the neighbours its wiring gives it", "test_data": lldp},
        {"test_module": "nuts.base_tests.napalm_lldp_neighbors", "test_class": "TestNapalmLldpNeighborsCount",
         "test_data": counts},
        {"test_module": "nuts.base_tests.napalm_interfaces", "test_class": "TestNapalmInterfaces",
         "label": "every switch port is enabled and up", "test_data": interfaces},
        {"test_module": "nuts.base_tests.napalm_ping", "test_class": "TestNapalmPing",
         "label": "pings the policy allows succeed, those it denies fail", "test_execution": {"count": 5},
         "test_data": pings(sc, plan)},
    ]


def pings(sc: Scenario, plan: EmulationPlan) -> list[dict]:
    """From each site kind's representative host: one IPv4 ping the policy allows (across the
    network if it allows one, else on the host's own LAN), one it denies."""
    intent = Intent(sc)
    out = []
    for src in probes.representatives(sc, plan).values():
        if src.ipv4 is None or src.role != "host":
            continue
        wanted = {True: None, False: None}
        # other sites first: a ping across the network says more than one on the host's own LAN
        for dst in sorted(plan.hosts.values(), key=lambda h: h.site == src.site):
            if dst.name == src.name or dst.ipv4 is None:
                continue
            allowed = covers(intent.ports(src.label, dst.label).get(4, set()), "icmp", None, 4)
            if wanted[allowed] is None:
                wanted[allowed] = dst
        for allowed, dst in wanted.items():
            if dst is not None:
                out.append({"host": src.label, "destination": str(dst.ipv4.ip), "max_drop": MAX_DROP,
                            "expected": "SUCCESS" if allowed else "FAIL"})
    return out


def texts(sc: Scenario, plan: EmulationPlan) -> dict[str, str]:
    """File name -> text of the bundle's two files."""
    header = f"# NUTS bundle of egovlab lab '{plan.prefix}' (scenario '{sc.name}'), from its plan: egovlab export nuts\n"
    return {"nr-config.yaml": yaml.safe_dump(nornir_config(plan), sort_keys=False),
            "test-egovlab.yaml": header + yaml.safe_dump(bundle(sc, plan), sort_keys=False, allow_unicode=True)}
