"""``hallgrid replay``: recorded footage and a ticket log into per-zone statistics, alerts and a report."""

from __future__ import annotations

from pathlib import Path

import click

from edge.cli import USER_ERRORS, detector_config, detector_options
from edge.cli_errors import fail


@click.command("replay")
@click.argument("videos", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--site", "site_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Site file: cameras, zones, services, counters, rules.")
@click.option("--camera", "cameras", multiple=True,
              help="Camera that recorded each video (once for all, or once per video; default: the only camera, "
                   "or the camera id in the file name).")
@click.option("--start", "starts", multiple=True,
              help="Wall-clock time of each video's first frame (ISO; site time zone unless an offset is given). "
                   "Default: the file's creation_time, else a timestamp in its name, else 2000-01-01T00:00:00Z.")
@click.option("--tickets", type=click.Path(exists=True, dir_okay=False),
              help="Ticket log CSV (ts,event,ticket,service,counter,to_service,services), as the hub imports.")
@click.option("--gt", "gts", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="MOTChallenge ground truth per video: adds counting error per zone and hour.")
@click.option("--gt-frame-offset", default=1, show_default=True, help="Ground-truth frame number of video frame 0.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(1), help="Videos counted in parallel.")
@click.option("--detect-fps", type=click.FloatRange(0, min_open=True),
              help="Detections per second (default: each camera's detect_fps, as live; the video's rate or more: "
                   "every frame).")
@click.option("--heartbeat", default=10.0, show_default=True, type=click.FloatRange(0.1),
              help="Edge heartbeat: an unchanged count is re-sent this often (as `hallgrid edge`).")
@click.option("--tick", "tick_s", default=1.0, show_default=True, type=click.FloatRange(0.01),
              help="Footage seconds between rule evaluations (as `hallgrid hub --tick`).")
@click.option("--interval", "interval_s", default=60.0, show_default=True, type=click.FloatRange(1),
              help="Seconds per row of the min/mean/max series.")
@click.option("--annotate", is_flag=True, help="Also write each video with zones, boxes and counts drawn.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@detector_options
def replay_command(videos, site_path, cameras, starts, tickets, gts, gt_frame_offset, out, jobs, detect_fps,
                   heartbeat, tick_s, interval_s, annotate, progress, model, model_dir, confidence, threads):
    """Replay recorded VIDEO(s) of a site with its ticket log through the live edge and hub code."""
    from calibration.site import load_site
    from hub.replay.run import ReplayConfig, run

    try:
        site = load_site(site_path)
        config = ReplayConfig(list(videos), site_path, Path(out), list(cameras), list(starts), list(gts), tickets,
                              detector_config(site, model, confidence, threads, model_dir), detect_fps, jobs,
                              heartbeat, tick_s, interval_s, gt_frame_offset, annotate, progress)
        summary = run(config)
    except (*USER_ERRORS, ValueError) as exc:
        fail(exc)
    click.echo(f"replay of {summary['site']}: {summary['footage_s']:.1f} s of footage, {summary['alerts']} alerts; "
               f"report {Path(out) / 'report.html'}")
