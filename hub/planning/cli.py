"""``hallgrid plan`` and ``hallgrid eval-forecast``."""

from __future__ import annotations

import json
import re
import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click


def _site(path: str):
    from calibration.site import SiteError, load_site

    try:
        return load_site(path)
    except SiteError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("plan")
@click.option("--site", "site_path", required=True, help="Site file.")
@click.option("--db", "db_url", required=True, help="SQLAlchemy URL of the hub's database.")
@click.option("--date", "day", help="Local day to plan (YYYY-MM-DD); default: today at the site.")
@click.option("--out", "out", default="plan", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--roster", "roster_path", type=click.Path(dir_okay=False, exists=True),
              help="Roster CSV (counter,day,start,end); default: the site file's planning.roster.")
def plan_command(site_path: str, db_url: str, day: str | None, out: Path, roster_path: str | None) -> None:
    """The staffing plan of a day: forecast arrivals, counters needed, scheduled and the gap (CSV, PNG, HTML)."""
    from hub.planning import roster
    from hub.planning.plan import make_plan, write
    from hub.storage import Storage

    site = _site(site_path)
    shifts = None
    if roster_path:
        try:
            shifts = roster.read_csv(Path(roster_path).read_text(encoding="utf-8"), site, roster_path)
        except roster.RosterError as exc:
            raise click.ClickException(str(exc)) from None
    now = time.time()
    try:
        d = date.fromisoformat(day) if day else datetime.fromtimestamp(now, ZoneInfo(site.timezone)).date()
    except ValueError:
        raise click.BadParameter(f"{day!r} is not a date YYYY-MM-DD", param_hint="--date") from None
    storage = Storage(db_url)
    try:
        p = make_plan(site, storage, d, now, shifts)
    finally:
        storage.close()
    for path in write(p, out):
        click.echo(str(path))


def _duration(text: str) -> float:
    m = re.fullmatch(r"(\d+)(s|m|h)?", text.strip())
    if not m:
        raise click.BadParameter(f"{text!r}: give seconds or a number with s, m or h (30m)", param_hint="--horizon")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


@click.command("eval-forecast")
@click.argument("logs", nargs=-1, required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--site", "site_path", required=True, help="Site file.")
@click.option("--score-from", "score_from", required=True, help="First local day scored (YYYY-MM-DD); earlier "
              "days are history only.")
@click.option("--horizon", default="30m", show_default=True, help="How long before each slot its forecast is taken.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write forecast.csv (service,slot_start,actual,forecast,low,high).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
def eval_forecast_command(logs: tuple[str, ...], site_path: str, score_from: str, horizon: str, out: Path | None,
                          as_json: bool) -> None:
    """Backtest the hub's arrival forecast on ticket logs against seasonal-naive and previous-working-day."""
    from hub.planning.evaluate import LogError, evaluate, read_logs, write_csv

    site = _site(site_path)
    try:
        first = date.fromisoformat(score_from)
    except ValueError:
        raise click.BadParameter(f"{score_from!r} is not a date YYYY-MM-DD", param_hint="--score-from") from None
    try:
        events = read_logs(list(logs))
    except LogError as exc:
        raise click.ClickException(str(exc)) from None
    if not events:
        raise click.ClickException("the logs hold no ticket events")
    horizon_s = _duration(horizon)
    if horizon_s % 60:
        raise click.BadParameter(f"{horizon!r}: the hub is replayed minute by minute; give whole minutes",
                                 param_hint="--horizon")
    result = evaluate(site, events, first, horizon_s, progress=not as_json)
    rows = result.pop("rows")
    if out:
        write_csv(rows, out)
    if not rows:
        raise click.ClickException(f"no working day on or after {first} in the logs: nothing to score")
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    mae = result["mae"]
    click.echo(f"{result['slots']} service-slots on {', '.join(result['days'])}, horizon {horizon}")
    click.echo(f"{'predictor':24} {'MAE':>7}")
    for name in ("forecast", "seasonal_naive", "previous_working_day"):
        click.echo(f"{name:24} {mae[name]:7.3f}")
    click.echo(f"forecast / better baseline: {result['ratio_to_best_baseline']:.3f}")
    click.echo(f"80 % interval coverage: {result['coverage_80'] * 100:.1f} %")
    lead = result["median_shortfall_lead_s"]
    click.echo(f"slots with waits over {site.rules.max_wait_s:.0f} s: {result['long_wait_slots']}; forecast_shortfall "
               f"open before the slot: {result['shortfall_ahead']} (median lead "
               f"{'-' if lead is None else f'{lead / 60:.0f} min'}); any alert before the first wait crossed "
               f"the limit: {result['warned_before_crossing']} (long_wait alone: {result['long_wait_before_crossing']})")
    p = result["shortfall_precision"]
    if p["alerted_slots"]:
        click.echo(f"forecast_shortfall: {p['alerts']} alerts ({p['alerts_on_long_waits']} open during a long wait), "
                   f"open at {p['alerted_slots']} of {p['pool_slots']} pool-slots, {p['slot_precision'] * 100:.0f} % "
                   f"of them with a long wait (all slots: {p['base_rate'] * 100:.0f} %)")
