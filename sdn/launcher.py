"""Start the os-ken controller with the egovlab app (os-ken 4.x ships no osken-manager).

Run as `python -m egovlab.sdn.launcher SCENARIO --port N --prefix P [--hosts-per-site K]` in
a fresh interpreter: eventlet must patch the standard library before anything else imports it.
"""
from __future__ import annotations

import sys

LISTEN_BACKLOG = 1024  # pending OpenFlow connections (the kernel caps it at net.core.somaxconn)


def main(argv: list[str]) -> None:
    import eventlet

    eventlet.monkey_patch()
    import argparse

    parser = argparse.ArgumentParser(prog="egovlab-controller")
    parser.add_argument("scenario")
    parser.add_argument("--port", type=int, default=6653)
    parser.add_argument("--prefix", default="eg")
    parser.add_argument("--hosts-per-site", type=int, default=None)
    parser.add_argument("--metrics-port", type=int, default=None)
    args, _ = parser.parse_known_args(argv)  # extra arguments (egovlab-lab=PREFIX) only mark the process

    import functools

    from os_ken import cfg
    from os_ken.base.app_manager import AppManager
    from os_ken.lib import hub

    # os-ken listens with eventlet's default backlog of 50: 210 switches reconnecting at once
    # overflowed it (TcpExtListenOverflows), their SYNs were dropped, and Open vSwitch timed the
    # connections out and backed off for seconds.
    hub.listen = functools.partial(eventlet.listen, backlog=LISTEN_BACKLOG)

    from egovlab.sdn import app

    app.CONFIG.update(scenario=args.scenario, prefix=args.prefix, hosts_per_site=args.hosts_per_site,
                      metrics_port=args.metrics_port)
    cfg.CONF(args=["--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", str(args.port)], project="os_ken")
    AppManager.run_apps(["egovlab.sdn.app"])


def command(scenario: str, *, port: int, prefix: str, hosts_per_site: int | None,
            metrics_port: int | None = None) -> list[str]:
    argv = [sys.executable, "-W", "ignore::DeprecationWarning", "-m", "egovlab.sdn.launcher", scenario,
            "--port", str(port), "--prefix", prefix, f"egovlab-lab={prefix}"]
    if hosts_per_site is not None:
        argv += ["--hosts-per-site", str(hosts_per_site)]
    if metrics_port:
        argv += ["--metrics-port", str(metrics_port)]
    return argv


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(scenario: str, *, prefix: str, hosts_per_site: int | None, log: str = "/dev/null",
          port: int | None = None, metrics_port: int | None = None, timeout_s: float = 60):
    """Start the controller in the background on 127.0.0.1 and wait until it listens.

    It carries the lab's marker, so `egovlab down` and a failed bring-up remove it. Its Prometheus
    metrics go to `metrics_port` (a free one by default; controller.json names the URL).
    Returns (process, port).
    """
    import socket
    import subprocess
    import time

    from egovlab.topology.state import LabError, state_dir

    port = port or free_port()
    metrics_port = metrics_port or free_port()
    (state_dir(prefix) / "controller.json").unlink(missing_ok=True)
    with open(log, "w") as out:
        proc = subprocess.Popen(command(scenario, port=port, prefix=prefix, hosts_per_site=hosts_per_site,
                                        metrics_port=metrics_port),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LabError(f"the controller exited (log {log})")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return proc, port
            time.sleep(0.2)
        raise LabError(f"the controller did not listen within {timeout_s:.0f} s (log {log})")
    except BaseException:  # failed, too slow, or interrupted while waiting: the caller never gets it
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise


def status(prefix: str) -> dict | None:
    """What the lab's controller last reported (controller.json: switches programmed, rules, metrics
    URL), or None when the lab has no egovlab controller."""
    import json

    from egovlab.topology.state import state_dir

    try:
        return json.loads((state_dir(prefix) / "controller.json").read_text())
    except (OSError, ValueError):
        return None


def control(prefix: str, call: str, body: dict, timeout_s: float = 120) -> dict:
    """A control call to the lab's own controller (`reload`, `audit`; see sdn/metrics.py), with
    the secret the controller left in the lab's state."""
    import httpx

    from egovlab.topology.state import LabError, state_dir

    current, secret = status(prefix), state_dir(prefix) / "controller.secret"
    if current is None or not current.get("metrics") or not secret.exists():
        raise LabError(f"lab '{prefix}' has no egovlab controller (up --standalone?)")
    url = current["metrics"].rsplit("/", 1)[0] + f"/{call}"
    try:
        r = httpx.post(url, json=body, headers={"X-Egovlab-Secret": secret.read_text()}, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise LabError(f"the controller of lab '{prefix}' did not answer: {exc}") from None
    if r.status_code != 200:
        raise LabError(f"the controller refused the {call}: {r.json().get('error', r.text)}")
    return r.json()


def wait_programmed(prefix: str, switches: int, *, since: float = 0.0, timeout_s: float = 300) -> dict:
    """Until the controller reports every switch programmed (after `since`, a UNIX time)."""
    import time

    from egovlab.topology.state import LabError, state_dir

    path = state_dir(prefix) / "controller.json"
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        current = status(prefix)
        try:
            if current and len(current["installed"]) >= switches and path.stat().st_mtime >= since:
                current["seconds"] = round(time.monotonic() - t0, 2)
                return current
        except (OSError, KeyError):
            pass
        time.sleep(0.25)
    raise LabError(f"the controller did not program all {switches} switches within {timeout_s:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
