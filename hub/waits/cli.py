"""``hallgrid eval-waits``: how well the hub predicts each ticket's wait, measured on real ticket logs."""

from __future__ import annotations

import json
import time

import click


@click.command("eval-waits")
@click.argument("logs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--site", "site_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Site file of the hall the logs come from (services, counters, rules.max_wait_s).")
@click.option("--score-from", "score_from", type=click.DateTime(["%Y-%m-%d"]),
              help="First site-local day scored; earlier days are history the hub may learn from "
                   "(default: every day is scored).")
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="Write every scored ticket's prediction (ticket,service,issued_at,predicted_wait_s,low_s,"
                   "high_s,reason).")
@click.option("--alerts", "alerts_path", type=click.Path(dir_okay=False),
              help="Write every long-wait alert raised on a scored day (service,raised_at,resolved_at).")
@click.option("--tick", "tick_s", default=60.0, show_default=True, type=click.FloatRange(1),
              help="Seconds between rule ticks (the rules also run on every ticket event, as live).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def eval_waits_command(logs, site_path, score_from, out, alerts_path, tick_s, as_json):
    """Play ticket LOGS (the hub's CSV import format) through the live hub and score the wait it predicted
    for each ticket at its issue against the wait it had, beside the standard predictors."""
    from calibration.site import SiteError, load_site
    from hub.waits import evaluate

    try:
        site = load_site(site_path)
    except SiteError as exc:
        raise click.ClickException(str(exc)) from None
    began = time.perf_counter()
    run = evaluate.run(site, list(logs), score_from.date() if score_from else None, tick_s)
    if not run.tickets:
        raise click.ClickException("no ticket issued on a scored day: check --score-from and the logs"
                                   + (f" ({len(run.errors)} bad rows)" if run.errors else ""))
    for err in run.errors:
        click.echo(f"skipped {err}", err=True)
    rep = evaluate.report(run)
    rep["runtime_s"] = round(time.perf_counter() - began, 1)
    if out:
        evaluate.write_predictions(run.tickets, out)
    if alerts_path:
        evaluate.write_alerts(run.alerts, alerts_path)
    if as_json:
        click.echo(json.dumps(rep, sort_keys=True))
    else:
        click.echo(evaluate.table(rep))
        click.echo(f"({rep['tickets_scored']} tickets scored, {rep['runtime_s']} s)")
