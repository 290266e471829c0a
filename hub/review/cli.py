"""``hallgrid review``: the closed-loop review of a site's alerts (CSV and HTML, zh/en)."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click


@click.command("review")
@click.option("--site", "site_path", required=True, help="Site file.")
@click.option("--db", "db_url", required=True, help="SQLAlchemy URL of the hub's database.")
@click.option("--since", "since", help="First local day reviewed (YYYY-MM-DD); default: seven days ago.")
@click.option("--out", "out", default="review", show_default=True, type=click.Path(file_okay=False, path_type=Path))
def review_command(site_path: str, db_url: str, since: str | None, out: Path) -> None:
    """How the alerts since a day were handled: per kind and owner, by person, recurring; the longest waits."""
    from calibration.site import SiteError, load_site
    from hub.planning.history import day_start
    from hub.review.report import write
    from hub.review.summary import review
    from hub.storage import Storage

    try:
        site = load_site(site_path)
    except SiteError as exc:
        raise click.ClickException(str(exc)) from None
    tz = ZoneInfo(site.timezone)
    now = time.time()
    try:
        first = date.fromisoformat(since) if since else datetime.fromtimestamp(now, tz).date() - timedelta(days=7)
    except ValueError:
        raise click.BadParameter(f"{since!r} is not a date YYYY-MM-DD", param_hint="--since") from None
    storage = Storage(db_url)
    try:
        rv = review(storage, site.id, day_start(first, tz), now)
    finally:
        storage.close()
    for p in write(rv, site.name, site.timezone, out):
        click.echo(str(p))
