"""Who may use the hub: board logins (signed session cookie), bearer tokens, and the roles.

The board shows where customers queue and lets a duty manager close alerts, so
neither it nor the API is open to whoever reaches the port. Users come from the
site file's ``access:`` section or from the environment (``HALLGRID_USERS``,
``HALLGRID_TOKEN``, ``HALLGRID_TICKET_TOKEN``); passwords are stored only as scrypt
hashes. A login gives an HMAC-signed cookie carrying a session id (it survives a hub
restart when the secret does; logging out revokes that id, and the revocations are
kept in a file beside the key), scripts send ``Authorization: Bearer TOKEN``.
What each role may do is ``ROLE_ACTIONS``; the throttle is ``hub.login_throttle``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlencode

from calibration.site import Role, Site, User, parse_site
from edge.clock import Clock, SystemClock
from edge.state_dir import state_dir

from hub.login_throttle import LoginThrottle

COOKIE = "hallgrid_session"
VIEWER, DUTY_MANAGER, TICKET_FEED = Role.VIEWER.value, Role.DUTY_MANAGER.value, Role.TICKET_FEED.value
# What each role may change; every role but the ticket feed may read everything.
ROLE_ACTIONS = {VIEWER: frozenset(), DUTY_MANAGER: frozenset({"tickets", "alerts"}),
                TICKET_FEED: frozenset({"tickets"})}
# The only requests a ticket-feed token may make: it sends events and reads nothing of the hall.
TICKET_FEED_PATHS = re.compile(r"/api/sites/[^/]+/tickets(\.csv)?")
# Paths anyone may load: the login form and the static files (no hall data in them).
PUBLIC_PATHS = ("/login", "/healthz", "/livez", "/readyz")   # probes: no hall data
PUBLIC_PREFIXES = ("/board/static/",)
MIN_SECRET_BYTES = 32
# scrypt: OWASP's parameters (N=2^17, r=8, p=1: 128 MiB per check). Stored hashes carry their own
# parameters (older N=2^14 ones still verify); a hash asking for more than these bounds is refused, so a
# site file cannot make one login allocate gigabytes. At most CONCURRENT_CHECKS checks run at once.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 17, 8, 1
MAX_SCRYPT_N, MAX_SCRYPT_R, MAX_SCRYPT_P = 2 ** 20, 16, 4
CONCURRENT_CHECKS = 2


class AccessError(ValueError):
    """A user list that cannot be used (bad HALLGRID_USERS entry, duplicate name); says which entry."""


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    # maxmem: what OpenSSL needs for these parameters (128*r*(N+p+2) bytes) plus slack; the default
    # 32 MiB refuses N=2^17
    return hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p, dklen=dklen,
                          maxmem=128 * r * (n + p + 2) + 2 ** 20)


def hash_password(password: str, salt: bytes | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R,
                  p: int = SCRYPT_P) -> str:
    """scrypt hash in the form the site file stores: 'scrypt$N$r$p$salthex$hashhex'."""
    salt = salt or secrets.token_bytes(16)
    return f"scrypt${n}${r}${p}${salt.hex()}${_scrypt(password, salt, n, r, p, 32).hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against a 'scrypt$...' hash; False for a malformed hash or one
    whose parameters exceed the bounds above."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        n, r, p = int(n), int(r), int(p)
        if scheme != "scrypt" or n > MAX_SCRYPT_N or r > MAX_SCRYPT_R or p > MAX_SCRYPT_P:
            return False
        got = _scrypt(password, bytes.fromhex(salt), n, r, p, len(bytes.fromhex(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


_dummies: dict[tuple[int, int, int], str] = {}


def _dummy(like: str | None) -> str:
    """A hash to check unknown names against, with the parameters of the configured users' hashes (``like``),
    so a wrong name takes as long as a wrong password."""
    try:
        _, n, r, p, _, _ = (like or "").split("$")
        params = (int(n), int(r), int(p))
    except ValueError:
        params = (SCRYPT_N, SCRYPT_R, SCRYPT_P)
    if params not in _dummies:
        _dummies[params] = hash_password(secrets.token_urlsafe(16), n=params[0], r=params[1], p=params[2])
    return _dummies[params]


@dataclass(frozen=True)
class Principal:
    """The user a request acts for."""

    name: str
    role: str

    def may(self, action: str) -> bool:
        """'tickets' (send ticket events, import a log) or 'alerts' (acknowledge, resolve)."""
        return action in ROLE_ACTIONS.get(self.role, ())

    @property
    def can_act(self) -> bool:
        """Acknowledge and resolve alerts: the duty manager's job, not a viewer's."""
        return self.may("alerts")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "can_act": self.can_act}


def users_from_env(env: Mapping[str, str]) -> list[User]:
    """``HALLGRID_USERS='name:role:SECRET,...'`` (SECRET a 'scrypt$' hash, else a token of 16+ characters),
    ``HALLGRID_TOKEN`` (a duty-manager token named 'api', for scripts) and ``HALLGRID_TICKET_TOKEN`` (a
    ticket-feed token named 'ticket-feed': it may only send ticket events)."""
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
    if env.get("HALLGRID_TICKET_TOKEN"):
        try:
            users.append(User(name="ticket-feed", role=Role.TICKET_FEED, token=env["HALLGRID_TICKET_TOKEN"]))
        except ValueError as exc:
            raise AccessError(f"HALLGRID_TICKET_TOKEN: {exc}") from None
    return users


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Throttled(Exception):
    """A login refused without checking the password (``hub.login_throttle``); try after ``retry_after`` s."""

    def __init__(self, retry_after: float):
        super().__init__(f"too many login attempts: try again in {retry_after:.0f} s")
        self.retry_after = retry_after


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, mode 600 (a unique temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")   # mode 600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Access:
    """The hub's users; checks passwords and tokens, issues, reads and revokes session cookies.

    ``revoked_path``: where logged-out session ids are kept (until their cookie would expire anyway),
    so a logout holds across a hub restart; None keeps them in memory only."""

    def __init__(self, users: Iterable[User], secret: bytes, session_s: float = 12 * 3600,
                 clock: Clock | None = None, revoked_path: Path | None = None):
        self.users: dict[str, User] = {}
        for u in users:
            if u.name in self.users and self.users[u.name] != u:   # the same user in two site files is fine
                raise AccessError(f"user {u.name!r} is configured twice, differently")
            self.users[u.name] = u
        self._tokens = {u.token: u for u in self.users.values() if u.token}
        self._typical = next((u.password_hash for u in self.users.values() if u.password_hash), None)
        self.secret = secret
        self.session_s = session_s
        self.clock = clock or SystemClock()
        self.throttle = LoginThrottle(self.clock)
        self._checks = threading.BoundedSemaphore(CONCURRENT_CHECKS)
        self._revoked_path = revoked_path
        self._revoked: dict[str, float] = {}           # session id -> its expiry
        self._revoked_lock = threading.Lock()
        if revoked_path is not None:
            try:
                data = json.loads(revoked_path.read_text())
                self._revoked = {str(k): float(v) for k, v in data.items()}
            except (OSError, ValueError, AttributeError):
                pass                                   # none yet, or damaged: sessions still expire

    @classmethod
    def for_sites(cls, sites: list[Site], env: Mapping[str, str], secret: bytes,
                  clock: Clock | None = None, revoked_path: Path | None = None) -> "Access | None":
        """Users of every site file plus the environment; None when nobody is configured."""
        users = [u for s in sites if s.access for u in s.access.users] + users_from_env(env)
        hours = min((s.access.session_hours for s in sites if s.access), default=12.0)
        return cls(users, secret, hours * 3600, clock, revoked_path) if users else None

    @staticmethod
    def principal(user: User) -> Principal:
        return Principal(user.name, Role(user.role).value)

    def login(self, name: str, password: str, client: str = "") -> Principal | None:
        """The user for a right name and password; None otherwise; ``Throttled`` (no check made) while the
        throttle refuses this name or address. Blocking (scrypt, ~0.1 s and 128 MiB): call it off the event
        loop. Unknown names are checked against a dummy hash, so the time taken does not tell which names
        exist."""
        wait = self.throttle.begin(name, client)
        if wait is not None:
            raise Throttled(wait)
        ok = False
        try:
            user = self.users.get(name)
            stored = user.password_hash if user is not None and user.password_hash else _dummy(self._typical)
            with self._checks:
                ok = verify_password(password, stored) and user is not None and bool(user.password_hash)
        finally:
            self.throttle.end(name, client, ok)
        return self.principal(user) if ok else None

    def by_token(self, token: str) -> Principal | None:
        for known, user in self._tokens.items():     # compare every one in constant time
            if hmac.compare_digest(known.encode(), token.encode()):
                return self.principal(user)
        return None

    # --- session cookie: base64(json).base64(hmac-sha256) ------------------------------------------
    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self.secret, body.encode(), hashlib.sha256).digest())

    def session_cookie(self, who: Principal) -> str:
        body = _b64(json.dumps({"u": who.name, "exp": int(self.clock.now() + self.session_s),
                                "sid": secrets.token_urlsafe(12)}).encode())
        return f"{body}.{self._sign(body)}"

    def _session(self, value: str) -> dict[str, Any] | None:
        """The signed content of a cookie, or None for anything else (any bytes a client sends)."""
        if not value.isascii():
            return None
        body, _, sig = value.partition(".")
        if not body or not hmac.compare_digest(sig.encode(), self._sign(body).encode()):
            return None
        try:
            data = json.loads(_unb64(body))
        except ValueError:
            return None
        if not (isinstance(data, dict) and isinstance(data.get("u"), str) and isinstance(data.get("sid"), str)
                and isinstance(data.get("exp"), (int, float))):
            return None
        return data

    def from_cookie(self, value: str) -> Principal | None:
        """The user of a valid, unexpired, not logged-out cookie; the role is read from the current
        configuration, so removing a user or lowering a role takes effect at once."""
        data = self._session(value)
        if data is None or data["exp"] < self.clock.now():
            return None
        with self._revoked_lock:
            if data["sid"] in self._revoked:
                return None
        user = self.users.get(data["u"])
        return None if user is None else self.principal(user)

    def revoke(self, value: str) -> None:
        """Log a cookie out: its session id is refused from now on, also after a restart."""
        data = self._session(value)
        if data is None:
            return
        now = self.clock.now()
        with self._revoked_lock:
            self._revoked = {sid: exp for sid, exp in self._revoked.items() if exp >= now}
            self._revoked[data["sid"]] = float(data["exp"])
            if self._revoked_path is not None:
                _write_private(self._revoked_path, json.dumps(self._revoked))

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
    _write_private(path, key.hex())
    return key


def _parse_cookies(header: str) -> dict[str, str]:
    """Cookies of a header decoded as latin-1 (any bytes decode): a cookie that is not ours, or not
    ASCII, is simply not a session."""
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
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        if who is not None and who.role == TICKET_FEED and not public and not (
                scope["method"] == "POST" and TICKET_FEED_PATHS.fullmatch(path)):
            return await _json(send, 403, {"detail": f"{who.name} is a ticket_feed: it may only POST ticket "
                                           "events (/api/sites/SITE/tickets or tickets.csv)"})
        if who is not None or public:
            return await self.app(scope, receive, send)
        if path.startswith("/api") or path in ("/openapi.json", "/docs", "/redoc", "/metrics"):
            return await _json(send, 401, {"detail": "login required: a session cookie or "
                                           "'Authorization: Bearer TOKEN'"}, [(b"www-authenticate", b"Bearer")])
        target = login_url(path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else ""))
        await send({"type": "http.response.start", "status": 303, "headers": [(b"location", target.encode())]})
        await send({"type": "http.response.body", "body": b""})


def safe_next(target: str | None) -> str:
    """Where a login may send the browser on: a path of this hub only (``/board?site=..&alert=..``, the link
    a chat robot sent), never another host (``//evil``, ``/\\evil``, ``https://...``): an open redirect
    after login would let a forged link pass for the hub's."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target \
            or any(ord(ch) < 32 for ch in target) or target.startswith("/login"):
        return "/board"
    return target


def login_url(target: str | None = None, **flags: str) -> str:
    """The login form's address, carrying the page to return to (kept through a failed try)."""
    back = safe_next(target)
    query = {**flags, **({"next": back} if back != "/board" else {})}
    return "/login" + ("?" + urlencode(query) if query else "")


async def _json(send, status: int, data: dict, headers: list | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *(headers or [])]})
    await send({"type": "http.response.body", "body": json.dumps(data).encode()})


ACTION_WORDS = {"tickets": "only a duty_manager or a ticket_feed may send ticket events",
                "alerts": "only a duty_manager may acknowledge or resolve"}


def require(request, action: str) -> Principal | None:
    """The user, when their role may do ``action`` ('tickets', 'alerts'); 401/403 otherwise. None on a hub
    without access control (``--no-auth``), where everyone may."""
    from fastapi import HTTPException

    if getattr(request.app.state, "access", None) is None:
        return None
    user: Principal | None = request.scope.get("state", {}).get("user")
    if user is None:
        raise HTTPException(401, "login required")
    if not user.may(action):
        raise HTTPException(403, f"{user.name} is a {user.role}: {ACTION_WORDS[action]}")
    return user


def actor(request, who: str) -> str:
    """Who an acknowledge/resolve is recorded for: the logged-in user (403 for a viewer); the body's
    ``who`` only when the hub runs without access control."""
    user = require(request, "alerts")
    return who if user is None else user.name


def secret_path(db_url: str) -> Path:
    """Beside the SQLite file (one hall, one folder), else in the user's state folder."""
    if db_url.startswith("sqlite:///") and db_url not in ("sqlite:///:memory:",):
        return Path(db_url.removeprefix("sqlite:///") + ".secret")
    return state_dir() / "hub.secret"


def demo_hashes() -> set[str]:
    """The password hashes of the demo site's users: their passwords are printed by ``hallgrid demo``."""
    demo = parse_site((files("calibration") / "examples" / "demo-hall.yaml").read_text(encoding="utf-8"))
    return {u.password_hash for u in demo.access.users if u.password_hash} if demo.access else set()


def refuse_demo_users(access: Access) -> None:
    """AccessError when a user has the demo's password hash: anyone who has seen the demo knows it."""
    known = demo_hashes()
    for user in access.users.values():
        if user.password_hash in known:
            raise AccessError(
                f"user {user.name!r} has the demo's password hash (calibration/examples/demo-hall.yaml), whose "
                "password is public: make a real one with `hallgrid hash-password` (hub.access.hash_password) and "
                "put it in the site file's access: users (or HALLGRID_USERS); `hallgrid demo` is the only place for "
                "the demo users")


def access_for_hub(sites: list[Site], db_url: str, open_access: bool, env: Mapping[str, str] | None = None
                   ) -> tuple[Access | None, str | None]:
    """The ``hallgrid hub`` policy: configured users (never the demo's); with none, a one-off duty-manager
    token (returned so the command prints it) rather than an open hub; ``open_access`` (``--no-auth``)
    only when asked."""
    if open_access:
        return None, None
    env = os.environ if env is None else env
    key_path = secret_path(db_url)
    secret = load_secret(key_path, env)
    access = Access.for_sites(sites, env, secret, revoked_path=key_path.with_name(key_path.name + ".revoked"))
    if access is not None:
        refuse_demo_users(access)
        return access, None
    token = secrets.token_urlsafe(24)
    return Access([User(name="admin", role=Role.DUTY_MANAGER, token=token)], secret), token
