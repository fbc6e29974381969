"""A lab's switches spread over several Open vSwitch daemons, one per network namespace.

Every link event in ovs-vswitchd's namespace makes it reconfigure every bridge it runs, on the
main thread that (userspace datapath) also forwards every packet: with the province's 210
bridges in one daemon a cut link waits ~50 ms for that before its fast-failover group switches
(benchmarks/ovs_bridges_per_daemon.py). A shard is an ovsdb-server + ovs-vswitchd pair in the
namespace `<prefix>-ovs<k>`, with its database, sockets, pid files and logs in the lab's state
directory; the switch ends of its bridges' links live in that namespace. Each shard needs its
own namespace because the userspace datapath's own tap device is always named `ovs-netdev`.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .state import LabError, state_dir

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
NETNS_DIR = Path("/run/netns")


@dataclass(frozen=True, order=True)
class Shard:
    prefix: str
    index: int

    @property
    def netns(self) -> str:
        return f"{self.prefix}-ovs{self.index}"

    @property
    def rundir(self) -> Path:
        return state_dir(self.prefix) / f"ovs{self.index}"

    @property
    def env(self) -> dict[str, str]:
        """Environment under which ovs-vsctl, ovs-ofctl and ovs-appctl talk to this shard."""
        d = str(self.rundir)
        return {"OVS_RUNDIR": d, "OVS_LOGDIR": d, "OVS_DBDIR": d}

    @property
    def env_command(self) -> list[str]:
        """`env` with that environment: the prefix of a command run for this shard."""
        return ["env", *[f"{k}={v}" for k, v in self.env.items()]]

    def _run(self, *cmd: str, in_netns: bool = False) -> None:
        if in_netns:
            cmd = ("ip", "netns", "exec", self.netns, *cmd)
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **self.env})
        if out.returncode != 0:
            raise LabError(f"OVS shard {self.netns}: `{' '.join(cmd)}` failed: {out.stderr.strip()}")

    def start(self) -> None:
        d = self.rundir
        d.mkdir(parents=True, exist_ok=True)
        self._run("ip", "netns", "add", self.netns)
        self._run("ip", "link", "set", "lo", "up", in_netns=True)  # the controller relay listens there
        self._run("ovsdb-tool", "create", str(d / "conf.db"), str(SCHEMA))
        self._run("ovsdb-server", str(d / "conf.db"), f"--remote=punix:{d}/db.sock", f"--pidfile={d}/ovsdb-server.pid",
                  f"--unixctl={d}/ovsdb-server.ctl", f"--log-file={d}/ovsdb-server.log", "--detach",
                  in_netns=True)
        self._run("ovs-vsctl", f"--db=unix:{d}/db.sock", "--no-wait", "init")
        self._start_vswitchd()

    def _start_vswitchd(self) -> None:
        d = self.rundir
        self._run("ovs-vswitchd", f"unix:{d}/db.sock", f"--pidfile={d}/ovs-vswitchd.pid",
                  f"--unixctl={d}/ovs-vswitchd.ctl", f"--log-file={d}/ovs-vswitchd.log", "--detach",
                  in_netns=True)

    def restart_vswitchd(self) -> None:
        """Kill this shard's ovs-vswitchd and start it again, as a crashed daemon is restarted:
        its bridges come back from its database, their ports re-attached, holding no rules
        (fail-secure: nothing forwards until the controller has programmed them again)."""
        pidfile = self.rundir / "ovs-vswitchd.pid"
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not _exited(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        pidfile.unlink(missing_ok=True)
        self._start_vswitchd()


def shards(prefix: str, count: int) -> list[Shard]:
    return [Shard(prefix, k) for k in range(1, count + 1)] if count > 1 else []


def running(prefix: str) -> list[str]:
    """Names of this lab's shard namespaces that exist."""
    return [s.netns for s in existing(prefix)]


def existing(prefix: str) -> list[Shard]:
    """This lab's shards whose namespace exists."""
    pattern = re.compile(rf"^{re.escape(prefix)}-ovs(\d+)$")
    names = os.listdir(NETNS_DIR) if NETNS_DIR.is_dir() else []
    return sorted(Shard(prefix, int(m.group(1))) for n in names if (m := pattern.match(n)))


def bridges(prefix: str) -> list[str]:
    """The bridges the lab's shards run (what removing them takes along)."""
    out = []
    for shard in existing(prefix):
        r = subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True, text=True,
                           env={**os.environ, **shard.env})
        out += r.stdout.split() if r.returncode == 0 else []
    return out


def _processes_in(names: list[str]) -> list[int]:
    """Every process living in one of these named namespaces (one pass over /proc)."""
    inodes = set()
    for name in names:
        try:
            inodes.add(os.stat(NETNS_DIR / name).st_ino)
        except OSError:
            pass
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino in inodes:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def _exited(pid: int) -> bool:
    """Gone, or a zombie (an init that does not reap, as on this machine kind, leaves those)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def remove(prefix: str) -> list[int]:
    """Stop every shard of the lab (its daemons: every process in its namespace) and delete its
    namespace, which takes the switch ends of its links with it. Returns the pids killed.
    All shards at once: each daemon's exit (its tap device torn down) overlaps the others'."""
    names = running(prefix)
    killed = _processes_in(names)
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # Gone from the namespace is not yet dead: a killed ovs-vswitchd leaves it, then closes
    # its tap device (the kernel tears it down) before it exits.
    deadline = time.monotonic() + 5
    while (not all(map(_exited, killed)) or _processes_in(names)) and time.monotonic() < deadline:
        time.sleep(0.02)
    for name in names:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    for d in state_dir(prefix).glob("ovs[0-9]*"):
        shutil.rmtree(d, ignore_errors=True)
    return killed
