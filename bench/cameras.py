"""How many cameras one edge box sustains at a given detection rate, and what the code around the model costs.

Files stand in for cameras: each "camera" reads the sample clip looped at
footage speed in its own reader thread (as the edge service does), frames due
at ``--detect-fps`` go to the shared round-robin frame slots, one detector
worker runs them and counts zones. For growing camera counts it reports the
detections per second each camera got, frames dropped because the detector was
busy, and the process CPU split: everything outside ``session.run`` (decoding,
letterbox, NMS, zones, threads) is measured by running the same load again
with ``session.run`` replaced by a stub that returns a real output, and the
rest of the CPU is the model's.

    .venv/bin/python bench/cameras.py [--detect-fps 2] [--seconds 10] [--cameras 1,4,8,16,24,32]
"""

from __future__ import annotations

import os
import threading
import time

import click

from calibration.site import load_site
from edge.clock import SystemClock
from edge.counting import CameraCounter
from edge.detector import Detector, DetectorConfig
from edge.samples import resolve_sample
from edge.service import FrameSlots
from edge.sources import CameraReader, classify
from edge.video import read_frames

EXAMPLE = "calibration/examples/pets09-s2l1.yaml"


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def stubbed(detector: Detector, video: str) -> Detector:
    """The same detector with ``session.run`` replaced by a real output of it, returned at no cost."""
    frame = next(f for i, _, f in read_frames(video, prefetch=0) if i == 100)
    output = detector.infer(detector.preprocess(frame)[0])
    stub = Detector.__new__(Detector)
    stub.__dict__.update(detector.__dict__)
    stub.infer = lambda blob: output
    return stub


def run_cameras(n: int, detector: Detector, site, video: str, detect_fps: float, seconds: float,
                workers: int = 1) -> dict:
    camera = site.cameras[0]
    ids = [f"cam{i}" for i in range(n)]
    dropped = {c: 0 for c in ids}
    slots = FrameSlots(ids, lambda c: dropped.__setitem__(c, dropped[c] + 1))
    counters = {c: CameraCounter(detector, camera, site.smoothing) for c in ids}
    done = {c: 0 for c in ids}
    runs = [0]
    measuring = threading.Event()
    lock = threading.Lock()
    stop = threading.Event()

    def process(cam: str, frame, ts: float) -> None:
        counters[cam].process(frame, ts)
        if measuring.is_set():
            with lock:
                done[cam] += 1
                runs[0] += 1

    clock = SystemClock()
    readers = [CameraReader(c, classify(video, loop=True), detect_fps, clock,
                            on_frame=lambda f, ts, c=c: slots.put(c, f, ts)) for c in ids]
    for r in readers:
        r.start()
    threads = [threading.Thread(target=slots.serve, args=(process, stop, 0.2), daemon=True)
               for _ in range(workers)]
    for t in threads:
        t.start()
    time.sleep(2.0)  # warm-up: readers opened, detector warm
    for c in ids:
        dropped[c] = 0
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    measuring.set()
    time.sleep(seconds)
    measuring.clear()
    cpu, wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
    stop.set()
    slots.close()
    for r in readers:
        r.stop()
    for t in threads:
        t.join()
    rates = [done[c] / wall for c in ids]
    return {"cameras": n, "min_rate": min(rates), "mean_rate": sum(rates) / n, "runs": runs[0],
            "dropped": sum(dropped.values()), "due": sum(done.values()) + sum(dropped.values()),
            "cpu": cpu, "wall": wall}


@click.command()
@click.option("--model", default=DetectorConfig().model, show_default=True)
@click.option("--detect-fps", default=2.0, show_default=True)
@click.option("--seconds", default=10.0, show_default=True, help="Measured seconds per camera count.")
@click.option("--cameras", "counts", default="1,4,8,16,24,32,48", show_default=True)
@click.option("--threads", default=0, show_default=True, help="onnxruntime threads (0: all cores).")
@click.option("--workers", default=1, show_default=True, help="Detector worker threads (as hallgrid edge --workers).")
@click.option("--site", "site_path", default=EXAMPLE, show_default=True)
def main(model: str, detect_fps: float, seconds: float, counts: str, threads: int, workers: int,
         site_path: str) -> None:
    site = load_site(site_path)
    video = resolve_sample(site.resolve_source(site.cameras[0]))
    detector = Detector(DetectorConfig(model=model, threads=threads))
    stub = stubbed(detector, video)
    cores = len(os.sched_getaffinity(0))
    print(f"model {detector.name}, {cores} cores, target {detect_fps:g} detections/s per camera, "
          f"{workers} detector worker(s), {seconds:g} s measured per row")
    print(f"{'cameras':>7} {'min det/s':>9} {'mean det/s':>10} {'dropped':>8} {'CPU %':>6} "
          f"{'in run %':>8} {'outside run %':>13}  sustained")
    best = 0
    for n in (int(x) for x in counts.split(",")):
        r = run_cameras(n, detector, site, video, detect_fps, seconds, workers)
        bare = run_cameras(n, stub, site, video, detect_fps, seconds, workers)
        outside = min(r["cpu"], bare["cpu"] * r["runs"] / max(1, bare["runs"]))
        inside = r["cpu"] - outside
        ok = r["min_rate"] >= 0.95 * detect_fps and r["dropped"] <= 0.05 * max(1, r["due"])
        best = n if ok else best
        print(f"{n:>7} {r['min_rate']:>9.2f} {r['mean_rate']:>10.2f} {r['dropped']:>8} "
              f"{100 * r['cpu'] / r['wall'] / cores:>6.1f} {100 * inside / max(r['cpu'], 1e-9):>8.1f} "
              f"{100 * outside / max(r['cpu'], 1e-9):>13.1f}  {'yes' if ok else 'no'}")
        if not ok:
            break
    print("CPU % is of the whole box; in run / outside run are shares of the process CPU")
    print(f"sustained: {best} cameras at {detect_fps:g} detections/s each on this box ({detector.name})")


if __name__ == "__main__":
    main()
