"""Deploy the e-gov services onto a running lab with the real ansible-playbook over SSH.

What a data centre has before configuration management runs, this module provides: sshd on
each server's out-of-band management address (the "installed image"), an operator key, and the
lab's CA. Everything else — users, sshd hardening, supervisor, PostgreSQL with its standby, the
services, nginx with TLS — is Ansible's (ansible/site.yml). Ansible runs where an operator sits,
in the root namespace, and reaches each DC's servers through that DC's bastion.
"""
from __future__ import annotations

import importlib.util
import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from egovlab.inventory.export import ansible_inventory_yaml
from egovlab.inventory.scenario import Scenario
from egovlab.topology import netns
from egovlab.topology.model import EmulationPlan
from egovlab.topology.state import LabError, data_dir, state_dir

from .placement import Deployment, inventory, plan_deployment, service_port

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOK = ROOT / "ansible" / "site.yml"
SCHEMA = Path(__file__).resolve().parent / "schema.sql"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


class DeployError(LabError):
    """Provisioning failed (an unreachable host, a failed task): exit code 1, with Ansible's words."""


@dataclass
class Recap:
    hosts: dict[str, dict[str, int]]
    seconds: float
    output: str

    @property
    def changed(self) -> int:
        return sum(h["changed"] for h in self.hosts.values())


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def workdir(prefix: str) -> Path:
    return state_dir(prefix) / "deploy"


def _tls_cert(ca: Path, out: Path, name: str, addresses: list[str]) -> None:
    key, crt, ext = out / f"{name}.key", out / f"{name}.crt", out / f"{name}.ext"
    if crt.exists():
        return
    ext.write_text("subjectAltName=" + ",".join(f"IP:{a}" for a in addresses) + "\n")
    for cmd in (["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key)],
                ["openssl", "req", "-new", "-key", str(key), "-subj", f"/O=egovlab/CN={name}", "-out",
                 str(out / f"{name}.csr")],
                ["openssl", "x509", "-req", "-in", str(out / f"{name}.csr"), "-CA", str(ca / "ca.crt"), "-CAkey",
                 str(ca / "ca.key"), "-CAcreateserial", "-days", "30", "-sha256", "-extfile", str(ext), "-out",
                 str(crt)]):
        r = _run(cmd)
        if r.returncode:
            raise LabError(f"openssl failed: {r.stderr.strip()}")


def prepare(prefix: str) -> Path:
    """Operator key, sshd host key, the lab CA and the database secrets (once per lab)."""
    d = workdir(prefix)
    (d / "ssh").mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    ssh = d / "ssh"
    for key in ("id_ed25519", "host_ed25519_key"):
        if not (ssh / key).exists():
            r = _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"egovlab-{prefix}", "-f", str(ssh / key)])
            if r.returncode:
                raise LabError(f"ssh-keygen failed: {r.stderr.strip()}")
    (ssh / "authorized_keys").write_text((ssh / "id_ed25519.pub").read_text())
    os.chmod(ssh / "authorized_keys", 0o600)
    if not (d / "ca.crt").exists():
        r = _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"), "-days", "30",
                  "-subj", f"/O=egovlab/CN=egovlab lab CA {prefix}"])
        if r.returncode:
            raise LabError(f"openssl failed: {r.stderr.strip()}")
    os.chmod(d / "ca.crt", 0o644)
    os.chmod(d, 0o755)  # the services' user reads the CA certificate
    if not (d / "secrets.yml").exists():
        (d / "secrets.yml").write_text(yaml.safe_dump({"egov_db_password": secrets.token_urlsafe(18),
                                                       "egov_replicator_password": secrets.token_urlsafe(18)}))
        os.chmod(d / "secrets.yml", 0o600)
    return d


def start_sshd(prefix: str, pid: int, label: str, mgmt_ip: str) -> None:
    """The server's sshd on its management address, with a first-boot configuration that the
    base role then hardens."""
    d, host = workdir(prefix), data_dir(prefix) / label
    for sub in ("etc", "run", "log"):
        (host / sub).mkdir(parents=True, exist_ok=True)
    conf = host / "etc" / "sshd_config"
    if not conf.exists():
        conf.write_text(f"ListenAddress {mgmt_ip}\nHostKey {d}/ssh/host_ed25519_key\nPidFile {host}/run/sshd.pid\n"
                        f"AuthorizedKeysFile {d}/ssh/authorized_keys\nPermitRootLogin prohibit-password\n"
                        "PasswordAuthentication no\nUsePAM no\nSubsystem sftp internal-sftp\n")
        os.chmod(conf, 0o600)
    if _alive(host / "run" / "sshd.pid"):
        return
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    r = _run([*netns.command(pid), "/usr/sbin/sshd", "-f", str(conf)])
    if r.returncode:
        raise LabError(f"sshd on {label} did not start: {r.stderr.strip()}")


def wait_port(pid: int, addr: str, port: int, timeout_s: float = 30) -> None:
    """Until addr:port accepts a connection from inside the namespace of `pid`."""
    code = (f"import socket,time,sys\nend=time.time()+{timeout_s}\n"
            f"while time.time()<end:\n try:\n  socket.create_connection(('{addr}',{port}),1).close();sys.exit(0)\n"
            " except OSError:\n  time.sleep(0.2)\nsys.exit(1)\n")
    if _run([*netns.command(pid), sys.executable, "-c", code]).returncode:
        raise LabError(f"{addr}:{port} did not answer within {timeout_s:.0f} s")


def _alive(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text().split()[0]), 0)
        return True
    except (OSError, ValueError, IndexError):
        return False


def start_ngsp(prefix: str, pid: int, addr: str, port: int) -> None:
    """The national platform is the Ministry's, not the province's: it is started directly."""
    d = workdir(prefix)
    try:
        wait_port(pid, addr, port, timeout_s=0.5)
        return  # already serving
    except LabError:
        pass
    _tls_cert(d, d, "ngsp", [addr])
    log = open(data_dir(prefix) / "ngsp.log", "w")
    subprocess.Popen([*netns.command(pid), sys.executable, "-m", "egovlab.services", "ngsp", "--host", addr,
                             "--port", str(port), "--tls-cert", str(d / "ngsp.crt"), "--tls-key", str(d / "ngsp.key"),
                             f"egovlab-lab={prefix}"], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    wait_port(pid, addr, port)


def write_inventories(sc: Scenario, plan: EmulationPlan, dep: Deployment, prefix: str,
                      pids: dict[str, int]) -> tuple[Path, Path]:
    d = workdir(prefix)
    scenario_inv = d / "scenario.yml"
    scenario_inv.write_text(ansible_inventory_yaml(sc))
    bastions = {s.bastion: pids[plan.node(s.bastion)] for s in (dep.primary, dep.standby)}
    inv = inventory(sc, plan, dep, root=str(data_dir(prefix)), ssh_dir=str(d / "ssh"), ca_dir=str(d),
                    python=sys.executable, schema=str(SCHEMA), bastion_pids=bastions)
    deploy_inv = d / "deployment.yml"
    deploy_inv.write_text("# egovlab deploy: which server runs what, and how Ansible reaches it\n" +
                          yaml.safe_dump(inv, sort_keys=False))
    return scenario_inv, deploy_inv


def mitogen_strategy() -> dict[str, str]:
    """Ansible's settings for Mitogen's linear strategy, where it is installed: a task's module runs
    in a Python kept alive on the host behind one SSH connection, not in a fresh interpreter per
    task over SSH (benchmarks/provisioning.py: the province in 44 s, 101 s plain). Without it: plain Ansible."""
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or spec.origin is None:
        return {}
    return {"ANSIBLE_STRATEGY_PLUGINS": str(Path(spec.origin).parent / "plugins" / "strategy"),
            "ANSIBLE_STRATEGY": "mitogen_linear"}


def write_known_hosts(prefix: str, plan: EmulationPlan, dep: Deployment) -> None:
    """Every server's host key, known before the first connection (it is the lab's own key): SSH
    checks it strictly, and a changed key fails the deploy instead of being learnt."""
    d = workdir(prefix) / "ssh"
    key = " ".join((d / "host_ed25519_key.pub").read_text().split()[:2])
    lines = [f"{plan.hosts[plan.node(label)].mgmt_ipv4.ip} {key}\n"
             for site in (dep.primary, dep.standby) for label in site.servers.values()]
    (d / "known_hosts").write_text("".join(lines))


def run_playbook(prefix: str, inventories: tuple[Path, ...], limit: str | None = None,
                 timeout_s: float = 900) -> Recap:
    d = workdir(prefix)
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), str(PLAYBOOK), "-e", f"@{d / 'secrets.yml'}"]
    for inv in inventories:
        cmd += ["-i", str(inv)]
    if limit:
        cmd += ["--limit", limit]
    # Everything Ansible keeps goes with the lab: SSH multiplexing sockets of an earlier lab on
    # the same addresses would otherwise be reused and hang.
    env = {**os.environ, "ANSIBLE_CONFIG": str(PLAYBOOK.parent / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(d / "ansible-tmp"), "ANSIBLE_HOME": str(d / "ansible-home"),
           "ANSIBLE_SSH_CONTROL_PATH_DIR": str(d / "ansible-cp"), "ANSIBLE_LOG_PATH": str(d / "ansible.log"),
           **mitogen_strategy()}
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s, cwd=PLAYBOOK.parent)
    except subprocess.TimeoutExpired:
        raise DeployError(f"ansible-playbook did not finish within {timeout_s:.0f} s")
    hosts = {m[1]: {"ok": int(m[2]), "changed": int(m[3]), "unreachable": int(m[4]), "failed": int(m[5])}
             for m in RECAP.finditer(r.stdout)}
    recap = Recap(hosts, time.monotonic() - t0, r.stdout)
    if r.returncode or not hosts:
        bad = [h for h, c in hosts.items() if c["unreachable"] or c["failed"]]
        errors = [line for line in r.stdout.splitlines() if line.startswith(("fatal:", "ERROR", "[ERROR]"))]
        errors += [line for line in r.stderr.splitlines() if "ERROR" in line]
        raise DeployError(f"ansible-playbook failed (exit {r.returncode})"
                          + (f" on {', '.join(bad)}" if bad else "") + ":\n" + "\n".join(errors[:10] or
                                                                                        r.stderr.splitlines()[-5:]))
    return recap


def deploy(sc: Scenario, plan: EmulationPlan, pids: dict[str, int], *, replication: str | None = None,
           progress=print) -> tuple[Deployment, Recap]:
    """sshd + NGSP stand-in, then ansible-playbook; returns the deployment and Ansible's recap."""
    dep = plan_deployment(sc, plan, replication)
    prefix = plan.prefix
    prepare(prefix)
    write_known_hosts(prefix, plan, dep)
    hosts = dep.hosts() + [dep.primary.bastion, dep.standby.bastion]
    for label in hosts:
        h = plan.hosts[plan.node(label)]
        start_sshd(prefix, pids[h.name], label, str(h.mgmt_ipv4.ip))
    for site in (dep.primary, dep.standby):
        bastion = pids[plan.node(site.bastion)]
        for label in site.servers.values():
            wait_port(bastion, str(plan.hosts[plan.node(label)].mgmt_ipv4.ip), 22)
    ngsp = plan.hosts[plan.node(dep.ngsp)]
    port = service_port(sc, "ngsp")
    start_ngsp(prefix, pids[ngsp.name], str(ngsp.ipv4.ip), port)
    progress(f"sshd on {len(hosts)} servers' management addresses, NGSP stand-in on {ngsp.ipv4.ip}:{port}")
    inventories = write_inventories(sc, plan, dep, prefix, pids)
    return dep, run_playbook(prefix, inventories)
