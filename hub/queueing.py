"""Queueing formulas for the ticket queue (M/M/c, Erlang C), as pure functions.

A hall's counters are ``c`` parallel servers fed by one ticket queue per service,
which is the textbook M/M/c system; Erlang C gives the steady-state wait. Steady
state alone ignores the backlog already in the hall (a morning rush leaves 20
tickets waiting even if arrivals have calmed down), so ``predicted_wait`` also
counts the time to clear the tickets ahead of a new one and returns the larger.
"""

from __future__ import annotations

import math


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival has to wait (Erlang C) for ``servers`` and load a = lambda/mu.

    Computed with the Erlang B recursion, which is numerically stable for large c.
    Returns 1.0 when the system is unstable (a >= c) or has no servers.
    """
    if servers <= 0 or offered_load >= servers:
        return 1.0
    if offered_load <= 0:
        return 0.0
    b = 1.0
    for k in range(1, servers + 1):
        b = offered_load * b / (k + offered_load * b)
    rho = offered_load / servers
    return b / (1.0 - rho + rho * b)


def mean_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean time in queue (Wq, seconds) of an M/M/c system; ``math.inf`` when unstable."""
    if arrival_rate <= 0:
        return 0.0
    if servers <= 0 or service_rate <= 0 or arrival_rate >= servers * service_rate:
        return math.inf
    pw = erlang_c(servers, arrival_rate / service_rate)
    return pw / (servers * service_rate - arrival_rate)


def backlog_wait(waiting: int, service_rate: float, servers: int) -> float:
    """Expected wait of a ticket issued now behind ``waiting`` uncalled tickets.

    Tickets wait only while every counter is busy, and with all c busy the departures
    form a Poisson process of rate c*mu, so the new ticket waits for waiting+1 of them.
    """
    if waiting <= 0:
        return 0.0
    if servers <= 0 or service_rate <= 0:
        return math.inf
    return (waiting + 1) / (servers * service_rate)


def predicted_wait(arrival_rate: float, service_time_s: float, servers: int, waiting: int) -> float:
    """Predicted wait (seconds) of a ticket issued now: max(Erlang C steady state, current backlog).

    ``waiting`` counts the tickets issued and not yet called (all counters are assumed busy
    when there is a backlog). ``math.inf`` when nobody is serving while tickets wait.
    """
    mu = 1.0 / service_time_s if service_time_s > 0 else 0.0
    steady = mean_wait(arrival_rate, mu, servers)
    if servers <= 0 or mu <= 0:
        return math.inf if (waiting > 0 or arrival_rate > 0) else 0.0
    return max(steady, backlog_wait(waiting, mu, servers))
