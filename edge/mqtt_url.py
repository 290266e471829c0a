"""The broker address as one URL (mqtt://user:pass@host:port, mqtts:// for TLS), checked before anything starts.

One string is what an installer copies from the broker's admin page and what
fits an environment variable; parsing it up front turns a typo into a clear
error instead of an edge box that silently never connects.

Credentials and TLS files come from options *or* environment variables
(``mqtt_options``, shared by ``hallgrid edge`` and ``hallgrid hub``): a password
given on the command line is visible to every user of the machine in ``ps``,
so the documented way is ``HALLGRID_MQTT_PASSWORD`` (or an env file), and the
password never appears in a log line (``BrokerSettings.redacted``).
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import click

SCHEMES = {"mqtt": (False, 1883), "tcp": (False, 1883), "mqtts": (True, 8883), "ssl": (True, 8883)}


class BrokerUrlError(ValueError):
    """A broker URL that cannot be used; the message shows the expected form."""


@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None     # client certificate (brokers that authenticate by certificate)
    key_file: str | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS every MQTT client of hallgrid connects with (paho's here, the hub receiver's gmqtt): the
        given CA or the system's, the broker's host name checked, a client certificate where one is given;
        None without TLS."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def apply(self, client) -> None:
        """Set credentials and TLS on a paho client: every MQTT client of hallgrid connects the same way."""
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set_context(self.ssl_context())

    def redacted(self) -> str:
        """The URL for logs, without the password."""
        user = f"{self.username}:***@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_broker_url(url: str, ca_file: str | None = None, username: str | None = None,
                     password: str | None = None, cert_file: str | None = None,
                     key_file: str | None = None) -> BrokerSettings:
    """mqtt://[user[:pass]@]host[:port] or mqtts://... -> BrokerSettings; raise BrokerUrlError.

    ``username``/``password`` (options, environment) take precedence over the URL's own.

    >>> parse_broker_url("mqtts://edge:s3cret@broker.local").port
    8883
    >>> parse_broker_url("mqtt://broker.local", username="hub", password="pw").redacted()
    'mqtt://hub:***@broker.local:1883'
    """
    form = "expected mqtt://[user:pass@]host[:port] or mqtts://..."
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise BrokerUrlError(f"broker URL {_safe(url)!r} is malformed ({exc}); {form}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise BrokerUrlError(f"broker URL {_safe(url)!r} has scheme {parts.scheme or '(none)'!r}; {form}")
    if not parts.hostname:
        raise BrokerUrlError(f"broker URL {_safe(url)!r} has no host; {form}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise BrokerUrlError(f"broker URL {_safe(url)!r} has a path or query, which MQTT does not use; {form}")
    tls, default_port = SCHEMES[parts.scheme.lower()]
    for name, value in (("--ca", ca_file), ("--cert", cert_file), ("--key", key_file)):
        if value and not tls:
            raise BrokerUrlError(f"{name} given but broker URL {_safe(url)!r} is not mqtts://")
    if bool(cert_file) != bool(key_file):
        raise BrokerUrlError("a client certificate needs both --cert and --key")
    user = username or (unquote(parts.username) if parts.username else None)
    secret = password if password is not None else (unquote(parts.password) if parts.password is not None else None)
    if secret is not None and not user:
        raise BrokerUrlError("an MQTT password is given but no user name (--mqtt-user / HALLGRID_MQTT_USERNAME)")
    return BrokerSettings(parts.hostname, port or default_port, tls, user, secret, ca_file, cert_file, key_file)


def _safe(url: str) -> str:
    from edge.redact import redact

    return redact(url)


def mqtt_options(fn):
    """The broker options of a command, each also read from the environment; the command gets ``broker``.

    The decorated command receives one ``broker: BrokerSettings`` argument (checked, or a usage error naming
    the problem) instead of the six options, so commands stay thin and connect the same way.
    """
    file = click.Path(exists=True, dir_okay=False)

    @functools.wraps(fn)
    def wrapper(*args, mqtt_url, mqtt_username, mqtt_password, ca_file, cert_file, key_file, **kwargs):
        try:
            broker = parse_broker_url(mqtt_url, ca_file, mqtt_username, mqtt_password, cert_file, key_file)
        except BrokerUrlError as exc:
            raise click.UsageError(str(exc)) from None
        if not broker.username and not broker.cert_file:
            click.echo("warning: no broker account (--mqtt-user, HALLGRID_MQTT_USERNAME): a broker set up with "
                       "`hallgrid broker-config` refuses anonymous clients", err=True)
        return fn(*args, broker=broker, **kwargs)

    for option in reversed([
        click.option("--mqtt", "mqtt_url", default="mqtt://127.0.0.1:1883", show_default=True, envvar="HALLGRID_MQTT",
                     help="Broker: mqtt://host[:port] or mqtts://... for TLS [env HALLGRID_MQTT]."),
        click.option("--mqtt-user", "mqtt_username", envvar="HALLGRID_MQTT_USERNAME",
                     help="Broker user (see `hallgrid broker-config`) [env HALLGRID_MQTT_USERNAME]."),
        click.option("--mqtt-password", "mqtt_password", envvar="HALLGRID_MQTT_PASSWORD",
                     help="Broker password; prefer the environment variable, the command line shows in ps "
                          "[env HALLGRID_MQTT_PASSWORD]."),
        click.option("--ca", "ca_file", type=file, envvar="HALLGRID_MQTT_CA",
                     help="CA certificate for mqtts:// [env HALLGRID_MQTT_CA]."),
        click.option("--cert", "cert_file", type=file, envvar="HALLGRID_MQTT_CERT",
                     help="Client certificate for mqtts:// [env HALLGRID_MQTT_CERT]."),
        click.option("--key", "key_file", type=file, envvar="HALLGRID_MQTT_KEY",
                     help="Client certificate's key [env HALLGRID_MQTT_KEY]."),
    ]):
        wrapper = option(wrapper)
    return wrapper
