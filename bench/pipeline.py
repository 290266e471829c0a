"""Pipeline throughput against bare ``session.run`` on the same frames, in one process.

The baseline is onnxruntime alone, with the detector's own session, on frames
already letterboxed; the pipeline
is everything the edge box does per frame: decode from the video file,
letterbox, run, decode boxes, NMS, zone lookup and smoothing. The ratio says
how much the code around the model costs (goal: at least 0.85).

    .venv/bin/python bench/pipeline.py [--model yolox_nano_320] [--frames 300] [--site SITE]
"""

from __future__ import annotations

import time
from importlib.resources import files

import click
import onnxruntime as ort

from calibration.site import load_site
from edge.counting import CameraCounter
from edge.detector import Detector, DetectorConfig, yolox_variant
from edge.samples import resolve_sample
from edge.video import read_frames

EXAMPLE = str(files("calibration") / "examples" / "pets09-s2l1.yaml")


def best_of(repeats: int, *fns) -> list[float]:
    """The fastest of several timed runs of each function, interleaved so that both see the same machine."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return [min(t) for t in times]


@click.command()
@click.option("--model", default=DetectorConfig().model, show_default=True)
@click.option("--frames", default=300, show_default=True)
@click.option("--repeats", default=3, show_default=True)
@click.option("--site", "site_path", default=EXAMPLE, show_default="the example site")
@click.option("--threads", default=0, show_default=True)
def main(model: str, frames: int, repeats: int, site_path: str, threads: int) -> None:
    site = load_site(site_path)
    camera = site.cameras[0]
    video = resolve_sample(site.resolve_source(camera))
    detector = Detector(DetectorConfig(model=model, threads=threads))
    blobs = []
    for index, _, frame in read_frames(video):
        if index >= frames:
            break
        blobs.append(detector.preprocess(frame)[0])
    n = len(blobs)
    for blob in blobs[:10]:
        detector.infer(blob)  # warm-up

    def bare() -> None:
        for blob in blobs:
            detector.infer(blob)

    def pipeline() -> None:
        counter = CameraCounter(detector, camera, site.smoothing)
        for index, ts, frame in read_frames(video):
            if index >= n:
                break
            counter.process(frame, ts)

    shape = blobs[0].shape[2:]  # the input the detector chose for this frame size (YOLOX: not always square)
    default_session = (ort.InferenceSession(str(detector.model.path), providers=["CPUExecutionProvider"])
                       if shape == (detector.size, detector.size)
                       else yolox_variant(detector.model.path, *shape, ort.SessionOptions(), batch=1))

    def bare_default_options() -> None:
        for blob in blobs:
            default_session.run(None, {detector.input_name: blob})

    t_bare, t_pipe, t_default = best_of(repeats, bare, pipeline, bare_default_options)
    print(f"model {detector.name} ({detector.family.value}, {detector.size}px, fed {shape[1]}x{shape[0]}), "
          f"{n} frames of {video}, "
          f"{threads or 'default'} threads, best of {repeats}")
    print(f"bare session.run : {n / t_bare:7.1f} frames/s  ({1000 * t_bare / n:.2f} ms/frame)")
    print(f"whole pipeline   : {n / t_pipe:7.1f} frames/s  ({1000 * t_pipe / n:.2f} ms/frame)")
    print(f"bare session.run with onnxruntime's default options (spinning threads): {n / t_default:.1f} frames/s;"
          f" pipeline/that: {t_default / t_pipe:.3f}")
    print(f"ratio pipeline/bare: {t_bare / t_pipe:.3f}  (cost outside session.run: "
          f"{100 * (1 - t_bare / t_pipe):.1f} %)")


if __name__ == "__main__":
    main()
