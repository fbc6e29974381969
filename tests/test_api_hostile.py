"""The control API under hostile requests, against a real `egovlab serve`: every malformed request
gets its 4xx and a message within a few seconds, the server keeps serving, an unauthenticated
client cannot make it read a body, and schemathesis (both roles) finds no 5xx, no status the
schema does not document, no traceback and no server path."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from egovlab import lifecycle

from .conftest import EGOVLAB, ROOT, ApiServer
from .test_hostile_input import _bomb

OP, RO, NONE, WRONG = "operator", "read-only", None, "w" * 40
SCENARIO_YAML = (ROOT / "tests" / "scenarios" / "mini.yml").read_text()


def _deep_json(depth: int) -> bytes:
    return b'{"name": "x", "yaml": ' + b"[" * depth + b"]" * depth + b"}"


def _upload(yaml_text: str, name: str = "hostile") -> dict:
    return {"json": {"name": name, "yaml": yaml_text}}


def _sim(**fields) -> dict:
    return {"json": {"scenario": "dongthap", **fields}}


def _raw(body: str) -> dict:
    return {"content": body.encode(), "headers": {"content-type": "application/json"}}


# (id, role, method, path, request keyword arguments, status, fragment of "detail")
CASES = [
    ("no-token", NONE, "GET", "/api/v1/labs", {}, 401, "missing bearer token"),
    ("empty-bearer", NONE, "GET", "/api/v1/labs", {"headers": {"Authorization": "Bearer"}}, 401, "missing bearer"),
    ("basic-auth", NONE, "GET", "/api/v1/labs", {"headers": {"Authorization": "Basic dXNlcjpwdw=="}}, 401,
     "missing bearer"),
    ("wrong-token", WRONG, "GET", "/api/v1/labs", {}, 401, "invalid token"),
    ("token-with-spaces", NONE, "GET", "/api/v1/labs", {"headers": {"Authorization": "Bearer a b c"}}, 401,
     "invalid token"),
    ("no-token-on-metrics", NONE, "GET", "/metrics", {}, 401, "missing bearer"),
    ("no-token-unknown-path", NONE, "GET", "/api/v1/secrets", {}, 401, "missing bearer"),
    ("read-only-upload", RO, "POST", "/api/v1/scenarios", _upload(SCENARIO_YAML), 403, "operator token"),
    ("read-only-delete", RO, "DELETE", "/api/v1/scenarios/dongthap", {}, 403, "operator token"),
    ("read-only-fault", RO, "POST", "/api/v1/labs/qq/faults", {"json": {}}, 403, "operator token"),
    ("unknown-path", OP, "GET", "/api/v1/nothing", {}, 404, "Not Found"),
    # an encoded '/' splits the path: no route has that shape
    ("traversal-in-name", OP, "GET", "/api/v1/scenarios/..%2F..%2Fetc%2Fpasswd", {}, 404, "Not Found"),
    ("traversal-in-topology", OP, "GET", "/api/v1/scenarios/..%2Fdongthap/topology", {}, 404, "Not Found"),
    ("dots-in-name", OP, "GET", "/api/v1/scenarios/..", {}, 404, "Not Found"),
    ("dotted-name", OP, "GET", "/api/v1/scenarios/.hidden", {}, 422, "name"),
    ("traversal-in-upload", OP, "POST", "/api/v1/scenarios", _upload(SCENARIO_YAML, "../evil"), 422, "body.name"),
    ("name-too-long", OP, "POST", "/api/v1/scenarios", _upload(SCENARIO_YAML, "a" * 41), 422, "body.name"),
    ("name-upper-case", OP, "POST", "/api/v1/scenarios", _upload(SCENARIO_YAML, "DongThap"), 422, "body.name"),
    ("invalid-json", OP, "POST", "/api/v1/scenarios", _raw("{not json"), 422, "JSON"),
    ("json-list", OP, "POST", "/api/v1/scenarios", {"json": ["a", "b"]}, 422, "body"),
    ("json-string", OP, "POST", "/api/v1/scenarios", {"json": "a scenario"}, 422, "body"),
    ("missing-yaml", OP, "POST", "/api/v1/scenarios", {"json": {"name": "x"}}, 422, "body.yaml: Field required"),
    ("yaml-not-a-string", OP, "POST", "/api/v1/scenarios", {"json": {"name": "x", "yaml": 42}}, 422, "body.yaml"),
    ("extra-field", OP, "POST", "/api/v1/scenarios", {"json": {"name": "x", "yaml": "a: 1", "admin": True}}, 422,
     "body.admin: Extra inputs are not permitted"),
    ("yaml-alias-bomb", OP, "POST", "/api/v1/scenarios", _upload(_bomb()), 422, "more than 500,000 values"),
    ("yaml-deep", OP, "POST", "/api/v1/scenarios", _upload("a: " + "[" * 30000 + "]" * 30000), 422,
     "nested deeper than 64 levels"),
    ("yaml-recursive", OP, "POST", "/api/v1/scenarios", _upload("a: &a [*a]"), 422, "recursive structure"),
    ("yaml-python-tag", OP, "POST", "/api/v1/scenarios", _upload("a: !!python/object/apply:os.system [id]"), 422,
     "could not determine a constructor"),
    ("yaml-empty", OP, "POST", "/api/v1/scenarios", _upload(""), 422, "the file is empty"),
    ("yaml-nul", OP, "POST", "/api/v1/scenarios", _upload("scenario: a\x00b"), 422, "control characters"),
    ("yaml-too-long", OP, "POST", "/api/v1/scenarios", _upload("#" * 2_000_001), 422, "body.yaml"),
    ("json-deeply-nested", OP, "POST", "/api/v1/scenarios", {"content": _deep_json(100_000),
     "headers": {"content-type": "application/json"}}, 400, "error parsing the body"),
    ("nan", OP, "POST", "/api/v1/simulations", _raw('{"scenario": "dongthap", "peak_minutes": NaN}'), 422,
     "peak_minutes"),
    ("infinity", OP, "POST", "/api/v1/simulations", _raw('{"scenario": "dongthap", "peak_minutes": Infinity}'), 422,
     "finite number"),
    ("float-overflow", OP, "POST", "/api/v1/simulations", _raw('{"scenario": "dongthap", "peak_minutes": 1e400}'), 422,
     "finite number"),
    ("replications-zero", OP, "POST", "/api/v1/simulations", _sim(replications=0), 422, "body.replications"),
    ("replications-huge", OP, "POST", "/api/v1/simulations", _sim(replications=10**30), 422, "body.replications"),
    ("replications-as-text", OP, "POST", "/api/v1/simulations", _sim(replications="10"), 422,
     "body.replications: Input should be a valid integer"),
    ("replications-as-bool", OP, "POST", "/api/v1/simulations", _sim(replications=True), 422, "body.replications"),
    ("seed-negative", OP, "POST", "/api/v1/simulations", _sim(seed=-1), 422, "body.seed"),
    ("horizon-too-long", OP, "POST", "/api/v1/simulations", _sim(horizon="99999d"), 422, "outside 1m to 3650d"),
    ("horizon-exponent", OP, "POST", "/api/v1/simulations", _sim(horizon="1e5d"), 422, "expected a duration"),
    ("horizon-huge-string", OP, "POST", "/api/v1/simulations", _sim(horizon="9" * 1000), 422, "body.horizon"),
    ("simulation-unknown-scenario", OP, "POST", "/api/v1/simulations", {"json": {"scenario": "atlantis"}}, 404,
     "no scenario 'atlantis'"),
    ("prefix-upper-case", OP, "PUT", "/api/v1/labs/QQ", {"json": {"scenario": "dongthap"}}, 422, "prefix"),
    ("shards-zero", OP, "PUT", "/api/v1/labs/qq", {"json": {"scenario": "dongthap", "ovs_shards": 0}}, 422,
     "body.ovs_shards"),
    ("hosts-per-site-huge", OP, "PUT", "/api/v1/labs/qq", {"json": {"scenario": "dongthap", "hosts_per_site": 1000}},
     422, "body.hosts_per_site"),
    ("lab-scenario-traversal", OP, "PUT", "/api/v1/labs/qq", {"json": {"scenario": "../../etc/passwd"}}, 422,
     "body.scenario"),
    ("fault-unknown-action", OP, "POST", "/api/v1/labs/qq/faults", {"json": {"action": "melt", "target": "x"}}, 422,
     "body.action"),
    ("fault-empty-target", OP, "POST", "/api/v1/labs/qq/faults", {"json": {"action": "link-down", "target": ""}}, 422,
     "body.target"),
    ("fault-huge-target", OP, "POST", "/api/v1/labs/qq/faults",
     {"json": {"action": "link-down", "target": "x" * 500}}, 422, "body.target"),
    ("fault-unknown-lab", OP, "POST", "/api/v1/labs/qq/faults", {"json": {"action": "link-down", "target": "x"}}, 404,
     "no lab with prefix 'qq'"),
    ("drill-seconds-huge", OP, "POST", "/api/v1/drills", {"json": {"scenario": "dongthap", "fail": "x",
                                                                    "seconds": 1e9}}, 422, "body.seconds"),
    ("drill-rate-nan", OP, "POST", "/api/v1/drills", _raw('{"scenario": "dongthap", "fail": "x", "rate": NaN}'), 422,
     "body.rate"),
    ("drill-replication-word", OP, "POST", "/api/v1/drills", {"json": {"scenario": "dongthap", "fail": "x",
                                                                        "replication": "maybe"}}, 422,
     "body.replication"),
    ("drill-prefix", OP, "POST", "/api/v1/drills", {"json": {"scenario": "dongthap", "fail": "x", "prefix": "x"}},
     422, "body.prefix"),
    ("job-id-malformed", OP, "GET", "/api/v1/jobs/../../x", {}, 404, "Not Found"),
    ("job-id-pattern", OP, "GET", "/api/v1/jobs/XYZ", {}, 422, "job_id"),
    ("job-unknown", OP, "GET", "/api/v1/jobs/0123456789ab", {}, 404, "no job '0123456789ab'"),
    ("cancel-unknown-job", OP, "DELETE", "/api/v1/jobs/0123456789ab", {}, 404, "no job"),
    ("events-bad-prefix", OP, "GET", "/api/v1/events?prefix=../x", {}, 422, "prefix"),
    ("policy-unknown-lab", OP, "PUT", "/api/v1/labs/qq/policy", {"json": {"policy": "- {from: any, to: any}"}}, 404,
     "no lab"),
    ("policy-empty", OP, "PUT", "/api/v1/labs/qq/policy", {"json": {"policy": ""}}, 422, "body.policy"),
    ("policy-mode", OP, "POST", "/api/v1/labs/qq/policy/compare", {"json": {"policy": "x", "mode": "append"}}, 422,
     "body.mode"),
    ("ping-unknown-lab", OP, "POST", "/api/v1/labs/qq/devices/town:agg/ping", {"json": {"destination": "x"}}, 404,
     "no lab"),
    ("ping-count-huge", OP, "POST", "/api/v1/labs/qq/devices/town:agg/ping",
     {"json": {"destination": "x", "count": 10**6}}, 422, "body.count"),
    ("getter-unknown", OP, "GET", "/api/v1/labs/qq/devices/town:agg/secrets", {}, 422, "getter"),
    ("device-traversal", OP, "GET", "/api/v1/labs/qq/devices/..%2F..%2Fetc/facts", {}, 404, "Not Found"),
    ("device-shell", OP, "GET", "/api/v1/labs/qq/devices/$(id)/facts", {}, 422, "device"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = ApiServer(tmp_path_factory.mktemp("api-hostile"))
    yield server
    server.stop()


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status)[1])


def test_every_malformed_request_gets_its_4xx_and_the_server_keeps_serving(served):
    assert len(CASES) >= 50
    assert not lifecycle.running_prefixes(), "a lab is up: these requests must not touch it"
    wrong = []
    for name, role, method, path, kwargs, status, fragment in CASES:
        with served.client(role) as c:
            t0 = time.monotonic()
            r = c.request(method, path, timeout=10, **kwargs)
            seconds = time.monotonic() - t0
        try:
            detail = r.json()["detail"]
            detail = detail if isinstance(detail, str) else json.dumps(detail)
        except (ValueError, KeyError, TypeError):
            detail = r.text
        if r.status_code != status or fragment not in detail or seconds > 5 or "Traceback" in r.text:
            wrong.append(f"{name}: {method} {path}: {r.status_code} {detail[:300]!r} in {seconds:.1f} s "
                         f"(expected {status}, {fragment!r})")
    assert not wrong, "\n".join(wrong)
    with served.client(RO) as c:
        assert c.get("/healthz").json()["status"] == "ok"
        assert "dongthap" in [s["name"] for s in c.get("/api/v1/scenarios").json()]
    assert "Traceback" not in served.log.read_text()


def _complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"content-length: (\d+)", head, re.I)
    return bool(sep) and (length is None or len(body) >= int(length[1]))


def _send_raw(served: ApiServer, head: str, body: bytes = b"", wait: float = 5) -> tuple[int, str, float]:
    """Send a request by hand (what httpx would not: a body that never comes); read the answer."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", served.port), timeout=wait) as s:
        s.sendall(head.encode() + body)
        answer = b""
        while not _complete(answer):
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1]) if answer else 0
    return status, answer.decode(errors="replace"), time.monotonic() - t0


def test_the_token_is_checked_before_a_byte_of_the_body_is_read(served):
    rss = _rss_kib(served.process.pid)
    head = ("POST /api/v1/scenarios HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000000\r\n\r\n")
    for _ in range(3):  # a 100 MB body announced, none sent: the answer comes from the headers alone
        status, answer, seconds = _send_raw(served, head)
        assert status == 401 and "missing bearer token" in answer and seconds < 5
    ro = head.replace("Host: x\r\n", f"Host: x\r\nAuthorization: Bearer {served.reader}\r\n")
    status, answer, _ = _send_raw(served, ro)
    assert status == 403 and "operator" in answer
    op = head.replace("Host: x\r\n", f"Host: x\r\nAuthorization: Bearer {served.operator}\r\n")
    status, answer, _ = _send_raw(served, op)
    assert status == 413 and "request body over 8 MiB" in answer
    assert _rss_kib(served.process.pid) - rss < 20_000


def test_an_undeclared_body_is_cut_at_the_limit(served):
    """Chunked: no Content-Length to refuse up front; the server stops reading at 8 MiB."""
    def chunks():
        for _ in range(20):
            yield b"x" * 2**20

    with served.client(OP) as c:
        r = c.post("/api/v1/scenarios", content=chunks(), headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 413 and "request body over 8 MiB" in r.json()["detail"]
    status, answer, _ = _send_raw(served, "POST /api/v1/scenarios HTTP/1.1\r\nHost: x\r\n"
                                          f"Authorization: Bearer {served.operator}\r\nContent-Length: lots\r\n\r\n")
    assert 400 <= status < 500


def test_job_views_carry_no_server_path(served):
    with served.client(OP) as c:
        job = c.post("/api/v1/simulations", json={"scenario": "dongthap", "replications": 2, "horizon": "1d",
                                                  "peak_minutes": 1}).json()
        done = served.wait_job(job)
        text = c.get(f"/api/v1/jobs/{job['id']}").text
    assert done["state"] == "succeeded", done["log_tail"]
    assert "simulation.json" in text  # the log says which file it wrote ...
    assert str(served.log.parent) not in text and not re.search(r'"/(tmp|var|root|work)/', text)  # ... not where


@pytest.mark.parametrize("role", [OP, RO])
def test_schemathesis_with_either_token_finds_no_5xx_no_undocumented_status_and_no_leak(served, role):
    """Fuzzing every operation: nothing answers 5xx or a status its schema does not list, every
    error body is the documented one, no answer leaks a traceback or a server path. No lab is up
    and no scenario is stored but the built-in one, so nothing generated can start a lab."""
    assert not lifecycle.running_prefixes(), "a lab is up: fuzzing could tear it down"
    token = served.operator if role == OP else served.reader
    r = subprocess.run([str(Path(EGOVLAB).with_name("schemathesis")), "run", f"{served.url}/openapi.json",
                        "-H", f"Authorization: Bearer {token}", "--checks",
                        "not_a_server_error,status_code_conformance,response_schema_conformance,"
                        "content_type_conformance,no_traceback_or_server_path",
                        # an endless event stream cannot be fuzzed request by request
                        "--exclude-path", "/api/v1/events", "--max-examples", "40", "--seed", "1"],
                       capture_output=True, text=True, timeout=900, cwd=served.log.parent,
                       env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks",
                            "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stdout[-4000:]
    tested = re.search(r"(\d+) generated, (\d+) passed", r.stdout)
    assert tested and tested[1] == tested[2] and int(tested[1]) > 500, r.stdout[-2000:]


def test_the_schema_documents_the_error_answers(served):
    with httpx.Client(base_url=served.url) as c:
        schema = c.get("/openapi.json").json()
    upload = schema["paths"]["/api/v1/scenarios"]["post"]["responses"]
    assert {"401", "403", "409", "413", "422"} <= set(upload)
    assert upload["422"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ErrorBody"
    assert "401" not in schema["paths"]["/healthz"]["get"]["responses"]
    assert {"401", "404"} <= set(schema["paths"]["/api/v1/jobs/{job_id}"]["get"]["responses"])
    assert "HTTPValidationError" not in schema["components"]["schemas"]


# -- TLS ----------------------------------------------------------------------------------------

def test_the_api_over_tls(tmp_path):
    cert, key = tmp_path / "api.crt", tmp_path / "api.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=egovlab test",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    (tmp_path / "data").mkdir()
    server = ApiServer(tmp_path / "data", tls=(cert, key))
    try:
        assert server.url.startswith("https://")
        with server.client(RO) as c:  # verifies the served certificate against the one we made
            assert c.get("/api/v1/scenarios").status_code == 200
            assert c.get("/healthz").json()["status"] == "ok"
        with pytest.raises(httpx.ConnectError):  # not trusted without that certificate
            httpx.get(f"{server.url}/healthz", timeout=5)
        with pytest.raises(httpx.HTTPError):  # no plain HTTP on the TLS port
            httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
    finally:
        server.stop()
    bad = tmp_path / "garbage.pem"
    bad.write_text("not a certificate\n")
    r = subprocess.run([str(EGOVLAB), "serve", "--tls-cert", str(bad), "--tls-key", str(key)], capture_output=True,
                       text=True, timeout=60, env={**os.environ,
                                                   "EGOVLAB_API_TOKENS": f"operator:{'o' * 30}"})
    assert r.returncode == 2 and "cannot load" in r.stderr and "Traceback" not in r.stderr


def test_the_cli_and_the_api_refuse_the_same_request_for_the_same_reason(served):
    """The bounds and names are defined once (egovlab/params.py): the reason reads the same."""
    cases = [  # (CLI arguments, API path, API body, the reason both must give)
        (["drill", "dongthap", "--fail", "tp-cao-lanh"], "/api/v1/drills",
         {"scenario": "dongthap", "fail": "tp-cao-lanh"}, "'tp-cao-lanh' is not a data centre of 'dongthap'"),
        (["simulate", "dongthap", "--horizon", "99999d"], "/api/v1/simulations",
         {"scenario": "dongthap", "horizon": "99999d"}, "99999d is outside 1m to 3650d"),
        (["simulate", "dongthap", "--horizon", "soon"], "/api/v1/simulations",
         {"scenario": "dongthap", "horizon": "soon"}, "expected a duration like '365d', '24h' or '90m', got 'soon'"),
    ]
    for argv, path, body, reason in cases:
        cli = subprocess.run([str(EGOVLAB), *argv], capture_output=True, text=True, timeout=60)
        with served.client(OP) as c:
            api = c.post(path, json=body)
        assert cli.returncode == 2 and reason in cli.stderr, (argv, cli.stderr)
        assert api.status_code == 422 and reason in api.json()["detail"], (path, api.text)
