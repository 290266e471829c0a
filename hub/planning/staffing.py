"""Counters needed per slot: per service, and per pool of services that share counters (counted once).

A counter that serves billing and new lines is one clerk, not two. So the services of a
site are grouped into pools: services linked by a counter that serves both (connected
components of the service-counter graph). A pool's need is Erlang's answer for the pool's
total load with the load-weighted service time and patience; its counters open or
scheduled are distinct counters. Per service the figure shown is what the service alone
would need: the pool's row is the one compared with the counters (the gap in the plan).

The early warning asks a stricter question than the plan's mean wait: how many tickets of a slot
would wait longer than ``max_wait_s`` with a given (possibly fractional, measured) capacity
(``long_waits``), and how many counters keep that under one (``counters_for_waits``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from calibration.site import Site

from hub.planning.erlang import counters_needed, wait_over
from hub.planning.history import SLOT_S, ServiceStats


@dataclass(frozen=True)
class Pool:
    """Services that share counters, and the counters that serve any of them."""

    services: tuple[str, ...]
    counters: tuple[str, ...]

    @property
    def key(self) -> str:
        return "+".join(self.services)


def pools(site: Site) -> list[Pool]:
    """The connected groups of services and counters, in the site file's service order."""
    order = [s.id for s in site.services]
    parent = {s: s for s in order}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for c in site.counters:
        svcs = [s for s in c.services if s in parent]
        for s in svcs[1:]:
            parent[find(s)] = find(svcs[0])
    groups: dict[str, list[str]] = {}
    for s in order:
        groups.setdefault(find(s), []).append(s)
    out = []
    for members in groups.values():
        m = set(members)
        out.append(Pool(tuple(members), tuple(c.id for c in site.counters if m.intersection(c.services))))
    return out


@dataclass(frozen=True)
class Need:
    """Counters needed per slot for a forecast load."""

    per_service: dict[str, np.ndarray]       # service -> counters it alone would need per slot
    per_pool: dict[str, np.ndarray]          # pool key -> counters the pool needs per slot (the real need)


def needed(site: Site, stats: ServiceStats, mean_per_slot: dict[str, np.ndarray], slots: range) -> Need:
    """Counters needed in ``slots`` for the forecast ``mean_per_slot`` (arrivals per 15 min per service)."""
    max_wait = site.rules.max_wait_s
    prior = site.rules.service_time_prior_s

    def st(s: str) -> float:
        return stats.service_time_s.get(s, prior)

    def th(s: str) -> float:
        return stats.abandon_per_s.get(s, 0.0)

    per_service = {}
    for s, m in mean_per_slot.items():
        row = np.zeros(len(m), dtype=int)
        for k in slots:
            row[k] = counters_needed(m[k] / SLOT_S, st(s), max_wait, th(s))
        per_service[s] = row
    per_pool = {}
    for p in pools(site):
        row = np.zeros(len(next(iter(mean_per_slot.values()))) if mean_per_slot else 0, dtype=int)
        for k in slots:
            load = pool_load(site, stats, mean_per_slot, p, k)
            if load is not None:
                row[k] = counters_needed(load.arrival_rate, load.service_time_s, max_wait, load.abandon_rate)
        per_pool[p.key] = row
    return Need(per_service, per_pool)


@dataclass(frozen=True)
class Load:
    """A pool's forecast load in one slot: total arrivals per second, load-weighted service time and patience."""

    arrival_rate: float
    service_time_s: float
    abandon_rate: float


def pool_load(site: Site, stats: ServiceStats, mean_per_slot: dict[str, np.ndarray], pool: Pool, k: int
              ) -> Load | None:
    """The pool's load in slot ``k`` (None without arrivals)."""
    prior = site.rules.service_time_prior_s
    members = [s for s in pool.services if s in mean_per_slot]
    lam = np.array([mean_per_slot[s][k] / SLOT_S for s in members])
    total = float(lam.sum())
    if total <= 0:
        return None
    w = lam / total
    return Load(total, float(sum(wi * stats.service_time_s.get(s, prior) for wi, s in zip(w, members))),
                float(sum(wi * stats.abandon_per_s.get(s, 0.0) for wi, s in zip(w, members))))


# the rule asks every minute about the same few loads (a forecast changes every five minutes) and whole
# counters: remembered, not recomputed
_wait_over = functools.lru_cache(maxsize=4096)(wait_over)


def long_waits(load: Load, counters: float, max_wait_s: float) -> float:
    """Tickets of a 15-minute slot expected to wait longer than ``max_wait_s`` with ``counters`` serving
    (a fractional capacity, such as measured effective counters, interpolates between its whole neighbours)."""
    lo = math.floor(counters)
    mu = 1.0 / load.service_time_s

    def at(c: int) -> float:
        return load.arrival_rate * SLOT_S * _wait_over(load.arrival_rate, mu, load.abandon_rate, c, max_wait_s)

    frac = counters - lo
    return at(lo) if frac < 1e-9 else (1 - frac) * at(lo) + frac * at(lo + 1)


def counters_for_waits(load: Load, max_wait_s: float, start: int = 1, limit: int = 1000) -> int:
    """The fewest counters (from ``start``) with which fewer than one ticket of the slot is expected to
    wait longer than ``max_wait_s``."""
    c = max(1, start)
    while c < limit and long_waits(load, c, max_wait_s) >= 1.0:
        c += 1
    return c
