"""``HOST:PORT`` options (``--http``, ``--health``) checked by click before a command does anything.

A typo (``--http nonsense``) is a usage error with the expected form, given before any
file or database is created, instead of an ``int()`` traceback after.
"""

from __future__ import annotations

import socket
from typing import NamedTuple

import click


class HostPort(NamedTuple):
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def shown(self) -> str:
        """The address to print for a person to open (0.0.0.0 is not one)."""
        return f"{'127.0.0.1' if self.host in ('0.0.0.0', '::', '') else self.host}:{self.port}"


class HostPortType(click.ParamType):
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (host 127.0.0.1); port 0..65535."""

    name = "HOST:PORT"

    def convert(self, value, param, ctx) -> HostPort:
        if isinstance(value, HostPort):
            return value
        host, _, port = str(value).strip().rpartition(":")
        if not port.isdigit() or not 0 <= int(port) <= 65535 or (host and not host.strip("[]")):
            self.fail(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8080 or 0.0.0.0:8080)", param, ctx)
        return HostPort(host.strip("[]") or "127.0.0.1", int(port))


HOST_PORT = HostPortType()


def listen(address: HostPort) -> socket.socket:
    """A listening socket on ``address``, so a taken port fails here, at once, with the OS's reason
    (uvicorn would log it and exit after the rest had started); raises OSError."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address.host, address.port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve_http(app, sock: socket.socket, log_level: str = "warning") -> None:
    """Run an ASGI app with uvicorn on ``sock`` in this thread until SIGTERM or Ctrl-C, then return.

    uvicorn re-raises the signal it stopped for once it is done; with the default handler that kills the
    process before the caller's cleanup (the hub's last batch of counts, the outbox) runs. A no-op handler
    in its place lets ``serve_http`` return instead, so a stopped container exits 0 with nothing lost."""
    import signal

    import uvicorn

    previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(uvicorn.Config(app, log_level=log_level, log_config=None)).run(sockets=[sock])
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
