"""The ``hallgrid`` command: one entry point for every part (edge, calibration, models, hub).

Heavy parts are imported inside their commands, so an edge box without the hub's
extras still runs ``hallgrid edge``.
"""

from __future__ import annotations

import time
from importlib.resources import files

import click

from edge.cli import USER_ERRORS, build_counter, count, edge_cmd, eval_cmd, fail
from edge.models_cli import models_group
from edge.samples import resolve_sample
from edge.video import read_frames
from hub.service import hub_command

EXAMPLE_SITE = files("calibration") / "examples" / "pets09-s2l1.yaml"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """hallgrid: people counting and queue warnings for customer-service halls."""


cli.add_command(count)
cli.add_command(eval_cmd)
cli.add_command(hub_command)
cli.add_command(edge_cmd)
cli.add_command(models_group)


@cli.command()
@click.option("--site", "site_path", default=str(EXAMPLE_SITE), show_default="the example site",
              help="Site file whose first camera is played.")
@click.option("--duration", type=click.FloatRange(0, min_open=True), help="Stop after this many seconds.")
@click.option("--fast", is_flag=True, help="Play as fast as possible instead of at footage speed.")
def demo(site_path: str, duration: float | None, fast: bool) -> None:
    """Count people per zone in the sample footage and print the live counts once a second."""
    try:
        site, camera, counter = build_counter(site_path, None, None, None, None, None)
        source = resolve_sample(site.resolve_source(camera))
        click.echo(f"site {site.id}, camera {camera.id}: {source} with {counter.detector.name}")
        click.echo("time     " + " ".join(f"{z:>13}" for z in counter.zones.zone_ids))
        started, next_print = time.monotonic(), 0.0
        for _, ts, frame in read_frames(source, camera.detect_fps):
            if not fast:
                time.sleep(max(0.0, started + ts - time.monotonic()))
            result = counter.process(frame, ts)
            if ts >= next_print:
                cells = " ".join(f"{result.smoothed[z]:>8}/{result.raw[z]:<4}" for z in counter.zones.zone_ids)
                click.echo(f"{int(ts) // 60:02d}:{ts % 60:04.1f}  {cells}")
                next_print += 1.0
            if duration and time.monotonic() - started >= duration:
                break
    except USER_ERRORS as exc:
        fail(exc)


def main() -> None:
    cli()
