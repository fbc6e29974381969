"""Run one service: python -m egovlab.services NAME --host ADDR --port N [--tls-cert F --tls-key F].

uvicorn serves it; settings come from EGOV_* environment variables (see common.py)."""
from __future__ import annotations

import argparse

import uvicorn

SERVICES = {"cong-dvc": "portal", "mot-cua": "motcua", "qlvb": "qlvb", "lgsp": "lgsp", "ngsp": "ngsp"}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m egovlab.services")
    ap.add_argument("service", choices=sorted(SERVICES))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args, _ = ap.parse_known_args()  # extra arguments (egovlab-lab=PREFIX) only mark the process
    uvicorn.run(f"egovlab.services.{SERVICES[args.service]}:app", host=args.host, port=args.port,
                ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
