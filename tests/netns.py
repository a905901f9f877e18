"""Machines of their own for worker tests: Linux network namespaces, each joined to the
root namespace by a veth pair, and a TCP relay there to the embedded server's socket.

A process started in a namespace (``ip netns exec NAME …``) has its own network: it
reaches PostgreSQL only through its veth address, as another machine would through its
network card. (The file system is shared: the data files are "a shared folder".)
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit


def unusable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no ip command (iproute2)"
    probe = f"csvpg-probe-{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def server_address(dsn: str) -> str | tuple[str, int]:
    """Where the server of ``dsn`` listens: the unix socket of a
    ``postgresql://…?host=/dir&port=N`` DSN, else its TCP host and port."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    port = query.get("port", [str(parts.port or 5432)])[0]
    if "host" in query and query["host"][0].startswith("/"):
        return os.path.join(query["host"][0], f".s.PGSQL.{port}")
    return (parts.hostname or "127.0.0.1", int(port))


class _Relay(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: Relay = self.server  # type: ignore[assignment]
        server.accepted += 1
        family = socket.AF_UNIX if isinstance(server.target, str) else socket.AF_INET
        upstream = socket.socket(family, socket.SOCK_STREAM)
        upstream.connect(server.target)
        server.open += [upstream, self.request]

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                return  # the other side closed: the finally closes both
            finally:
                for s in (src, dst):
                    with suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        back = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
        back.start()
        pump(self.request, upstream)
        back.join()
        upstream.close()


class Relay(socketserver.ThreadingTCPServer):
    """TCP on one address → the server's unix socket (or its loopback port, which a
    namespace cannot reach); counts the connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: str, target: str | tuple[str, int]) -> None:
        super().__init__((address, 0), _Relay)
        self.target = target
        self.accepted = 0
        #: Both ends of every connection relayed: closed at the end, so that no
        #: session of a machine cut off outlives its test (its locks with it).
        self.open: list[socket.socket] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@dataclass
class Machine:
    """One namespace: its name, and the DSN by which it reaches the server."""

    name: str
    dsn: str
    relay: Relay = field(repr=False)
    #: The root namespace's end of its veth pair: its network card, seen from outside.
    link: str = ""
    #: The namespace's own end: its network card.
    card: str = ""

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def throttle(self, rate: str) -> None:
        """What the machine sends goes out at ``rate`` (tc's words: ``8mbit``)."""
        shape = ["tbf", "rate", rate, "burst", "32kbit", "latency", "400ms"]
        subprocess.run(
            [*self.prefix, "tc", "qdisc", "add", "dev", self.card, "root", *shape],
            check=True,
            capture_output=True,
        )

    def cut(self) -> None:
        """The machine's link down: nothing it sends arrives, nothing reaches it, and
        neither side is told (no reset), as when a cable or a switch port dies."""
        _ip("link", "set", self.link, "down")


@contextmanager
def machines(count: int, dsn: str) -> Iterator[list[Machine]]:
    """``count`` namespaces that reach the server of ``dsn`` over their veth only."""
    tag = secrets.token_hex(2)
    subnet = 64 + secrets.randbelow(128)
    made: list[Machine] = []
    try:
        for i in range(count):
            name, root_end, ns_end = f"csvpg-{tag}-{i}", f"cvr{tag}{i}", f"cvn{tag}{i}"
            here, there = f"10.{subnet}.{i}.1", f"10.{subnet}.{i}.2"
            _ip("netns", "add", name)
            _ip("link", "add", root_end, "type", "veth", "peer", "name", ns_end)
            _ip("link", "set", ns_end, "netns", name)
            _ip("addr", "add", f"{here}/24", "dev", root_end)
            _ip("link", "set", root_end, "up")
            _ip("-n", name, "addr", "add", f"{there}/24", "dev", ns_end)
            _ip("-n", name, "link", "set", ns_end, "up")
            _ip("-n", name, "link", "set", "lo", "up")
            relay = Relay(here, server_address(dsn))
            user = urlsplit(dsn).username or "postgres"
            database = urlsplit(dsn).path.lstrip("/") or "postgres"
            dsn_there = f"postgresql://{user}@{here}:{relay.port}/{database}"
            made.append(Machine(name, dsn_there, relay, root_end, ns_end))
        yield made
    finally:
        for m in made:
            m.relay.shutdown()
            m.relay.server_close()
            for s in m.relay.open:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
        for i in range(count):
            subprocess.run(["ip", "link", "delete", f"cvr{tag}{i}"], capture_output=True)
            subprocess.run(["ip", "netns", "delete", f"csvpg-{tag}-{i}"], capture_output=True)
