"""Interrupted bring-ups lose nothing: `egovlab up` stopped by `egovlab down`, SIGINT, SIGTERM or
SIGKILL at ten moments each (drawn once, seeded), and the province's once; afterwards no
namespace, link, bridge, shard, controller, node shell or record of the lab is left. A second
`up` of a prefix that is up or coming up is refused."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import pytest

from egovlab.topology import cleanup
from egovlab.topology.state import read_state

from .conftest import EGOVLAB, SCENARIOS

pytestmark = [pytest.mark.emulation, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="emulation needs root (CI runs as root)")]
PREFIX = "ei"
NOTHING = {"bridges": [], "links": [], "processes": [], "ovs_shards": []}
MOMENTS = {how: sorted(random.Random(f"17-{how}").uniform(0.05, 4.0) for _ in range(10))
           for how in ("down", "SIGINT", "SIGTERM", "SIGKILL")}


def _down(prefix: str = PREFIX) -> subprocess.CompletedProcess:
    return subprocess.run([str(EGOVLAB), "down", "--prefix", prefix], capture_output=True, text=True, timeout=300)


def _nothing_left(prefix: str = PREFIX) -> None:
    assert cleanup.leftovers(prefix) == NOTHING
    assert read_state(prefix) is None
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{prefix}-ovs" not in netns


@pytest.fixture(autouse=True)
def clean():
    cleanup.remove_lab(PREFIX)
    yield
    _down()
    cleanup.remove_lab(PREFIX)


@pytest.mark.parametrize("how", list(MOMENTS))
def test_a_bring_up_interrupted_at_any_moment_leaves_nothing(how):
    for moment in MOMENTS[how]:
        proc = subprocess.Popen([str(EGOVLAB), "up", str(SCENARIOS / "mini.yml"), "--prefix", PREFIX],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(moment)
        if how == "down":
            r = _down()
            assert r.returncode == 0, r.stderr
        else:
            proc.send_signal(getattr(signal, how))
        _, err = proc.communicate(timeout=300)
        if how == "SIGKILL":  # nothing runs to clean up after a SIGKILL: `down` does
            assert _down().returncode == 0
        assert "Traceback" not in err, (how, moment, err[-2000:])
        _nothing_left()


@pytest.mark.parametrize("after", [None, 0.0, 0.3, 1.0, 2.5])
def test_down_right_after_a_detached_up_stops_it_and_leaves_nothing(after):
    """`up --detach` waits for its child; a `down` from another shell at once used to answer
    'nothing was running' and leave the half-built lab behind. `None`: the `down` starts at the
    same instant, before the `up`'s interpreter has claimed the prefix (it finds the process)."""
    detached = subprocess.Popen([str(EGOVLAB), "up", str(SCENARIOS / "mini.yml"), "--prefix", PREFIX, "--detach"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if after is None:
        # hold the `up` before its interpreter can claim anything, run `down`, then let it go on
        os.kill(detached.pid, signal.SIGSTOP)
        down = subprocess.Popen([str(EGOVLAB), "down", "--prefix", PREFIX], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        os.kill(detached.pid, signal.SIGCONT)
        assert down.wait(timeout=300) == 0
        _, err = detached.communicate(timeout=300)
        assert detached.returncode != 0 and "Traceback" not in err  # stopped, not left up in the background
        _nothing_left()
        return
    time.sleep(after)
    deadline = time.monotonic() + 10
    while read_state(PREFIX) is None and detached.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # `down` finds the record from the parent's first moments
    assert _down().returncode == 0
    _, err = detached.communicate(timeout=300)
    assert "Traceback" not in err
    _nothing_left()


def test_a_second_up_of_a_prefix_coming_up_or_up_is_refused():
    first = subprocess.Popen([str(EGOVLAB), "up", str(SCENARIOS / "mini.yml"), "--prefix", PREFIX],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while read_state(PREFIX) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run([str(EGOVLAB), "up", str(SCENARIOS / "mini.yml"), "--prefix", PREFIX],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and f"a lab with prefix '{PREFIX}' is already" in second.stderr
        assert f"(pid {first.pid})" in second.stderr and "Traceback" not in second.stderr
    finally:
        _down()
        first.wait(timeout=300)
    _nothing_left()


def test_the_province_stopped_by_down_while_it_comes_up_leaves_nothing():
    prefix = "eip"
    cleanup.remove_lab(prefix)
    proc = subprocess.Popen([str(EGOVLAB), "up", "dongthap", "--prefix", prefix, "--ovs-shards", "4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        # in the middle of building: the builder has started some of the nodes' processes
        while len(cleanup.lab_processes(prefix, helpers=False)) < 100 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert cleanup.lab_processes(prefix, helpers=False), "the province never began to build"
        assert _down(prefix).returncode == 0
        _, err = proc.communicate(timeout=300)
        assert "Traceback" not in err
        _nothing_left(prefix)
    finally:
        if proc.poll() is None:
            proc.kill()
        _down(prefix)
