"""Synthetic provinces of any size, for benchmarks and scale tests.

Shaped like the real one: two cores, a provincial and a backup DC, departments on the core,
dual-homed districts each with its communes. Addresses come from large pools that are not
routed anywhere (RFC 6598 shared space for IPv4, the documentation prefix for IPv6).
"""
from __future__ import annotations

import yaml


def synthetic_province(districts: int, communes_per_district: int, departments: int = 0,
                       hosts_per_site: int | None = None) -> dict:
    sites: dict = {
        "core-1": {"kind": "core"},
        "core-2": {"kind": "core", "uplinks": [{"to": "core-1", "bandwidth": "1Gbps"}]},
        "provincial-dc": {
            "kind": "provincial-dc",
            "uplinks": [{"to": "core-1", "bandwidth": "1Gbps"}, {"to": "core-2", "bandwidth": "1Gbps", "role": "backup"}],
            "zones": {"dmz": {"servers": {"web-1": {"role": "web", "runs": ["portal"]}}},
                      "db": {"servers": {"db-1": {"role": "db", "runs": ["csdl"]}}}},
        },
        "backup-dc": {
            "kind": "backup-dc",
            "uplinks": [{"to": "core-2", "bandwidth": "1Gbps"}, {"to": "core-1", "bandwidth": "1Gbps", "role": "backup"}],
            "zones": {"dmz": {"servers": {"bk-web-1": {"role": "web", "runs": ["portal"]}}},
                      "db": {"servers": {"bk-db-1": {"role": "db", "runs": ["csdl"]}}}},
        },
    }
    extra = {} if hosts_per_site is None else {"hosts": hosts_per_site}
    for i in range(departments):
        sites[f"dept-{i:03d}"] = {"kind": "department", "parent": "core-1", **extra}
    for d in range(districts):
        sites[f"dist-{d:03d}"] = {
            "kind": "district",
            "uplinks": [{"to": f"core-{1 + d % 2}"}, {"to": f"core-{2 - d % 2}", "role": "backup"}],
            "communes": {"count": communes_per_district, "basis": "assumption", "ref": "synthetic", **extra},
            **extra,
        }
    return {
        "scenario": f"synthetic-{districts}x{communes_per_district}",
        "addressing": {"ipv4_pools": ["100.64.0.0/10"], "ipv4_link_pool": "198.18.0.0/15",
                       "ipv6_prefix": "2001:db8::/36"},
        "ipv6": {"default_stage": "dual-stack"},
        "sites": sites,
        "services": {
            "portal": {"zone": "dmz", "ports": ["tcp/443"], "depends_on": ["csdl"],
                       "placement": {"primary": "provincial-dc", "backup": "backup-dc"}},
            "csdl": {"zone": "db", "ports": ["tcp/5432"], "placement": {"primary": "provincial-dc", "backup": "backup-dc"}},
        },
        "policy": {"allow": [{"from": ["kind:district", "kind:commune"], "to": "service:portal"},
                             {"from": "zone:dmz", "to": "service:csdl"}]},
    }


def synthetic_yaml(*args, **kwargs) -> str:
    return yaml.safe_dump(synthetic_province(*args, **kwargs), sort_keys=False)
