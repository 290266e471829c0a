"""``hallgrid calibrate``: serve the zone editor for a site's cameras until stopped."""

from __future__ import annotations

import os

import click

from edge.cli import USER_ERRORS, camera_of, detector_config, detector_options, fail


@click.command(name="calibrate")
@click.option("--site", "site_path", required=True, type=click.Path(dir_okay=False), envvar="HALLGRID_SITE",
              help="Site file to edit (saved back with a timestamped backup).")
@click.option("--camera", "camera_ids", multiple=True, help="Edit only these cameras (repeatable; default: all).")
@click.option("--http", "http", default="127.0.0.1:8765", show_default=True,
              help="HOST:PORT to serve the editor on (0.0.0.0:8765 to reach it from the installer's laptop).")
@click.option("--token", envvar="HALLGRID_CALIBRATE_TOKEN", help="Access token (default: a random one, printed).")
@detector_options
def calibrate_cmd(site_path, camera_ids, http, token, model, model_dir, confidence, threads):
    """Draw, check and prove the zones of a site's cameras in a browser, on live snapshots."""
    import uvicorn

    from calibration.site import load_site
    from edge.calibrate_server import CalibrateApp, create_app, new_token
    from edge.detector import Detector

    host, _, port = http.rpartition(":")
    if not host or not port.isdigit():
        fail(ValueError(f"--http {http!r}: write HOST:PORT, e.g. 127.0.0.1:8765"))
    try:
        site = load_site(site_path)
        ids = [camera_of(site, c).id for c in camera_ids] or None
        detector = Detector(detector_config(site, model, confidence, threads, model_dir))
        editor = CalibrateApp(site_path, detector, token or new_token(), ids)
    except USER_ERRORS as exc:
        fail(exc)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"calibrate: site {site.id}, open http://{shown}:{port}/?token={editor.token}", err=True)
    click.echo("the token is needed for every request; keep it to this session "
               f"({'from --token/HALLGRID_CALIBRATE_TOKEN' if token else 'random'})", err=True)
    try:
        uvicorn.run(create_app(editor), host=host, port=int(port), log_level=os.environ.get("UVICORN_LOG", "warning"))
    finally:
        editor.close()
