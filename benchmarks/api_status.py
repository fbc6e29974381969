#!/usr/bin/env python3
"""The control API under load, as root (writes benchmarks/results/api_status.json):

GET /api/v1/labs/PREFIX (a lab's status: its links' state from the kernel, its faults, its
controller) of the full Đồng Tháp province under its controller, from 50 concurrent clients:
latency p50/p99 and requests per second; in the same run, the same load on a bare FastAPI
"hello" endpoint served by the same uvicorn (the baseline), and the ratio.

Usage: sudo .venv/bin/python benchmarks/api_status.py [--clients 50] [--requests 5000]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

import httpx
from api_lab import ROOT, served_lab, wait_up

from egovlab.sdn.launcher import free_port
HELLO = """
import uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/hello")
def hello() -> dict:
    return {"hello": "world"}
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning")
"""


async def load(url: str, headers: dict, clients: int, requests: int) -> dict:
    latencies: list[float] = []
    errors = 0
    remaining = requests

    async def client(c: httpx.AsyncClient) -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            r = await c.get(url, headers=headers)
            latencies.append(time.perf_counter() - t0)
            errors += r.status_code != 200

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as c:
        await c.get(url, headers=headers)  # warm up
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c) for _ in range(clients)))
        wall = time.perf_counter() - t0
    latencies.sort()
    pick = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)  # noqa: E731
    return {"requests": len(latencies), "errors": errors, "seconds": round(wall, 2),
            "rps": round(len(latencies) / wall, 1), "p50_ms": pick(0.50), "p99_ms": pick(0.99)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--prefix", default="eb")
    args = ap.parse_args()
    result: dict = {"clients": args.clients, "requests": args.requests}
    hello_port = free_port()
    hello = subprocess.Popen([sys.executable, "-c", HELLO.replace("{port}", str(hello_port))])
    try:
        with served_lab(args.prefix) as (api, token, up_s):
            headers = {"Authorization": f"Bearer {token}"}
            wait_up(f"http://127.0.0.1:{hello_port}/hello")
            result["lab_up_via_api_s"] = up_s
            status = httpx.get(f"{api}/api/v1/labs/{args.prefix}", headers=headers).json()
            result["status_bytes"] = len(json.dumps(status))
            result["lab"] = {k: status[k] for k in ("switches", "hosts", "links")}
            result["baseline_hello"] = asyncio.run(load(f"http://127.0.0.1:{hello_port}/hello", {}, args.clients,
                                                        args.requests))
            result["status"] = asyncio.run(load(f"{api}/api/v1/labs/{args.prefix}", headers, args.clients,
                                                args.requests))
            result["metrics"] = asyncio.run(load(f"{api}/metrics", headers, 10, 200))
    finally:
        hello.terminate()
        hello.wait(timeout=30)
    s, b = result["status"], result["baseline_hello"]
    result["ratio"] = {"rps_status_over_hello": round(s["rps"] / b["rps"], 3),
                       "p50_status_over_hello": round(s["p50_ms"] / b["p50_ms"], 2),
                       "p99_status_over_hello": round(s["p99_ms"] / b["p99_ms"], 2)}
    out = ROOT / "benchmarks" / "results" / "api_status.json"
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
