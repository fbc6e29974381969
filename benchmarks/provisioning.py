#!/usr/bin/env python3
"""Provisioning the province's services with ansible-playbook: Mitogen's strategy (what `egovlab
deploy` uses) against plain Ansible's linear strategy (the baseline), same run, as root. Writes
benchmarks/results/provisioning.json.

Each way on a fresh province (one Open vSwitch daemon, under the controller): the first run
(everything changes) and the second (nothing may change), timed as ansible-playbook's wall time.

Usage: sudo .venv/bin/python benchmarks/provisioning.py
"""
from __future__ import annotations

import figures

PREFIX = "eh"


def provision(mitogen: bool) -> dict:
    from egovlab import lifecycle
    from egovlab.services import deploy

    strategy = deploy.mitogen_strategy
    if not mitogen:
        deploy.mitogen_strategy = lambda: {}
    try:
        with lifecycle.session("dongthap", lifecycle.spec(PREFIX)) as lab:
            pids = lab.pids
            _, first = deploy.deploy(lab.scenario, lab.plan, pids, progress=lambda *_: None)
            _, again = deploy.deploy(lab.scenario, lab.plan, pids, progress=lambda *_: None)
    finally:
        deploy.mitogen_strategy = strategy
    return {"first_s": round(first.seconds, 1), "first_changed": first.changed,
            "second_s": round(again.seconds, 1), "second_changed": again.changed}


def main() -> None:
    plain, fast = provision(False), provision(True)
    result = {"benchmark": "provisioning", "scenario": "dongthap", "mitogen_linear": fast,
              "baseline": {"what": "plain Ansible, linear strategy, same playbook and lab", **plain},
              "ratio_first": round(plain["first_s"] / fast["first_s"], 2),
              "ratio_second": round(plain["second_s"] / fast["second_s"], 2)}
    figures.write("provisioning", result)


if __name__ == "__main__":
    main()
