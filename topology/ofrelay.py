"""Carries OpenFlow from switches in shard namespaces to the controller on the root's loopback.

The controller listens on 127.0.0.1 in the root namespace, which a shard's namespace cannot
reach; the relay listens at the same loopback address and port inside each shard (so every
switch keeps the same controller target) and pipes each connection through. Nothing leaves
loopback.
"""
from __future__ import annotations

import socket
import threading

from . import netns


class ControllerRelay:
    def __init__(self, controller: tuple[str, int], namespaces: list[str]):
        self.controller = controller
        self.listeners: list[socket.socket] = []
        for name in namespaces:
            with netns.inside(name=name):
                sock = socket.socket(socket.AF_INET6 if ":" in controller[0] else socket.AF_INET)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(controller)  # the same loopback address and port as the controller's
            sock.listen(1024)
            self.listeners.append(sock)
        for sock in self.listeners:
            threading.Thread(target=self._serve, args=(sock,), daemon=True, name="of-relay").start()

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.controller, timeout=5)
            except OSError:
                conn.close()  # the controller is down: the switch retries with its backoff
                continue
            upstream.settimeout(None)
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=_pump, args=(src, dst), daemon=True, name="of-relay").start()

    def close(self) -> None:
        for sock in self.listeners:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            sock.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
