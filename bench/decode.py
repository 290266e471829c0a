"""What decoding costs an edge box, apart from detection: why det/s stays below the bare model rate at capacity.

1. Readers alone: ``--cameras`` of the service's ``CameraReader`` on the sample clip (a file played at
   footage speed, ``grab`` of every frame, ``retrieve`` of the due ones at ``--detect-fps``), no detector:
   the CPU share of the box and the CPU per frame read.
2. Keyframes only: the clip encoded to H.264 as a camera sends it (no B-frames) with a keyframe every
   ``--gop`` seconds, read to the end with every frame decoded and with OpenCV's FFmpeg backend told to
   decode keyframes only (``OPENCV_FFMPEG_CAPTURE_OPTIONS=avdiscard;nonkey``), each in a fresh process:
   frames decoded, CPU per frame and CPU per second of video, and the frames/s keyframes alone deliver.

    .venv/bin/python bench/decode.py [--cameras 48,96] [--seconds 8] [--gop 0.5,2]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from calibration.site import load_site  # noqa: E402
from edge.clock import SystemClock  # noqa: E402
from edge.samples import resolve_sample  # noqa: E402
from edge.sources import CameraReader, classify  # noqa: E402
from edge.video import video_info  # noqa: E402

EXAMPLE = str(ROOT / "calibration" / "examples" / "pets09-s2l1.yaml")


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def readers_alone(video: str, n: int, detect_fps: float, seconds: float) -> dict:
    """``n`` readers of ``video`` for ``seconds`` after a warm-up: CPU share and CPU per frame grabbed."""
    handed = [0]
    readers = [CameraReader(f"cam{i}", classify(video, loop=True), detect_fps, SystemClock(),
                            on_frame=lambda f, ts: handed.__setitem__(0, handed[0] + 1), on_stale=lambda: None)
               for i in range(n)]
    for r in readers:
        r.start()
    time.sleep(3.0)
    c0, w0, h0 = cpu_seconds(), time.perf_counter(), handed[0]
    time.sleep(seconds)
    cpu, wall = cpu_seconds() - c0, time.perf_counter() - w0
    for r in readers:
        r.stop()
    fps = video_info(video).fps
    return {"cameras": n, "cpu_share_of_one_core": cpu / wall, "ms_per_frame": cpu / wall / (n * fps) * 1e3,
            "handed_per_s": (handed[0] - h0) / wall}


def read_all(path: str) -> None:
    """Child: read ``path`` to its end (grab and retrieve each frame it gives); one JSON line."""
    import cv2

    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    c0, n = cpu_seconds(), 0
    while cap.grab():
        cap.retrieve()
        n += 1
    print(json.dumps({"frames": n, "cpu_s": cpu_seconds() - c0}))


def decoded(path: Path, keyframes_only: bool) -> dict:
    env = dict(os.environ)
    if keyframes_only:
        env["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "avdiscard;nonkey"
    else:
        env.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS", None)
    out = subprocess.run([sys.executable, __file__, "--read", str(path)], env=env, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@click.command()
@click.option("--cameras", default="48,96", show_default=True, help="Reader counts of part 1.")
@click.option("--detect-fps", default=2.0, show_default=True)
@click.option("--seconds", default=8.0, show_default=True, help="Measured seconds per reader count.")
@click.option("--gop", default="0.5,2", show_default=True, help="Keyframe intervals (s) of part 2.")
@click.option("--site", "site_path", default=EXAMPLE, show_default="the example site")
@click.option("--read", "read_path", hidden=True, help="Child: read this file and print its cost.")
def main(cameras: str, detect_fps: float, seconds: float, gop: str, site_path: str, read_path: str | None) -> None:
    if read_path:
        return read_all(read_path)
    site = load_site(site_path)
    video = resolve_sample(site.resolve_source(site.cameras[0]))
    info = video_info(video)
    print(f"clip {video}: {info.width}x{info.height} at {info.fps:g} fps; load average {os.getloadavg()[0]:.1f}")
    for n in (int(x) for x in cameras.split(",")):
        r = readers_alone(video, n, detect_fps, seconds)
        print(f"{n} readers alone (no detector, {detect_fps:g} due frames/s each): {r['cpu_share_of_one_core']:.0%} "
              f"of one core, {r['ms_per_frame']:.2f} ms of CPU per frame read, {r['handed_per_s']:.0f} due frames/s "
              f"handed on", flush=True)
    sys.path.insert(0, str(ROOT / "tests"))          # the tests' camera encoding (tests/streams.py)
    from streams import encode_clip

    with tempfile.TemporaryDirectory(prefix="hallgrid-decode-") as tmp:
        for g in (float(x) for x in gop.split(",")):
            path = encode_clip(Path(video), Path(tmp) / f"clip-gop{g:g}.mkv", g)
            every, keys = decoded(path, False), decoded(path, True)
            seconds_of_video = every["frames"] / info.fps
            print(f"H.264, a keyframe every {g:g} s ({path.stat().st_size / 1e6:.1f} MB): every frame "
                  f"{every['cpu_s'] / every['frames'] * 1e3:.2f} ms each, {every['cpu_s'] / seconds_of_video * 1e3:.0f} "
                  f"ms of CPU per second of video; keyframes only {keys['frames']} frames "
                  f"({keys['frames'] / seconds_of_video:.2f}/s), {keys['cpu_s'] / max(keys['frames'], 1) * 1e3:.2f} ms "
                  f"each, {keys['cpu_s'] / seconds_of_video * 1e3:.0f} ms per second of video "
                  f"({1 - keys['cpu_s'] / every['cpu_s']:.0%} less)", flush=True)


if __name__ == "__main__":
    main()
