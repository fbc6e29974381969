"""Table 0 of every switch (pure): what a packet is. ARP and IPv6 neighbour solicitations go to
the controller (it answers for every planned address: nothing floods), and so do neighbour
advertisements (a host sends one unsolicited only to announce an address: a standby taking
over, as a gratuitous ARP does for IPv4); router discovery and MLD stay on the link; IP from a host port goes through
conntrack into the policy table; IP from another switch goes straight to forwarding (policy is
enforced once, at the source's edge), committed first when it is for a host of this switch, so
its replies are established in this switch's own conntrack too (a lab spread over several Open
vSwitch daemons has one per daemon; the mark is left as the source's edge set it). The
out-of-band management network is its own segment: no policy, forwarded by MAC."""
from __future__ import annotations

from egovlab.topology.model import EmulationPlan

from .program import CT_ZONE, ETH, TABLE_CLASSIFY, TABLE_FORWARD, TABLE_POLICY, Rule

IP = tuple(ETH.values())


def classify(plan: EmulationPlan, host_ports: dict[int, str], mgmt_ports: dict[int, str]) -> list[Rule]:
    r = [Rule.make(TABLE_CLASSIFY, 1000, [("controller",)], eth_type=0x0806)]
    r += [Rule.make(TABLE_CLASSIFY, 1000, [("controller",)], eth_type=0x86DD, ip_proto=58, icmpv6_type=nd)
          for nd in (135, 136)]  # NS, NA
    for icmp6 in (133, 134, 143):  # RS, RA, MLDv2: the controller speaks for every address
        r.append(Rule.make(TABLE_CLASSIFY, 1000, [], eth_type=0x86DD, ip_proto=58, icmpv6_type=icmp6))
    for port in sorted(host_ports):
        r += [Rule.make(TABLE_CLASSIFY, 500, [("ct", CT_ZONE, TABLE_POLICY)], in_port=port, eth_type=eth) for eth in IP]
    r += [Rule.make(TABLE_CLASSIFY, 100, [("goto", TABLE_FORWARD)], eth_type=eth) for eth in IP]
    for host in sorted(host_ports.values()):
        r += [Rule.make(TABLE_CLASSIFY, 400, [("ct_commit", CT_ZONE, None), ("goto", TABLE_FORWARD)], eth_type=eth,
                        eth_dst=plan.hosts[host].mac) for eth in IP]
    for port in sorted(mgmt_ports):
        r += [Rule.make(TABLE_CLASSIFY, 500, [("goto", TABLE_FORWARD)], in_port=port, eth_type=eth) for eth in IP]
    return r
