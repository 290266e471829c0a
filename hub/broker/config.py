"""Accounts, ACL and password file for Mosquitto, from the site files (the roles of README "Security: the broker").

Why generated: an ACL written by hand drifts from the site files (a camera
added, a topic misspelt) and a missing line fails open only for the attacker.
Generated from the same ids the edge and hub use, it gives each account exactly
the topics its role needs:

- ``hub`` (one account per hub, serving some sites): reads everything of its sites, and is the only role
  that may publish ``{prefix}/{site}/alerts/+``;
- ``edge`` (one account per edge box, listing the cameras it serves): publishes only
  ``{prefix}/{site}/{camera}/#`` of its cameras (occupancy and status, the last will included);
- ``tickets`` (one account per site's ticket feed): publishes only ``{prefix}/{site}/tickets``.

Passwords are taken from the environment (``HALLGRID_BROKER_PASSWORD_<ACCOUNT>``), else from a credentials
file an earlier run wrote, else generated; they are written only to the 0600 files of the output folder and
never printed. The password file uses Mosquitto 2's own PBKDF2-SHA512 format (``$7$``), so no
``mosquitto_passwd`` run is needed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from calibration.site import Site
from edge.contract import DEFAULT_PREFIX, MAX_PAYLOAD

ROLES = ("hub", "edge", "tickets")
PBKDF2_ITERATIONS = 20_000
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class BrokerConfigError(ValueError):
    """An account list that cannot be generated (unknown site or camera, a name used twice)."""


@dataclass(frozen=True)
class Account:
    """One broker user and the topics its role grants."""

    name: str
    role: str
    site_ids: tuple[str, ...]
    cameras: tuple[str, ...] = ()             # edge: the cameras of its box (of its one site)
    password: str = field(default="", repr=False, compare=False)

    def acl(self, prefix: str) -> list[str]:
        if self.role == "hub":
            return [line for sid in self.site_ids
                    for line in (f"topic read {prefix}/{sid}/#", f"topic write {prefix}/{sid}/alerts/+")]
        if self.role == "edge":
            return [f"topic write {prefix}/{self.site_ids[0]}/{cam}/#" for cam in self.cameras]
        return [f"topic write {prefix}/{sid}/tickets" for sid in self.site_ids]

    def env_name(self) -> str:
        return "HALLGRID_BROKER_PASSWORD_" + re.sub(r"[^A-Za-z0-9]", "_", self.name).upper()


def _split(spec: str, what: str) -> tuple[str, list[str]]:
    name, sep, rest = spec.partition("=")
    if not sep or not NAME.fullmatch(name) or not rest:
        raise BrokerConfigError(f"{what} {spec!r}: expected NAME=...")
    return name, [x.strip() for x in rest.split(",") if x.strip()]


def plan_accounts(sites: list[Site], hubs: list[str] = (), edges: list[str] = ()) -> list[Account]:
    """The accounts for these sites: ``hubs`` as 'NAME=SITE,SITE', ``edges`` as 'NAME=SITE:CAM,CAM'.

    Defaults: one hub ``hub`` for every site, one edge box ``edge-SITE`` per site with all its cameras
    (for each site no ``edges`` entry names), and a ``tickets-SITE`` feed per site.
    """
    by_id = {s.id: s for s in sites}
    out: list[Account] = []
    for spec in hubs or [f"hub={','.join(by_id)}"]:
        name, ids = _split(spec, "--hub")
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise BrokerConfigError(f"--hub {name}: no site file has {', '.join(unknown)}")
        out.append(Account(name, "hub", tuple(ids)))
    boxes: dict[str, list[Account]] = {sid: [] for sid in by_id}
    for spec in edges:
        name, parts = _split(spec, "--edge")
        site_id, sep, first = parts[0].partition(":") if parts else ("", "", "")
        cams = [first, *parts[1:]] if sep else []
        if site_id not in by_id or not cams:
            raise BrokerConfigError(f"--edge {spec!r}: expected NAME=SITE:CAMERA,CAMERA of a given site")
        known = {c.id for c in by_id[site_id].cameras}
        if unknown := [c for c in cams if c not in known]:
            raise BrokerConfigError(f"--edge {name}: site {site_id} has no camera {', '.join(unknown)}")
        boxes[site_id].append(Account(name, "edge", (site_id,), tuple(cams)))
    for sid, site in by_id.items():
        out.extend(boxes[sid] or [Account(f"edge-{sid}", "edge", (sid,), tuple(c.id for c in site.cameras))])
    out.extend(Account(f"tickets-{sid}", "tickets", (sid,)) for sid in by_id)
    names = [a.name for a in out]
    if len(set(names)) != len(names):
        raise BrokerConfigError(f"an account name is used twice: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    return out


def password_line(name: str, password: str, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    """One line of a Mosquitto 2 password file: ``name:$7$iterations$salt$hash`` (PBKDF2-SHA512, 64 bytes)."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"{name}:$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _read_env_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _write_private(path: Path, text: str) -> None:
    """Create with mode 0600 from the start (no window in which another user can read it)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


@dataclass(frozen=True)
class BrokerFiles:
    """What ``write_broker_config`` wrote; ``accounts`` carry their passwords (for tests and the demo)."""

    folder: Path
    conf: Path
    accounts: list[Account]

    def account(self, name: str) -> Account:
        return next(a for a in self.accounts if a.name == name)

    def credentials(self, name: str) -> Path:
        return self.folder / "credentials" / f"{name}.env"


def write_broker_config(out: Path, accounts: list[Account], prefix: str = DEFAULT_PREFIX, port: int = 1883, bind: str = "127.0.0.1",
                        persistence: bool = True, max_payload: int = MAX_PAYLOAD, tls_cert: str | None = None,
                        tls_key: str | None = None, tls_ca: str | None = None, run_as: str | None = None,
                        env: Mapping[str, str] | None = None) -> BrokerFiles:
    """Write mosquitto.conf, passwd, acl and credentials/ACCOUNT.env into ``out`` for ``plan_accounts``' accounts.

    A password comes from the account itself, the environment, an earlier run's credentials file (so that
    regenerating after adding a camera does not change every box's password) or is generated.
    """
    env = os.environ if env is None else env
    out = Path(out).resolve()
    (out / "credentials").mkdir(parents=True, exist_ok=True)
    os.chmod(out / "credentials", 0o700)
    accounts = [Account(a.name, a.role, a.site_ids, a.cameras, a.password or env.get(a.env_name())
                        or _read_env_file(out / "credentials" / f"{a.name}.env").get("HALLGRID_MQTT_PASSWORD")
                        or secrets.token_urlsafe(24)) for a in accounts]
    files = BrokerFiles(out, out / "mosquitto.conf", accounts)
    for a in accounts:
        _write_private(files.credentials(a.name), f"# broker account {a.name} (role {a.role}); keep private\n"
                       f"HALLGRID_MQTT_USERNAME={a.name}\nHALLGRID_MQTT_PASSWORD={a.password}\n")
    _write_private(out / "passwd", "".join(password_line(a.name, a.password) + "\n" for a in accounts))
    acl = ["# written by `hallgrid broker-config`: anything not granted here is denied", ""]
    for a in accounts:
        acl += [f"# {a.role} of {', '.join(a.site_ids)}" + (f": cameras {', '.join(a.cameras)}" if a.cameras else ""),
                f"user {a.name}", *a.acl(prefix), ""]
    (out / "acl").write_text("\n".join(acl), encoding="utf-8")
    lines = ["# written by `hallgrid broker-config` (README, \"Security: the broker\"); regenerate, do not edit",
             "per_listener_settings false", "allow_anonymous false", f"password_file {out / 'passwd'}",
             f"acl_file {out / 'acl'}",
             "# the largest MQTT packet: the payload limit the hub checks, plus room for the topic and header",
             f"max_packet_size {max_payload + 1024}",
             "# a hub's persistent session keeps tickets while it restarts", "max_queued_messages 100000",
             f"persistence {'true' if persistence else 'false'}"]
    if run_as:   # started as root, Mosquitto switches to this user (default 'mosquitto'), who must read passwd
        lines.append(f"user {run_as}")
    if persistence:
        (out / "data").mkdir(exist_ok=True)
        lines.append(f"persistence_location {out / 'data'}/")
    lines.append(f"listener {port} {bind}")
    if tls_cert or tls_key:
        lines += [f"certfile {Path(tls_cert).resolve()}", f"keyfile {Path(tls_key).resolve()}"]
        if tls_ca:
            lines += [f"cafile {Path(tls_ca).resolve()}", "require_certificate true"]
    files.conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return files
