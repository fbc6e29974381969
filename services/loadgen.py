"""The drill's load generator: a citizen submitting applications to the portal over HTTPS, one
after another at a steady rate, recording every attempt (run inside a citizen host's namespace).

    python -m egovlab.services.loadgen '{"url": ..., "ca": ..., "rate": 10, "seconds": 30}' [egovlab-lab=P]

Prints one JSON list: [send time, done time, HTTP status (0: no answer), application id or null].
Times are UNIX times, comparable with the fault log's.
"""
from __future__ import annotations

import json
import sys
import time

import httpx


def run(url: str, ca: str, rate: float, seconds: float, timeout_s: float = 1.0) -> list:
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


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    print(json.dumps(run(args["url"], args["ca"], args["rate"], args["seconds"], args.get("timeout_s", 1.0))))
