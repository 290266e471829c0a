"""``hallgrid calibrate``: serve the zone editor for a site's cameras until stopped."""

from __future__ import annotations

import click

from edge.cli import camera_of, detector_config, detector_options
from edge.cli_errors import RunFailure
from edge.host_port import HOST_PORT, HostPort, listen, serve_http
from edge.logs import log_options, setup_logging


@click.command(name="calibrate")
@click.option("--site", "site_path", required=True, type=click.Path(dir_okay=False), envvar="HALLGRID_SITE",
              help="Site file to edit (saved back with a timestamped backup).")
@click.option("--camera", "camera_ids", multiple=True, help="Edit only these cameras (repeatable; default: all).")
@click.option("--http", "http", type=HOST_PORT, default="127.0.0.1:8765", show_default=True,
              help="HOST:PORT to serve the editor on (0.0.0.0:8765 to reach it from the installer's laptop).")
@click.option("--token", envvar="HALLGRID_CALIBRATE_TOKEN", help="Access token (default: a random one, printed).")
@log_options("WARNING")
@detector_options
def calibrate_cmd(site_path, camera_ids, http: HostPort, token, log_level, log_format, model, model_dir, confidence,
                  threads):
    """Draw, check and prove the zones of a site's cameras in a browser, on live snapshots."""
    from calibration.site import load_site
    from edge.calibrate_server import CalibrateApp, create_app, new_token
    from edge.detector import Detector

    setup_logging(log_level, log_format)
    site = load_site(site_path)
    ids = [camera_of(site, c).id for c in camera_ids] or None
    detector = Detector(detector_config(site, model, confidence, threads, model_dir))
    try:
        sock = listen(http)
    except OSError as exc:
        raise RunFailure(f"cannot serve the editor on {http}: {exc.strerror or exc}") from None
    editor = CalibrateApp(site_path, detector, token or new_token(), ids)
    click.echo(f"calibrate: site {site.id}, open http://{http.shown}/?token={editor.token}", err=True)
    click.echo("the token is needed for every request; keep it to this session "
               f"({'from --token/HALLGRID_CALIBRATE_TOKEN' if token else 'random'})", err=True)
    try:
        serve_http(create_app(editor), sock, log_level.lower())
    finally:
        editor.close()
