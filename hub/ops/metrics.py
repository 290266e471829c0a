"""Prometheus metrics of a hub, read from the hub's own figures at each scrape.

Why a collector rather than counters sprinkled through the hub: ``Hub.stats`` is
already the one tally of every message in, kept under the hub's lock, and the
alerts and queues are already in memory; reading them at scrape time keeps
``hub/service.py`` free of metric code and the two can never disagree. Only the
evaluation latency is observed as it happens (``Hub.evaluation_listeners``).

Rejected messages are labelled by their source (occupancy, status, ticket, mqtt,
alert, http, restore), not by the free-text reason, which would make a label per
malformed message; the reasons are in ``/api/stats`` and the log.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from edge import VERSION

RESULTS = ("ok", "rejected", "old", "duplicate")
STAT = re.compile(rf"^(?P<source>[a-z]+)_(?P<result>{'|'.join(RESULTS)})$")


class HubCollector:
    """Yields the hub's metric families at each scrape (a prometheus_client custom collector)."""

    def __init__(self, hub):
        self.hub = hub

    def collect(self):
        hub = self.hub
        with hub.lock:
            stats = dict(hub.stats)
            now = hub.clock.now()
            active = [(sid, a.kind, a.state, a.level) for sid, m in hub.managers.items() for a in m.active.values()]
            queues = {sid: st.queues(now) for sid, st in hub.sites.items()}
        yield InfoMetricFamily("hallgrid_hub_build", "The hub's version", value={"version": VERSION})
        messages = CounterMetricFamily("hallgrid_hub_messages", "Messages in by source and result (ok, rejected, "
                                       "old: an older seq, duplicate: a ticket event seen before)",
                                       labels=["source", "result"])
        for key, n in sorted(stats.items()):
            if m := STAT.match(key):
                messages.add_metric([m["source"], m["result"]], n)
        yield messages
        yield CounterMetricFamily("hallgrid_hub_errors", "Unexpected errors while handling a message",
                                  value=stats.get("errors", 0))
        changes = CounterMetricFamily("hallgrid_hub_alert_changes", "Alert state changes, by the new state",
                                      labels=["state"])
        for state in ("open", "acknowledged", "resolved"):
            changes.add_metric([state], stats.get(f"alerts_{state}", 0))
        yield changes
        alerts = GaugeMetricFamily("hallgrid_hub_alerts_active", "Alerts not yet resolved",
                                   labels=["site", "kind", "state", "level"])
        tally: dict[tuple[str, ...], int] = {}
        for key in active:
            tally[key] = tally.get(key, 0) + 1
        for key, n in sorted(tally.items()):
            alerts.add_metric(list(key), n)
        yield alerts
        figures = {"waiting_tickets": "Tickets waiting", "waiting_people": "People counted in its waiting zones",
                   "predicted_wait_s": "Predicted wait of a new ticket, seconds",
                   "oldest_wait_s": "Longest wait of a waiting ticket, seconds",
                   "arrivals_per_h": "Tickets issued per hour (recent window)"}
        families = {k: GaugeMetricFamily(f"hallgrid_hub_queue_{k}", text, labels=["site", "service"])
                    for k, text in figures.items()}
        counters = GaugeMetricFamily("hallgrid_hub_queue_open_counters", "Open counters serving the service",
                                     labels=["site", "service"])
        for sid, rows in queues.items():
            for row in rows:
                for k, fam in families.items():
                    if row[k] is not None:
                        fam.add_metric([sid, row["service"]], row[k])
                counters.add_metric([sid, row["service"]], len(row["open_counters"]))
        yield from families.values()
        yield counters
        yield GaugeMetricFamily("hallgrid_hub_ready", "1 while subscribed to the broker", value=int(hub.ready))


class HubMetrics:
    """A registry of the hub's metrics (one per app, so tests and several hubs do not collide)."""

    def __init__(self, hub):
        self.registry = CollectorRegistry()
        self.registry.register(HubCollector(hub))
        self.evaluation = Histogram("hallgrid_hub_evaluation_seconds", "Time to evaluate a site's rules",
                                    registry=self.registry,
                                    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0))
        hub.evaluation_listeners.append(self.evaluation.observe)

    def render(self) -> bytes:
        return generate_latest(self.registry)
