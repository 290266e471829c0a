"""When a zone's occupancy is published: on every change of the smoothed count, and as a heartbeat.

The heartbeat lets a consumer tell "still 3 people" from "the box went quiet",
and refreshes the retained value for late subscribers.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from calibration.site import Camera
from edge.contract import OccupancyMessage, iso_ts


@dataclass
class PublishSchedule:
    """Per zone: the last published count and when (monotonic seconds)."""

    heartbeat_s: float
    last_count: dict[str, int] = field(default_factory=dict)
    last_time: dict[str, float] = field(default_factory=dict)

    def due(self, counts: dict[str, int], now: float, mark: bool = True) -> list[str]:
        """Zones whose count must be published now; marks them as published unless ``mark`` is False.

        The live edge marks only after the outbox has the messages (``mark_sent``): a count that could not
        be stored (disk full) stays due and is tried again with the next frame.

        >>> s = PublishSchedule(10)
        >>> s.due({"a": 1, "b": 0}, 0.0), s.due({"a": 1, "b": 1}, 1.0), s.due({"a": 1, "b": 1}, 10.5)
        (['a', 'b'], ['b'], ['a'])
        """
        out = [zone for zone, n in counts.items()
               if self.last_count.get(zone) != n or now - self.last_time.get(zone, -1e18) >= self.heartbeat_s]
        if mark:
            self.mark_sent(out, counts, now)
        return out

    def mark_sent(self, zones: list[str], counts: dict[str, int], now: float) -> None:
        for zone in zones:
            self.last_count[zone] = counts[zone]
            self.last_time[zone] = now


def occupancy_message(site_id: str, camera: Camera, zone: str, ts_epoch: float, smoothed: dict[str, int],
                      raw: dict[str, int], seq: int, epoch: int = 0) -> OccupancyMessage:
    """The message the edge publishes for one zone of one counted frame; shared by the live edge and replay."""
    capacity = {z.id: z.capacity for z in camera.zones}
    return OccupancyMessage(site=site_id, camera=camera.id, zone=zone, ts=iso_ts(ts_epoch), count=smoothed[zone],
                            raw=raw[zone], seq=seq, capacity=capacity.get(zone), epoch=epoch)


@dataclass
class RateMeter:
    """Events per second over a sliding window (the fps shown in status and metrics).

    Thread-safe: ``tick`` comes from a detector worker, ``rate`` from the supervisor.
    """

    window_s: float = 5.0
    times: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def tick(self, now: float) -> None:
        with self._lock:
            self.times.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        cut = now - self.window_s
        while self.times and self.times[0] < cut:
            self.times.popleft()

    def rate(self, now: float) -> float:
        """
        >>> m = RateMeter(window_s=5.0)
        >>> for t in (0.0, 0.5, 1.0, 1.5, 2.0): m.tick(t)
        >>> m.rate(2.0), m.rate(6.5), m.rate(20.0)
        (2.0, 0.2, 0.0)
        """
        with self._lock:
            self._trim(now)
            if len(self.times) < 2:
                return 0.0
            span = max(now - self.times[0], self.times[-1] - self.times[0])
            return (len(self.times) - 1) / span if span > 0 else 0.0
