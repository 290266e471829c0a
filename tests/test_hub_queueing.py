"""Erlang C prediction checked against a discrete-event M/M/c simulation (fixed seed)."""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest

from hub.queueing import backlog_wait, erlang_c, mean_wait, predicted_wait


def simulate_mmc(lam: float, mu: float, c: int, customers: int, seed: int) -> tuple[float, float]:
    """FCFS M/M/c: mean wait in queue and share of customers who waited (after a 10% warm-up)."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / lam, customers))
    services = rng.exponential(1 / mu, customers)
    free = [0.0] * c                       # when each server becomes free (a heap)
    waits = np.empty(customers)
    for i, (t, s) in enumerate(zip(arrivals, services)):
        earliest = heapq.heappop(free)
        start = max(t, earliest)
        waits[i] = start - t
        heapq.heappush(free, start + s)
    w = waits[customers // 10:]
    return float(w.mean()), float((w > 0).mean())


def test_erlang_c_known_values():
    # textbook: c=2, a=1 -> C = 1/3; c=1 -> C = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    assert erlang_c(3, 3.0) == 1.0 and erlang_c(0, 0.5) == 1.0
    assert mean_wait(1 / 60, 1 / 180, 2) == math.inf            # unstable: 3 Erlangs on 2 counters


@pytest.mark.parametrize("c,service_s,rho", [(1, 180, 0.7), (3, 180, 0.8), (6, 240, 0.85)])
def test_prediction_matches_simulation(c, service_s, rho):
    """Tolerance: 10% of the mean wait (the simulation's own error at 200k customers is ~3-5%)."""
    mu = 1 / service_s
    lam = rho * c * mu
    sim_wait, sim_pw = simulate_mmc(lam, mu, c, 200_000, seed=20261123 + c)
    assert mean_wait(lam, mu, c) == pytest.approx(sim_wait, rel=0.10)
    assert erlang_c(c, lam / mu) == pytest.approx(sim_pw, abs=0.03)
    # with an empty queue the predicted wait of a new ticket is the steady state
    assert predicted_wait(lam, service_s, c, 0) == pytest.approx(mean_wait(lam, mu, c))


def test_backlog_dominates_after_a_rush():
    # 20 tickets waiting, 2 counters at 3 min: the 21st ticket waits 21 departures at 2/3 per minute
    assert backlog_wait(20, 1 / 180, 2) == pytest.approx(21 * 90)
    assert predicted_wait(0.0, 180, 2, 20) == pytest.approx(21 * 90)
    assert predicted_wait(0.001, 180, 0, 3) == math.inf
    assert predicted_wait(0.0, 180, 0, 0) == 0.0
