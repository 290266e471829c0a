"""The staffing plan of one site and day: per slot and service the forecast arrivals (80 % interval),
the counters needed, the counters scheduled and the gap; as CSV, a chart (PNG) and a self-contained HTML page.

The need of a pool of services that share counters is its own row (service ``*`` in the
CSV, the pool's services in ``pool``): that is the row to compare with the roster, because a
shared counter is one clerk. Texts come from the message catalogue (``plan.*``), in zh and en.
"""

from __future__ import annotations

import base64
import csv
import html
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from calibration.site import Site
from edge.contract import iso_ts

from hub.charts import png_bytes, pyplot
from hub.messages import LANGUAGES, render
from hub.planning import roster as roster_mod
from hub.planning.history import SLOTS_PER_DAY, day_start, read_arrivals, slot_of
from hub.planning.lookahead import SiteLookahead, look_ahead, read_history

CSV_COLUMNS = ("slot_start", "local_time", "service", "pool", "forecast", "low", "high", "needed", "scheduled",
               "gap")


@dataclass
class DayPlan:
    site: Site
    day: date
    la: SiteLookahead
    slots: list[int]                 # the day's slots in opening hours (forecast or scheduled)


def make_plan(site: Site, storage, day: date, now: float, shifts: list[roster_mod.ShiftRow] | None = None) -> DayPlan:
    """The plan for ``day`` from the history before it; on the day itself, with today's arrivals so far."""
    tz = ZoneInfo(site.timezone)
    history = read_history(storage, site, day)
    services = [s.id for s in site.services]
    counts, completed = np.zeros((len(services), SLOTS_PER_DAY)), 0
    if slot_of(now, tz)[0] == day:
        today = read_arrivals(storage, site.id, tz, day_start(day, tz), now)
        counts = np.array([today.day(s, day) for s in services])
        completed = slot_of(now, tz)[1]
    la = look_ahead(site, history, counts, completed, now, shifts, need_slots=SLOTS_PER_DAY)
    busy = np.zeros(SLOTS_PER_DAY, dtype=bool)
    for s in services:
        busy |= la.mean[s][:SLOTS_PER_DAY] >= 0.05
    for row in la.scheduled.values():
        busy |= row[:SLOTS_PER_DAY]
    return DayPlan(site, day, la, [k for k in range(SLOTS_PER_DAY) if busy[k]])


def _local(plan: DayPlan, k: int) -> str:
    return datetime.fromtimestamp(plan.la.starts[k], ZoneInfo(plan.site.timezone)).strftime("%H:%M")


def rows(plan: DayPlan) -> list[dict]:
    """The CSV rows: one per slot and service, then one per slot and pool (service ``*``)."""
    la, out = plan.la, []
    for k in plan.slots:
        for p in la.pools:
            scheduled = len(la.scheduled_in(p.counters, k))
            need_pool = int(la.need_pool[p.key][k])
            for s in p.services:
                out.append({"slot_start": iso_ts(la.starts[k]), "local_time": _local(plan, k), "service": s,
                            "pool": p.key, "forecast": round(float(la.mean[s][k]), 2), "low": int(la.low[s][k]),
                            "high": int(la.high[s][k]), "needed": int(la.need_service[s][k]),
                            "scheduled": "", "gap": ""})
            out.append({"slot_start": iso_ts(la.starts[k]), "local_time": _local(plan, k), "service": "*",
                        "pool": p.key, "forecast": round(sum(float(la.mean[s][k]) for s in p.services), 2),
                        "low": "", "high": "", "needed": need_pool, "scheduled": scheduled,
                        "gap": scheduled - need_pool})
    return out


def write_csv(plan: DayPlan, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, CSV_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows(plan))


def chart(plan: DayPlan, lang: str) -> bytes:
    """PNG: forecast arrivals per pool (with the 80 % band of its services) and counters needed vs scheduled."""
    plt = pyplot(lang)
    la, ks = plan.la, plan.slots
    fig, axes = plt.subplots(len(la.pools), 1, figsize=(11, 3.2 * len(la.pools)), squeeze=False)
    x = np.arange(len(ks))
    names = {s.id: s.name or s.id for s in plan.site.services}
    for ax, p in zip(axes[:, 0], la.pools):
        mean = sum(la.mean[s][ks] for s in p.services)
        ax.fill_between(x, sum(la.low[s][ks] for s in p.services), sum(la.high[s][ks] for s in p.services),
                        alpha=0.2, step="mid", label=render("plan.band_summed" if len(p.services) > 1 else "plan.band", lang))
        ax.step(x, mean, where="mid", label=render("plan.forecast", lang))
        ax.set_ylabel(render("plan.arrivals_axis", lang))
        ax2 = ax.twinx()
        ax2.step(x, la.need_pool[p.key][ks], where="mid", color="crimson", label=render("plan.needed", lang))
        ax2.step(x, [len(la.scheduled_in(p.counters, k)) for k in ks], where="mid", color="seagreen",
                 linestyle="--", label=render("plan.scheduled", lang))
        ax2.set_ylabel(render("plan.counters_axis", lang))
        ax.set_title(", ".join(names[s] for s in p.services), fontsize=10)
        ticks = x[::4]
        ax.set_xticks(ticks, [_local(plan, ks[i]) for i in ticks], fontsize=8)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left", ncol=4)
    return png_bytes(fig)


CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}.short{background:#fde2e2}img{max-width:100%}.note{color:#666;font-size:.9em}"""


def page(plan: DayPlan, lang: str, png: bytes) -> str:
    """A self-contained HTML page (the chart inlined): nothing else to copy with it."""
    e = html.escape
    la = plan.la
    names = {s.id: s.name or s.id for s in plan.site.services}
    head = [render(k, lang) for k in ("plan.time", "plan.pool", "plan.forecast", "plan.band_summed", "plan.needed",
                                      "plan.scheduled", "plan.gap")]
    body = []
    for k in plan.slots:
        for p in la.pools:
            need = int(la.need_pool[p.key][k])
            sched = len(la.scheduled_in(p.counters, k))
            lo = int(sum(la.low[s][k] for s in p.services))
            hi = int(sum(la.high[s][k] for s in p.services))
            cls = ' class="short"' if sched < need else ""
            body.append(f"<tr{cls}><td>{_local(plan, k)}</td><td>{e(', '.join(names[s] for s in p.services))}</td>"
                        f"<td>{sum(float(la.mean[s][k]) for s in p.services):.1f}</td><td>{lo}-{hi}</td>"
                        f"<td>{need}</td><td>{sched}</td><td>{sched - need:+d}</td></tr>")
    title = render("plan.title", lang, site=plan.site.name, day=plan.day.isoformat())
    note = render("plan.note", lang, source=render(f"plan.source.{la.source.replace(' ', '_')}", lang),
                  max_wait=int(plan.site.rules.max_wait_s))
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{e(title)}</h1><p class=note>{e(note)}</p>"
            f'<img alt="{e(render("plan.chart_alt", lang))}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode()}"><table><tr>{"".join(f"<th>{e(h)}</th>" for h in head)}</tr>'
            f'{"".join(body)}</table></body></html>\n')


def write(plan: DayPlan, out: Path) -> list[Path]:
    """plan.csv, and per language plan.LANG.png and plan.LANG.html, into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "plan.csv"]
    write_csv(plan, written[0])
    for lang in LANGUAGES:
        png = chart(plan, lang)
        (out / f"plan.{lang}.png").write_bytes(png)
        (out / f"plan.{lang}.html").write_text(page(plan, lang, png), encoding="utf-8")
        written += [out / f"plan.{lang}.png", out / f"plan.{lang}.html"]
    return written
