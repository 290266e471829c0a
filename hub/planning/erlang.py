"""Steady-state queue formulas for planning counters: Erlang C (M/M/c) and Erlang A (M/M/c+M).

These describe a slot's average, not one ticket's wait (a ticket's wait is hub/waits'
business): for a forecast load, how long would tickets wait on average with ``c``
counters open? Erlang A adds customers who give up (exponential patience, rate
``theta``), which keeps the queue finite even above capacity, as real halls are.
"""

from __future__ import annotations

import math

import numpy as np


def erlang_c_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean wait in queue (s) of M/M/c; ``math.inf`` when arrivals reach capacity or no counter is open.

    The waiting probability comes from the Erlang B recursion, which is stable for large c."""
    if arrival_rate <= 0:
        return 0.0
    a = arrival_rate / service_rate if service_rate > 0 else math.inf
    if servers <= 0 or a >= servers:
        return math.inf
    b = 1.0
    for k in range(1, servers + 1):
        b = a * b / (k + a * b)
    rho = a / servers
    pw = b / (1.0 - rho + rho * b)
    return pw / (servers * service_rate - arrival_rate)


def erlang_a_wait(arrival_rate: float, service_rate: float, abandon_rate: float, servers: int) -> float:
    """Mean time in queue (s) of M/M/c+M, every arrival counted (those who give up, until they do).

    Solved as the birth-death chain it is (in logs, truncated where the tail is negligible) and
    Little's law: W = Lq / lambda. ``abandon_rate`` 0 is Erlang C."""
    if abandon_rate <= 0:
        return erlang_c_wait(arrival_rate, service_rate, servers)
    if arrival_rate <= 0:
        return 0.0
    if servers <= 0:
        return 1.0 / abandon_rate         # everybody waits until they give up
    p = _chain(arrival_rate, service_rate, abandon_rate, servers)
    queue = np.maximum(np.arange(len(p)) - servers, 0)
    return float((queue * p).sum() / arrival_rate)


def counters_needed(arrival_rate: float, service_time_s: float, max_wait_s: float, abandon_rate: float = 0.0,
                    limit: int = 1000) -> int:
    """The fewest counters whose mean wait stays at or under ``max_wait_s`` for this load (0 without
    arrivals); ``limit`` caps the search (a load no hall could staff)."""
    if arrival_rate <= 0:
        return 0
    mu = 1.0 / service_time_s
    c = max(1, math.floor(arrival_rate / mu * 0.5))        # below half the offered load is never enough
    if abandon_rate <= 0:
        c = max(c, math.floor(arrival_rate / mu) + 1)
    while c < limit and erlang_a_wait(arrival_rate, mu, abandon_rate, c) > max_wait_s:
        c += 1
    return c


def _chain(arrival_rate: float, service_rate: float, abandon_rate: float, servers: int) -> np.ndarray:
    """Stationary distribution of M/M/c+M (customers in system 0..n_max), truncated where negligible."""
    lam, mu, th, c = arrival_rate, service_rate, abandon_rate, servers
    extra = lam / th if lam > c * mu else 0.0
    n_max = c + int(extra + 10 * math.sqrt(extra + 1) + 50 + lam / (c * mu + th) * 10)
    n = np.arange(1, n_max + 1)
    death = np.minimum(n, c) * mu + np.maximum(n - c, 0) * th
    logp = np.concatenate(([0.0], np.cumsum(np.log(lam) - np.log(death))))
    p = np.exp(logp - logp.max())
    return p / p.sum()


def wait_over(arrival_rate: float, service_rate: float, abandon_rate: float, servers: int, t: float) -> float:
    """Probability that an arrival waits longer than ``t`` seconds in M/M/c+M (served after ``t``, or still
    waiting at ``t`` before giving up: both are tickets that waited too long).

    An arrival that finds ``k`` tickets queued ahead is served after ``k + 1`` queue departures, each at
    rate ``c mu`` plus the patience of those still ahead (``i theta``): a pure-death chain, whose survival
    at ``t`` is computed by uniformization (a Poisson number of steps of the embedded chain). Its own patience must also outlast
    ``t`` (probability ``exp(-theta t)``), independently. Infinite patience (theta 0) is Erlang C's
    closed form."""
    from scipy.stats import poisson

    if arrival_rate <= 0:
        return 0.0
    if servers <= 0:
        return math.exp(-abandon_rate * t)
    lam, mu, th, c = arrival_rate, service_rate, abandon_rate, servers
    if th <= 0:
        if lam >= c * mu:
            return 1.0
        a = lam / mu
        b = 1.0
        for k in range(1, c + 1):
            b = a * b / (k + a * b)
        rho = a / c
        return float(b / (1.0 - rho + rho * b) * math.exp(-(c * mu - lam) * t))
    p = _chain(lam, mu, th, c)
    v = p[c:].copy()                                # arrival finds k = 0, 1, ... queued ahead (PASTA)
    rates = c * mu + np.arange(len(v)) * th         # position k moves up (or is served, k = 0) at this rate
    top = float(rates[-1])                          # uniformization: steps of a Poisson(top * t) clock
    move = rates / top
    n_steps = int(top * t + 10 * math.sqrt(top * t) + 20)
    weights = poisson.pmf(np.arange(n_steps + 1), top * t)
    alive = 0.0
    for w in weights:
        alive += w * v.sum()
        out = move * v
        v = v - out
        v[:-1] += out[1:]                           # k -> k-1; what leaves k = 0 is called
    return float(np.clip(alive, 0.0, 1.0) * math.exp(-th * t))
