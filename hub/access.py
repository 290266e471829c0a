"""Who may use the hub: board logins (signed session cookie), bearer tokens, and the two roles.

The board shows where customers queue and lets a duty manager close alerts, so
neither it nor the API is open to whoever reaches the port. Users come from the
site file's ``access:`` section or from the environment (``HALLGRID_USERS``,
``HALLGRID_TOKEN``); passwords are stored only as scrypt hashes. A login gives an
HMAC-signed cookie (stdlib only: no session store, survives a hub restart when
the secret does), scripts send ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from calibration.site import Role, Site, User
from edge.clock import Clock, SystemClock
from edge.state_dir import state_dir

COOKIE = "hallgrid_session"
VIEWER, DUTY_MANAGER = Role.VIEWER.value, Role.DUTY_MANAGER.value
# Paths anyone may load: the login form and the static files (no hall data in them).
PUBLIC_PATHS = ("/login", "/healthz", "/livez", "/readyz")   # probes: no hall data
PUBLIC_PREFIXES = ("/board/static/",)
MIN_SECRET_BYTES = 32
# Login throttle: this many failures for one client address and name within the window refuse that pair
# until the oldest failure leaves the window.
MAX_FAILURES, FAILURE_WINDOW_S = 5, 300.0


class AccessError(ValueError):
    """A user list that cannot be used (bad HALLGRID_USERS entry, duplicate name); says which entry."""


def hash_password(password: str, salt: bytes | None = None, n: int = 2 ** 14, r: int = 8, p: int = 1) -> str:
    """scrypt hash in the form the site file stores: 'scrypt$N$r$p$salthex$hashhex'."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against a 'scrypt$...' hash; False for a malformed hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(bytes.fromhex(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


_dummy_hash: str | None = None


def _dummy() -> str:
    """A hash to check unknown names against, so a wrong name takes as long as a wrong password."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash


@dataclass(frozen=True)
class Principal:
    """The user a request acts for."""

    name: str
    role: str

    @property
    def can_act(self) -> bool:
        """Acknowledge and resolve alerts: the duty manager's job, not a viewer's."""
        return self.role == DUTY_MANAGER

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "can_act": self.can_act}


def users_from_env(env: Mapping[str, str]) -> list[User]:
    """``HALLGRID_USERS='name:role:SECRET,...'`` (SECRET a 'scrypt$' hash, else a token of 16+ characters)
    and ``HALLGRID_TOKEN`` (a duty-manager token named 'api', for scripts and the ticket system)."""
    users = []
    for i, entry in enumerate(e.strip() for e in env.get("HALLGRID_USERS", "").split(",")):
        if not entry:
            continue
        parts = entry.split(":", 2)
        if len(parts) != 3:
            raise AccessError(f"HALLGRID_USERS entry {i + 1}: expected name:role:secret")
        name, role, secret = parts
        try:
            users.append(User(name=name, role=role, **({"password_hash": secret} if secret.startswith("scrypt$")
                                                       else {"token": secret})))
        except ValueError as exc:
            raise AccessError(f"HALLGRID_USERS entry {i + 1} ({name}): {exc}") from None
    if env.get("HALLGRID_TOKEN"):
        try:
            users.append(User(name="api", role=Role.DUTY_MANAGER, token=env["HALLGRID_TOKEN"]))
        except ValueError as exc:
            raise AccessError(f"HALLGRID_TOKEN: {exc}") from None
    return users


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Access:
    """The hub's users; checks passwords and tokens, issues and reads session cookies."""

    def __init__(self, users: Iterable[User], secret: bytes, session_s: float = 12 * 3600,
                 clock: Clock | None = None):
        self.users: dict[str, User] = {}
        for u in users:
            if u.name in self.users and self.users[u.name] != u:   # the same user in two site files is fine
                raise AccessError(f"user {u.name!r} is configured twice, differently")
            self.users[u.name] = u
        self._tokens = {u.token: u for u in self.users.values() if u.token}
        self.secret = secret
        self.session_s = session_s
        self.clock = clock or SystemClock()
        self._failures: dict[tuple[str, str], list[float]] = {}     # (client, name) -> failure times
        self._failures_lock = threading.Lock()

    @classmethod
    def for_sites(cls, sites: list[Site], env: Mapping[str, str], secret: bytes,
                  clock: Clock | None = None) -> "Access | None":
        """Users of every site file plus the environment; None when nobody is configured."""
        users = [u for s in sites if s.access for u in s.access.users] + users_from_env(env)
        hours = min((s.access.session_hours for s in sites if s.access), default=12.0)
        return cls(users, secret, hours * 3600, clock) if users else None

    @staticmethod
    def principal(user: User) -> Principal:
        return Principal(user.name, Role(user.role).value)

    def throttled(self, name: str, client: str = "") -> bool:
        """Too many recent failed logins for this name from this address: refuse without checking."""
        now = self.clock.now()
        with self._failures_lock:
            times = [t for t in self._failures.get((client, name), []) if t > now - FAILURE_WINDOW_S]
            return len(times) >= MAX_FAILURES

    def _failed(self, name: str, client: str) -> None:
        now = self.clock.now()
        with self._failures_lock:
            if len(self._failures) > 10_000:      # bounded: forget pairs with no recent failure
                self._failures = {k: v for k, v in self._failures.items() if v[-1] > now - FAILURE_WINDOW_S}
            times = [t for t in self._failures.get((client, name), []) if t > now - FAILURE_WINDOW_S]
            self._failures[(client, name)] = times[-MAX_FAILURES + 1:] + [now]

    def login(self, name: str, password: str, client: str = "") -> Principal | None:
        """The user for a right name and password; None otherwise, or while ``throttled``. Blocking (scrypt,
        tens of ms): call it off the event loop. Unknown names are checked against a dummy hash, so the
        time taken does not tell which names exist."""
        if self.throttled(name, client):
            return None
        user = self.users.get(name)
        stored = user.password_hash if user is not None and user.password_hash else _dummy()
        ok = verify_password(password, stored) and user is not None and bool(user.password_hash)
        if not ok:
            self._failed(name, client)
            return None
        with self._failures_lock:
            self._failures.pop((client, name), None)
        return self.principal(user)

    def by_token(self, token: str) -> Principal | None:
        for known, user in self._tokens.items():     # compare every one in constant time
            if hmac.compare_digest(known.encode(), token.encode()):
                return self.principal(user)
        return None

    # --- session cookie: base64(json).base64(hmac-sha256) ------------------------------------------
    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self.secret, body.encode(), hashlib.sha256).digest())

    def session_cookie(self, who: Principal) -> str:
        body = _b64(json.dumps({"u": who.name, "exp": int(self.clock.now() + self.session_s)}).encode())
        return f"{body}.{self._sign(body)}"

    def from_cookie(self, value: str) -> Principal | None:
        """The user of a valid, unexpired cookie; the role is read from the current configuration, so
        removing a user or lowering a role takes effect at once."""
        body, _, sig = value.partition(".")
        if not body or not hmac.compare_digest(sig, self._sign(body)):
            return None
        try:
            data = json.loads(_unb64(body))
        except ValueError:
            return None
        user = self.users.get(data.get("u", ""))
        if user is None or data.get("exp", 0) < self.clock.now():
            return None
        return self.principal(user)

    def identify(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Principal | None:
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            return self.by_token(auth[7:].strip())
        if COOKIE in cookies:
            return self.from_cookie(cookies[COOKIE])
        return None


def load_secret(path: Path, env: Mapping[str, str] | None = None) -> bytes:
    """The cookie-signing key: ``HALLGRID_SECRET`` (at least 32 bytes, else AccessError), else a random
    key kept in ``path`` (mode 600), so board logins survive a hub restart. A missing, unreadable or
    short file (a crash while writing, a hand edit) gets a new key, written atomically."""
    env = os.environ if env is None else env
    if env.get("HALLGRID_SECRET"):
        key = env["HALLGRID_SECRET"].encode()
        if len(key) < MIN_SECRET_BYTES:
            raise AccessError(f"HALLGRID_SECRET is {len(key)} bytes: the cookie-signing key needs at least "
                              f"{MIN_SECRET_BYTES} (e.g. python -c 'import secrets; print(secrets.token_hex(32))')")
        return key
    try:
        key = bytes.fromhex(path.read_text().strip())
        if len(key) >= MIN_SECRET_BYTES:
            return key
    except (OSError, ValueError):
        pass
    key = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(key.hex())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return key


def _parse_cookies(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k:
            out[k] = v
    return out


class RequireLogin:
    """ASGI middleware: every path but the login form needs a user; the API answers 401, pages redirect.

    Pure ASGI rather than BaseHTTPMiddleware, so the SSE stream passes through unbuffered."""

    def __init__(self, app, access: Access):
        self.app = app
        self.access = access

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        who = self.access.identify(headers, _parse_cookies(headers.get("cookie", "")))
        scope.setdefault("state", {})["user"] = who
        if who is not None or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return await self.app(scope, receive, send)
        if path.startswith("/api") or path in ("/openapi.json", "/docs", "/redoc", "/metrics"):
            body = json.dumps({"detail": "login required: a session cookie or 'Authorization: Bearer TOKEN'"})
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
            await send({"type": "http.response.body", "body": body.encode()})
            return
        await send({"type": "http.response.start", "status": 303, "headers": [(b"location", b"/login")]})
        await send({"type": "http.response.body", "body": b""})


def actor(request, who: str) -> str:
    """Who an acknowledge/resolve is recorded for: the logged-in user (403 for a viewer); the body's
    ``who`` only when the hub runs without access control."""
    from fastapi import HTTPException

    if getattr(request.app.state, "access", None) is None:
        return who
    user: Principal | None = request.scope.get("state", {}).get("user")
    if user is None:
        raise HTTPException(401, "login required")
    if not user.can_act:
        raise HTTPException(403, f"{user.name} is a {user.role}: only a duty_manager may acknowledge or resolve")
    return user.name


def secret_path(db_url: str) -> Path:
    """Beside the SQLite file (one hall, one folder), else in the user's state folder."""
    if db_url.startswith("sqlite:///") and db_url not in ("sqlite:///:memory:",):
        return Path(db_url.removeprefix("sqlite:///") + ".secret")
    return state_dir() / "hub.secret"


def access_for_hub(sites: list[Site], db_url: str, open_access: bool, env: Mapping[str, str] | None = None
                   ) -> tuple[Access | None, str | None]:
    """The ``hallgrid hub`` policy: configured users; with none, a one-off duty-manager token (returned so
    the command prints it) rather than an open hub; ``open_access`` (``--no-auth``) only when asked."""
    if open_access:
        return None, None
    env = os.environ if env is None else env
    secret = load_secret(secret_path(db_url), env)
    access = Access.for_sites(sites, env, secret)
    if access is not None:
        return access, None
    token = secrets.token_urlsafe(24)
    return Access([User(name="admin", role=Role.DUTY_MANAGER, token=token)], secret), token
