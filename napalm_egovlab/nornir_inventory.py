"""A Nornir inventory of a running egovlab lab: every device, with NAPALM connection options.

    nr = InitNornir(runner={"plugin": "threaded", "options": {"num_workers": 20}},
                    inventory={"plugin": "EgovlabInventory",
                               "options": {"lab": "eg", "token": TOKEN, "api": "http://127.0.0.1:8765"}})
    nr.run(task=napalm_get, getters=["facts", "lldp_neighbors"])

Each host is a device of the lab (platform `egovlab`, the token as its password); its data holds
the device's kind (switch or host), role, site and zone, so `nr.filter(kind="switch")` works.
"""
from __future__ import annotations

import os

import httpx
from nornir.core.inventory import ConnectionOptions, Defaults, Groups, Host, Hosts, Inventory

from .egovlab import DEFAULT_API


class EgovlabInventory:
    def __init__(self, lab: str = "eg", token: str | None = None, api: str | None = None, timeout: float = 60):
        self.lab, self.timeout = lab, timeout
        self.api = (api or os.environ.get("EGOVLAB_API") or DEFAULT_API).rstrip("/")
        self.token = token or os.environ.get("EGOVLAB_TOKEN", "")

    def load(self) -> Inventory:
        r = httpx.get(f"{self.api}/api/v1/labs/{self.lab}/devices", timeout=self.timeout,
                      headers={"Authorization": f"Bearer {self.token}"})
        r.raise_for_status()
        options = {"napalm": ConnectionOptions(extras={"optional_args": {"lab": self.lab, "api": self.api},
                                                       "timeout": self.timeout})}
        hosts = Hosts()
        for d in r.json():
            hosts[d["name"]] = Host(name=d["name"], hostname=d["name"], username="", password=self.token,
                                    platform="egovlab", data=d, connection_options=options)
        return Inventory(hosts=hosts, groups=Groups(), defaults=Defaults())
