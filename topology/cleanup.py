"""Remove what a lab made, by name: OVS bridges, veths, node processes. Safe when nothing runs.

Only names of this lab's prefix are touched (`<prefix>s<N>`, `<prefix>h<N>-eth<M>`), so another
Mininet on the machine, or a lab with another prefix, is left alone (never `mn -c`).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from . import builder, ovs_shards
from .state import data_dir


@dataclass
class Removed:
    bridges: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.bridges or self.links or self.processes)


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True)


def lab_bridges(prefix: str) -> list[str]:
    out = _run("ovs-vsctl", "--timeout=10", "list-br")
    pattern = re.compile(rf"^{re.escape(prefix)}s\d+$")
    return [b for b in out.stdout.split() if pattern.match(b)] if out.returncode == 0 else []


# Only interfaces of these kinds are ever the lab's: veth pairs, and the tap device a
# userspace-datapath bridge makes. A physical NIC (no kind) is never touched, whatever its name.
LAB_LINK_KINDS = ("veth", "tun", "openvswitch")


def lab_links(prefix: str) -> list[str]:
    """Interfaces in the root namespace that the lab made (veth ends, userspace bridge taps)."""
    pattern = re.compile(rf"^{re.escape(prefix)}[sh]\d+(?:-eth\d+)?$")
    found = []
    with IPRoute() as ipr:
        for link in ipr.get_links():
            name = link.get_attr("IFLA_IFNAME")
            if not name or not pattern.match(name):
                continue
            info = link.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
            if kind in LAB_LINK_KINDS:
                found.append(name)
    return found


def lab_processes(prefix: str, helpers: bool = True) -> list[int]:
    """The processes holding the lab's namespaces ('egovlab-node=<name>', topology/builder.py; a
    `--cli` shell, 'mininet:<name>') and, with `helpers`, the lab's helper processes (probes, the
    controller), which carry an 'egovlab-lab=<prefix>' argument, and every process living in a
    lab host's network namespace (sshd, PostgreSQL, nginx, the services)."""
    pids, holders = [], []
    p = re.escape(prefix)
    marker = re.compile(rf"(?:{builder.HOLDER_MARK}|mininet:){p}(?:[sh]\d+|-root|-ovs\d+)\b" +
                        (rf"|egovlab-lab={p}\b" if helpers else ""))
    host = re.compile(rf"{builder.HOLDER_MARK}{p}h\d+\b")
    entries = [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) != os.getpid()]
    for pid in entries:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker.search(cmdline):
            pids.append(pid)
            if host.search(cmdline):
                holders.append(pid)
    if helpers and holders:
        # Hosts' namespaces only, never ours (switches live in the root or a shard namespace).
        ours = _netns(os.getpid())
        spaces = {_netns(pid) for pid in holders} - {None, ours}
        if ours is not None:
            pids += [pid for pid in entries if pid not in pids and _netns(pid) in spaces]
    return pids


def _netns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def remove_lab(prefix: str) -> Removed:
    removed = Removed()
    removed.bridges = _delete_bridges(lab_bridges(prefix))
    removed.bridges += ovs_shards.bridges(prefix)
    removed.processes += ovs_shards.remove(prefix)  # their namespaces take their link ends along
    for _ in range(3):  # again for what a dying service forked meanwhile
        pids = [p for p in lab_processes(prefix) if p not in removed.processes]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        removed.processes += pids
        time.sleep(0.05)
    shutil.rmtree(data_dir(prefix), ignore_errors=True)  # what deployed services kept
    # Killing the node processes frees their namespaces and the veth ends inside them; what is left
    # in the root namespace is deleted by name (deleting one end of a veth removes both).
    deadline = time.monotonic() + 10
    while (links := lab_links(prefix)) and time.monotonic() < deadline:
        removed.links += delete_links(links)
        time.sleep(0.05)
    # A bring-up stopped while its bridges' transaction was in flight commits them after the
    # first listing: look again once its processes are gone.
    late = _delete_bridges([b for b in lab_bridges(prefix) if b not in removed.bridges])
    removed.bridges += late
    if removed.bridges:
        _run("ovs-vsctl", "--timeout=30", "sync")
    return removed


def _delete_bridges(bridges: list[str]) -> list[str]:
    """One ovsdb transaction, without waiting for the daemon to report it reconfigured (with the
    province's 210 bridges that wait alone is 10-15 s); `remove_lab`'s `sync` at the end is that
    wait, cheap once the links are gone."""
    if bridges:
        args = ["ovs-vsctl", "--timeout=30", "--no-wait"]
        for b in bridges:
            args += ["--", "--if-exists", "del-br", b]
        _run(*args)
    return bridges


def delete_links(names: list[str]) -> list[str]:
    """Delete these interfaces in one batch: tagged with an interface group no other link has,
    then that group deleted (the kernel unregisters them together: about 50 times faster than
    one by one, which waits out an RCU grace period per link). Returns the names deleted.
    The group is this process's own (from its pid), so two teardowns at once never share one."""
    with IPRoute() as ipr:
        used = {link.get_attr("IFLA_GROUP") for link in ipr.get_links()}
        group = (1 << 30) + os.getpid()
        while group in used:  # left tagged by a teardown that died: not ours to delete
            group = (group + (1 << 22)) % (1 << 31) or 1 << 30
        tagged = []
        for name in names:
            try:
                ipr.link("set", index=ipr.link_lookup(ifname=name)[0], group=group)
                tagged.append(name)
            except (IndexError, NetlinkError):
                pass  # went with its peer or its namespace
        if tagged:
            try:
                ipr.link("del", index=0, group=group)
            except NetlinkError:
                pass  # every one went meanwhile
    return tagged


def leftovers(prefix: str, helpers: bool = True) -> dict[str, list]:
    """What of the lab still exists (for tests and `egovlab down`'s report)."""
    return {"bridges": lab_bridges(prefix), "links": lab_links(prefix), "processes": lab_processes(prefix, helpers),
            "ovs_shards": ovs_shards.running(prefix)}
