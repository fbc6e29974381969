"""One executor for every simulation: local, a process pool and a real Dask cluster give the same bytes."""
from __future__ import annotations

import math
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from egovlab.cli import cli
from egovlab.inventory.errors import EgovlabError
from egovlab.simulation import executor

DASK = Path(sys.executable).with_name("dask")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dask_cluster():
    """A `dask scheduler` and two `dask worker` processes on loopback, stopped whatever happens."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen([str(DASK), "worker", address, "--nthreads", "1", "--nworkers", "1",
                                           "--host", "127.0.0.1", "--no-dashboard"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from dask.distributed import Client
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield f"dask://127.0.0.1:{port}"
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_task_seeds_are_independent_of_the_executor_and_of_each_other():
    a = executor.task_seeds(7, 5, stream=1)
    assert a == executor.task_seeds(7, 5, stream=1)
    assert len(set(a)) == 5
    assert a != executor.task_seeds(7, 5, stream=2) and a != executor.task_seeds(8, 5, stream=1)
    assert executor.task_seeds(7, 3, stream=1) == a[:3]  # more tasks extend, never reshuffle


@pytest.mark.parametrize("bad", ["dask://", "dask://host", "dask://host:0", "dask://host:99999", "spark", ""])
def test_a_bad_executor_is_refused(bad):
    with pytest.raises(EgovlabError, match="--executor"):
        executor.parse(bad)


def test_the_executors_return_results_in_task_order(dask_cluster):
    # A function the workers can import (they do not see the tests' modules), slower for small x:
    # finishing order differs from task order.
    tasks = list(range(300, 0, -15))
    expected = [math.factorial(x) for x in tasks]
    for spec in ("local", "process", dask_cluster):
        with executor.open_executor(spec) as ex:
            assert ex.map(math.factorial, tasks) == expected, spec


@pytest.mark.slow
def test_simulate_and_dr_give_identical_bytes_on_every_executor(tmp_path, dask_cluster):
    outputs = {}
    for spec in ("local", "process", dask_cluster):
        d = tmp_path / spec.replace("/", "_").replace(":", "_")
        for args in (["simulate", "dongthap", "--replications", "3", "--horizon", "20d", "--peak-minutes", "3"],
                     ["dr", "dongthap", "--failures", "50", "--replications", "3"]):
            r = CliRunner().invoke(cli, [*args, "--seed", "11", "--executor", spec, "--out", str(d)])
            assert r.exit_code == 0, r.output
        outputs[spec] = ((d / "simulation.json").read_bytes(), (d / "dr.json").read_bytes())
    first = outputs["local"]
    assert all(v == first for v in outputs.values()), [k for k, v in outputs.items() if v != first]


def test_an_unreachable_scheduler_is_one_clear_line(tmp_path):
    port = _free_port()  # nothing listens there
    t0 = time.monotonic()
    r = CliRunner().invoke(cli, ["dr", "dongthap", "--failures", "10", "--replications", "2",
                                 "--executor", f"dask://127.0.0.1:{port}", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "no Dask scheduler answers" in r.output, r.output
    assert time.monotonic() - t0 < 60


def test_a_local_dask_cluster_of_workers_runs_and_stops(tmp_path):
    r = CliRunner().invoke(cli, ["dr", "dongthap", "--failures", "20", "--replications", "2", "--executor", "dask",
                                 "--workers", "2", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "dr.json").exists()


def test_an_interrupt_while_the_process_pool_is_being_made_still_ends_the_run_and_its_workers():
    """SIGINT at 0 to 40 ms after the map begins: inside Pool() (workers forked, its threads not
    yet started), or once it runs. Each time the run ends within seconds and no worker is left."""
    import os
    import signal
    import uuid

    code = ("import sys, time\nfrom egovlab.simulation.executor import ProcessExecutor\n"
            "print('go', flush=True)\nProcessExecutor(2).map(time.sleep, [30] * 4)\n")
    for delay_ms in range(0, 41, 4):
        marker = f"pool-{uuid.uuid4().hex}"
        proc = subprocess.Popen([sys.executable, "-c", code, marker], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout.readline().strip() == "go"
            time.sleep(delay_ms / 1000)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=20) != 0, f"interrupted {delay_ms} ms in, the run did not stop"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        deadline, left = time.monotonic() + 10, True
        while left and time.monotonic() < deadline:
            left = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline_has(p, marker)]
            time.sleep(0.05)
        assert not left, f"interrupted {delay_ms} ms in: workers {left} left"


def _cmdline_has(pid: str, marker: str) -> bool:
    try:
        return marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
