"""NAPALM driver for egovlab's emulated devices, through the lab's control API.

    driver = napalm.get_network_driver("egovlab")
    with driver("h-cao-lanh:agg", "", TOKEN, optional_args={"lab": "eg"}) as device:
        device.get_facts()

hostname: a device of the lab (a switch as `site:role`, e.g. `h-cao-lanh:agg`, or a host's
scenario name, e.g. `web-dvc-1`); password: an API token (operator for ping, traceroute and
configuration); username: ignored. optional_args: `api` (default `$EGOVLAB_API` or
http://127.0.0.1:8765), `lab` (the lab's prefix, default `eg`).

Configuration is the lab's access policy, in the scenario's format: `load_merge_candidate`
adds flows, `load_replace_candidate` replaces them all; the lab's controller applies a commit
at once, on every switch; `rollback` restores the previous version.
"""
from __future__ import annotations

import os
import re
import ssl
from pathlib import Path

import httpx
from napalm.base import NetworkDriver
from napalm.base.exceptions import (CommitError, ConnectionClosedException, ConnectionException,
                                    MergeConfigException, ReplaceConfigException)

from egovlab import operations, params
from egovlab.inventory.errors import EgovlabError

DEFAULT_API = "http://127.0.0.1:8765"
# One TLS context for every connection: httpx builds a new one per client otherwise (about 25 ms
# of CPU each, which dominated gathering from a few hundred devices).
_TLS = ssl.create_default_context()


class EgovlabDriver(NetworkDriver):
    """A device of a running egovlab lab."""

    platform = "egovlab"

    def __init__(self, hostname: str, username: str, password: str, timeout: int = 60,
                 optional_args: dict | None = None):
        self.hostname, self.username, self.password, self.timeout = hostname, username, password, timeout
        args = optional_args or {}
        self.api = (args.get("api") or os.environ.get("EGOVLAB_API") or DEFAULT_API).rstrip("/")
        self.lab = args.get("lab", "eg")
        # the CLI's and the API's own rules for a prefix and a device name, so a bad one is
        # refused here with the same words instead of as an HTTP error
        try:
            operations.check_prefix(self.lab)
        except EgovlabError as exc:
            raise ConnectionException(f"optional_args.lab: {exc}") from None
        if not re.fullmatch(params.DEVICE_PATTERN, hostname):
            raise ConnectionException(f"hostname '{hostname}': not a device name of a lab (letters, digits, "
                                      f"'._:-', at most 80)")
        self.client: httpx.Client | None = None
        self.candidate: tuple[str, str] | None = None  # (mode, policy text)

    # -- connection ------------------------------------------------------------------------
    def open(self) -> None:
        self.client = httpx.Client(base_url=f"{self.api}/api/v1/labs/{self.lab}", timeout=self.timeout,
                                   headers={"Authorization": f"Bearer {self.password}"}, verify=_TLS)
        try:
            self._call("GET", f"/devices/{self.hostname}/facts", on_error=ConnectionException)
        except ConnectionException:
            self.close()
            raise

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def is_alive(self) -> dict:
        if self.client is None:
            return {"is_alive": False}
        try:
            return {"is_alive": self.client.get(f"{self.api}/healthz").status_code == 200}
        except httpx.HTTPError:
            return {"is_alive": False}

    def _call(self, method: str, path: str, json: dict | None = None, on_error=ConnectionException):
        if self.client is None:
            raise ConnectionClosedException(f"{self.hostname}: the connection is not open (call open())")
        try:
            r = self.client.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise ConnectionException(f"egovlab API at {self.api}: {exc}") from None
        if r.status_code == 401:
            raise ConnectionException(f"egovlab API at {self.api}: authentication failed ({_detail(r)})")
        if r.status_code == 404:
            raise ConnectionException(f"{self.hostname}: {_detail(r)}")
        if r.status_code >= 400:
            raise on_error(f"{self.hostname}: {_detail(r)}")
        return r.json()

    def _get(self, getter: str):
        return self._call("GET", f"/devices/{self.hostname}/{getter}")

    # -- getters ---------------------------------------------------------------------------
    def get_facts(self) -> dict:
        return self._get("facts")

    def get_interfaces(self) -> dict:
        return self._get("interfaces")

    def get_interfaces_ip(self) -> dict:
        return self._get("interfaces_ip")

    def get_interfaces_counters(self) -> dict:
        return self._get("interfaces_counters")

    def get_lldp_neighbors(self) -> dict:
        return self._get("lldp_neighbors")

    def get_lldp_neighbors_detail(self, interface: str = "") -> dict:
        detail = self._get("lldp_neighbors_detail")
        return {k: v for k, v in detail.items() if not interface or k == interface}

    def get_arp_table(self, vrf: str = "") -> list:
        return self._get("arp_table")

    def get_ipv6_neighbors_table(self) -> list:
        return self._get("ipv6_neighbors_table")

    def get_mac_address_table(self) -> list:
        return self._get("mac_address_table")

    def get_environment(self) -> dict:
        env = self._get("environment")
        env["cpu"] = {int(k): v for k, v in env["cpu"].items()}  # JSON keys are strings
        return env

    def get_config(self, retrieve: str = "all", full: bool = False, sanitized: bool = False,
                   format: str = "text") -> dict:
        config = self._get("config")
        if retrieve != "all":
            config = {k: (v if k == retrieve else "") for k, v in config.items()}
        if self.candidate and retrieve in ("all", "candidate"):
            config["candidate"] = self.candidate[1]
        return config

    # Callers pass None for what they leave out (nornir-napalm's napalm_ping sends vrf=None):
    # None is the default, as NAPALM's own signature has it.
    def ping(self, destination: str, source: str = "", ttl: int = 255, timeout: int = 2, size: int = 100,
             count: int = 5, vrf: str = "", source_interface: str = "") -> dict:
        return self._call("POST", f"/devices/{self.hostname}/ping",
                          json={"destination": destination, "source": source or "", "ttl": ttl or 255,
                                "timeout": timeout or 2, "size": 100 if size is None else size, "count": count or 5,
                                "vrf": vrf or ""})

    def traceroute(self, destination: str, source: str = "", ttl: int = 255, timeout: int = 2,
                   vrf: str = "") -> dict:
        result = self._call("POST", f"/devices/{self.hostname}/traceroute",
                            json={"destination": destination, "source": source or "", "ttl": min(ttl or 255, 64),
                                  "timeout": timeout or 2, "vrf": vrf or ""})
        if "success" in result:
            result["success"] = {int(hop): {"probes": {int(n): p for n, p in v["probes"].items()}}
                                 for hop, v in result["success"].items()}
        return result

    # -- configuration: the lab's access policy --------------------------------------------
    def _load(self, mode: str, filename: str | None, config: str | None, error) -> None:
        if filename:
            try:
                config = Path(filename).read_text()
            except OSError as exc:
                raise error(f"{filename}: {exc.strerror}") from None
        if not config:
            raise error("no candidate: give filename= or config=")
        self._call("POST", "/policy/compare", json={"policy": config, "mode": mode}, on_error=error)
        self.candidate = (mode, config)

    def load_merge_candidate(self, filename: str | None = None, config: str | None = None) -> None:
        self._load("merge", filename, config, MergeConfigException)

    def load_replace_candidate(self, filename: str | None = None, config: str | None = None) -> None:
        self._load("replace", filename, config, ReplaceConfigException)

    def compare_config(self) -> str:
        """The policy's diff, then the rules this device would change (other switches counted)."""
        if self.candidate is None:
            return ""
        mode, text = self.candidate
        diff = self._call("POST", "/policy/compare", json={"policy": text, "mode": mode, "device": self.hostname})
        out = diff["policy_diff"]
        for rules in diff["rules"].values():
            out += f"\n{rules}"
        if diff["changed_rules"]:
            out += (f"\n# {diff['changed_rules']} rule(s) change on {diff['changed_switches']} switch(es) of lab "
                    f"'{self.lab}'\n")
        return out

    def commit_config(self, message: str = "", revert_in: int | None = None) -> None:
        if self.candidate is None:
            raise CommitError("no candidate loaded")
        if revert_in is not None:
            raise NotImplementedError("commit confirm (revert_in) is not supported by egovlab")
        mode, text = self.candidate
        self._call("PUT", "/policy", json={"policy": text, "mode": mode}, on_error=CommitError)
        self.candidate = None

    def discard_config(self) -> None:
        self.candidate = None

    def rollback(self) -> None:
        self._call("POST", "/policy/rollback", on_error=CommitError)


def _detail(r: httpx.Response) -> str:
    try:
        return r.json().get("detail", r.text)
    except ValueError:
        return r.text
