"""A queue-ticket system for the demo: arrivals rising to a peak and falling, counters that call, serve,
open and close, all driven by a clock.

The demo footage has people but no ticket system, and alerts need both. The
simulator plays a hall's morning in a cycle: arrivals per service follow a
rise-peak-fall profile, each open counter calls the oldest waiting ticket and
serves it, and a (simulated) duty manager opens an elastic counter when a queue
has been long for a while and closes it when the queue is empty. It is
deterministic (seeded), so the demo and its test see the same day. ``speed``
compresses the day: the demo scales the site's rule times by the same factor.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

from edge.clock import Clock
from edge.contract import iso_ts


@dataclass(frozen=True)
class ServiceLoad:
    """One service's customers: peak arrivals per minute, mean service time (demo seconds), ticket letter."""

    service: str
    peak_per_min: float
    service_s: float
    letter: str
    base_share: float = 0.15       # arrivals off-peak as a share of the peak


@dataclass(frozen=True)
class ElasticCounter:
    """A counter the duty manager opens when ``service`` has ``open_at`` tickets waiting for ``react_s``."""

    counter: str
    service: str
    open_at: int
    react_s: float
    close_when_idle: bool = True   # False: once opened it stays (a VIP counter is not closed between guests)


@dataclass(frozen=True)
class Scenario:
    """The demo day. Times in demo seconds (divided by ``speed`` on the wall clock)."""

    cycle_s: float
    loads: tuple[ServiceLoad, ...]
    always_open: dict[str, tuple[str, ...]]
    elastic: tuple[ElasticCounter, ...] = ()

    @staticmethod
    def demo_hall() -> "Scenario":
        """Tuned for calibration/examples/demo-hall.yaml: billing outgrows counter 1 at the peak (long wait,
        escalating until counter 2 opens), new-line customers are served by counter 3, the VIP gets a counter
        only after a while (VIP waiting), and all of it clears as the peak passes."""
        return Scenario(cycle_s=480.0,
                        loads=(ServiceLoad("billing", 2.4, 80.0, "A"), ServiceLoad("newline", 0.5, 100.0, "B"),
                               ServiceLoad("vip", 0.3, 60.0, "V", base_share=0.0)),
                        always_open={"1": ("billing",), "3": ("newline",)},
                        elastic=(ElasticCounter("2", "billing", 3, 60.0), ElasticCounter("5", "vip", 1, 70.0, close_when_idle=False)))


@dataclass
class _Desk:
    services: tuple[str, ...]
    ticket: str | None = None
    busy_until: float = 0.0


@dataclass
class TicketSimulator:
    """Call ``step()`` often (e.g. every 0.2 s); it emits the hallgrid ticket events due since the last call
    through ``send``, each stamped with the clock's time (the hub's time base)."""

    scenario: Scenario
    clock: Clock
    send: Callable[[dict[str, Any]], None]
    speed: float = 1.0
    seed: int = 7
    started: float | None = None
    waiting: dict[str, list[tuple[str, float]]] = field(default_factory=dict)   # service -> [(ticket, since)]
    desks: dict[str, _Desk] = field(default_factory=dict)
    _acc: dict[str, float] = field(default_factory=dict)
    _numbers: dict[str, int] = field(default_factory=dict)
    _long_since: dict[str, float] = field(default_factory=dict)
    _last: float = 0.0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def demo_time(self) -> float:
        return 0.0 if self.started is None else (self.clock.now() - self.started) * self.speed

    def rate_per_s(self, load: ServiceLoad, tau: float) -> float:
        """Arrivals per demo second: a triangle from the base at the cycle's start to the peak at its middle."""
        phase = (tau % self.scenario.cycle_s) / self.scenario.cycle_s
        shape = 1.0 - abs(2.0 * phase - 1.0)
        return load.peak_per_min / 60.0 * (load.base_share + (1.0 - load.base_share) * shape)

    def _emit(self, event: str, **fields: Any) -> None:
        self.send({"event": event, "ts": iso_ts(self.clock.now()), **fields})

    def start(self) -> None:
        self.started = self.clock.now()
        for counter, services in self.scenario.always_open.items():
            self.desks[counter] = _Desk(services)
            self._emit("counter_open", counter=counter, services=list(services))

    def step(self) -> None:
        if self.started is None:
            self.start()
        tau = self.demo_time()
        dt, self._last = max(0.0, tau - self._last), tau
        for load in self.scenario.loads:        # arrivals: deterministic accumulation of the rate
            self._acc[load.service] = self._acc.get(load.service, 0.0) + self.rate_per_s(load, tau) * dt
            while self._acc[load.service] >= 1.0:
                self._acc[load.service] -= 1.0
                n = self._numbers[load.service] = self._numbers.get(load.service, 0) + 1
                ticket = f"{load.letter}{n:03d}"
                self.waiting.setdefault(load.service, []).append((ticket, tau))
                self._emit("issued", ticket=ticket, service=load.service)
        self._manage(tau)
        self._serve(tau)

    def _serve(self, tau: float) -> None:
        service_s = {ld.service: ld.service_s for ld in self.scenario.loads}
        for counter, desk in sorted(self.desks.items()):
            if desk.ticket is not None and tau >= desk.busy_until:
                self._emit("served", ticket=desk.ticket)
                desk.ticket = None
            if desk.ticket is None:
                queues = [s for s in desk.services if self.waiting.get(s)]
                if queues:
                    svc = min(queues, key=lambda s: self.waiting[s][0][1])    # the oldest ticket first
                    ticket, _ = self.waiting[svc].pop(0)
                    desk.ticket = ticket
                    desk.busy_until = tau + service_s[svc] * self.rng.uniform(0.7, 1.3)
                    self._emit("called", ticket=ticket, counter=counter)

    def _manage(self, tau: float) -> None:
        """The simulated duty manager: open an elastic counter after a long queue, close it when idle."""
        for e in self.scenario.elastic:
            queue = len(self.waiting.get(e.service, []))
            desk = self.desks.get(e.counter)
            if desk is None:
                if queue >= e.open_at:
                    since = self._long_since.setdefault(e.counter, tau)
                    if tau - since >= e.react_s:
                        self.desks[e.counter] = _Desk((e.service,))
                        self._long_since.pop(e.counter, None)
                        self._emit("counter_open", counter=e.counter, services=[e.service])
                else:
                    self._long_since.pop(e.counter, None)
            elif e.close_when_idle and queue == 0 and desk.ticket is None:
                del self.desks[e.counter]
                self._emit("counter_close", counter=e.counter)
