"""Start the os-ken controller with the egovlab app (os-ken 4.x ships no osken-manager).

Run as `python -m egovlab.sdn.launcher SCENARIO --port N --prefix P [--hosts-per-site K]` in
a fresh interpreter: eventlet must patch the standard library before anything else imports it.
"""
from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    import eventlet

    eventlet.monkey_patch()
    import argparse

    parser = argparse.ArgumentParser(prog="egovlab-controller")
    parser.add_argument("scenario")
    parser.add_argument("--port", type=int, default=6653)
    parser.add_argument("--prefix", default="eg")
    parser.add_argument("--hosts-per-site", type=int, default=None)
    args, _ = parser.parse_known_args(argv)  # extra arguments (egovlab-lab=PREFIX) only mark the process

    from os_ken import cfg
    from os_ken.base.app_manager import AppManager

    from egovlab.sdn import app

    app.CONFIG.update(scenario=args.scenario, prefix=args.prefix, hosts_per_site=args.hosts_per_site)
    cfg.CONF(args=["--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", str(args.port)], project="os_ken")
    AppManager.run_apps(["egovlab.sdn.app"])


def command(scenario: str, *, port: int, prefix: str, hosts_per_site: int | None) -> list[str]:
    argv = [sys.executable, "-W", "ignore::DeprecationWarning", "-m", "egovlab.sdn.launcher", scenario,
            "--port", str(port), "--prefix", prefix, f"egovlab-lab={prefix}"]
    if hosts_per_site is not None:
        argv += ["--hosts-per-site", str(hosts_per_site)]
    return argv


if __name__ == "__main__":
    main(sys.argv[1:])
