"""Pipeline throughput of one video against bare ``session.run`` on the same frames, in one process.

The baseline is onnxruntime alone with its default options (all cores, spinning threads) on frames
already letterboxed; the pipeline is everything ``hallgrid count``/``eval``/``replay`` do per frame:
decode from the video file, letterbox, run, decode boxes, NMS, zone lookup and smoothing, in their
default layout (``edge.counting.stream_layout``: a frame per core, one thread each) and in the
layout before (one frame at a time on all cores). Ratio = pipeline / bare (goal: at least 0.85).

Why ``--rounds``: the default-options baseline (two spinning threads on two cores) is bimodal from one
process to the next on a shared 2-core machine (89-186 frames/s here, 276-500 on a faster one), whatever
is measured inside the process. Each round is a fresh process measuring both, interleaved; the summary is
the median of the rounds' ratios, with every round shown.

    .venv/bin/python bench/pipeline.py [--model yolox_nano_320] [--frames 300] [--repeats 3] [--rounds 5]
        [--site SITE]
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files

import click
import onnxruntime as ort

from calibration.site import load_site
from edge.counting import CameraCounter, count_stream, stream_layout
from edge.detector import Detector, DetectorConfig, yolox_variant
from edge.samples import resolve_sample
from edge.video import read_frames

EXAMPLE = str(files("calibration") / "examples" / "pets09-s2l1.yaml")


def timed(repeats: int, *fns) -> list[list[float]]:
    """Seconds of several runs of each function, interleaved so that all see the same machine."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return times


@click.command()
@click.option("--model", default=DetectorConfig().model, show_default=True)
@click.option("--frames", default=300, show_default=True)
@click.option("--repeats", default=3, show_default=True)
@click.option("--site", "site_path", default=EXAMPLE, show_default="the example site")
@click.option("--rounds", default=5, show_default=True, help="Fresh processes, each measuring everything.")
@click.option("--json-out", is_flag=True, hidden=True, help="One round: its figures as JSON (the rounds' parent).")
def main(model: str, frames: int, repeats: int, site_path: str, rounds: int, json_out: bool) -> None:
    if not json_out:
        return summary(model, frames, repeats, site_path, rounds)
    site = load_site(site_path)
    camera = site.cameras[0]
    video = resolve_sample(site.resolve_source(camera))
    run_threads, ahead = stream_layout(0)               # what `hallgrid count`/`eval`/`replay` use by default
    streamed = Detector(DetectorConfig(model=model, threads=run_threads))
    one_at_a_time = Detector(DetectorConfig(model=model))  # the layout before: one frame on all cores
    blobs, first = [], None
    for index, _, frame in read_frames(video):
        if index >= frames:
            break
        first = frame if first is None else first
        blobs.append(one_at_a_time.preprocess(frame)[0])
    n = len(blobs)
    shape = blobs[0].shape[2:]  # the input the detector chose for this frame size (YOLOX: not always square)
    default_session = (ort.InferenceSession(str(one_at_a_time.model.path), providers=["CPUExecutionProvider"])
                       if shape == (one_at_a_time.size, one_at_a_time.size)
                       else yolox_variant(one_at_a_time.model.path, *shape, ort.SessionOptions(), batch=1))
    for blob in blobs[:10]:     # warm-up
        default_session.run(None, {one_at_a_time.input_name: blob})
        one_at_a_time(first)
        streamed(first)

    def bare_default_options() -> None:
        for blob in blobs:
            default_session.run(None, {one_at_a_time.input_name: blob})

    def bare_same_layout() -> None:         # the model alone as the pipeline runs it: `ahead` runs side by side
        with ThreadPoolExecutor(ahead) as pool:
            list(pool.map(streamed.infer, blobs))

    def pipeline(detector: Detector, frames_at_once: int):
        def run() -> None:
            counter = CameraCounter(detector, camera, site.smoothing)
            for _ in count_stream(counter, itertools.islice(read_frames(video), n), frames_at_once):
                pass
        return run

    times = timed(repeats, bare_default_options, bare_same_layout, pipeline(streamed, ahead),
                  pipeline(one_at_a_time, 1))
    bare, same, piped, before = (statistics.median(t) for t in times)
    print(json.dumps({"bare": n / bare, "same": n / same, "pipeline": n / piped, "before": n / before,
                      "ahead": ahead, "threads": run_threads, "name": streamed.name, "family": streamed.family.value,
                      "size": streamed.size, "shape": list(shape), "frames": n, "video": str(video)}))


def summary(model: str, frames: int, repeats: int, site_path: str, rounds: int) -> None:
    """``rounds`` fresh processes one after the other; each round's rates, then the medians."""
    rows = []
    for r in range(rounds):
        out = subprocess.run([sys.executable, __file__, "--model", model, "--frames", str(frames), "--repeats",
                              str(repeats), "--site", site_path, "--json-out"], check=True, capture_output=True,
                             text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        rows.append(row)
        print(f"round {r + 1} (load {os.getloadavg()[0]:.1f}): bare default options {row['bare']:6.1f}, bare "
              f"{row['ahead']} side by side {row['same']:6.1f}, pipeline {row['pipeline']:6.1f} frames/s "
              f"(ratio {row['pipeline'] / row['bare']:.3f}; to the side-by-side runs "
              f"{row['pipeline'] / row['same']:.3f}), one frame at a time {row['before']:6.1f}", flush=True)
    first = rows[0]
    med = {k: statistics.median(r[k] for r in rows) for k in ("bare", "same", "pipeline", "before")}
    ratio = statistics.median(r["pipeline"] / r["bare"] for r in rows)
    print(f"model {first['name']} ({first['family']}, {first['size']}px, fed {first['shape'][1]}x{first['shape'][0]}), "
          f"{first['frames']} frames of {first['video']}, {rounds} rounds (fresh processes) of {repeats} "
          f"interleaved runs each; medians:")
    print(f"bare session.run, onnxruntime's default options : {med['bare']:7.1f} frames/s")
    print(f"bare session.run, {first['ahead']} side by side x {first['threads']} thread      : {med['same']:7.1f} frames/s")
    print(f"pipeline, {first['ahead']} frames at once x {first['threads']} thread       : {med['pipeline']:7.1f} "
          f"frames/s  median ratio {ratio:.3f} (min {min(r['pipeline'] / r['bare'] for r in rows):.3f}; to the "
          f"bare runs side by side: {statistics.median(r['pipeline'] / r['same'] for r in rows):.3f})")
    print(f"pipeline, one frame at a time (the layout before): {med['before']:7.1f} frames/s  "
          f"median ratio {statistics.median(r['before'] / r['bare'] for r in rows):.3f}")


if __name__ == "__main__":
    main()
