"""What this kernel can do for the emulation: detected, never assumed."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass


def _ok(*cmd: str, timeout: float = 10) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass(frozen=True)
class Environment:
    root: bool
    ovs_running: bool
    ovs_kernel_module: bool
    netem: bool
    ping: bool

    @property
    def datapath(self) -> str:
        """Mininet's OVSSwitch datapath: the kernel one where the module exists, else userspace."""
        return "kernel" if self.ovs_kernel_module else "user"

    def problems(self) -> list[str]:
        out = []
        if not self.root:
            out.append("the emulation needs root (network namespaces, veth, Open vSwitch)")
        if not self.ovs_running:
            out.append("Open vSwitch is not running (scripts/setup.sh starts it)")
        if not self.ping:
            out.append("ping is missing (apt-get install iputils-ping)")
        return out


def _has_ovs_module() -> bool:
    if os.path.isdir("/sys/module/openvswitch"):
        return True
    return _ok("modprobe", "-q", "openvswitch") and os.path.isdir("/sys/module/openvswitch")


def _has_netem() -> bool:
    """Try a netem qdisc on a veth inside a throwaway namespace: nothing to clean up after."""
    _ok("modprobe", "-q", "sch_netem")
    return _ok("unshare", "-n", "sh", "-c",
               "ip link add egnetem0 type veth peer name egnetem1 && "
               "tc qdisc add dev egnetem0 root netem delay 1ms")


@functools.lru_cache(maxsize=1)
def detect() -> Environment:
    root = os.geteuid() == 0
    return Environment(
        root=root,
        ovs_running=shutil.which("ovs-vsctl") is not None and _ok("ovs-vsctl", "--timeout=5", "show"),
        ovs_kernel_module=root and _has_ovs_module(),
        netem=root and _has_netem(),
        ping=shutil.which("ping") is not None,
    )
