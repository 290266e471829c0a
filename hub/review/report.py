"""The review as CSV and as a self-contained HTML page with charts (zh/en; texts from the catalogue, ``review.*``)."""

from __future__ import annotations

import base64
import csv
import html
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hub.charts import png_bytes, pyplot
from hub.messages import LANGUAGES, render
from hub.review.summary import COLUMNS, Review



def write_csv(rv: Review, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rv.groups)


def charts(rv: Review, lang: str) -> bytes:
    """Alerts raised per kind (by person / by condition / open) and minutes to acknowledge and resolve."""
    plt = pyplot(lang)
    kinds = sorted({g["kind"] for g in rv.groups})
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6))
    if kinds:
        def total(k: str, col: str) -> int:
            return sum(g[col] for g in rv.groups if g["kind"] == k)

        person = [total(k, "resolved_by_person") for k in kinds]
        cond = [total(k, "resolved_by_condition") for k in kinds]
        still = [total(k, "still_open") for k in kinds]
        a1.barh(kinds, person, label=render("review.by_person", lang))
        a1.barh(kinds, cond, left=person, label=render("review.by_condition", lang))
        a1.barh(kinds, still, left=[p + c for p, c in zip(person, cond)], label=render("review.still_open", lang))
        a1.legend(fontsize=8)
        data = [[t["resolve_min"] for t in rv.alerts if t["kind"] == k and t["resolve_min"] is not None] or [0]
                for k in kinds]
        a2.boxplot(data, orientation="horizontal", tick_labels=kinds)
    a1.set_title(render("review.raised", lang), fontsize=10)
    a2.set_title(render("review.resolve_minutes", lang), fontsize=10)
    return png_bytes(fig)


CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}img{max-width:100%}"""


def page(rv: Review, site_name: str, timezone: str, lang: str) -> str:
    e = html.escape
    tz = ZoneInfo(timezone)
    day = lambda t: datetime.fromtimestamp(t, tz).strftime("%Y-%m-%d")   # noqa: E731
    title = render("review.title", lang, site=site_name, since=day(rv.since), until=day(rv.until - 1))

    def table(cols: list[str], rows: list[dict], keys: list[str]) -> str:
        head = "".join(f"<th>{e(render('review.col.' + c, lang))}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{e('-' if r[k] is None else str(r[k]))}</td>" for k in keys) + "</tr>"
                       for r in rows)
        return f"<table><tr>{head}</tr>{body}</table>" if rows else f"<p>{e(render('review.none', lang))}</p>"

    png = base64.b64encode(charts(rv, lang)).decode()
    return (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{e(title)}</h1>"
            f'<img alt="{e(render("review.raised", lang))}" src="data:image/png;base64,{png}">'
            f"<h2>{e(render('review.handling', lang))}</h2>{table(list(COLUMNS), rv.groups, list(COLUMNS))}"
            f"<h2>{e(render('review.people', lang))}</h2>"
            f"{table(['who', 'acknowledged', 'ack_median_min'], rv.people, ['who', 'acknowledged', 'ack_median_min'])}"
            f"<h2>{e(render('review.longest', lang))}</h2>"
            f"{table(['ticket', 'service', 'issued_at', 'wait_min', 'left'], rv.longest, ['ticket', 'service', 'issued_at', 'wait_min', 'left'])}"
            "</body></html>\n")


def write(rv: Review, site_name: str, timezone: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "review.csv"]
    write_csv(rv, paths[0])
    for lang in LANGUAGES:
        p = out / f"review.{lang}.html"
        p.write_text(page(rv, site_name, timezone, lang), encoding="utf-8")
        paths.append(p)
    return paths
