"""Live state of the lab's devices, read from the kernel: interfaces and their counters,
neighbour tables; and ping and traceroute run from a host's namespace.

Switch ports live in the root namespace, or in one of the lab's Open vSwitch shard namespaces
(read from sysfs: a shard daemon, started by `ip netns exec`, sees its namespace's sysfs through
/proc/PID/root); hosts' interfaces and neighbour
tables are read with `ip -json` inside their namespace (nsenter); anything still running in a
lab host's namespace is removed by `egovlab down`.
"""
from __future__ import annotations

import json
import os
import re
import subprocess

from egovlab.inventory.errors import EgovlabError

from . import netns, ovs_shards

SYSFS_NET = "/sys/class/net"
STATS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors", "tx_errors", "rx_dropped", "tx_dropped",
         "multicast")


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _link_up(base: str) -> bool:
    """Enabled (IFF_UP) and with carrier: an administratively downed veth, or one whose peer is
    down, is not. Read from `carrier`, which the kernel sets at once, not `operstate`, which its
    linkwatch updates up to a second later (a restored link would still read as down)."""
    flags = _read(f"{base}/flags")
    return flags is not None and bool(int(flags, 16) & 1) and _read(f"{base}/carrier") == "1"


def sysfs_dirs(prefix: str | None = None) -> list[str]:
    """Where switch ports show in sysfs: the root namespace's, then each shard's of the lab."""
    dirs = [SYSFS_NET]
    for shard in ovs_shards.existing(prefix) if prefix else []:
        pid = _read(str(shard.rundir / "ovs-vswitchd.pid"))
        if pid:
            dirs.append(f"/proc/{pid}/root{SYSFS_NET}")
    return dirs


def _base(name: str, dirs: list[str]) -> str | None:
    return next((f"{d}/{name}" for d in dirs if os.path.exists(f"{d}/{name}")), None)


def interfaces_down(names: set[str], prefix: str | None = None) -> set[str]:
    """Which of these switch interfaces are down (administratively or without carrier).

    Read from sysfs, interface by interface: a netlink dump of every link parses about a
    thousand interfaces for the province (0.35 s with pyroute2); this reads only those asked
    (a missing interface counts as down).
    """
    dirs = sysfs_dirs(prefix)
    return {name for name in names if (base := _base(name, dirs)) is None or not _link_up(base)}


def root_links(names: list[str], prefix: str | None = None) -> dict[str, dict]:
    """name -> {up, enabled, mac, mtu, stats} for switch interfaces."""
    dirs = sysfs_dirs(prefix)
    out = {}
    for name in names:
        base = _base(name, dirs)
        flags = _read(f"{base}/flags") if base else None
        if flags is None:
            continue
        stats = {s: int(_read(f"{base}/statistics/{s}") or 0) for s in STATS}
        out[name] = {"enabled": bool(int(flags, 16) & 1), "up": _link_up(base),
                     "mac": _read(f"{base}/address") or "", "mtu": int(_read(f"{base}/mtu") or 0), "stats": stats}
    return out


def _ip_json(pid: int, args: list[str]) -> list[dict]:
    r = subprocess.run([*netns.command(pid), "ip", "-json", *args], capture_output=True, text=True, timeout=20)
    if r.returncode:
        raise EgovlabError(f"ip {' '.join(args)} in the namespace of pid {pid}: {r.stderr.strip()}")
    return json.loads(r.stdout or "[]")


def host_links(pid: int) -> dict[str, dict]:
    out = {}
    for link in _ip_json(pid, ["-s", "-s", "link", "show"]):
        if link["ifname"] == "lo":
            continue
        rx, tx = link.get("stats64", {}).get("rx", {}), link.get("stats64", {}).get("tx", {})
        stats = {"rx_bytes": rx.get("bytes", 0), "tx_bytes": tx.get("bytes", 0), "rx_packets": rx.get("packets", 0),
                 "tx_packets": tx.get("packets", 0), "rx_errors": rx.get("errors", 0), "tx_errors": tx.get("errors", 0),
                 "rx_dropped": rx.get("dropped", 0), "tx_dropped": tx.get("dropped", 0),
                 "multicast": rx.get("multicast", 0)}
        flags = set(link.get("flags", []))  # LOWER_UP: carrier, as the kernel has it now (see _link_up)
        out[link["ifname"]] = {"enabled": "UP" in flags, "up": {"UP", "LOWER_UP"} <= flags,
                               "mac": link.get("address", ""), "mtu": link.get("mtu", 0), "stats": stats}
    return out


def neighbours(pid: int, version: int) -> list[dict]:
    """The kernel's neighbour table: [{ip, interface, mac, state}] (entries without a MAC left out)."""
    return [{"ip": n["dst"], "interface": n.get("dev", ""), "mac": n["lladdr"], "state": n.get("state", [])}
            for n in _ip_json(pid, [f"-{version}", "neigh", "show"]) if n.get("lladdr")]


def ping(pid: int, destination: str, *, source: str = "", ttl: int = 255, timeout: float = 2,
         size: int = 100, count: int = 5) -> dict:
    """NAPALM's ping result: {'success': {...}} or {'error': message}."""
    argv = ["ping", "-n", "-c", str(count), "-s", str(size), "-t", str(ttl), "-W", f"{timeout:g}", "-i", "0.2"]
    if source:
        argv += ["-I", source]
    r = subprocess.run([*netns.command(pid), *argv, destination], capture_output=True, text=True,
                       timeout=count * (timeout + 0.2) + 10)
    sent = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    if sent is None:
        return {"error": (r.stderr or r.stdout).strip() or f"ping exited with {r.returncode}"}
    rtts = [float(x) for x in re.findall(r"time=([0-9.]+) ms", r.stdout)]
    stats = re.search(r"= ([0-9.]+)/([0-9.]+)/([0-9.]+)/([0-9.]+) ms", r.stdout)
    lo, avg, hi, dev = (float(x) for x in stats.groups()) if stats else (0.0, 0.0, 0.0, 0.0)
    probes, received = int(sent[1]), int(sent[2])
    return {"success": {"probes_sent": probes, "packet_loss": probes - received, "rtt_min": lo, "rtt_max": hi,
                        "rtt_avg": avg, "rtt_stddev": dev,
                        "results": [{"ip_address": destination, "rtt": rtt} for rtt in rtts]}}


def traceroute(pid: int, destination: str, *, source: str = "", ttl: int = 30,
               timeout: float = 2) -> dict:
    """NAPALM's traceroute result: {'success': {hop: {'probes': {n: {...}}}}} or {'error': message}."""
    # The fabric forwards at layer 2 (no TTL decrement): a path is one hop, so 8 is plenty.
    argv = ["traceroute", "-n", "-q", "1", "-w", f"{timeout:g}", "-m", str(min(ttl, 8))]
    if source:
        argv += ["-s", source]
    r = subprocess.run([*netns.command(pid), *argv, destination], capture_output=True, text=True,
                       timeout=ttl * (timeout + 1) + 10)
    if r.returncode:
        return {"error": (r.stderr or r.stdout).strip()}
    hops: dict[int, dict] = {}
    for line in r.stdout.splitlines()[1:]:
        m = re.match(r"\s*(\d+)\s+(\S+)(?:\s+([0-9.]+) ms)?", line)
        if not m:
            continue
        ip = "" if m[2] == "*" else m[2]
        hops[int(m[1])] = {"probes": {1: {"rtt": float(m[3] or 0.0), "ip_address": ip, "host_name": ip}}}
    return {"success": hops}
