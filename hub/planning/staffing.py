"""Counters needed per slot: per service, and per pool of services that share counters (counted once).

A counter that serves billing and new lines is one clerk, not two. So the services of a
site are grouped into pools: services linked by a counter that serves both (connected
components of the service-counter graph). A pool's need is Erlang's answer for the pool's
total load with the load-weighted service time and patience; its counters open or
scheduled are distinct counters. Per service the figure shown is what the service alone
would need: the pool's row is the one compared with the counters (the gap and the alert).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibration.site import Site

from hub.planning.erlang import counters_needed
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
        members = [s for s in p.services if s in mean_per_slot]
        row = np.zeros(len(next(iter(mean_per_slot.values()))) if mean_per_slot else 0, dtype=int)
        for k in slots:
            lam = np.array([mean_per_slot[s][k] / SLOT_S for s in members])
            total = float(lam.sum())
            if total <= 0:
                continue
            w = lam / total
            service_time = float(sum(wi * st(s) for wi, s in zip(w, members)))
            patience = float(sum(wi * th(s) for wi, s in zip(w, members)))
            row[k] = counters_needed(total, service_time, max_wait, patience)
        per_pool[p.key] = row
    return Need(per_service, per_pool)
