"""A host taking an address over, or giving it back: the address put on (or taken off) its
interface, then announced as a host on a real LAN would, so the SDN controller learns the move
from the packet itself: a gratuitous ARP for IPv4, an unsolicited neighbour advertisement for
IPv6 (RFC 4861 §7.2.6: to all nodes, hop limit 255, override set, solicited clear, the target's
link-layer address in an option).

`frames` is pure (the packets, built with os-ken's packet library, the one the controller
decodes them with); `hold`, `release` and `announce` work in a host's network namespace from a
thread of this process (root).
"""
from __future__ import annotations

import socket

import netaddr
from os_ken.lib.packet import arp, ethernet, icmpv6, ipv6, packet
from pyroute2 import IPRoute

from . import netns

ETH_ARP, ETH_IPV6 = 0x0806, 0x86DD
ALL_NODES = "ff02::1"
NA_SOLICITED, NA_OVERRIDE = 0b010, 0b001  # a neighbour advertisement's R S O flags, as os-ken packs them (`res`)
IFA_F_NODAD = 0x02  # the address is the plan's own: no duplicate address detection


def frames(address: str, mac: str) -> bytes:
    """The Ethernet frame announcing that `mac` holds `address` (either IP version)."""
    pkt = packet.Packet()
    if netaddr.IPAddress(address).version == 4:
        pkt.add_protocol(ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=mac, ethertype=ETH_ARP))
        pkt.add_protocol(arp.arp(opcode=arp.ARP_REQUEST, src_mac=mac, src_ip=address,
                                 dst_mac="00:00:00:00:00:00", dst_ip=address))
    else:
        pkt.add_protocol(ethernet.ethernet(dst="33:33:00:00:00:01", src=mac, ethertype=ETH_IPV6))
        pkt.add_protocol(ipv6.ipv6(src=address, dst=ALL_NODES, nxt=58, hop_limit=255))
        pkt.add_protocol(icmpv6.icmpv6(type_=icmpv6.ND_NEIGHBOR_ADVERT, data=icmpv6.nd_neighbor(
            res=NA_OVERRIDE, dst=address, option=icmpv6.nd_option_tla(hw_src=mac))))
    pkt.serialize()
    return bytes(pkt.data)


def _prefixlen(address: str) -> int:
    return 32 if netaddr.IPAddress(address).version == 4 else 128


def announce(pid: int, ifname: str, mac: str, addresses: list[str]) -> None:
    """Send each address's announcement out of `ifname` in the namespace of `pid`."""
    with netns.inside(pid):
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
            s.bind((ifname, 0))
            for address in addresses:
                s.send(frames(address, mac))


def hold(pid: int, ifname: str, mac: str, addresses: list[str]) -> None:
    """Put `addresses` on `ifname` (host routes: the subnet stays the owner's) and announce them."""
    with netns.inside(pid), IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=ifname)[0]
        for address in addresses:
            ipr.addr("replace", index=idx, address=address, prefixlen=_prefixlen(address),
                     **({"flags": IFA_F_NODAD} if ":" in address else {}))
    announce(pid, ifname, mac, addresses)


def release(pid: int, ifname: str, addresses: list[str]) -> list[str]:
    """Take `addresses` off `ifname`; returns those it held."""
    held = []
    with netns.inside(pid), IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=ifname)[0]
        have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=idx)}
        for address in addresses:
            if address in have:
                ipr.addr("del", index=idx, address=address, prefixlen=_prefixlen(address))
                held.append(address)
    return held
