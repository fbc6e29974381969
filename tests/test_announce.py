"""The announcements a standby sends when it takes an address over: what the controller decodes
of them (with the same os-ken parser it runs) and what a kernel would accept (checksums)."""
from __future__ import annotations

import ipaddress
import struct

from os_ken.lib.packet import arp, ethernet, icmpv6, ipv6, packet

from egovlab.topology import announce
from egovlab.topology.announce import NA_OVERRIDE, NA_SOLICITED

MAC = "02:00:00:00:00:2a"


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_a_gratuitous_arp_names_the_address_as_sender_and_target():
    pkt = packet.Packet(announce.frames("198.18.30.10", MAC))
    eth, req = pkt.get_protocol(ethernet.ethernet), pkt.get_protocol(arp.arp)
    assert eth.dst == "ff:ff:ff:ff:ff:ff" and eth.src == MAC and eth.ethertype == 0x0806
    assert req.src_ip == req.dst_ip == "198.18.30.10" and req.src_mac == MAC and req.opcode == arp.ARP_REQUEST


def test_an_unsolicited_neighbour_advertisement_is_what_rfc_4861_asks_and_its_checksum_holds():
    frame = announce.frames("2001:db8:30::10", MAC)
    pkt = packet.Packet(frame)
    eth, ip6, na = pkt.get_protocol(ethernet.ethernet), pkt.get_protocol(ipv6.ipv6), pkt.get_protocol(icmpv6.icmpv6)
    assert eth.dst == "33:33:00:00:00:01" and eth.src == MAC and eth.ethertype == 0x86DD
    assert ip6.dst == "ff02::1" and ip6.src == "2001:db8:30::10" and ip6.hop_limit == 255 and ip6.nxt == 58
    assert na.type_ == icmpv6.ND_NEIGHBOR_ADVERT and na.data.dst == "2001:db8:30::10"
    # what the controller reads: an announcement (not solicited) that overrides, with the MAC
    assert na.data.res & NA_OVERRIDE and not na.data.res & NA_SOLICITED
    assert isinstance(na.data.option, icmpv6.nd_option_tla) and na.data.option.hw_src == MAC
    # the ICMPv6 checksum over the pseudo-header (RFC 8200 §8.1), computed here independently
    body = frame[14 + 40:]
    assert ip6.payload_length == len(body)
    pseudo = (ipaddress.IPv6Address(ip6.src).packed + ipaddress.IPv6Address(ip6.dst).packed
              + struct.pack("!I3xB", len(body), 58))
    assert _checksum(pseudo + body) == 0xFFFF
