"""For the benchmarks: `egovlab serve` on a free port with a lab brought up through it (as root)."""
from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
EGOVLAB = ROOT / ".venv" / "bin" / "egovlab"


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


@contextlib.contextmanager
def served_lab(prefix: str, scenario: str = "dongthap"):
    """Yields (API URL, operator token, seconds the lab took to come up through the API)."""
    if os.geteuid() != 0:
        sys.exit("run as root (the lab needs it)")
    from egovlab import lifecycle
    from egovlab.sdn import launcher

    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # so that `finally` removes the lab
    token = secrets.token_urlsafe(32)
    headers = {"Authorization": f"Bearer {token}"}
    port = launcher.free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen([str(EGOVLAB), "serve", "--port", str(port), "--data-dir", tmp],
                                  env={**os.environ, "EGOVLAB_API_TOKENS": f"operator:{token}"})
        try:
            wait_up(f"{url}/healthz")
            t0 = time.perf_counter()
            job = httpx.put(f"{url}/api/v1/labs/{prefix}", json={"scenario": scenario}, headers=headers).json()
            while job["state"] == "running":
                time.sleep(1)
                job = httpx.get(f"{url}/api/v1/jobs/{job['id']}", headers=headers).json()
            if job["state"] != "succeeded":
                raise RuntimeError("\n".join(job["log_tail"]))
            yield url, token, round(time.perf_counter() - t0, 1)
        finally:
            server.terminate()
            server.wait(timeout=30)
            lifecycle.stop(prefix)
