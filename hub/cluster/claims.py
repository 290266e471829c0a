"""Sites claimed through PostgreSQL session advisory locks, so hubs fail over by themselves.

Every hub is given the same site list. Each holds, on one dedicated database
connection, a *member* lock (so the hubs can count each other) and one lock per
site it serves. The locks belong to that connection's session: when a hub dies,
PostgreSQL ends the session and drops its locks at once (a killed process closes
its socket), and the others take the sites on their next step. A hub serves at
most ``ceil(sites / live hubs)``, so a hub that joins gets a share as the others
give up what is above theirs. Each hub tries the sites in its own order (hashed
with its name), so hubs starting together rarely reach for the same site.

SQLite has no sessions to watch: hubs on SQLite keep the static ``--sites`` split.
"""

from __future__ import annotations

import logging
import math
import threading
import zlib
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from calibration.site import Site

if TYPE_CHECKING:
    from hub.service import Hub

log = logging.getLogger("hallgrid.cluster")

MEMBER_SPACE = 0x48470001      # advisory lock key1: hubs (key2: the backend's pid)
SITE_SPACE = 0x48470002        # advisory lock key1: sites (key2: a 31-bit hash of the site id)


class ClaimError(ValueError):
    """The site list cannot be claimed safely (two site ids share a lock key)."""


def site_key(site_id: str) -> int:
    return zlib.crc32(site_id.encode()) & 0x7FFFFFFF


class SiteClaims:
    """The claiming loop of one hub: a thread stepping every ``interval_s`` on a dedicated connection."""

    def __init__(self, hub: Hub, sites: list[Site], url: str, name: str, interval_s: float = 1.0):
        self.hub = hub
        self.sites = {s.id: s for s in sites}
        self.keys = {sid: site_key(sid) for sid in self.sites}
        clash = len(set(self.keys.values())) != len(self.keys)
        if clash:
            raise ClaimError("two site ids hash to the same lock key: rename one of them")
        # this hub's order of preference: stable per hub, different between hubs
        self.order = sorted(self.sites, key=lambda sid: zlib.crc32(f"{name}/{sid}".encode()))
        self.interval_s = interval_s
        self.engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                                    connect_args={"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5,
                                                  "keepalives_interval": 2, "keepalives_count": 3})
        self.held: list[str] = []       # sites whose lock this hub's session holds, in claim order
        self._conn: Connection | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="hub-claims")

    def start(self) -> SiteClaims:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Give every site up (others take them on their next step), then close the session."""
        self._stop.set()
        self._thread.join(30)
        self._drop_all()

    def _run(self) -> None:
        try:           # be counted one step before claiming: hubs started together then share from the start
            self._session()
        except DBAPIError as exc:
            log.error("cannot open the claims session: %s", exc.orig or exc)
        self._stop.wait(self.interval_s)
        while not self._stop.is_set():
            try:
                self.step()
            except DBAPIError as exc:       # the session is gone (database restarted, network): so are our locks
                log.error("lost the database session that holds this hub's sites: %s", exc.orig or exc)
                self._drop_all()
            except Exception:
                log.exception("claim step failed")
            self._stop.wait(self.interval_s)

    def step(self) -> None:
        """One round: count the live hubs, give up what is above this hub's share, claim up to it."""
        conn = self._session()
        live = conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                                 "AND classid = :space AND objsubid = 2"), {"space": MEMBER_SPACE}).scalar_one()
        share = math.ceil(len(self.sites) / max(1, live))
        while len(self.held) > share:
            self._give_up(self.held[-1], conn)
        for sid in self.order:
            if len(self.held) >= share or self._stop.is_set():
                break
            if sid in self.held:
                continue
            got = conn.execute(text("SELECT pg_try_advisory_lock(:space, :key)"),
                               {"space": SITE_SPACE, "key": self.keys[sid]}).scalar_one()
            if not got:
                continue
            try:
                self.hub.serve_site(self.sites[sid])
            except RuntimeError as exc:          # the broker: leave the site to a hub that can serve it
                log.error("cannot serve %s: %s", sid, exc)
                self._unlock(sid, conn)
                break
            self.held.append(sid)
            log.info("serving %s (%d of share %d, %d hubs)", sid, len(self.held), share, live)

    def _session(self) -> Connection:
        if self._conn is None:
            conn = self.engine.connect()
            conn.execute(text("SELECT pg_advisory_lock(:space, pg_backend_pid())"), {"space": MEMBER_SPACE})
            self._conn = conn
        return self._conn

    def _give_up(self, sid: str, conn: Connection) -> None:
        self.hub.release_site(sid)         # stop serving before another hub can start
        self._unlock(sid, conn)
        log.info("gave up %s (above this hub's share)", sid)

    def _unlock(self, sid: str, conn: Connection) -> None:
        conn.execute(text("SELECT pg_advisory_unlock(:space, :key)"), {"space": SITE_SPACE, "key": self.keys[sid]})
        if sid in self.held:
            self.held.remove(sid)

    def _drop_all(self) -> None:
        """Stop serving every held site, then end the session (which frees its locks)."""
        for sid in reversed(self.held):
            self.hub.release_site(sid)
        self.held.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except DBAPIError:
                conn.invalidate()
