"""netns.signals_deferred and signals_ignored: an interrupt inside a deferred block is acted on at
its end, not inside it, even where other threads run (the controller relay's took the SIGTERM
`down` sent, and the KeyboardInterrupt came inside pyroute2's netlink call all the same: CI)."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from egovlab.topology import netns


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt  # as `egovlab` does for SIGTERM (cli.main)


@pytest.fixture
def sigterm_unwinds():
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def another_thread():
    """A thread that does not block the signals: the kernel may hand a process's signal to it."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    yield thread
    stop.set()
    thread.join()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_inside_the_block_is_raised_at_its_end_with_another_thread_running(sig, sigterm_unwinds,
                                                                                      another_thread):
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with netns.signals_deferred():
            os.kill(os.getpid(), sig)
            time.sleep(0.2)  # long enough for a handler to have run, were it going to
            reached.append("the block's end")
    assert reached == ["the block's end"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is _raise_interrupt
    assert not signal.pthread_sigmask(signal.SIG_BLOCK, []) & {signal.SIGINT, signal.SIGTERM}


def test_a_block_without_an_interrupt_raises_nothing_and_restores_the_handlers(sigterm_unwinds):
    with netns.signals_deferred():
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) >= {signal.SIGINT, signal.SIGTERM}
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is _raise_interrupt
    assert not signal.pthread_sigmask(signal.SIG_BLOCK, []) & {signal.SIGINT, signal.SIGTERM}


def test_an_interrupt_inside_an_ignoring_block_is_dropped(sigterm_unwinds, another_thread):
    with netns.signals_ignored():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)
    time.sleep(0.05)  # nothing pending comes after the block either
    assert signal.getsignal(signal.SIGTERM) is _raise_interrupt
