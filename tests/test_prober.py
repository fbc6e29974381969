"""The prober on its own, in a namespace of its own: every answer it can give, with the targets
probed together against one deadline. Root only: it makes the namespace."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from egovlab.topology.probes import PROBER

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a network namespace")
NETNS = "pq-prober"


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@pytest.fixture
def netns():
    """lo, and a veth (10.253.0.1/24, fd00:253::1/64) whose peer has no address: what is sent to
    the subnet's other addresses goes unanswered, a silent drop as a denying switch gives."""
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)
    sh("ip", "netns", "add", NETNS)
    try:
        ns = ["ip", "-n", NETNS]
        sh(*ns, "link", "set", "lo", "up")
        sh(*ns, "link", "add", "pq-drop", "type", "veth", "peer", "name", "pq-void")
        sh(*ns, "link", "set", "pq-void", "up")
        sh(*ns, "addr", "add", "10.253.0.1/24", "dev", "pq-drop")
        sh(*ns, "addr", "add", "fd00:253::1/64", "dev", "pq-drop", "nodad")
        sh(*ns, "link", "set", "pq-drop", "up")
        yield NETNS
    finally:
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)


def probe(netns: str, targets: list, timeout: float = 1.0) -> list[dict]:
    listener = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c",
                                 "import socket,time\n"
                                 "s=socket.create_server(('::', 8443), family=socket.AF_INET6, dualstack_ipv6=True)\n"
                                 "print('ready', flush=True); time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "ready"
        # The subprocess timeout only guards against a hang; the speed is benchmarks/probe_matrix.py's.
        out = subprocess.run(["ip", "netns", "exec", netns, sys.executable, str(PROBER),
                              json.dumps({"timeout": timeout, "targets": targets})],
                             capture_output=True, text=True, check=True, timeout=60)
        return json.loads(out.stdout)
    finally:
        listener.kill()
        listener.wait()


def test_every_answer_of_targets_probed_together(netns):
    targets = [["127.0.0.1", "icmp"], ["::1", "icmp"], ["127.0.0.1", "tcp/8443"], ["::1", "tcp/8443"],
               ["127.0.0.1", "tcp/8444"], ["::1", "tcp/8444"],
               ["10.253.0.2", "icmp"], ["fd00:253::2", "icmp"], ["10.253.0.2", "tcp/80"],
               ["10.252.0.1", "icmp"], ["10.252.0.1", "tcp/80"]]
    targets += [["10.253.0.2", f"tcp/{port}"] for port in range(1000, 1040)]  # 40 more silent ones
    answers = probe(netns, targets, timeout=1.0)
    got = [(a["reachable"], a["detail"]) for a in answers]
    assert got[:11] == [(True, "replied"), (True, "replied"), (True, "open"), (True, "open"),
                        (True, "refused"), (True, "refused"),
                        (False, "no-reply"), (False, "no-reply"), (False, "timeout"),
                        (False, "no-reply"), (False, "unreachable")]
    assert got[11:] == [(False, "timeout")] * 40


def test_a_receiver_counts_a_late_senders_every_datagram_and_stops_when_its_senders_are_done(netns):
    """The receiver's window is its senders', not one of its own from "ready": a sender that
    starts 3 s late (a loaded machine) loses nothing, and closing the receiver's stdin ends it
    within its linger, long before its cap."""
    import time

    from egovlab.topology.probes import LINGER_S, receiver_spec

    def prober(mode: str, spec: dict, **kw) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, str(PROBER), mode, json.dumps(spec)],
                                stdout=subprocess.PIPE, text=True, **kw)

    rx, tx = prober("receive", receiver_spec(6, 40999, seconds=1.0), stdin=subprocess.PIPE), None
    try:
        assert rx.stdout.readline().strip() == "ready"
        time.sleep(3.0)  # past the old window: seconds + 2 from "ready"
        tx = prober("send", {"to": "::1", "port": 40999, "interval": 0.01, "count": 100}, stdin=subprocess.DEVNULL)
        assert json.loads(tx.communicate(timeout=30)[0]) == {"sent": 100, "count": 100}
        closed = time.monotonic()
        got = json.loads(rx.communicate(timeout=30)[0])
        stopped_after = time.monotonic() - closed
    finally:
        for p in (rx, tx):
            if p and p.poll() is None:
                p.kill()
                p.wait()
    assert sorted(seq for seq, *_ in got) == list(range(100))
    assert {peer for _, _, peer, _ in got} == {"::1"}
    assert stopped_after < LINGER_S + 10  # ended by its senders, not by its 61 s cap
