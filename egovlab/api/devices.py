"""What the API answers about one device of a running lab, in NAPALM's getter shapes.

Wiring, addresses and neighbours come from the lab's plan (`topology.devices`); live state
(interface status and counters, neighbour tables) from the kernel (`topology.netstate`); a
switch's configuration is its compiled program under the policy in force (`sdn.render`).
"""
from __future__ import annotations

import functools
import os
import platform
import subprocess
import time

from egovlab import operations
from egovlab.inventory.errors import EgovlabError
from egovlab.sdn import entries, render
from egovlab.topology import devices, faults, netstate

GETTERS = ("facts", "interfaces", "interfaces_ip", "interfaces_counters", "lldp_neighbors", "lldp_neighbors_detail",
           "arp_table", "ipv6_neighbors_table", "mac_address_table", "environment", "config")


@functools.lru_cache(maxsize=1)
def _ovs_version() -> str:
    try:
        out = subprocess.run(["ovs-vswitchd", "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0].rsplit(" ", 1)[-1]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


class Device:
    def __init__(self, prefix: str, device: str):
        self.prefix = prefix
        self.lab = operations.running_lab(prefix)
        self.record, self.sc, self.plan = self.lab
        self.node = devices.resolve(self.plan, device)
        self.name = devices.name_of(self.plan, self.node)
        self.is_switch = self.node in self.plan.switches
        self.ports = devices.ports(self.plan, self.node)

    def _pid(self) -> int:
        return self.record.pids[self.node]

    def _links(self) -> dict[str, dict]:
        if self.is_switch:
            return netstate.root_links([p.interface for p in self.ports], self.prefix)
        return netstate.host_links(self._pid())

    def program(self, running: bool = True):
        if not self.is_switch:
            return None
        down = frozenset(faults.cut_interfaces(self.plan)) if running else frozenset()
        programs = operations.programs(self.lab, down)
        return programs[self.plan.switches[self.node].dpid]

    # -- getters ---------------------------------------------------------------------------
    def facts(self) -> dict:
        if self.is_switch:
            s = self.plan.switches[self.node]
            model = f"emulated {s.role} switch ({s.site}{', zone ' + s.zone if s.zone else ''})"
            os_version = f"Open vSwitch {_ovs_version()} ({self.record.datapath or 'user'} datapath)"
        else:
            h = self.plan.hosts[self.node]
            model = f"emulated {h.role} ({h.site}{', zone ' + h.zone if h.zone else ''})"
            os_version = f"Linux {platform.release()} (network namespace)"
        return {"hostname": self.name, "fqdn": f"{self.name.replace(':', '.')}.{self.prefix}.egovlab.lab",
                "vendor": "egovlab", "model": model, "os_version": os_version, "serial_number": self.node,
                "uptime": round(time.time() - self.record.started, 1),
                "interface_list": [p.interface for p in self.ports]}

    def interfaces(self) -> dict:
        live = self._links()
        out = {}
        for p in self.ports:
            state = live.get(p.interface, {})
            out[p.interface] = {"is_up": bool(state.get("up")), "is_enabled": bool(state.get("enabled")),
                                "description": devices.describe(self.plan, p), "last_flapped": -1.0,
                                "speed": p.link.bandwidth / 1e6, "mtu": int(state.get("mtu", 0)),
                                "mac_address": state.get("mac", "")}
        return out

    def interfaces_ip(self) -> dict:
        return devices.interfaces_ip(self.plan, self.node)

    def interfaces_counters(self) -> dict:
        live = self._links()
        out = {}
        for p in self.ports:
            s = live.get(p.interface, {}).get("stats", {})
            multicast = int(s.get("multicast", 0))
            out[p.interface] = {
                "tx_errors": int(s.get("tx_errors", 0)), "rx_errors": int(s.get("rx_errors", 0)),
                "tx_discards": int(s.get("tx_dropped", 0)), "rx_discards": int(s.get("rx_dropped", 0)),
                "tx_octets": int(s.get("tx_bytes", 0)), "rx_octets": int(s.get("rx_bytes", 0)),
                # Linux counts multicast received only, and broadcast not at all
                "tx_unicast_packets": int(s.get("tx_packets", 0)),
                "rx_unicast_packets": max(0, int(s.get("rx_packets", 0)) - multicast),
                "tx_multicast_packets": 0, "rx_multicast_packets": multicast,
                "tx_broadcast_packets": 0, "rx_broadcast_packets": 0}
        return out

    def lldp_neighbors(self) -> dict:
        return devices.lldp_neighbors(self.plan, self.node)

    def lldp_neighbors_detail(self) -> dict:
        return devices.lldp_neighbors_detail(self.plan, self.node)

    def _neighbours(self, version: int) -> list[dict]:
        if self.is_switch:
            return []  # the lab's switches forward at layer 2: they keep no neighbour table
        return netstate.neighbours(self._pid(), version)

    def arp_table(self) -> list[dict]:
        return [{"interface": n["interface"], "mac": n["mac"], "ip": n["ip"], "age": -1.0}
                for n in self._neighbours(4)]

    def ipv6_neighbors_table(self) -> list[dict]:
        return [{"interface": n["interface"], "mac": n["mac"], "ip": n["ip"], "age": -1.0,
                 "state": (n["state"] or ["UNKNOWN"])[0]} for n in self._neighbours(6)]

    def mac_address_table(self) -> list[dict]:
        return entries.mac_table(self.plan, self.node, self.program()) if self.is_switch else []

    def environment(self) -> dict:
        """The machine the lab runs on (every emulated device shares it): CPU and memory."""
        mem = {}
        with open("/proc/meminfo") as f:
            for line in f:
                key, value = line.split(":", 1)
                mem[key] = int(value.split()[0]) * 1024
        load = os.getloadavg()[0]
        cpus = os.cpu_count() or 1
        return {"fans": {}, "temperature": {}, "power": {},
                "cpu": {i: {"%usage": round(min(100.0, 100.0 * load / cpus), 1)} for i in range(cpus)},
                "memory": {"available_ram": mem.get("MemTotal", 0),
                           "used_ram": mem.get("MemTotal", 0) - mem.get("MemAvailable", 0)}}

    def config(self) -> dict:
        header = [f"! {self.name} ({self.node}) of lab '{self.prefix}', scenario '{self.sc.name}'",
                  f"! policy: {self.record.source}"]
        if self.is_switch:
            running = render.program_lines(self.program(running=True))
            startup = render.program_lines(self.program(running=False))
            note = ["! compiled OpenFlow 1.3 program (running: with the links down now; startup: all links up)"]
            return {"running": "\n".join(header + note + running) + "\n",
                    "startup": "\n".join(header + note + startup) + "\n", "candidate": ""}
        lines = header + [f"interface {intf}\n" + "\n".join(f" {fam} address {ip}/{v['prefix_length']}"
                                                          for fam, ips in addrs.items() for ip, v in ips.items())
                          for intf, addrs in self.interfaces_ip().items()]
        text = "\n".join(lines) + "\n"
        return {"running": text, "startup": text, "candidate": ""}

    def get(self, getter: str):
        if getter not in GETTERS:
            raise EgovlabError(f"unknown getter '{getter}' (getters: {', '.join(GETTERS)})")
        return getattr(self, getter)()

    # -- tools: NAPALM reports a failed ping or traceroute as {"error": ...}, not as an exception --
    def _no_address(self, tool: str) -> dict | None:
        if self.is_switch:
            return {"error": f"{self.name} is a layer-2 switch with no address to {tool} from: use a host"}
        return None

    def ping(self, destination: str, **kw) -> dict:
        return self._no_address("ping") or netstate.ping(self._pid(), destination, **kw)

    def traceroute(self, destination: str, **kw) -> dict:
        return self._no_address("traceroute") or netstate.traceroute(self._pid(), destination, **kw)
