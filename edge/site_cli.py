"""The installer's first commands: ``hallgrid init`` (a new site file) and ``hallgrid site-schema``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from calibration.site import Site, timezone_problem
from calibration.site_template import NewCamera, render_site
from edge.cli_errors import InputError


def _camera(value: str) -> NewCamera:
    cam_id, sep, source = value.partition("=")
    if not sep or not cam_id.strip() or not source.strip():
        raise InputError(f"--camera {value!r}: write ID=SOURCE, e.g. cam1=rtsp://10.0.0.5/stream1")
    return NewCamera(cam_id.strip(), source.strip())


def _timezone(ctx, param, value: str) -> str:
    if problem := timezone_problem(value):
        raise click.BadParameter(problem)
    return value


@click.command(name="init")
@click.option("--id", "site_id", prompt="Site id (letters, digits, - and _)", help="Site id: part of MQTT topics.")
@click.option("--name", prompt="Hall name", help="The hall's name as people say it.")
@click.option("--timezone", prompt="Time zone", default="Asia/Shanghai", show_default=True, callback=_timezone,
              help="IANA time zone (tz database).")
@click.option("--camera", "cameras", multiple=True, metavar="ID=SOURCE",
              help="A camera and its source (repeatable), e.g. cam1=rtsp://10.0.0.5/stream1; asked when absent.")
@click.option("--out", "out", default="site.yaml", show_default=True, type=click.Path(dir_okay=False),
              help="Site file to write.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_cmd(site_id: str, name: str, timezone: str, cameras: tuple[str, ...], out: str, force: bool) -> None:
    """Write a new, commented site file that passes `hallgrid check --offline` (zones: one per camera)."""
    path = Path(out)
    if path.exists() and not force:
        raise InputError(f"{path} exists; pass --force to overwrite it or --out to write elsewhere")
    new = [_camera(c) for c in cameras]
    if not new:
        cam_id = click.prompt("Camera id", default="cam1")
        new = [NewCamera(cam_id, click.prompt(f"Source of {cam_id} (rtsp://..., usb://0, a video file)"))]
    text = render_site(site_id, name, timezone, new, filename=path.name)   # SiteError: bad answers (exit 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}: site {site_id}, {len(new)} camera(s); next: hallgrid check {path} --offline, "
               f"then hallgrid calibrate --site {path} to draw the zones")


def site_schema() -> dict:
    """The site file's JSON Schema (from the pydantic models; internal fields are not part of it)."""
    schema = Site.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "hallgrid site file", **schema}


@click.command(name="site-schema")
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file (default: standard output).")
def site_schema_cmd(out: str | None) -> None:
    """Print the site file's JSON Schema, for editors (VS Code's YAML extension, yaml-language-server)."""
    text = json.dumps(site_schema(), indent=2, ensure_ascii=False)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text)
