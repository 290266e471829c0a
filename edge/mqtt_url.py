"""The broker address as one URL (mqtt://user:pass@host:port, mqtts:// for TLS), checked before anything starts.

One string is what an installer copies from the broker's admin page and what
fits an environment variable; parsing it up front turns a typo into a clear
error instead of an edge box that silently never connects.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SCHEMES = {"mqtt": (False, 1883), "tcp": (False, 1883), "mqtts": (True, 8883), "ssl": (True, 8883)}


class BrokerUrlError(ValueError):
    """A broker URL that cannot be used; the message shows the expected form."""


@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None

    def apply(self, client) -> None:
        """Set credentials and TLS on a paho client: every MQTT client of hallgrid connects the same way."""
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set(ca_certs=self.ca_file)

    def redacted(self) -> str:
        """The URL for logs, without the password."""
        user = f"{self.username}:***@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker_url(url: str, ca_file: str | None = None) -> BrokerSettings:
    """mqtt://[user[:pass]@]host[:port] or mqtts://... -> BrokerSettings; raise BrokerUrlError.

    >>> parse_broker_url("mqtts://edge:s3cret@broker.local").port
    8883
    """
    form = "expected mqtt://[user:pass@]host[:port] or mqtts://..."
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise BrokerUrlError(f"broker URL {url!r} is malformed ({exc}); {form}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise BrokerUrlError(f"broker URL {url!r} has scheme {parts.scheme or '(none)'!r}; {form}")
    if not parts.hostname:
        raise BrokerUrlError(f"broker URL {url!r} has no host; {form}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise BrokerUrlError(f"broker URL {url!r} has a path or query, which MQTT does not use; {form}")
    tls, default_port = SCHEMES[parts.scheme.lower()]
    if ca_file and not tls:
        raise BrokerUrlError(f"--ca given but broker URL {url!r} is not mqtts://")
    return BrokerSettings(parts.hostname, port or default_port, tls,
                          unquote(parts.username) if parts.username else None,
                          unquote(parts.password) if parts.password is not None else None, ca_file)
