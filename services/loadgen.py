"""Citizen-side HTTPS clients, each run inside an emulated host's namespace as
`python -m egovlab.services.loadgen JSON [egovlab-lab=P]` (the tag lets `down` find them), each
printing one JSON document when done:

- `submit`: a citizen submitting applications to the portal at a steady rate, open loop: each
  submission is sent on time whatever the earlier ones are doing, so one hanging in an outage
  delays no other and the first one sent after the service is back shows it (a closed loop, one
  after another, held the next submission back by a hung one's whole timeout: measured 3.0 s of
  a failback's RTO that was the citizen's, not the service's). Prints
  [[send time, done time, HTTP status (0: no answer), application id or null], ...] (UNIX times,
  comparable with the fault log's).
- `monitor`: GET `url` every `interval` s until `misses` checks in a row failed; prints the time
  of the last miss (the failure declared).
- `healthy`: GET `url` until it answers 200 with status ok, for at most `within` s; prints the
  seconds it took, or nothing.
- `throughput` (the benchmark's): closed-loop GETs from `concurrency` clients for `seconds`;
  prints {"requests", "errors", "seconds", "rps", "p50_ms", "p99_ms"}.
"""
from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time

import httpx

SUBMIT_TIMEOUT_S = 3.0  # a submission crosses the zones to the database in ~8-10 round trips, each
# 40-200 ms on the province's userspace datapath: 1 s left it at the edge (a drill measured no
# recovery at all when every submission after the takeover timed out, seen in CI)


def tls(ca: str) -> ssl.SSLContext:
    """Verify the portal against the lab's CA (httpx 0.28 deprecates verify=<path>)."""
    return ssl.create_default_context(cafile=ca)


def form(n: int) -> dict:
    return {"citizen_id": f"0832{n:08d}", "procedure": "birth-registration", "form": {"attempt": n}}


async def submit(url: str, ca: str | None, rate: float, seconds: float, timeout_s: float = SUBMIT_TIMEOUT_S) -> list:
    """Open loop: submission n is sent at start + n / rate; returns the attempts in the order
    they were sent."""
    attempts: list[list] = []
    # a connection per submission in flight: one hung on a dead peer holds no other back
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    async with httpx.AsyncClient(verify=tls(ca) if ca else True, timeout=timeout_s, limits=limits) as client:

        async def one(n: int, slot: list) -> None:
            try:
                r = await client.post(url, json=form(n))
                status = r.status_code
                app_id = r.json().get("id") if status == 201 else None
            except (httpx.HTTPError, ValueError):
                status, app_id = 0, None
            slot[1:] = [round(time.time(), 4), status, app_id]

        start, tasks, n = time.time(), [], 0
        while (due := start + n / rate) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.time()))
            slot = [round(time.time(), 4), None, 0, None]
            attempts.append(slot)
            tasks.append(asyncio.create_task(one(n + 1, slot)))
            n += 1
        await asyncio.gather(*tasks)
    return attempts


def monitor(url: str, ca: str, interval: float, misses_needed: int) -> float:
    misses = 0
    with httpx.Client(verify=tls(ca), timeout=interval) as c:
        while misses < misses_needed:
            t = time.time()
            try:
                misses = 0 if c.get(url).status_code == 200 else misses + 1
            except httpx.HTTPError:
                misses += 1
            time.sleep(max(0.0, t + interval - time.time()))
    return time.time()


def healthy(url: str, ca: str, within: float) -> float | None:
    t0 = time.monotonic()
    with httpx.Client(verify=tls(ca), timeout=2) as c:
        while time.monotonic() - t0 <= within:
            try:
                r = c.get(url)
                if r.status_code == 200 and r.json().get("status") == "ok":
                    return time.monotonic() - t0
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
    return None


async def throughput(url: str, ca: str, concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(verify=tls(ca), timeout=5.0, limits=limits) as client:
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


def main(args: dict):
    mode = args.get("mode", "submit")
    if mode == "submit":
        return asyncio.run(submit(args["url"], args["ca"], args["rate"], args["seconds"],
                                  args.get("timeout_s", SUBMIT_TIMEOUT_S)))
    if mode == "monitor":
        return monitor(args["url"], args["ca"], args["interval"], args["misses"])
    if mode == "healthy":
        return healthy(args["url"], args["ca"], args["within"])
    if mode == "throughput":
        return asyncio.run(throughput(args["url"], args["ca"], args["concurrency"], args["seconds"]))
    raise SystemExit(f"loadgen: unknown mode {mode!r}")


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
