"""Shared fixtures. Paths are absolute so tests run from any working directory."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
DONGTHAP = ROOT / "inventory" / "dongthap.yml"
EGOVLAB = ROOT / ".venv" / "bin" / "egovlab"


@pytest.fixture(scope="session")
def dongthap():
    from egovlab.inventory import loader
    return loader.load(DONGTHAP)


def dcs_only_yaml(name: str = "dongthap-dcs") -> str:
    """The province with both DCs, their services and policy whole, but one department, one
    district and one commune: a drill's lab in a fifth of the province's nodes (54 hosts)."""
    import yaml

    raw = yaml.safe_load(DONGTHAP.read_text())
    kept = {"national", "internet", "core", "provincial-dc", "backup-dc", "soc", "public-service-centre"}
    first = {kind: next(n for n, s in raw["sites"].items() if s.get("kind") == kind) for kind in ("department", "district")}
    raw["sites"] = {n: s for n, s in raw["sites"].items() if s.get("kind") in kept or n in first.values()}
    raw["sites"][first["district"]]["communes"]["count"] = 1
    raw["scenario"] = name
    return yaml.safe_dump(raw, allow_unicode=True, sort_keys=False)


@pytest.fixture
def mini_text() -> str:
    return (SCENARIOS / "mini.yml").read_text()


class ApiServer:
    """A real `egovlab serve` on a free loopback port, with one token per role from the environment;
    over HTTPS when given a certificate and key (`tls`), which clients then verify."""

    def __init__(self, data_dir: Path, tls: tuple[Path, Path] | None = None):
        import secrets
        import ssl
        import subprocess
        import time

        import httpx

        self.operator, self.reader = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        from egovlab.sdn.launcher import free_port

        self.port = free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.verify = ssl.create_default_context(cafile=str(tls[0])) if tls else True
        env = {**__import__("os").environ, "EGOVLAB_API_TOKENS": f"operator:{self.operator},read-only:{self.reader}"}
        self.log = data_dir / "serve.log"
        argv = [str(EGOVLAB), "serve", "--port", str(self.port), "--data-dir", str(data_dir)]
        argv += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])] if tls else []
        self.process = subprocess.Popen(argv, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1, verify=self.verify).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"egovlab serve did not start:\n{self.log.read_text()}")

    def client(self, role: str | None = "operator"):
        import httpx

        token = {"operator": self.operator, "read-only": self.reader}.get(role, role)
        return httpx.Client(base_url=self.url, timeout=60, verify=self.verify,
                            headers={"Authorization": f"Bearer {token}"} if token else {})

    def wait_job(self, job: dict, timeout_s: float = 300) -> dict:
        import time

        with self.client() as c:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                job = c.get(f"/api/v1/jobs/{job['id']}").json()
                if job["state"] != "running":
                    return job
                time.sleep(0.3)
        raise AssertionError(f"job {job['id']} ({job['kind']}) still running after {timeout_s} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except Exception:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    server = ApiServer(tmp_path_factory.mktemp("api"))
    yield server
    server.stop()
