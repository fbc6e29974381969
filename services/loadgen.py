"""Load generators, run inside a citizen host's namespace:

- the drill's: a citizen submitting applications to the portal over HTTPS, one after another
  at a steady rate, recording every attempt;
      python -m egovlab.services.loadgen '{"url": ..., "ca": ..., "rate": 10, "seconds": 30}' [egovlab-lab=P]
  prints one JSON list: [send time, done time, HTTP status (0: no answer), application id or null]
  (UNIX times, comparable with the fault log's);
- the benchmark's: closed-loop GETs from `concurrency` clients for `seconds`;
      python -m egovlab.services.loadgen '{"mode": "throughput", "url": ..., "ca": ..., "concurrency": 16, ...}'
  prints {"requests", "errors", "seconds", "rps", "p50_ms", "p99_ms"}.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx


SUBMIT_TIMEOUT_S = 3.0  # a submission crosses the zones to the database in ~8-10 round trips, each
# 40-200 ms on the province's userspace datapath: 1 s left it at the edge (a drill measured no
# recovery at all when every submission after the takeover timed out, seen in CI)


def run(url: str, ca: str, rate: float, seconds: float, timeout_s: float = SUBMIT_TIMEOUT_S) -> list:
    attempts = []
    interval = 1.0 / rate
    end = time.time() + seconds
    with httpx.Client(verify=ca, timeout=timeout_s) as client:
        n = 0
        while time.time() < end:
            n += 1
            sent = time.time()
            body = {"citizen_id": f"0832{n:08d}", "procedure": "birth-registration", "form": {"attempt": n}}
            try:
                r = client.post(url, json=body)
                status, app_id = r.status_code, (r.json().get("id") if r.status_code == 201 else None)
            except (httpx.HTTPError, ValueError):
                status, app_id = 0, None
            done = time.time()
            attempts.append([round(sent, 4), round(done, 4), status, app_id])
            time.sleep(max(0.0, sent + interval - time.time()))
    return attempts


async def _throughput(url: str, ca: str, concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(verify=ca, timeout=5.0, limits=limits) as client:
        end = time.perf_counter() + seconds

        async def worker():
            nonlocal errors
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                try:
                    ok = (await client.get(url)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    latencies.sort()
    q = lambda p: round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2) if latencies else None  # noqa: E731
    return {"requests": len(latencies), "errors": errors, "seconds": round(wall, 2),
            "rps": round(len(latencies) / wall, 1), "p50_ms": q(0.5), "p99_ms": q(0.99)}


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    if args.get("mode") == "throughput":
        print(json.dumps(asyncio.run(_throughput(args["url"], args["ca"], args["concurrency"], args["seconds"]))))
    else:
        print(json.dumps(run(args["url"], args["ca"], args["rate"], args["seconds"], args.get("timeout_s", SUBMIT_TIMEOUT_S))))
