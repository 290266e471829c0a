"""One self-contained HTML report of a replay: tables and matplotlib figures inlined as base64 PNG.

No scripts, no external files: it opens from a mail attachment or a shared drive.
Every word comes from the message catalogue (``replay.*`` keys), in the site's language.
Figures are rendered with the Agg backend (no display needed) and without the
software tag, so the same replay gives the same images.
"""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from datetime import datetime
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Chinese labels: glyphs DejaVu lacks come from WenQuanYi (.ci/setup installs it), English ones are unchanged
# (a list of families, not the generic "sans-serif": only a list falls back glyph by glyph)
matplotlib.rcParams["font.family"] = ["DejaVu Sans", "WenQuanYi Micro Hei"]

from edge.contract import parse_ts  # noqa: E402
from hub.messages import label, render as say  # noqa: E402
from hub.replay.series import Table  # noqa: E402
from hub.replay.start_time import to_local  # noqa: E402

LEVEL_COLOURS = {"info": "#4c9be8", "warning": "#f0a020", "critical": "#d62728"}


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _local(epoch: float, tz: str) -> datetime:
    """Site-local wall time without the zone, as matplotlib's date axis wants it."""
    return to_local(epoch, tz).replace(tzinfo=None)


def occupancy_figure(zones: Table, tz: str, lang: str = "en") -> str:
    lines: dict[str, tuple[list, list, list]] = defaultdict(lambda: ([], [], []))
    for ts, _, cam, zone, _, raw, sm in zones.rows:
        x, r, s = lines[f"{cam}/{zone}"]
        x.append(_local(parse_ts(ts), tz))
        r.append(raw)
        s.append(sm)
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for i, (name, (x, r, s)) in enumerate(sorted(lines.items())):
        colour = f"C{i % 10}"
        ax.step(x, s, where="post", color=colour, label=say("replay.fig.smoothed", lang, name=name))
        ax.plot(x, r, color=colour, alpha=0.25, linewidth=0.8)
    ax.set_ylabel(say("replay.fig.people", lang))
    ax.set_xlabel(say("replay.fig.time", lang, tz=tz))
    ax.set_title(say("replay.fig.occupancy", lang))
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    ax.grid(alpha=0.3)
    return _png(fig)


def heat_figure(heat: dict[str, dict[str, float]], lang: str = "en") -> str:
    zones = sorted(heat)
    hours = sorted({h for z in heat.values() for h in z})
    grid = [[heat[z].get(h, float("nan")) for h in hours] for z in zones]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(hours) + 3), 0.5 * len(zones) + 1.5))
    im = ax.imshow(grid, aspect="auto", cmap="YlOrRd")
    ax.set_xticks(range(len(hours)), [h[11:16] for h in hours])
    ax.set_yticks(range(len(zones)), zones)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=8)
    ax.set_title(say("replay.fig.heat", lang))
    fig.colorbar(im, ax=ax)
    return _png(fig)


def waits_figure(queues: Table, tz: str, lang: str = "en") -> str:
    by_service: dict[str, tuple[list, list, list]] = defaultdict(lambda: ([], [], []))
    for row in queues.rows:
        x, w, n = by_service[row[2]]
        x.append(_local(parse_ts(row[0]), tz))
        w.append(float("nan") if row[8] is None else row[8] / 60)
        n.append(row[3])
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 4.5), sharex=True)
    for i, (svc, (x, w, n)) in enumerate(sorted(by_service.items())):
        a1.step(x, w, where="post", color=f"C{i}", label=svc)
        a2.step(x, n, where="post", color=f"C{i}", label=svc)
    a1.set_ylabel(say("replay.fig.wait_min", lang))
    a1.set_title(say("replay.fig.waits", lang))
    a2.set_ylabel(say("replay.fig.tickets_waiting", lang))
    a2.set_xlabel(say("replay.fig.time", lang, tz=tz))
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8, loc="upper left")
    return _png(fig)


def alerts_figure(alerts: list[dict[str, Any]], start: float, end: float, tz: str, lang: str = "en") -> str:
    keys = sorted({a["key"] for a in alerts})
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(keys) + 1.4))
    for a in alerts:
        t0 = parse_ts(a["raised_at"])
        t1 = parse_ts(a["resolved_at"]) if a["resolved_at"] else end
        y = keys.index(a["key"])
        ax.barh(y, (t1 - t0) / 86400, left=_local(t0, tz), color=LEVEL_COLOURS.get(a["level"], "grey"), height=0.6)
        if a["acknowledged_at"]:
            ax.plot([_local(parse_ts(a["acknowledged_at"]), tz)], [y], "k|", markersize=14)
    ax.set_yticks(range(len(keys)), keys)
    ax.set_xlim(_local(start, tz), _local(end, tz))
    ax.set_xlabel(say("replay.fig.alerts_time", lang, tz=tz))
    ax.set_title(say("replay.fig.alerts", lang))
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def error_figure(acc: dict[str, Any], lang: str = "en") -> str:
    rows = [(f"{name.split(':')[0]}/{z}", v["count_mae"], v["raw_count_mae"])
            for name, doc in acc.items() for z, v in sorted(doc["overall"].get("per_zone", {}).items())]
    fig, ax = plt.subplots(figsize=(10, 3))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r[1] for r in rows], width=0.4, label=say("replay.fig.smoothed_mae", lang))
    ax.bar([x + 0.2 for x in xs], [r[2] for r in rows], width=0.4, label=say("replay.fig.raw_mae", lang))
    ax.set_xticks(list(xs), [r[0] for r in rows])
    ax.set_ylabel(say("replay.fig.people_per_frame", lang))
    ax.set_title(say("replay.fig.error", lang))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if c is None else str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}
th{background:#f3f3f3}img{max-width:100%}.note{color:#666;font-size:.85em}"""


def render(summary: dict[str, Any], zones: Table, intervals: Table, queues: Table, heat: dict[str, dict[str, float]],
           alerts: list[dict[str, Any]], acc: dict[str, Any] | None, lang: str = "en") -> str:
    """The whole report as one HTML string, in ``lang``."""
    tz, start, end = summary["timezone"], summary["start_epoch"], summary["end_epoch"]

    def head(key: str) -> list[str]:
        return say(f"replay.head.{key}", lang).split("|")

    def h2(key: str) -> str:
        return f"<h2>{html.escape(say(f'replay.section.{key}', lang))}</h2>"

    def note(key: str) -> str:
        return f"<p class=note>{html.escape(say(key, lang))}</p>"

    def suggestion(a: dict[str, Any]) -> str:
        return (a.get("texts") or {}).get(lang, {}).get("suggestion") or a["suggestion"]

    period = say("replay.period", lang, start=summary["start"], end=summary["end"], tz=tz,
                 footage=f"{summary['footage_s']:.1f}")
    parts = [f"<h1>{html.escape(say('replay.title', lang, name=summary['site_name'], site=summary['site']))}</h1>",
             f"<p>{html.escape(period)}</p>",
             _table(head("recordings"),
                    [[r["camera"], r["video"], r["start"], r["start_source"], r["frames"], r["messages"]]
                     for r in summary["recordings"]]),
             h2("occupancy"), occupancy_figure(zones, tz, lang),
             _table(head("intervals"), [list(r[:7]) for r in intervals.rows]),
             h2("heat"), heat_figure(heat, lang), h2("waits")]
    parts.append(waits_figure(queues, tz, lang) if queues.rows else note("replay.no_services"))
    parts.append(h2("alerts"))
    if alerts:
        parts += [alerts_figure(alerts, start, end, tz, lang),
                  _table(head("alerts"),
                         [[label("kind", a["kind"], lang), a["key"], label("level", a["level"], lang),
                           label("state", a["state"], lang), a["raised_at"], a["acknowledged_at"], a["resolved_at"],
                           suggestion(a)] for a in alerts])]
    else:
        parts.append(note("replay.no_alerts"))
    if acc:
        parts += [h2("accuracy"), error_figure(acc, lang)]
        for name, doc in acc.items():
            o = doc["overall"]
            parts.append(f"<h3>{html.escape(name)}</h3>")
            parts.append(_table(head("accuracy"), [[o["frames"], o["count_mae"], o["raw_count_mae"], o["count_bias"],
                                                    o["recall"], o["precision"]]]))
            rows = [[hour, z, s["frames"], v["count_mae"], v["raw_count_mae"], v["count_bias"], v["mean_people"]]
                    for hour, s in [(say("replay.all_hours", lang), o), *doc["per_hour"].items()]
                    for z, v in sorted(s.get("per_zone", {}).items())]
            parts.append(_table(head("accuracy_hours"), rows))
    parts.append(f"<p class=note>{say('replay.footer', lang)}</p>")     # the catalogue's own markup (<code>)
    return (f"<!doctype html><html lang={'zh-CN' if lang == 'zh' else 'en'}><head><meta charset=utf-8>"
            f"<title>hallgrid replay: {html.escape(summary['site'])}</title><style>{CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
