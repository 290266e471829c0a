"""Fusion: one site's live picture from occupancy (people per zone) and tickets (people per service).

Vision sees people but not what they wait for; tickets say what they wait for but
not who is in the hall. ``SiteState`` keeps both, keyed by the site file's zones,
services and counters, and answers the figures the rules and the API need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from calibration.site import Site, Zone, ZoneType
from edge.contract import CameraState, ContractError, OccupancyMessage, StatusMessage, parse_ts

from hub.tickets import TicketBook
from hub.waits.predictor import WaitPredictor
from hub.waits.risk import WaitRisk


@dataclass
class ZoneReading:
    zone: Zone
    camera: str
    count: int = 0
    raw: int = 0
    ts: float | None = None
    seq: int = -1
    epoch: int = 0
    received_at: float | None = None


class SiteState:
    """The live state of one hall. Not thread-safe: the hub calls it under its lock."""

    def __init__(self, site: Site):
        self.site = site
        self.rules = site.rules
        self.zones: dict[str, ZoneReading] = {z.id: ZoneReading(z, cam.id) for cam in site.cameras for z in cam.zones}
        self.camera_seen: dict[str, float] = {}
        self.camera_state: dict[str, CameraState] = {}
        self.camera_detail: dict[str, str] = {}
        self.started_at: float | None = None
        self.changed = False
        self.lookahead = None      # hub.planning.lookahead.SiteLookahead, swapped in by the background refresh
        self.book = TicketBook([s.id for s in site.services], {c.id: list(c.services) for c in site.counters},
                               prior_s=site.rules.service_time_prior_s, window_s=site.rules.arrival_window_s,
                               timezone=site.timezone)
        self.waits = WaitPredictor(self.book)
        self.wait_risk = WaitRisk(self.book, site.rules.max_wait_s)    # the long-wait alert's figure
        self._services = {s.id: s for s in site.services}

    # --- ingest ------------------------------------------------------------------------------------
    def ingest_occupancy(self, msg: OccupancyMessage, received_at: float, frame_ts: float | None = None) -> bool:
        """Apply a valid occupancy message; False for an old or repeated one (``(epoch, seq)`` not newer).

        A newer epoch is a new sequence (a replaced box starting at seq 1) and is taken; an epoch stamped
        more than a day after the hub's clock is refused, so that no message can freeze a zone.

        ``self.changed`` tells whether the count moved (a heartbeat with the same count changes no rule).

        Raises ContractError when it names another site or a zone the site file does not have. ``frame_ts``:
        ``msg.ts`` in epoch seconds when the caller has read it already (the hub's ingest has).
        """
        if msg.site != self.site.id:
            raise ContractError(f"message for site {msg.site!r} reached the hub of {self.site.id!r}")
        reading = self.zones.get(msg.zone)
        if reading is None or reading.camera != msg.camera:
            raise ContractError(f"zone {msg.camera}/{msg.zone} is not in site {self.site.id!r}")
        if msg.epoch > (received_at + 86_400) * 1000:
            raise ContractError(f"epoch {msg.epoch} is later than the hub's clock by more than a day")
        self.camera_seen[msg.camera] = received_at
        if (msg.epoch, msg.seq) <= (reading.epoch, reading.seq):
            return False
        self.changed = reading.count != msg.count or reading.received_at is None
        reading.count, reading.raw, reading.seq, reading.epoch = msg.count, msg.raw, msg.seq, msg.epoch
        reading.ts, reading.received_at = parse_ts(msg.ts) if frame_ts is None else frame_ts, received_at
        return True

    def ingest_status(self, camera: str, msg: StatusMessage, received_at: float) -> None:
        try:
            self.site.camera(camera)
        except KeyError as exc:
            raise ContractError(str(exc)) from None
        self.camera_state[camera] = msg.state
        self.camera_detail[camera] = msg.detail     # redacted by the edge; the board shows why a camera is not ok
        if msg.state == CameraState.ONLINE:
            self.camera_seen.setdefault(camera, received_at)

    # --- figures -----------------------------------------------------------------------------------
    def zones_of(self, *types: ZoneType, only: set[str] | None = None) -> list[ZoneReading]:
        if only is not None:
            return [self.zones[z] for z in only if z in self.zones and self.zones[z].zone.type in types]
        return [r for r in self.zones.values() if r.zone.type in types]

    def service_figures(self, service_id: str, now: float) -> dict[str, Any]:
        """The figures of one service at ``now``. The queue's own figures come from the wait predictor's
        state of that instant (one pass over the book for every service, kept while nothing changes),
        so the rules asking for each service in turn do not walk the book again for each."""
        svc = self._services[service_id]
        s = self.waits.states(now)[service_id]
        people = sum(self.zones[z].count for z in svc.waiting_zones if z in self.zones)
        return {"service": svc.id, "name": svc.name or svc.id, "vip": svc.vip, "waiting_tickets": s.ahead,
                "waiting_people": people, "open_counters": list(self.waits.history.counters_of(service_id)),
                "service_time_s": round(s.service_time_s, 1), "arrivals_per_h": round(s.arrivals_per_h, 1),
                "oldest_wait_s": round(s.hol_s, 1), "waiting_zones": list(svc.waiting_zones),
                **self.waits.figures(now)[service_id]}

    def queues(self, now: float) -> list[dict[str, Any]]:
        return [self.service_figures(s.id, now) for s in self.site.services]

    def zone_list(self, now: float) -> list[dict[str, Any]]:
        out = []
        for r in self.zones.values():
            out.append({"zone": r.zone.id, "name": r.zone.name, "type": r.zone.type.value, "camera": r.camera,
                        "grid_cell": r.zone.grid_cell, "capacity": r.zone.capacity, "count": r.count, "raw": r.raw,
                        "seq": r.seq, "epoch": r.epoch, "age_s": None if r.received_at is None else round(now - r.received_at, 1)})
        return out
