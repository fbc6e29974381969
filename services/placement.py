"""Which emulated server runs what, and the Ansible inventory that says so (pure: no lab needed).

Per data centre (the provincial DC, and the backup DC as its standby), the first server of each
tier of the core flow: the public-service portal (nginx + portal app, DMZ), the one-stop office,
document management and LGSP (internal zone), and PostgreSQL (DB zone: primary in the provincial
DC, streaming standby in the backup DC). The national NGSP stand-in runs on the national site.
Ansible reaches each server on its out-of-band management address through its DC's bastion.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import netaddr

from egovlab.inventory.errors import EgovlabError
from egovlab.inventory.scenario import Scenario
from egovlab.topology.model import EmulationPlan, HostNode

# the tiers of the core flow, by scenario service name (csdl: PostgreSQL)
PORTAL = "cong-dvc"  # the tier citizens reach, through the service address
TIERS = (PORTAL, "mot-cua", "qlvb", "lgsp", "csdl")
PORTAL_APP_PORT = 8000  # the portal app behind nginx, on the web host's loopback


@dataclass
class Site:
    """One DC's deployment: tier -> server label, and its bastion."""

    dc: str
    servers: dict[str, str] = field(default_factory=dict)
    bastion: str = ""


@dataclass
class Deployment:
    primary: Site
    standby: Site
    ngsp: str
    replication: str  # sync | async
    service_address: str  # the portal's address citizens use; the standby takes it over
    service_address6: str | None = None  # ... and its IPv6 one, where the portal has one

    def hosts(self) -> list[str]:
        return [*self.primary.servers.values(), *self.standby.servers.values()]

    def service_addresses(self) -> dict[int, str]:
        """IP version -> the portal's service address in it."""
        return {4: self.service_address, **({6: self.service_address6} if self.service_address6 else {})}

    def url(self, version: int = 4) -> str:
        """The portal's base URL citizens use in that IP version."""
        address = self.service_addresses()[version]
        return f"https://[{address}]" if version == 6 else f"https://{address}"


def service_port(sc: Scenario, service: str) -> int:
    for p in sc.spec.services[service].ports:
        if p.startswith("tcp/"):
            return int(p[4:])
    raise EgovlabError(f"service '{service}' has no TCP port to serve on")


def _site(sc: Scenario, plan: EmulationPlan, dc: str) -> Site:
    site = Site(dc)
    servers = [h for h in plan.hosts.values() if h.site == dc and h.zone]
    runs = {r.name: r.server for r in sc.servers()}
    for tier in TIERS:
        match = next((h.label for h in servers if tier in runs[h.label].runs), None)
        if match is None:
            raise EgovlabError(f"{dc}: no server runs '{tier}': the drill needs one per tier in each DC")
        site.servers[tier] = match
    mgmt = [h for h in servers if h.zone == "mgmt" and h.mgmt_ipv4]
    if not mgmt:
        raise EgovlabError(f"{dc}: no management-zone server to act as the bastion")
    site.bastion = next((h.label for h in mgmt if "bastion" in runs[h.label].role.lower()), mgmt[0].label)
    return site


def plan_deployment(sc: Scenario, plan: EmulationPlan, replication: str | None = None) -> Deployment:
    kinds = {name: s.kind for name, s in sc.sites.items()}
    primary = next((d for d in sc.data_centres() if kinds[d] == "provincial-dc"), None)
    standby = next((d for d in sc.data_centres() if kinds[d] == "backup-dc"), None)
    if primary is None or standby is None:
        raise EgovlabError("the drill needs a provincial-dc and a backup-dc site")
    runs = {r.name: r.server for r in sc.servers()}
    ngsp = next((h.label for h in plan.hosts.values() if "ngsp" in getattr(runs.get(h.label), "runs", ())), None)
    if ngsp is None:
        raise EgovlabError("no server runs 'ngsp' (the national endpoint LGSP relays to)")
    p, s = _site(sc, plan, primary), _site(sc, plan, standby)
    web = plan.hosts[plan.node(p.servers["cong-dvc"])]
    mode = replication or (sc.spec.resilience.replication if sc.spec.resilience else "async")
    return Deployment(p, s, ngsp, mode, str(web.ipv4.ip), str(web.ipv6.ip) if web.ipv6 else None)


def host(plan: EmulationPlan, label: str) -> HostNode:
    return plan.hosts[plan.node(label)]


def inventory(sc: Scenario, plan: EmulationPlan, dep: Deployment, *, root: str, ssh_dir: str, ca_dir: str,
              python: str, schema: str, bastion_pids: dict[str, int]) -> dict:
    """The deployment layer of the Ansible inventory (used beside the scenario's exported one)."""
    ip = lambda label: str(host(plan, label).ipv4.ip)  # noqa: E731
    ip6 = lambda label: [str(host(plan, label).ipv6.ip)] if host(plan, label).ipv6 else []  # noqa: E731
    hosts: dict[str, dict] = {}
    groups: dict[str, list[str]] = {"postgresql_primary": [], "postgresql_standby": [], "egov_apps": [], "portal": []}
    internal_nets = sorted({str(netaddr.IPNetwork(str(host(plan, site.servers[t]).ipv4)).cidr)
                            for site in (dep.primary, dep.standby) for t in ("mot-cua", "qlvb")})
    db = {dep.primary.dc: dep.primary.servers["csdl"], dep.standby.dc: dep.standby.servers["csdl"]}
    for site, role in ((dep.primary, "primary"), (dep.standby, "standby")):
        pid = bastion_pids[site.bastion]
        other = dep.standby if role == "primary" else dep.primary
        for tier, label in site.servers.items():
            h = host(plan, label)
            v: dict = {
                "ansible_host": str(h.mgmt_ipv4.ip),
                "ansible_ssh_common_args": f"-o ProxyCommand='nsenter -t {pid} -n nc %h %p' "
                                           f"-o UserKnownHostsFile={ssh_dir}/known_hosts -o StrictHostKeyChecking=yes",
                "egov_root": f"{root}/{label}",
                "egov_dc": site.dc,
            }
            if tier == "csdl":
                groups[f"postgresql_{role}"].append(label)
                v.update(egov_db_role=role, egov_primary_ipv4=ip(dep.primary.servers["csdl"]),
                         egov_db_clients=internal_nets, egov_replication_peers=[ip(other.servers["csdl"])],
                         egov_sync_standby=dep.standby.servers["csdl"].replace("-", "_"))
            else:
                groups["egov_apps"].append(label)
                dsn = (f"host={ip(db[site.dc])} dbname=egov user=egov password={{{{ egov_db_password }}}} "
                       "connect_timeout=3")
                env = {
                    "cong-dvc": {"MOTCUA_URL": f"http://{ip(site.servers['mot-cua'])}:{service_port(sc, 'mot-cua')}"},
                    "mot-cua": {"DB": dsn, "LGSP_URL": f"http://{ip(site.servers['lgsp'])}:{service_port(sc, 'lgsp')}",
                                "QLVB_URL": f"http://{ip(site.servers['qlvb'])}:{service_port(sc, 'qlvb')}"},
                    "qlvb": {"DB": dsn},
                    "lgsp": {"NGSP_URL": f"https://{ip(dep.ngsp)}:{service_port(sc, 'ngsp')}",
                             "CA_FILE": f"{ca_dir}/ca.crt"},
                }[tier]
                portal = tier == "cong-dvc"
                v.update(egov_service=tier, egov_env=env, egov_listen="127.0.0.1" if portal else ip(label),
                         egov_port=PORTAL_APP_PORT if portal else service_port(sc, tier))
                if portal:
                    groups["portal"].append(label)
                    v["egov_tls_names"] = sorted({ip(label), *ip6(label), *dep.service_addresses().values()})
            hosts[label] = v
    return {"all": {
        "vars": {"egov_python": python, "egov_ssh_dir": ssh_dir, "egov_ca_dir": ca_dir, "egov_schema": schema,
                 "egov_replication": dep.replication, "ansible_user": "root",
                 "ansible_ssh_private_key_file": f"{ssh_dir}/id_ed25519"},
        "children": {
            "egov_targets": {"hosts": {h: v for h, v in hosts.items()}},
            **{g: {"hosts": {h: None for h in members}} for g, members in groups.items()},
        }}}
