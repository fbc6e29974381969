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
    """pynetbox's `api.app.endpoint.create(body)`, remembering what it made."""

    def __init__(self):
        self.made: dict[str, list[dict]] = {}
        self.ids = itertools.count(1)
        self.known: set[int] = set()

    def __getattr__(self, app):
        outer = self

        class App:
            def __getattr__(self, endpoint):
                class Endpoint:
                    @staticmethod
                    def create(body):
                        refs = [v for k, v in body.items() if k in ("parent", "region", "manufacturer", "role",
                                                                     "device_type", "site", "device",
                                                                     "assigned_object_id")]
                        refs += [t["object_id"] for k in ("a_terminations", "b_terminations") for t in body.get(k, [])]
                        assert all(r in outer.known for r in refs), (app, endpoint, body)
                        made = type("Made", (), {"id": next(outer.ids)})()
                        outer.known.add(made.id)
                        outer.made.setdefault(f"{app}.{endpoint}", []).append(body)
                        return made
                return Endpoint()
        return App()


def test_push_creates_every_row_in_import_order_with_ids_for_names():
    sc = loader.load(SCENARIOS / "small-dc.yml")
    data = netbox.rows(sc, emulation_plan(sc))
    api = RecordingNetBox()
    counts = netbox.push(api, data, progress=lambda _: None)
    assert list(api.made) == [t.endpoint for t in netbox.TABLES if data[t.file]]
    assert counts == {t.file: len(data[t.file]) for t in netbox.TABLES}
    assert all(isinstance(s["ports"], list) and all(isinstance(p, int) for p in s["ports"])
               for s in api.made.get("ipam.services", []))


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
