"""Runs inside an emulated host's namespace: probe targets, print one JSON answer per target.

Standard library only (it is started with nsenter, not imported). argv[1] is
{"timeout": s, "targets": [[address, "tcp/443" | "icmp"], ...]}; the trailing argument
egovlab-lab=PREFIX only marks the process as the lab's.
"""
import concurrent.futures
import errno
import json
import socket
import subprocess
import struct
import sys
import time


def tcp(address: str, port: int, timeout: float) -> dict:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((address, port))
            return {"reachable": True, "detail": "open"}
        except ConnectionRefusedError:
            return {"reachable": True, "detail": "refused"}  # a RST came back: the path exists
        except socket.timeout:
            return {"reachable": False, "detail": "timeout"}
        except OSError as exc:
            if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
                return {"reachable": False, "detail": "unreachable"}
            return {"reachable": False, "detail": f"error {exc.errno}"}


def icmp(address: str, timeout: float) -> dict:
    argv = ["ping", "-6" if ":" in address else "-4", "-n", "-q", "-c", "2", "-i", "0.2",
            "-W", str(max(1, round(timeout))), address]
    ok = subprocess.run(argv, capture_output=True).returncode == 0
    return {"reachable": ok, "detail": "replied" if ok else "no-reply"}


def probe(target, timeout):
    address, port = target
    if port == "icmp":
        return icmp(address, timeout)
    return tcp(address, int(port.split("/")[1]), timeout)


def receive(spec: dict) -> None:
    """Count the sender's datagrams until `seconds` pass; print (seq, send time) of each."""
    family = socket.AF_INET6 if ":" in spec["bind"] else socket.AF_INET
    got = []
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((spec["bind"], spec["port"]))
        s.settimeout(0.2)
        print("ready", flush=True)
        deadline = time.monotonic() + spec["seconds"]
        while time.monotonic() < deadline:
            try:
                data = s.recv(64)
            except socket.timeout:
                continue
            seq, sent = struct.unpack("!Qd", data[:16])
            got.append([seq, sent])
    print(json.dumps(got))


def send(spec: dict) -> None:
    """Send `count` datagrams at `interval` s spacing on an absolute schedule (no drift)."""
    family = socket.AF_INET6 if ":" in spec["to"] else socket.AF_INET
    interval, count = spec["interval"], spec["count"]
    sent = 0
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        start = time.monotonic()
        for seq in range(count):
            due = start + seq * interval
            while (now := time.monotonic()) < due:
                if due - now > 0.002:
                    time.sleep(due - now - 0.001)
            try:
                s.sendto(struct.pack("!Qd", seq, time.time()), (spec["to"], spec["port"]))
                sent += 1
            except OSError:
                pass  # no route or carrier: the packet is lost like on the wire
    print(json.dumps({"sent": sent, "count": count}))


def main() -> None:
    if sys.argv[1] in ("send", "receive"):
        (send if sys.argv[1] == "send" else receive)(json.loads(sys.argv[2]))
        return
    spec = json.loads(sys.argv[1])
    with concurrent.futures.ThreadPoolExecutor(max_workers=48) as pool:
        answers = list(pool.map(lambda t: probe(t, spec["timeout"]), spec["targets"]))
    print(json.dumps(answers))


if __name__ == "__main__":
    main()
