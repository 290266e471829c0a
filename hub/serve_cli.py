"""``hallgrid hub``: the hub service's command line (options, environment, state folder, startup order).

Every option a container sets has an environment variable (``HALLGRID_MQTT``,
``HALLGRID_DB``, ``HALLGRID_HTTP``, ``HALLGRID_SITE``, ...). Everything the
command line can get wrong is checked before a file or database is created; the
broker may come up after the hub (compose, a reboot): the hub keeps retrying
with backoff and reports not ready on ``/readyz`` until it is subscribed.
"""

from __future__ import annotations

import socket
import threading

import click

from edge.cli_errors import InputError, RunFailure
from edge.contract import DEFAULT_PREFIX, ID
from edge.host_port import HOST_PORT, HostPort, listen, serve_http
from edge.logs import log_options, setup_logging
from edge.mqtt_url import BrokerSettings, mqtt_options
from edge.state_dir import state_dir

def default_db_url() -> str:
    """SQLite in the state folder (created on first use), never the current folder."""
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'hub.db'}"


@click.command("hub")
@click.option("--site", "site_paths", multiple=True, required=True, envvar="HALLGRID_SITE",
              type=click.Path(dir_okay=False), help="Site file (repeat for several halls; HALLGRID_SITE: "
              "paths separated by ':').")
@click.option("--sites", "only", envvar="HALLGRID_SITES", help="Comma-separated site ids this hub serves out of "
              "the given files (several hubs split the halls by this list). Without it on PostgreSQL, the hubs "
              "sharing the database claim the sites among themselves and take over a dead hub's.")
@click.option("--shard", envvar="HALLGRID_SHARD", metavar="I/N",
              help="Serve share I (0..N-1) of the sites (after --sites), chosen by a stable hash of each site id: "
              "N hub processes on one machine, started 0/N .. N-1/N, each with its own --http port, serve all "
              "sites between them (README: several hub processes).")
@mqtt_options
@click.option("--hub-id", envvar="HALLGRID_HUB_ID",
              help="This hub's name on its alerts (default: hub-SITE-SITE); also its MQTT session.")
@click.option("--peer-hub", "peer_hubs", multiple=True, envvar="HALLGRID_PEER_HUBS",
              help="A hub whose retained alerts this one adopts (repeat; its own are always adopted).")
@click.option("--db", "db_url", envvar="HALLGRID_DB", help="SQLAlchemy URL (default: sqlite:///STATE/hub.db, "
              "STATE = HALLGRID_STATE_DIR or ~/.local/state/hallgrid).")
@click.option("--http", "http", type=HOST_PORT, default="127.0.0.1:8080", show_default=True, envvar="HALLGRID_HTTP",
              help="HOST:PORT of the API and board.")
@click.option("--webhook", "webhook_url", envvar="HALLGRID_WEBHOOK",
              help="POST every alert change as JSON to this URL (retried); chat robots (WeCom, DingTalk, Feishu) "
              "are set per site in the site file's notify: list.")
@click.option("--tick", "tick_s", default=1.0, show_default=True, type=click.FloatRange(0.01), envvar="HALLGRID_TICK",
              help="Seconds between rule evaluations.")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, envvar="HALLGRID_PREFIX",
              help="MQTT topic prefix.")
@click.option("--no-auth", "no_auth", is_flag=True, help="Serve the board and API without login (trusted network "
              "or tests only); default: the site files' access users, HALLGRID_USERS or HALLGRID_TOKEN.")
@log_options()
def hub_command(site_paths: tuple[str, ...], only: str | None, shard: str | None, broker: BrokerSettings, hub_id: str | None,
                peer_hubs: tuple[str, ...], db_url: str | None, http: HostPort, webhook_url: str | None,
                tick_s: float, prefix: str, no_auth: bool, log_level: str, log_format: str) -> None:
    """Fuse occupancy and ticket events into staffing alerts; serve the API, SSE stream and MQTT alerts."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from calibration.site import load_site
    from hub.access import AccessError, access_for_hub
    from hub.api import create_app
    from hub.cluster.claims import ClaimError, SiteClaims
    from hub.notify import Notify, NotifyError
    from hub.service import Hub, _run_ticker
    from hub.storage import Storage

    setup_logging(log_level, log_format)
    sites = [load_site(p) for p in site_paths]          # a SiteError is an input error (the top group)
    if hub_id and not ID.fullmatch(hub_id):
        raise click.BadParameter("letters, digits, '_' and '-', at most 64", param_hint="--hub-id")
    if only:
        wanted = {s.strip() for s in only.split(",") if s.strip()}
        missing = wanted - {s.id for s in sites}
        if missing:
            raise InputError(f"--sites names {', '.join(sorted(missing))} but no --site file has them")
        sites = [s for s in sites if s.id in wanted]
    if shard:
        from hub.ingest.shard import ShardError, parse_shard, share

        try:
            index, shards = parse_shard(shard)
        except ShardError as exc:
            raise click.BadParameter(str(exc), param_hint="--shard") from None
        given = ", ".join(s.id for s in sites)
        sites = share(sites, index, shards)
        if not sites:
            raise InputError(f"--shard {shard}: none of the sites ({given}) falls in share {index} of {shards}; "
                             "use fewer shares, or name each hub's sites with --sites")
    try:
        notify = Notify.for_sites(sites, webhook_url)
    except NotifyError as exc:          # e.g. a ${VAR} of a notify entry unset: the entry and the variable
        raise InputError(str(exc)) from None
    click.get_current_context().call_on_close(notify.close)    # also when a later step fails
    try:
        sock = listen(http)
    except OSError as exc:
        raise RunFailure(f"cannot serve HTTP on {http}: {exc.strerror or exc}") from None
    try:
        db_shown = make_url(db_url).render_as_string(hide_password=True) if db_url else None
    except ArgumentError:
        raise InputError("--db (HALLGRID_DB) is not a database URL; write e.g. sqlite:////var/lib/hallgrid/hub.db "
                         "or postgresql+psycopg://hallgrid@db/hallgrid") from None
    db_url = db_url or default_db_url()
    db_shown = db_shown or db_url
    try:
        storage = Storage(db_url)
    except SQLAlchemyError as exc:
        raise RunFailure(f"cannot open the database {db_shown}: {getattr(exc, 'orig', None) or exc}") from None
    claim = not only and not shard and storage.is_postgresql
    try:
        access, token = access_for_hub(sites, db_url, no_auth)
    except AccessError as exc:
        raise InputError(str(exc)) from None
    if token:
        click.echo(f"no users configured (site file access:, HALLGRID_USERS, HALLGRID_TOKEN): this run's "
                   f"duty-manager token is {token}")
    hub = Hub([] if claim else sites, storage, mqtt_url=broker, prefix=prefix, notify=notify, site_sessions=claim,
              hub_id=hub_id or f"hub-{'-'.join(s.id for s in sites)}"[:55].rstrip("-"), peers=peer_hubs)
    hub.start(wait_s=None)       # retries with backoff; /readyz says when it is subscribed
    try:
        claims = SiteClaims(hub, sites, db_url, name=f"{socket.gethostname()}:{http.port}").start() if claim else None
    except (RuntimeError, OSError, ClaimError) as exc:
        hub.stop()
        raise RunFailure(str(exc)) from None
    stop = threading.Event()
    threading.Thread(target=_run_ticker, args=(hub, tick_s, stop), daemon=True, name="hub-ticker").start()
    hub.forecaster.start()
    served = f"claims among {', '.join(s.id for s in sites)}" if claim else f"for {', '.join(hub.sites)}"
    click.echo(f"hub {hub.hub_id} {served}: MQTT {broker.redacted()}, DB {db_shown}, API http://{http.shown}")
    try:
        serve_http(create_app(hub, access), sock)
    finally:
        stop.set()
        hub.forecaster.stop()
        if claims is not None:
            claims.stop()
        hub.stop()
