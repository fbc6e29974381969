#!/usr/bin/env python3
"""The real services on the emulated Đồng Tháp province, as root (writes benchmarks/results/services.json):

- provisioning time of all services with ansible-playbook (first run, and the second, idempotent run);
- portal requests per second (GET an application: nginx TLS -> portal -> one-stop office ->
  PostgreSQL) from a citizen across the emulated network, against the same stack on loopback
  in the same run (ratio);
- the drill's RTO over 5 runs (a fresh province and deployment each: the drill leaves the
  primary DC dark), synchronous replication.

Usage: sudo .venv/bin/python benchmarks/services.py [--runs 5] [--seconds 10] [--concurrency 16]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = "/usr/lib/postgresql/15/bin"


def throughput(prefix_ns: list[str], url: str, ca: str, concurrency: int, seconds: float) -> dict:
    args = {"mode": "throughput", "url": url, "ca": ca, "concurrency": concurrency, "seconds": seconds}
    r = subprocess.run([*prefix_ns, sys.executable, "-m", "egovlab.services.loadgen", json.dumps(args)],
                       capture_output=True, text=True, timeout=seconds + 120)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout)


def submit(prefix_ns: list[str], url: str, ca: str) -> str:
    body = json.dumps({"citizen_id": "083200000001", "procedure": "birth-registration", "form": {}})
    r = subprocess.run([*prefix_ns, "curl", "-sS", "-m", "10", "--cacert", ca, "-H", "content-type: application/json",
                        "-d", body, f"{url}/api/applications"], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["id"]


def ns(lab, label: str) -> list[str]:
    from egovlab.topology import netns

    return netns.command(lab.pid(label))


def loopback_stack(tmp: Path, concurrency: int, seconds: float) -> dict:
    """The same services, PostgreSQL and nginx configuration, all on 127.0.0.1 in this namespace."""
    from jinja2 import Template

    from egovlab.sdn.launcher import free_port
    from egovlab.services import deploy

    procs: list[subprocess.Popen] = []
    ports = {k: free_port() for k in ("pg", "ngsp", "lgsp", "qlvb", "mot-cua", "cong-dvc", "https", "http")}
    pg = tmp / "pg"
    try:
        for d in (tmp, pg, pg / "run"):
            d.mkdir(exist_ok=True)
            os.chown(d, *_postgres_ids())
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PG_BIN}/initdb", "-D", str(pg / "data"), "-A", "trust",
                        "-E", "UTF8", "--locale=C.UTF-8"], check=True, capture_output=True)
        procs.append(subprocess.Popen(["runuser", "-u", "postgres", "--", f"{PG_BIN}/postgres", "-D", str(pg / "data"),
                                       "-c", "listen_addresses=127.0.0.1", "-c", f"port={ports['pg']}",
                                       "-c", f"unix_socket_directories={pg / 'run'}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        psql = ["runuser", "-u", "postgres", "--", f"{PG_BIN}/psql", "-h", str(pg / "run"), "-p", str(ports["pg"]),
                "-v", "ON_ERROR_STOP=1", "-q"]
        for _ in range(100):
            if subprocess.run([*psql, "-c", "select 1"], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        subprocess.run([*psql, "-c", "CREATE ROLE egov LOGIN PASSWORD 'bench'"], check=True)
        subprocess.run([*psql, "-c", "CREATE DATABASE egov OWNER egov"], check=True)
        schema = "SET ROLE egov;\n" + (ROOT / "services" / "schema.sql").read_text()
        subprocess.run([*psql, "-d", "egov"], input=schema, text=True, check=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", str(tmp / "ca.key"), "-out", str(tmp / "ca.crt"), "-days", "1", "-subj", "/CN=bench"],
                       check=True, capture_output=True)
        deploy._tls_cert(tmp, tmp, "local", ["127.0.0.1"])
        os.chmod(tmp / "ca.crt", 0o644)
        dsn = f"host=127.0.0.1 port={ports['pg']} dbname=egov user=egov password=bench"
        env = {"ngsp": {}, "lgsp": {"NGSP_URL": f"https://127.0.0.1:{ports['ngsp']}", "CA_FILE": str(tmp / "ca.crt")},
               "qlvb": {"DB": dsn},
               "mot-cua": {"DB": dsn, "LGSP_URL": f"http://127.0.0.1:{ports['lgsp']}",
                           "QLVB_URL": f"http://127.0.0.1:{ports['qlvb']}"},
               "cong-dvc": {"MOTCUA_URL": f"http://127.0.0.1:{ports['mot-cua']}"}}
        for name, extra in env.items():
            tls = ["--tls-cert", str(tmp / "local.crt"), "--tls-key", str(tmp / "local.key")] if name == "ngsp" else []
            procs.append(subprocess.Popen([sys.executable, "-m", "egovlab.services", name, "--port", str(ports[name]),
                                           *tls], env={**os.environ, **{f"EGOV_{k}": v for k, v in extra.items()}}))
        conf = Template((ROOT / "ansible/roles/nginx/templates/nginx.conf.j2").read_text()).render(
            inventory_hostname="loopback", egov_root=str(tmp), egov_port=ports["cong-dvc"])
        conf = conf.replace("listen 443 ssl;", f"listen 127.0.0.1:{ports['https']} ssl;").replace(
            "listen 80;", f"listen 127.0.0.1:{ports['http']};").replace(f"{tmp}/etc/tls.", f"{tmp}/local.")
        for d in ("run", "log"):
            (tmp / d).mkdir(exist_ok=True)
        (tmp / "nginx.conf").write_text(conf)
        procs.append(subprocess.Popen(["/usr/sbin/nginx", "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"]))
        url = f"https://127.0.0.1:{ports['https']}"
        for _ in range(100):
            if subprocess.run(["curl", "-sf", "--cacert", str(tmp / "ca.crt"), f"{url}/health"],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        app_id = submit([], url, str(tmp / "ca.crt"))
        return throughput([], f"{url}/api/applications/{app_id}", str(tmp / "ca.crt"), concurrency, seconds)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def _postgres_ids() -> tuple[int, int]:
    import pwd

    pw = pwd.getpwnam("postgres")
    return pw.pw_uid, pw.pw_gid


def main() -> None:
    from egovlab import lifecycle
    from egovlab.services import deploy, drill

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    result: dict = {"benchmark": "services", "scenario": "dongthap", "concurrency": args.concurrency}
    rtos, provisioning = [], []
    for run in range(args.runs):
        with lifecycle.session("dongthap", lifecycle.spec("eb")) as lab:
            pids = lab.pids
            t0 = time.monotonic()
            dep, recap = deploy.deploy(lab.scenario, lab.plan, pids, replication="sync", progress=lambda *_: None)
            provisioning.append({"first_s": round(time.monotonic() - t0, 1), "ansible_s": round(recap.seconds, 1),
                                 "changed": recap.changed})
            if run == 0:
                again = deploy.run_playbook("eb", (deploy.workdir("eb") / "scenario.yml",
                                                   deploy.workdir("eb") / "deployment.yml"))
                result["second_run"] = {"ansible_s": round(again.seconds, 1), "changed": again.changed}
                ca = str(deploy.workdir("eb") / "ca.crt")
                url = f"https://{dep.service_address}"
                app_id = submit(ns(lab, "internet-h1"), url, ca)
                result["emulated"] = throughput(ns(lab, "internet-h1"), f"{url}/api/applications/{app_id}", ca,
                                                args.concurrency, args.seconds)
            res = drill.run(lab.scenario, lab.plan, pids, dep, fail="provincial-dc", seconds=20, warmup_s=6,
                            progress=lambda *_: None)
            rtos.append({"rto_s": res.rto_s, "detected_s": res.detected_s, "promoted_s": res.promoted_s,
                         "redirected_s": res.redirected_s, "lost": res.lost, "acknowledged": res.acknowledged})
    with tempfile.TemporaryDirectory(prefix="egovlab-bench-") as tmp:
        result["loopback"] = loopback_stack(Path(tmp), args.concurrency, args.seconds)
    result["rps_ratio_emulated_to_loopback"] = round(result["emulated"]["rps"] / result["loopback"]["rps"], 3)
    result["provisioning"] = provisioning
    values = sorted(r["rto_s"] for r in rtos if r["rto_s"] is not None)
    result["drill"] = {"runs": rtos, "rto_median_s": statistics.median(values) if values else None,
                       "rto_min_s": values[0] if values else None, "rto_max_s": values[-1] if values else None,
                       "lost_total": sum(r["lost"] for r in rtos)}
    (ROOT / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "benchmarks" / "results" / "services.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
