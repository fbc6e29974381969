"""`egovlab export netbox`: NetBox bulk-import files in import order (pure). No NetBox server runs
on this machine, so `--push` is checked against a recording stand-in for pynetbox's API that
hands out ids and refuses a reference to an id it never handed out."""
from __future__ import annotations

import csv
import io
import itertools
import subprocess

import netaddr
import pytest

from egovlab.inventory import loader
from egovlab.topology import netbox
from egovlab.topology.model import emulation_plan

from .conftest import DONGTHAP, EGOVLAB, SCENARIOS

SCENARIO_FILES = [DONGTHAP, *sorted(SCENARIOS.glob("*.yml"))]


@pytest.fixture(scope="module", params=SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def exported(request):
    sc = loader.load(request.param)
    plan = emulation_plan(sc)
    return sc, plan, netbox.rows(sc, plan)


def test_every_reference_names_an_object_defined_earlier_in_import_order(exported):
    _, _, data = exported
    defined: set[tuple] = set()
    for table in netbox.TABLES:
        for row in data[table.file]:
            for column, target, _ in table.references:
                assert not row[column] or (target, row[column]) in defined, (table.file, column, row)
            ends = {"08-cables.csv": [(row.get("side_a_device"), row.get("side_a_name")),
                                      (row.get("side_b_device"), row.get("side_b_name"))],
                    "10-ip-addresses.csv": [(row.get("device"), row.get("interface"))]}.get(table.file, [])
            assert all(("iface", *end) in defined for end in ends), (table.file, row)
            defined.add((table.endpoint, row.get("name") or row.get("model") or row.get("prefix")))
            if table.endpoint == "dcim.interfaces":  # (an earlier row of the same file counts: NetBox
                defined.add(("iface", row["device"], row["name"]))  # imports a file row by row)


def test_every_address_is_inside_a_prefix_and_the_counts_are_the_plans(exported):
    sc, plan, data = exported
    prefixes = netaddr.IPSet(r["prefix"] for r in data["09-prefixes.csv"])
    assert all(netaddr.IPNetwork(r["address"]).ip in prefixes for r in data["10-ip-addresses.csv"])
    assert all(netaddr.IPNetwork(r["address"]).prefixlen == netaddr.IPNetwork(p["prefix"]).prefixlen
               for r in data["10-ip-addresses.csv"] for p in data["09-prefixes.csv"]
               if netaddr.IPNetwork(r["address"]).ip in netaddr.IPNetwork(p["prefix"]))
    assert len(data["06-devices.csv"]) == len(plan.hosts) + len(plan.switches)
    assert len(data["07-interfaces.csv"]) == 2 * len(plan.links) and len(data["08-cables.csv"]) == len(plan.links)
    planned = [a for h in plan.hosts.values() for a in (h.ipv4, h.ipv6, h.mgmt_ipv4, h.mgmt_ipv6) if a is not None]
    assert sorted(r["address"] for r in data["10-ip-addresses.csv"]) == sorted(map(str, planned))
    names = [(r["device"], r["name"]) for r in data["07-interfaces.csv"]]
    assert len(names) == len(set(names))
    assert {r["site"] for r in data["06-devices.csv"]} <= {r["name"] for r in data["02-sites.csv"]}


def test_the_files_are_csv_with_netboxs_field_names(exported):
    _, _, data = exported
    for name, text in netbox.texts(data).items():
        table = next(t for t in netbox.TABLES if t.file == name)
        reader = csv.DictReader(io.StringIO(text))
        assert tuple(reader.fieldnames) == table.columns
        assert list(reader) == [{k: str(v) for k, v in row.items()} for row in data[name]]


def test_the_province_has_its_districts_as_regions_and_its_services_on_their_servers(dongthap):
    data = netbox.rows(dongthap, emulation_plan(dongthap))
    districts = {n for n, s in dongthap.sites.items() if s.kind == "district"}
    assert {r["name"] for r in data["01-regions.csv"][1:]} == districts
    communes = [r for r in data["02-sites.csv"] if dongthap.sites[r["name"]].kind == "commune"]
    assert communes and all(r["region"] in districts for r in communes)
    portal = {r["device"] for r in data["11-services.csv"] if r["name"] == "cong-dvc"}
    assert {"web-dvc-1", "bk-web-dvc-1"} <= portal
    assert all(r["protocol"] in ("tcp", "udp") and r["ports"] for r in data["11-services.csv"])


class RecordingNetBox:
    """A stand-in for pynetbox's API (no NetBox server can run on this machine): `create`, `get`
    by filters or by id, and a record's `update`, over objects it keeps; it refuses a body that
    names an id it never gave out, and marks the interfaces a cable ends on as cabled."""

    REFS = ("parent", "region", "manufacturer", "role", "device_type", "site", "device", "assigned_object_id")

    def __init__(self):
        self.objects: dict[str, list] = {}  # app.endpoint -> its records
        self.by_id: dict[int, object] = {}
        self.ids = itertools.count(1)
        self.calls = {"create": 0, "update": 0}

    def __getattr__(self, app):
        outer = self

        class Record:
            def __init__(self, body):
                self.id, self.body, self.cable = next(outer.ids), dict(body), None

            def update(self, body):
                changed = any(self.body.get(k) != v for k, v in body.items())
                if changed:
                    outer.calls["update"] += 1
                    self.body.update(body)
                return changed

        class App:
            def __getattr__(self, endpoint):
                kind = f"{app}.{endpoint}"

                class Endpoint:
                    @staticmethod
                    def create(body):
                        refs = [v for k, v in body.items() if k in outer.REFS]
                        refs += [t["object_id"] for k in ("a_terminations", "b_terminations") for t in body.get(k, [])]
                        assert all(r in outer.by_id for r in refs), (kind, body)
                        record = Record(body)
                        for t in body.get("a_terminations", []) + body.get("b_terminations", []):
                            outer.by_id[t["object_id"]].cable = record.id
                        outer.objects.setdefault(kind, []).append(record)
                        outer.by_id[record.id] = record
                        outer.calls["create"] += 1
                        return record

                    @staticmethod
                    def get(*key, **filters):
                        if key:
                            return outer.by_id.get(key[0])
                        found = [r for r in outer.objects.get(kind, [])
                                 if all(r.body.get(k.removesuffix("_id")) == v for k, v in filters.items())]
                        assert len(found) <= 1, (kind, filters)  # pynetbox's get raises on several
                        return found[0] if found else None
                return Endpoint()
        return App()


def test_push_makes_every_row_in_import_order_and_a_second_push_changes_nothing():
    sc = loader.load(SCENARIOS / "small-dc.yml")
    data = netbox.rows(sc, emulation_plan(sc))
    api = RecordingNetBox()
    counts = netbox.push(api, data, progress=lambda _: None)
    assert list(api.objects) == [t.endpoint for t in netbox.TABLES if data[t.file]]
    assert counts == {t.file: {"created": len(data[t.file]), "updated": 0, "unchanged": 0} for t in netbox.TABLES}
    assert all(isinstance(s.body["ports"], list) and all(isinstance(p, int) for p in s.body["ports"])
               for s in api.objects.get("ipam.services", []))
    made = api.calls["create"]
    again = netbox.push(api, data, progress=lambda _: None)
    assert api.calls == {"create": made, "update": 0}
    assert again == {t.file: {"created": 0, "updated": 0, "unchanged": len(data[t.file])} for t in netbox.TABLES}
    # the scenario changed: one device's description, one new prefix; exactly those move
    data["06-devices.csv"][0]["description"] = "moved to rack 2"
    data["09-prefixes.csv"].append({"prefix": "198.18.250.0/24", "status": "active",
                                    "site": data["09-prefixes.csv"][0]["site"], "description": "new"})
    third = netbox.push(api, data, progress=lambda _: None)
    assert third["06-devices.csv"] == {"created": 0, "updated": 1, "unchanged": len(data["06-devices.csv"]) - 1}
    assert third["09-prefixes.csv"]["created"] == 1 and api.calls["update"] == 1


def test_the_cli_writes_the_files_and_refuses_bad_arguments(tmp_path):
    r = subprocess.run([str(EGOVLAB), "export", "netbox", str(SCENARIOS / "small-dc.yml"), "-o", str(tmp_path / "nb")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "nb").iterdir()) == [t.file for t in netbox.TABLES]
    r = subprocess.run([str(EGOVLAB), "export", "netbox", "dongthap", "--push", "http://127.0.0.1:9"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--push needs --token-file" in r.stderr, r.stderr
    (tmp_path / "file").write_text("")
    r = subprocess.run([str(EGOVLAB), "export", "netbox", "dongthap", "-o", str(tmp_path / "file" / "nb")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot write" in r.stderr and "Traceback" not in r.stderr, r.stderr
