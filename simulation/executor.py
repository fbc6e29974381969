"""Where the simulation's independent tasks run: this process, a pool of processes, or a Dask cluster.

Every run (replications, forecast years, stress steps, sensitivity samples) is a list of tasks,
each a module-level function applied to its own arguments, seeded from the run's seed by
numpy's SeedSequence before any task starts. Results come back in task order and are reduced
in the caller, so the same seed gives the same bytes whatever the executor.

    local              in this process, one task after the other
    process            a fork pool of this machine's cores (or --workers N)
    dask://HOST:PORT   an existing dask.distributed scheduler and its workers
    dask               a LocalCluster of --workers N processes on loopback
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
from typing import Callable, Iterator, Protocol

import numpy as np

from egovlab.inventory.errors import EgovlabError
from egovlab.topology.netns import signals_deferred

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def task_seeds(seed: int, n: int, stream: int = 0) -> list[int]:
    """n independent seeds for the tasks of one stream of a run (SeedSequence.spawn)."""
    children = np.random.SeedSequence(seed, spawn_key=(stream,)).spawn(n)
    return [int(c.generate_state(1, np.uint64)[0]) for c in children]


class Progress(Protocol):
    def start(self, label: str, total: int) -> None: ...
    def advance(self) -> None: ...


class _Silent:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self) -> None:
        pass


class Executor:
    """Runs fn over tasks and returns the results in task order."""

    name = "local"

    def __init__(self, progress: Progress | None = None):
        self.progress = progress or _Silent()

    def map(self, fn: Callable, tasks: list, label: str = "tasks") -> list:
        self.progress.start(label, len(tasks))
        out = [None] * len(tasks)
        for i, result in self._run(fn, tasks):
            out[i] = result
            self.progress.advance()
        return out

    def _run(self, fn: Callable, tasks: list) -> Iterator[tuple[int, object]]:
        """(task index, result) as each task finishes."""
        return enumerate(map(fn, tasks))


def _die_with_parent() -> None:
    """A worker that outlives its parent (killed, even with SIGKILL) would simulate on for nobody."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before the call above took effect
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})  # forked while held back


class ProcessExecutor(Executor):
    name = "process"

    def __init__(self, workers: int | None = None, progress: Progress | None = None):
        super().__init__(progress)
        self.workers = workers or os.cpu_count() or 1

    def _run(self, fn: Callable, tasks: list) -> Iterator:
        if len(tasks) <= 1 or self.workers == 1:
            yield from enumerate(map(fn, tasks))
            return
        # multiprocessing's Pool, not concurrent.futures': its terminate() on an exception (Ctrl-C,
        # SIGTERM) stops the workers at once instead of waiting for their tasks. Signals are held
        # back while it is made: one inside Pool() (its workers forked, its threads not yet
        # started) left a half-made pool nothing terminated, and simulate did not exit (CI, once).
        with signals_deferred():
            pool = multiprocessing.get_context("fork").Pool(min(self.workers, len(tasks)),
                                                            initializer=_die_with_parent)
        try:
            yield from enumerate(pool.imap(fn, tasks, chunksize=1))
        finally:
            pool.terminate()


class DaskExecutor(Executor):
    def __init__(self, client, progress: Progress | None = None):
        super().__init__(progress)
        self.client = client
        self.name = f"dask ({len(client.scheduler_info().get('workers', {}))} workers)"

    def _run(self, fn: Callable, tasks: list) -> Iterator[tuple[int, object]]:
        from dask.distributed import as_completed

        futures = self.client.map(fn, tasks, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        for future, result in as_completed(futures, with_results=True):
            yield index[future.key], result


def parse(spec: str) -> tuple[str, str | None]:
    """'local' | 'process' | 'dask' | 'dask://HOST:PORT' -> (kind, scheduler address)."""
    if spec in ("local", "process", "dask"):
        return spec, None
    if spec.startswith("dask://"):
        host, _, port = spec[len("dask://"):].rpartition(":")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return "dask", f"tcp://{host}:{port}"
    raise EgovlabError(f"--executor: expected local, process, dask or dask://HOST:PORT, got '{spec}'")


@contextlib.contextmanager
def open_executor(spec: str = "process", workers: int | None = None,
                  progress: Progress | None = None) -> Iterator[Executor]:
    """The executor named by spec, for the duration of a `with` block (a LocalCluster is stopped)."""
    kind, address = parse(spec)
    if workers is not None and workers < 1:
        raise EgovlabError(f"--workers: must be at least 1, got {workers}")
    if kind == "local":
        yield Executor(progress)
        return
    if kind == "process":
        yield ProcessExecutor(workers, progress)
        return
    from dask.distributed import Client, LocalCluster

    if address is None:
        # Loopback only, no dashboard: the cluster is this run's and nobody else's.
        with LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, worker_dashboard_address=None,
                          silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            yield DaskExecutor(client, progress)
        return
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as e:
        raise EgovlabError(f"--executor: no Dask scheduler answers at {address} ({e})") from None
    with client:
        yield DaskExecutor(client, progress)
