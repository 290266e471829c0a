"""The hub service: MQTT in, fusion and rules under one lock, alerts out (MQTT, storage, SSE, notify).

One ``Hub`` object serves one or more sites. Every door (the MQTT ingest worker, HTTP
requests, the ticker) goes through the same methods under one lock, so state
never tears; bad input is counted in ``stats`` and logged, never raised into the
network loop. Time comes from an injected clock, so tests script a whole day.
Sites can be taken on and given up at runtime (``serve_site``/``release_site``):
``hub.cluster`` does that for hubs sharing a PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from calibration.site import Site
from edge.clock import Clock, SystemClock
from edge.contract import DEFAULT_PREFIX, MAX_PAYLOAD, ContractError, StatusMessage, iso_ts
from edge.mqtt_url import BrokerSettings, parse_broker_url
from edge.redact import redact

from hub import rules
from hub.alerts import RESOLVED, Alert, AlertManager, alerts_topic
from hub.fusion import SiteState
from hub.ingest import occupancy as occupancy_ingest
from hub.ingest.receiver import Receiver, Session
from hub.ingest.store import OccupancyWriter
from hub.ingest.worker import IngestWorker
from hub.tickets import TicketError, TicketEvent, check_window, parse, parse_payload, read_csv, tickets_topic
from hub.waits.training import Trainer

if TYPE_CHECKING:    # SQLAlchemy is a hub extra: an edge box runs `hallgrid` without it
    from hub.storage import Storage

log = logging.getLogger("hallgrid.hub")
CSV_BATCH = 200          # ticket events of a CSV import stored and applied per hold of the hub's lock
MAX_LOGGED_ERRORS = 100  # bad rows of one import logged and answered one by one; the rest are counted


class Hub:
    """Fuses occupancy and ticket events of its sites into alerts."""

    def __init__(self, sites: list[Site], storage: Storage, clock: Clock | None = None,
                 mqtt_url: str | BrokerSettings | None = None, prefix: str = DEFAULT_PREFIX,
                 evaluate_on_message: bool = True, notify: Any = None, client_id: str | None = None,
                 site_sessions: bool = False, hub_id: str = "hub", peers: tuple[str, ...] = (),
                 background_training: bool = True):
        """``site_sessions``: one persistent MQTT session per site instead of one persistent session for the
        hub, so messages sent while a site changes hands wait in the broker for whichever hub serves it next.
        ``hub_id`` names this hub on its alerts (and its session); ``peers`` the hubs whose alerts it adopts.
        ``background_training``: the wait model retrains in a thread (live); False: inline (replay)."""
        self.clock = clock or SystemClock()
        self.storage = storage
        self.prefix = prefix
        self.mqtt_url = mqtt_url
        # a stable client id: the broker keeps this hub's session (subscriptions, queued tickets) across restarts
        self.client_id = client_id or f"hallgrid-{hub_id}"[:64]
        self.hub_id = hub_id
        self.peers = frozenset(peers) | {hub_id}     # whose retained alerts this hub adopts (itself: a former run)
        self.evaluate_on_message = evaluate_on_message
        self.notify = notify              # hub.notify.Notify: webhook and chat robots, each on its own thread
        self.site_sessions = site_sessions
        self.lock = threading.RLock()
        self.sites = {s.id: SiteState(s) for s in sites}
        self.managers = {s.id: AlertManager(s.rules.escalate_after_s, hub_id) for s in sites}
        self.background_training = background_training
        self.trainers: dict[str, Trainer] = {}      # per site, made by _restore
        self.stats: collections.Counter[str] = collections.Counter()
        self.drops: collections.deque[dict[str, Any]] = collections.deque(maxlen=200)
        self._occ_rows: list[tuple] = []          # hub.ingest.store.COLUMNS, written in batches
        self._occ_writer = OccupancyWriter(storage)
        self._zone_sent: dict[tuple[str, str], tuple[int, Any, float]] = {}   # last SSE zone event: count, raw, at
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = []
        self._sessions: dict[str | None, Session] = {}     # MQTT sessions: None the hub's one, else a site's own
        self._receiver: Receiver | None = None     # the MQTT receiver process (hub.ingest.receiver), once started
        self._started = False
        self._ingest = IngestWorker(self)     # MQTT messages, from the receiver process, handled in order
        self.alert_listeners: list[Callable[[Alert], None]] = []
        self.evaluation_listeners: list[Callable[[float], None]] = []   # seconds per evaluation (metrics)
        from hub.planning.lookahead import Lookahead    # numpy/scipy: hub extras, like storage

        self.forecaster = Lookahead(self)
        for sid in self.sites:
            self._restore(sid)

    # --- lifecycle ---------------------------------------------------------------------------------
    def _restore(self, sid: str) -> None:
        """Rebuild a site's open alerts, cooldowns and today's ticket queue from storage."""
        now = self.clock.now()
        st = self.sites[sid]
        st.started_at = now
        self.managers[sid].restore(self.storage.open_alerts(sid), self.storage.last_resolved(sid), now)
        for row in self.storage.ticket_events(sid, since=now - 86400):
            try:
                e = parse(row["event"], now, "hallgrid")
                # an event stored before the window existed (a counter_open dated days ahead) stays out
                check_window(e, row["received_at"], st.rules.ticket_max_age_s, st.rules.ticket_max_ahead_s)
                st.book.apply(e, row["received_at"])
            except TicketError as exc:      # a site file changed since: the old event no longer fits
                self._drop("restore", sid, str(exc))
        # the site's wait model learns from its stored ticket history once a service day (hub.waits)
        self.trainers[sid] = Trainer(st.waits, lambda since: self._stored_tickets(sid, since),
                                     self.background_training)
        self.trainers[sid].maybe_retrain(now)

    def _stored_tickets(self, site: str, since: float) -> list[dict[str, Any]]:
        """The trainer's read of stored history, under the lock (one database connection may be shared);
        the fold and the fit run outside it."""
        with self.lock:
            return self.storage.ticket_events(site, since=since)

    def start(self, wait_s: float | None = 10.0) -> None:
        """Connect to the broker and subscribe to this hub's sites only (by config, or as claimed).

        ``wait_s`` None returns at once and keeps retrying with backoff (a service whose broker starts
        later, as in compose); ``ready`` tells when the subscriptions are in place."""
        if not self.mqtt_url:
            return
        broker = self.mqtt_url if isinstance(self.mqtt_url, BrokerSettings) else parse_broker_url(self.mqtt_url)
        self._started = True
        self._ingest.start()
        self._receiver = Receiver(broker, self._ingest.put_many, self._receiver_restarted)
        self._receiver.start()
        for key in (list(self.sites) if self.site_sessions else [None]):
            self._connect(key, wait_s)

    def stop(self) -> None:
        for trainer in list(self.trainers.values()):     # a retrain reading storage finishes before it closes
            trainer.join(30)
        with self.lock:          # _emit reads the sessions under the lock: it sees the old ones or none
            self._sessions = {}
            self._started = False
            receiver, self._receiver = self._receiver, None
        if receiver is not None:
            receiver.stop()          # every session closed; what they received is in the ingest queue
        self._ingest.stop()          # what the broker delivered before the disconnect is handled, then stored
        with self.lock:
            self._flush()

    def serve_site(self, site: Site) -> None:
        """Take a site on at runtime: its state from storage first, then its MQTT topics."""
        with self.lock:
            if site.id in self.sites:
                return
            # copy-on-write: views iterate these dicts without the lock
            self.sites = {**self.sites, site.id: SiteState(site)}
            self.managers = {**self.managers, site.id: AlertManager(site.rules.escalate_after_s, self.hub_id)}
            self.stats["sites_served"] += 1
        try:
            with self.lock:
                self._restore(site.id)
            if not self._started:
                return
            if self.site_sessions:
                self._connect(site.id)
            elif not self._sessions[None].subscribe(self.topics([site.id])).wait(10):
                raise RuntimeError(f"the MQTT broker did not confirm the subscriptions of {site.id}")
        except Exception:        # half served is not served: the caller may hand the site to another hub
            self.release_site(site.id)
            raise

    def release_site(self, site_id: str) -> None:
        """Give a site up: stop its MQTT input first (its session keeps what comes next), then drop its state."""
        with self.lock:
            session = self._sessions.pop(site_id, None) if self.site_sessions else self._sessions.get(None)
        if session is not None and self.site_sessions:
            session.close()                # outside the lock: the ingest worker may be waiting for it
        elif session is not None:          # what arrives until the broker confirms is still handled
            session.unsubscribe(self.topics([site_id])).wait(10)
        self._ingest.drain()               # the site's messages already delivered are handled while it is served
        with self.lock:
            if site_id not in self.sites:
                return
            self._flush()
            self.sites = {k: v for k, v in self.sites.items() if k != site_id}
            self.managers = {k: v for k, v in self.managers.items() if k != site_id}
            self.trainers.pop(site_id, None)
            self._zone_sent = {k: v for k, v in self._zone_sent.items() if k[0] != site_id}
            self.stats["sites_released"] += 1

    def topics(self, sites: list[str] | None = None) -> list[str]:
        p = self.prefix
        return [t for sid in (self.sites if sites is None else sites)
                for t in (f"{p}/{sid}/+/+/occupancy", f"{p}/{sid}/+/status", tickets_topic(sid, p),
                          f"{p}/{sid}/alerts/+")]

    def _connect(self, site: str | None, wait_s: float | None = 10.0) -> None:
        """One MQTT session in the receiver process, persistent: the hub's (every served site, its client id)
        or a site's (its id per site)."""
        assert self._receiver is not None
        session = self._receiver.connect(site, self.client_id if site is None else f"{self.prefix}-site-{site}",
                                         self.topics(None if site is None else [site]))
        with self.lock:
            self._sessions[site] = session
        if wait_s is not None and not session.ready.wait(wait_s):
            shown = self._receiver.broker.redacted()
            with self.lock:
                self._sessions.pop(site, None)
            session.close()
            if site is None:
                self.stop()
            raise RuntimeError(f"cannot reach the MQTT broker at {shown} (or it refused the subscriptions)")

    def _receiver_restarted(self) -> None:
        with self.lock:
            self.stats["mqtt_receiver_restarts"] += 1

    @property
    def ready(self) -> bool:
        """Every MQTT session subscribed (always, for a hub without MQTT): what ``/readyz`` reports."""
        if not self.mqtt_url:
            return True
        with self.lock:
            sessions = list(self._sessions.values())
        return self._started and all(s.ready.is_set() for s in sessions)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every MQTT message delivered so far is handled (False after ``timeout`` s)."""
        return self._ingest.drain(timeout)

    # --- doors -------------------------------------------------------------------------------------
    def _drop(self, source: str, site: str, reason: str) -> None:
        reason = redact(reason)[:500]    # a reason quotes the input: bounded, and never a credential
        site = site[:64]
        with self.lock:          # MQTT and HTTP threads both drop: Counter += is not atomic
            self.stats[f"{source}_rejected"] += 1
            self.drops.append({"at": iso_ts(self.clock.now()), "source": source, "site": site, "reason": reason})
        log.warning("dropped %s message for %s: %s", source, site, reason)

    def handle(self, topic: str, payload: bytes) -> None:
        """Route one MQTT message by its topic; too large a payload is refused before any parsing."""
        parts = topic.split("/")
        if len(payload) > MAX_PAYLOAD:
            self._drop("mqtt", parts[1] if len(parts) > 1 else "",
                       f"{topic[:120]!r}: payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
            return
        if len(parts) < 3 or parts[1] not in self.sites:
            self._drop("mqtt", parts[1] if len(parts) > 1 else "", f"topic {topic!r} is not for this hub")
            return
        sid = parts[1]
        if parts[-1] == "occupancy" and len(parts) == 5:
            self.ingest_occupancy(payload, sid, parts[2], parts[3])
        elif parts[-1] == "status" and len(parts) == 4:
            try:
                status = StatusMessage.from_json(payload)
                with self.lock:
                    self.sites[sid].ingest_status(parts[2], status, self.clock.now())
                    self.stats["status_ok"] += 1
                self._broadcast("camera", {"site": sid, "camera": parts[2], "state": status.state.value})
            except ContractError as exc:
                self._drop("status", sid, str(exc))
        elif parts[2] == "tickets" and len(parts) == 3:
            try:
                self.ingest_ticket(sid, parse_payload(payload, self.clock.now()))
            except TicketError as exc:
                self._drop("ticket", sid, str(exc))
        elif parts[2] == "alerts" and len(parts) == 4:
            self._adopt(sid, payload, parts[3])
        else:
            self._drop("mqtt", sid, f"unexpected topic {topic!r}")

    def ingest_occupancy(self, payload: bytes | str, site: str, camera: str | None = None,
                         zone: str | None = None) -> bool:
        """One occupancy message; False when dropped (malformed, wrong site/zone, old seq). MQTT's take the
        batched path of ``hub.ingest``; this door is the same path with a batch of one."""
        try:
            reading = occupancy_ingest.read(payload, site, camera, zone)
        except ContractError as exc:
            self._drop("occupancy", site, str(exc))
            return False
        return occupancy_ingest.apply(self, [reading])[0]

    def _check_ticket(self, site: str, event: TicketEvent, now: float) -> tuple | None:
        """Everything that can refuse an event, before anything changes: its site, its time window
        (site rules), its ids (site file). Its identity when new, None for a duplicate, TicketError for an
        invalid one."""
        if site not in self.sites:
            raise TicketError(f"this hub does not serve site {site!r}")
        if event.site and event.site != site:
            raise TicketError(f"event for site {event.site!r} sent to site {site!r}")
        st = self.sites[site]
        check_window(event, now, st.rules.ticket_max_age_s, st.rules.ticket_max_ahead_s)
        st.book.validate(event)
        key = (st.book.day_of(event.ts), *event.key)
        return None if key in st.book.seen else key

    def _apply_tickets(self, site: str, events: list[TicketEvent], now: float) -> None:
        """Store checked, new events in one transaction, then apply them: a storage failure raises and leaves
        memory as it was, so memory and storage never disagree."""
        self.storage.add_ticket_events(site, events, now)
        for e in events:
            self.sites[site].book.apply(e, now)
        self.stats["ticket_ok"] += len(events)
        self.trainers[site].maybe_retrain(now)

    def ingest_ticket(self, site: str, event: TicketEvent) -> bool:
        """One ticket event; False for a duplicate, TicketError for an invalid one (the caller reports it)."""
        with self.lock:
            now = self.clock.now()
            if self._check_ticket(site, event, now) is None:
                self.stats["ticket_duplicate"] += 1
                return False
            self._apply_tickets(site, [event], now)
            if self.evaluate_on_message:
                self._evaluate(site, now)
        self._broadcast("tickets", {"site": site, "event": event.kind})    # the board re-reads its queues
        return True

    def import_csv(self, site: str, text: str) -> dict[str, Any]:
        """A ticket log export: parsed outside the lock, stored and applied ``CSV_BATCH`` events per lock hold
        (ingest and the API wait at most one batch), then the rules evaluated once for the whole import."""
        events, errors = read_csv(text, self.clock.now())
        accepted = duplicates = 0
        for start in range(0, len(events), CSV_BATCH):
            with self.lock:
                now = self.clock.now()
                batch, keys = [], set()
                for i, e in enumerate(events[start:start + CSV_BATCH], start):
                    try:
                        key = self._check_ticket(site, e, now)
                    except TicketError as exc:
                        errors.append(f"event {i + 1}: {exc}")
                        continue
                    if key is not None and key not in keys:
                        batch.append(e)
                        keys.add(key)
                    else:
                        duplicates += 1
                        self.stats["ticket_duplicate"] += 1
                self._apply_tickets(site, batch, now)
                accepted += len(batch)
        if accepted and self.evaluate_on_message:
            with self.lock:
                self._evaluate(site, self.clock.now())
        if accepted:
            self._broadcast("tickets", {"site": site, "event": "import"})
        for err in errors[:MAX_LOGGED_ERRORS]:
            self._drop("ticket", site, err)
        if len(errors) > MAX_LOGGED_ERRORS:
            extra = len(errors) - MAX_LOGGED_ERRORS
            with self.lock:
                self.stats["ticket_rejected"] += extra
            log.warning("dropped %d more bad rows of a ticket import for %s", extra, site)
        return {"accepted": accepted, "duplicates": duplicates, "rejected": errors[:MAX_LOGGED_ERRORS],
                "rejected_total": len(errors)}

    def _adopt(self, site: str, payload: bytes, topic_id: str) -> None:
        """A retained alert from the broker: carry on an alert a peer (or a former run of this) hub raised.

        Adopting shows it on the board and keeps its condition from raising again, so the alert must pass
        the contract, sit on its own topic, name this site and a configured peer hub; and an alert this hub
        knows (in memory or storage) is never changed by what the broker says about it.
        """
        if not payload:
            return
        try:
            alert = Alert.from_contract(payload, self.clock.now())
            if alert.id != topic_id or alert.site != site:
                raise ContractError(f"alert {alert.id} of site {alert.site} on the topic of {topic_id[:40]!r}")
            if alert.hub not in self.peers:
                raise ContractError(f"alert {alert.id} comes from hub {alert.hub!r}, not a configured peer "
                                    f"({', '.join(sorted(self.peers))})")
        except ContractError as exc:
            self._drop("alert", site, f"retained alert refused: {exc}")
            return
        with self.lock:
            m = self.managers[site]
            # ours already (or a stale retained copy): the in-memory checks first, the database last
            if (alert.state == RESOLVED or alert.id in m.by_id or alert.key in m.active
                    or self.storage.has_alert(alert.id)):
                return
            if m.adopt(alert, self.clock.now()):
                self.storage.save_alert(alert, None)
                self.stats["alerts_adopted"] += 1

    # --- the tick ----------------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> list[Alert]:
        """Evaluate every site's rules at ``now`` (default: the clock) and publish what changed."""
        with self.lock:
            now = self.clock.now() if now is None else now
            changed = [a for sid in self.sites for a in self._evaluate(sid, now)]
            self._flush()
        return changed

    def _evaluate(self, site: str, now: float, only: set[str] | None = None) -> list[Alert]:
        self.stats["evaluations"] += 1
        started = time.perf_counter()
        conditions = rules.evaluate(self.sites[site], now, only)
        changed = self.managers[site].evaluate(conditions, now, partial=only is not None)
        for fn in self.evaluation_listeners:
            fn(time.perf_counter() - started)
        for a in changed:
            self._emit(a, "hub" if a.state == RESOLVED else None)
        return changed

    def _flush(self) -> None:
        self._occ_writer.write(self._take_rows())

    def _take_rows(self) -> list[tuple]:
        """The occupancy rows not yet written (under the lock); the caller writes them."""
        rows, self._occ_rows = self._occ_rows, []
        return rows

    # --- people ------------------------------------------------------------------------------------
    def _find(self, alert_id: str) -> tuple[str, AlertManager]:
        for sid, m in self.managers.items():
            if alert_id in m.by_id:
                return sid, m
        raise KeyError(alert_id)

    def acknowledge(self, alert_id: str, who: str) -> Alert:
        with self.lock:
            _, m = self._find(alert_id)
            alert = m.acknowledge(alert_id, who, self.clock.now())
            self._emit(alert, who)
            return alert

    def resolve(self, alert_id: str, who: str) -> Alert:
        with self.lock:
            _, m = self._find(alert_id)
            alert = m.resolve(alert_id, who, self.clock.now())
            self._emit(alert, who)
            return alert

    # --- outputs -----------------------------------------------------------------------------------
    def _emit(self, alert: Alert, who: str | None) -> None:
        """Every state change: storage first (a crash after it loses nothing), then MQTT, SSE, notify."""
        self.storage.save_alert(alert, who)
        self.stats[f"alerts_{alert.state}"] += 1
        session = self._sessions.get(alert.site if self.site_sessions else None)
        if session is not None:
            try:
                session.publish(alerts_topic(alert.site, alert.id, self.prefix), alert.to_json(), qos=1, retain=True)
            except ValueError as exc:   # a topic MQTT refuses must not stop the tick: stored, board and webhook go on
                log.error("alert %s not published on MQTT: %s", alert.id[:80], exc)
                self.stats["alerts_unpublished"] += 1
        self._broadcast("alert", alert.to_dict())
        if self.notify is not None:
            self.notify.send(alert)
        for fn in self.alert_listeners:
            fn(alert)

    def subscribe(self) -> asyncio.Queue:
        """An asyncio queue of ('zone'|'alert', data) for the SSE stream; call from the event loop."""
        q: asyncio.Queue = asyncio.Queue(maxsize=1000)
        with self.lock:
            self._subscribers.append((asyncio.get_running_loop(), q))
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        with self.lock:
            self._subscribers = [(lp, x) for lp, x in self._subscribers if x is not q]

    def _broadcast(self, kind: str, data: dict[str, Any]) -> None:
        for loop, q in list(self._subscribers):
            def put(q=q):
                if q.full():      # a slow client loses old updates rather than slowing the hub
                    q.get_nowait()
                q.put_nowait((kind, data))
            try:
                loop.call_soon_threadsafe(put)
            except RuntimeError:
                self.unsubscribe(q)

    # --- views -------------------------------------------------------------------------------------
    def alerts(self, site: str | None = None, active_only: bool = True) -> list[Alert]:
        with self.lock:
            out = [a for sid, m in self.managers.items() if site in (None, sid)
                   for a in (m.active.values() if active_only else m.by_id.values())]
        return sorted(out, key=lambda a: a.raised_at)

    def active_keys(self) -> dict[str, str]:
        with self.lock:
            return {k: a.id for m in self.managers.values() for k, a in m.active.items()}


def _run_ticker(hub: Hub, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            hub.tick()
        except Exception:
            log.exception("tick failed")
