"""Occupancy messages applied in batches: one hold of the hub's lock and one rule evaluation per site per batch.

Why batches: at thousands of messages a second the fixed costs per message (taking the lock, evaluating a
site's rules, an SSE wake-up) outweigh the work; a batch pays them once. A batch is what arrived while the
previous one was handled, so at a calm 1,000 messages/s it is one or two messages and nothing waits for it;
under a flood it grows and the hub keeps up. The rules are evaluated for a site's changed zones at the end of
the batch, and earlier when a zone changes a second time within it: every count a zone takes is seen by the
rules, as when they ran on every message (a zone over capacity and back within one batch still raises and
resolves its alert), only the evaluations in between, which would have seen the same counts, are saved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge.contract import ContractError, OccupancyMessage, decode_occupancy

if TYPE_CHECKING:
    from hub.service import Hub

log = logging.getLogger("hallgrid.hub")
ZONE_REPEAT_S = 20.0            # an unchanged zone reading is re-sent on the SSE stream at most this often
FRAME_TIME_SLACK_S = 86_400.0   # an occupancy frame time this far from the hub's clock is not believed
FLUSH_ROWS = 500                # occupancy rows written to storage per transaction


@dataclass(frozen=True)
class Reading:
    """One occupancy message that passed the contract, with the site its topic names and its frame time."""

    site: str
    msg: OccupancyMessage
    frame_ts: float


def read(payload: bytes | str, site: str, camera: str | None = None, zone: str | None = None) -> Reading:
    """Check one message against the contract and its topic (no lock needed); ContractError names the field."""
    msg, frame_ts = decode_occupancy(payload)
    if camera is not None and (msg.camera, msg.zone) != (camera, zone):
        raise ContractError(f"topic names {camera}/{zone} but the message {msg.camera}/{msg.zone}")
    return Reading(site, msg, frame_ts)


def apply(hub: Hub, readings: list[Reading | tuple[str, str]]) -> list[bool]:
    """Apply checked readings in order (an item ``(site, reason)`` is a message already refused, kept in
    place so that the answers line up); True for each taken, False for each old, repeated or refused one.

    Under one hold of the lock: the served-site and clock checks, the state, the counters and the occupancy
    rows; then the rules once per site for the zones whose count moved. Refusals are counted and logged and
    SSE events sent after the lock is let go."""
    taken: list[bool] = []
    rows: list[tuple] = []
    refused: list[tuple[str, str]] = []
    zone_events: list[dict] = []
    with hub.lock:
        now = hub.clock.now()
        changed: dict[str, set[str]] = {}
        for r in readings:
            if isinstance(r, tuple):
                refused.append(r)
                taken.append(False)
                continue
            pending = changed.get(r.site)
            if pending is not None and r.msg.zone in pending and hub.evaluate_on_message:
                # this zone moved already in this batch: the rules see that count before it is replaced
                del changed[r.site]
                if r.site in hub.sites:
                    hub._evaluate(r.site, now, only=pending)
            try:
                taken.append(_apply_one(hub, r, now, changed, zone_events))
            except ContractError as exc:
                refused.append((r.site, str(exc)))
                taken.append(False)
        if len(hub._occ_rows) >= FLUSH_ROWS:
            if hub._occ_writer.shared_connection:      # one connection for every thread: written under the lock
                hub._flush()
            else:
                rows = hub._take_rows()
        if hub.evaluate_on_message:
            for site, zones in changed.items():
                if site in hub.sites:
                    hub._evaluate(site, now, only=zones)
    hub._occ_writer.write(rows)          # outside the lock: the API and the tick go on meanwhile
    for site, reason in refused:
        hub._drop("occupancy", site, reason)
    for event in zone_events:
        hub._broadcast("zone", event)
    return taken


def _apply_one(hub: Hub, r: Reading, now: float, changed: dict[str, set[str]], zone_events: list[dict]) -> bool:
    msg, site = r.msg, r.site
    state = hub.sites.get(site)
    if state is None:          # released while the message was on its way
        raise ContractError(f"this hub no longer serves site {site!r}")
    if abs(r.frame_ts - now) > FRAME_TIME_SLACK_S:
        raise ContractError(f"frame time {msg.ts} is more than a day from the hub's clock")
    before = state.zones.get(msg.zone)
    previous = before.epoch if before is not None and before.seq >= 0 else None   # None: first reading
    if not state.ingest_occupancy(msg, now, r.frame_ts):
        hub.stats["occupancy_old"] += 1
        return False
    if previous is not None and msg.epoch != previous:
        hub.stats["occupancy_new_epoch"] += 1
        log.info("site %s zone %s/%s: new sequence epoch %d (seq %d), the edge box was replaced or its outbox "
                 "reset", site, msg.camera, msg.zone, msg.epoch, msg.seq)
    hub.stats["occupancy_ok"] += 1
    # stored at frame time: a backlog sent after a broker outage lands where it was counted
    hub._occ_rows.append((site, msg.camera, msg.zone, r.frame_ts, msg.count, msg.raw, msg.seq))   # store.COLUMNS
    if state.changed:
        zones = changed.get(site)
        if zones is None:
            changed[site] = zones = set()
        zones.add(msg.zone)
    if not hub._subscribers:         # no board listening: nothing to send (one that comes reads the API first)
        return True
    # an unchanged heartbeat tells the board little: send it only now and then (the board's sparkline fills
    # one bucket a minute from these), a change at once
    key = (site, msg.zone)
    last = hub._zone_sent.get(key)
    if last is None or last[0] != msg.count or last[1] != msg.raw or now - last[2] >= ZONE_REPEAT_S:
        hub._zone_sent[key] = (msg.count, msg.raw, now)
        zone_events.append({"site": site, "zone": msg.zone, "count": msg.count, "raw": msg.raw, "ts": msg.ts})
    return True

