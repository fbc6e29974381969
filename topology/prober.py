"""Runs inside an emulated host's namespace: probe targets, print one JSON answer per target.

Standard library only (it is started with nsenter, not imported). argv[1] is
{"timeout": s, "targets": [[address, "tcp/443" | "icmp"], ...]}; the trailing argument
egovlab-lab=PREFIX only marks the process as the lab's.
"""
import errno
import json
import os
import selectors
import socket
import struct
import sys
import time


RESEND_S = 0.2  # an unanswered echo is sent again this often until the deadline


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def _echo(v6: bool, ident: int, seq: int) -> bytes:
    """An ICMP(v6) echo request; the kernel fills in the ICMPv6 checksum itself."""
    kind = 128 if v6 else 8
    payload = b"egovlab-probe"
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if v6:
        return header + payload
    return struct.pack("!BBHHH", kind, 0, _checksum(header + payload), ident, seq) + payload


def _echo_reply(data: bytes, v6: bool, ident: int) -> int | None:
    """The sequence number of one of our echo replies, else None (an IPv4 raw socket hands
    over the IP header too)."""
    if not v6:
        data = data[(data[0] & 0x0F) * 4:]
    if len(data) < 8:
        return None
    kind, _, _, rid, seq = struct.unpack("!BBHHH", data[:8])
    return seq if kind == (129 if v6 else 0) and rid == ident else None


TCP_ERRORS = {errno.ECONNREFUSED: (True, "refused"),  # a RST came back: the path exists
              errno.EHOSTUNREACH: (False, "unreachable"), errno.ENETUNREACH: (False, "unreachable"),
              errno.EADDRNOTAVAIL: (False, "unreachable")}


def _tcp_answer(code: int) -> dict:
    if code == 0:
        return {"reachable": True, "detail": "open"}
    reachable, detail = TCP_ERRORS.get(code, (False, f"error {code}"))
    return {"reachable": reachable, "detail": detail}


def probe_all(targets: list, timeout: float) -> list[dict]:
    """Every target at once against one deadline: a non-blocking TCP connect each (the kernel
    retransmits the SYN), and ICMP echoes on one raw socket per IP version, sent again every
    RESEND_S until one is answered. The matrix costs one timeout, not one per target."""
    answers: list = [None] * len(targets)
    sel = selectors.DefaultSelector()
    ident = os.getpid() & 0xFFFF
    raw: dict[bool, socket.socket] = {}
    echoes: dict[int, tuple[bool, bytes]] = {}  # target index (the echo's sequence) -> (v6, packed address)
    for i, (address, port) in enumerate(targets):
        v6 = ":" in address
        family = socket.AF_INET6 if v6 else socket.AF_INET
        if port == "icmp":
            if v6 not in raw:
                s = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, ("icmp", v6))
                raw[v6] = s
            echoes[i] = (v6, socket.inet_pton(family, address))
            continue
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        code = s.connect_ex((address, int(port.split("/")[1])))
        if code == errno.EINPROGRESS:
            sel.register(s, selectors.EVENT_WRITE, ("tcp", i))
        else:
            answers[i] = _tcp_answer(code)
            s.close()
    deadline = time.monotonic() + timeout
    resend_at = 0.0
    while (now := time.monotonic()) < deadline and (echoes or len(sel.get_map()) > len(raw)):
        if echoes and now >= resend_at:
            for i, (v6, packed) in echoes.items():
                try:
                    raw[v6].sendto(_echo(v6, ident, i), (targets[i][0], 0))
                except OSError:
                    pass  # no route: stays unanswered
            resend_at = now + RESEND_S
        wait = min(deadline, resend_at) - now if echoes else deadline - now
        for key, _ in sel.select(max(wait, 0)):
            what, ref = key.data
            if what == "tcp":
                answers[ref] = _tcp_answer(key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
                sel.unregister(key.fileobj)
                key.fileobj.close()
                continue
            while True:
                try:
                    data, peer = key.fileobj.recvfrom(2048)
                except BlockingIOError:
                    break
                seq = _echo_reply(data, ref, ident)
                family = socket.AF_INET6 if ref else socket.AF_INET
                if seq in echoes and echoes[seq] == (ref, socket.inet_pton(family, peer[0].split("%")[0])):
                    answers[seq] = {"reachable": True, "detail": "replied"}
                    del echoes[seq]
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    for i, (address, port) in enumerate(targets):
        if answers[i] is None:
            answers[i] = {"reachable": False, "detail": "no-reply" if port == "icmp" else "timeout"}
    return answers


def receive(spec: dict) -> None:
    """Count the senders' datagrams until the parent closes stdin (its senders are done), then
    `linger` s more for those in flight, or until `seconds` pass (a cap); print (seq, send time,
    sender's address, arrival time) of each. A window of its own from "ready" cut off the tail of
    a sender that started late on a loaded machine: those datagrams were called lost."""
    family = socket.AF_INET6 if ":" in spec["bind"] else socket.AF_INET
    got = []
    with socket.socket(family, socket.SOCK_DGRAM) as s, selectors.DefaultSelector() as sel:
        s.bind((spec["bind"], spec["port"]))
        sel.register(s, selectors.EVENT_READ)
        sel.register(sys.stdin, selectors.EVENT_READ)
        print("ready", flush=True)
        deadline = time.monotonic() + spec["seconds"]
        while (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(min(left, 0.2)):
                if key.fileobj is s:
                    data, peer = s.recvfrom(64)
                    seq, sent = struct.unpack("!Qd", data[:16])
                    got.append([seq, sent, peer[0], time.time()])
                elif not os.read(sys.stdin.fileno(), 64):  # EOF: the senders are done
                    sel.unregister(sys.stdin)
                    deadline = min(deadline, time.monotonic() + spec["linger"])
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
    print(json.dumps(probe_all(spec["targets"], spec["timeout"])))


if __name__ == "__main__":
    main()
