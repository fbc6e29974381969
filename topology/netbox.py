"""NetBox: the lab plan as NetBox bulk-import files (CSV, NetBox 4.1's import field names), in
the order NetBox needs them, and `push()` of the same rows to a NetBox through pynetbox.

The province is a region, each district a region inside it; every scenario site a site in its
district's region (or the province's); every Open vSwitch bridge and every host or server a
device; every planned port an interface carrying the lab's own interface name (what the NAPALM
driver reports); every lab link a cable; every subnet a prefix and every planned address an IP
address on its interface; every e-gov service a service on each server that runs it.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import netaddr

from egovlab.inventory.policy import Intent
from egovlab.inventory.scenario import Scenario
from egovlab.inventory.schema import SelectorSpec

from .clab import MTU
from .model import EmulationPlan


@dataclass(frozen=True)
class Table:
    file: str  # the import file, numbered in import order
    endpoint: str  # pynetbox's app.endpoint
    columns: tuple[str, ...]
    # column -> (the endpoint it names, the field it names it by): resolved to ids by push()
    references: tuple[tuple[str, str, str], ...] = ()


TABLES = (
    Table("01-regions.csv", "dcim.regions", ("name", "slug", "parent", "description"),
          (("parent", "dcim.regions", "name"),)),
    Table("02-sites.csv", "dcim.sites", ("name", "slug", "status", "region", "description"),
          (("region", "dcim.regions", "name"),)),
    Table("03-manufacturers.csv", "dcim.manufacturers", ("name", "slug")),
    Table("04-device-roles.csv", "dcim.device_roles", ("name", "slug", "color")),
    Table("05-device-types.csv", "dcim.device_types", ("manufacturer", "model", "slug", "u_height"),
          (("manufacturer", "dcim.manufacturers", "name"),)),
    Table("06-devices.csv", "dcim.devices", ("name", "role", "device_type", "site", "status", "description"),
          (("role", "dcim.device_roles", "name"), ("device_type", "dcim.device_types", "model"),
           ("site", "dcim.sites", "name"))),
    Table("07-interfaces.csv", "dcim.interfaces", ("device", "name", "type", "mtu", "speed", "mac_address",
                                                   "mgmt_only", "description"),
          (("device", "dcim.devices", "name"),)),
    Table("08-cables.csv", "dcim.cables", ("side_a_device", "side_a_type", "side_a_name", "side_b_device",
                                           "side_b_type", "side_b_name", "status", "label")),
    Table("09-prefixes.csv", "ipam.prefixes", ("prefix", "status", "site", "description"),
          (("site", "dcim.sites", "name"),)),
    Table("10-ip-addresses.csv", "ipam.ip_addresses", ("address", "status", "device", "interface", "dns_name")),
    Table("11-services.csv", "ipam.services", ("device", "name", "protocol", "ports", "description"),
          (("device", "dcim.devices", "name"),)),
)
TYPES = {"switch": ("Open vSwitch", "Open vSwitch bridge"), "host": ("Linux", "Linux host")}
ROLE_COLOURS = ("2196f3", "4caf50", "ff9800", "9c27b0", "f44336", "607d8b", "795548", "00bcd4", "cddc39", "e91e63")


def slug(name: str) -> str:
    out = "".join(c if c.isascii() and c.isalnum() else "-" for c in name.lower())
    return "-".join(p for p in out.split("-") if p)[:100] or "x"


def _interface_type(bandwidth: int) -> str:
    return {10**8: "100base-tx", 10**9: "1000base-t", 10**10: "10gbase-t", 25 * 10**9: "25gbase-x-sfp28",
            4 * 10**10: "40gbase-x-qsfpp", 10**11: "100gbase-x-qsfp28"}.get(bandwidth, "other")


def rows(sc: Scenario, plan: EmulationPlan) -> dict[str, list[dict]]:
    """Import file name -> its rows (column -> value), in import order."""
    province = sc.spec.title.split("(")[0].strip()[:100] or sc.name
    district_of = {name: (name if s.kind == "district" else s.parent if s.parent and sc.sites[s.parent].kind ==
                          "district" else None) for name, s in sc.sites.items()}
    out: dict[str, list[dict]] = {t.file: [] for t in TABLES}
    out["01-regions.csv"] = [{"name": province, "slug": slug(sc.name), "parent": "", "description": sc.spec.title}]
    out["01-regions.csv"] += [{"name": d, "slug": slug(d), "parent": province, "description": "district"}
                              for d in sc.sites if sc.sites[d].kind == "district"]
    used_sites = sorted({n.site for n in [*plan.hosts.values(), *plan.switches.values()]})
    out["02-sites.csv"] = [{"name": s, "slug": slug(s), "status": "active", "region": district_of[s] or province,
                            "description": f"{sc.sites[s].kind}; IPv6 {sc.stages[s]}"} for s in used_sites]
    out["03-manufacturers.csv"] = [{"name": m, "slug": slug(m)} for m, _ in TYPES.values()]
    role_of = {**{n: f"{s.role} switch" for n, s in plan.switches.items()},
               **{n: next((r.server.role for r in sc.servers() if r.name == h.label), h.role) for n, h in
                  plan.hosts.items()}}
    roles = sorted(set(role_of.values()))
    out["04-device-roles.csv"] = [{"name": r, "slug": slug(r), "color": ROLE_COLOURS[i % len(ROLE_COLOURS)]}
                                  for i, r in enumerate(roles)]
    out["05-device-types.csv"] = [{"manufacturer": m, "model": model, "slug": slug(model), "u_height": 0}
                                  for m, model in TYPES.values()]
    name_of = {**{n: s.label for n, s in plan.switches.items()}, **{n: h.label for n, h in plan.hosts.items()}}
    for n in [*plan.switches, *plan.hosts]:
        node = plan.switches.get(n) or plan.hosts[n]
        zone = f", zone {node.zone}" if node.zone else ""
        out["06-devices.csv"].append({"name": name_of[n], "role": role_of[n],
                                      "device_type": TYPES["switch" if n in plan.switches else "host"][1],
                                      "site": node.site, "status": "active", "description": f"lab node {n}{zone}"})
    prefixes: dict[netaddr.IPNetwork, str] = {}
    for link in plan.links:
        for n in (link.a, link.b):
            host = plan.hosts.get(n)
            mgmt = link.kind == "mgmt"
            mac = (host.mgmt_mac if mgmt else host.mac) if host else ""
            out["07-interfaces.csv"].append({"device": name_of[n], "name": link.intf(n),
                                             "type": _interface_type(link.bandwidth), "mtu": MTU,
                                             "speed": link.bandwidth // 1000, "mac_address": mac or "",
                                             "mgmt_only": str(mgmt).lower(),
                                             "description": link.scenario_link or f"{link.kind} link"})
            if host is None:
                continue
            for addr in ((host.mgmt_ipv4, host.mgmt_ipv6) if mgmt else (host.ipv4, host.ipv6)):
                if addr is not None:
                    prefixes.setdefault(netaddr.IPNetwork(str(addr)).cidr, host.site)
                    out["10-ip-addresses.csv"].append({"address": str(addr), "status": "active",
                                                       "device": host.label, "interface": link.intf(n),
                                                       "dns_name": slug(host.label)})
        out["08-cables.csv"].append({"side_a_device": name_of[link.a], "side_a_type": "dcim.interface",
                                     "side_a_name": link.intf(link.a), "side_b_device": name_of[link.b],
                                     "side_b_type": "dcim.interface", "side_b_name": link.intf(link.b),
                                     "status": "connected", "label": link.scenario_link or ""})
    out["09-prefixes.csv"] = [{"prefix": str(p), "status": "active", "site": site, "description": f"{site} subnet"}
                              for p, site in sorted(prefixes.items(), key=lambda x: (x[0].version, x[0]))]
    intent, in_lab = Intent(sc), {h.label for h in plan.hosts.values()}
    for name, svc in sc.spec.services.items():
        by_protocol: dict[str, list[str]] = {}
        for port in svc.ports:
            proto, _, number = port.partition("/")
            if number:
                by_protocol.setdefault(proto, []).append(number)
        for label in sorted(intent.selected(SelectorSpec.parse(f"service:{name}")) & in_lab):
            for proto, numbers in by_protocol.items():
                out["11-services.csv"].append({"device": label, "name": name, "protocol": proto,
                                               "ports": ",".join(numbers), "description": svc.title})
    return out


def texts(data: dict[str, list[dict]]) -> dict[str, str]:
    """Import file name -> CSV text (a header with NetBox's field names, then the rows)."""
    out = {}
    for table in TABLES:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=table.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(data[table.file])
        out[table.file] = buf.getvalue()
    return out


def natural_key(table: Table, row: dict, ids: dict[tuple, int]) -> dict:
    """The filter that finds a row's object in a NetBox that has it already: the fields NetBox
    keeps unique for it (cables are found by their A end instead: `push`)."""
    ep = table.endpoint
    if ep in ("dcim.regions", "dcim.sites", "dcim.manufacturers", "dcim.device_roles", "dcim.device_types"):
        return {"slug": row["slug"]}
    if ep == "dcim.devices":
        return {"name": row["name"], "site_id": ids[("dcim.sites", row["site"])]}
    if ep == "dcim.interfaces":
        return {"device_id": ids[("dcim.devices", row["device"])], "name": row["name"]}
    if ep == "ipam.services":
        return {"device_id": ids[("dcim.devices", row["device"])], "name": row["name"], "protocol": row["protocol"]}
    field = {"ipam.prefixes": "prefix", "ipam.ip_addresses": "address"}[ep]
    return {field: row[field]}


def _body(table: Table, row: dict, ids: dict[tuple, int]) -> dict:
    """The row as NetBox's REST API takes it: names resolved to the ids NetBox gave them."""
    body = {k: v for k, v in row.items() if v not in ("", None)}
    for column, target, _ in table.references:
        if column in body:
            body[column] = ids[(target, body[column])]
    if table.endpoint == "dcim.cables":
        return {"status": body["status"], "label": body.get("label", ""),
                "a_terminations": [{"object_type": "dcim.interface",
                                    "object_id": ids[("iface", row["side_a_device"], row["side_a_name"])]}],
                "b_terminations": [{"object_type": "dcim.interface",
                                    "object_id": ids[("iface", row["side_b_device"], row["side_b_name"])]}]}
    if table.endpoint == "ipam.ip_addresses":
        return {"address": row["address"], "status": row["status"], "dns_name": row["dns_name"],
                "assigned_object_type": "dcim.interface",
                "assigned_object_id": ids[("iface", row["device"], row["interface"])]}
    if table.endpoint == "ipam.services":
        body["ports"] = [int(p) for p in row["ports"].split(",")]
    elif table.endpoint == "dcim.interfaces":
        body["mgmt_only"] = row["mgmt_only"] == "true"
    return body


def push(api, data: dict[str, list[dict]], progress=print) -> dict[str, dict[str, int]]:
    """Make a NetBox hold the rows, through pynetbox (`api = pynetbox.api(url, token=...)`), in
    import order: each row's object found by its natural key (`natural_key`) and updated where it
    differs, or created; a cable whose A end is cabled already is kept. So a second push changes
    nothing, and a push after the scenario changed updates what changed. Returns per file how many
    rows were created, updated and unchanged. Not tested against a NetBox here: none can run on
    this machine (the files, and the id resolution against a stand-in, are what the tests check)."""
    ids: dict[tuple, int] = {}
    counts: dict[str, dict[str, int]] = {}
    for table in TABLES:
        app, name = table.endpoint.split(".")
        endpoint = getattr(getattr(api, app), name)
        tally = counts[table.file] = {"created": 0, "updated": 0, "unchanged": 0}
        for row in data[table.file]:
            body = _body(table, row, ids)
            if table.endpoint == "dcim.cables":
                end = api.dcim.interfaces.get(body["a_terminations"][0]["object_id"])
                if end is not None and getattr(end, "cable", None):
                    tally["unchanged"] += 1
                    continue
                found = None
            else:
                found = endpoint.get(**natural_key(table, row, ids))
            if found is None:
                found = endpoint.create(body)
                tally["created"] += 1
            else:
                tally["updated" if found.update(body) else "unchanged"] += 1
            key = ("iface", row["device"], row["name"]) if table.endpoint == "dcim.interfaces" else \
                (table.endpoint, row.get("name") or row.get("model") or row.get("prefix") or row.get("address"))
            ids[key] = found.id
        progress(f"{table.endpoint}: {tally['created']} created, {tally['updated']} updated, "
                 f"{tally['unchanged']} unchanged")
    return counts
