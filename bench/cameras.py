"""How many cameras one edge box sustains at a given detection rate, against the bare batched model rate.

Each "camera" is the sample clip, read in its own reader thread as the edge
service reads it: a file looped at footage speed, or with ``--rtsp`` a real
RTSP/H.264 stream from GStreamer's RTSP server (``tests/rtsp_server.py``, one
mount per camera, each client its own stream). Frames due at ``--detect-fps``
go to the shared round-robin frame slots; ``--workers`` detector threads take up
to ``--batch`` of them per ``session.run`` and count zones, with the edge
service's own code (``FrameSlots.serve``, ``detect_many``).

For every workers x batch combination and camera count it prints the slowest
and mean camera's detections/s, due frames dropped (detector busy) and stale
(reader behind its source), the oldest frame counted (grab to counted), and the
process CPU share of the box (and the RTSP server's, which runs beside it).
The baseline, measured in the same run, is bare ``session.run`` on frames
already letterboxed, in batches of the same size. The last lines name the
sustained camera count (every camera at 97.5 % of the target or more, at most
0.5 % of due frames dropped or stale), the CPU share there, and detections/s
against the bare batched rate, at that count and at the saturating row.

    .venv/bin/python bench/cameras.py [--rtsp] [--workers 0,1] [--batch 1,8] [--threads 0]
        [--cameras 1,8,16,24,32,40,48,56,64] [--detect-fps 2] [--seconds 10]
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from calibration.site import load_site  # noqa: E402
from edge.clock import SystemClock  # noqa: E402
from edge.counting import CameraCounter, detect_many  # noqa: E402
from edge.detector import Detector, DetectorConfig  # noqa: E402
from edge.samples import resolve_sample  # noqa: E402
from edge.sources import CameraReader, classify  # noqa: E402
from edge.video import read_frames  # noqa: E402
from edge.workers import FrameSlots, plan_workers  # noqa: E402

EXAMPLE = "calibration/examples/pets09-s2l1.yaml"


def cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds (user + system) of this process, or of another one from /proc."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bare_batched_rate(detector: Detector, video: str, batch: int, workers: int, seconds: float = 3.0) -> float:
    """Frames/s of bare ``session.run`` on letterboxed clip frames in batches of ``batch``, run by ``workers``
    threads at once as the detector workers run it (the baseline: the most the model gives on this box)."""
    frames = [f for i, _, f in read_frames(video, detect_fps=2, prefetch=0) if i < 400]
    box = detector.letterbox(frames[0])
    blobs = []
    for start in range(0, len(frames) - batch + 1, batch):
        blob = np.empty((batch, 3, box.input_height, box.input_width), np.float32)
        for row, frame in enumerate(frames[start:start + batch]):
            detector.fill(frame, box, blob[row])
        blobs.append(blob)
    detector.infer(blobs[0])  # warm-up
    done = [0] * workers
    begin = time.perf_counter()

    def run(k: int) -> None:
        while time.perf_counter() - begin < seconds:
            for blob in blobs[k::workers]:
                detector.infer(blob)
                done[k] += batch

    threads = [threading.Thread(target=run, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - begin)


def run_cameras(n: int, detector: Detector, site, sources: list[str], detect_fps: float, seconds: float,
                workers: int, batch: int, server_pid: int | None) -> dict:
    camera = site.cameras[0]
    ids = [f"cam{i}" for i in range(n)]
    dropped = {c: 0 for c in ids}
    stale = {c: 0 for c in ids}
    slots = FrameSlots(ids, lambda c: dropped.__setitem__(c, dropped[c] + 1))
    counters = {c: CameraCounter(detector, camera, site.smoothing) for c in ids}
    stamps: dict[str, list[float]] = {c: [] for c in ids}
    ages: list[float] = []
    measuring = threading.Event()
    stop = threading.Event()
    clock = SystemClock()

    def process(items) -> None:
        found = detect_many([counters[c] for c, _, _ in items], [f for _, f, _ in items])
        for (cam, frame, ts), detections in zip(items, found):
            h, w = frame.shape[:2]
            counters[cam].count(detections, w, h, ts)
        if measuring.is_set():
            now = clock.now()
            for cam, _, ts in items:
                stamps[cam].append(ts)
                ages.append(now - ts)

    readers = [CameraReader(c, classify(src, loop=True), detect_fps, clock,
                            on_frame=lambda f, ts, c=c: slots.put(c, f, ts),
                            on_stale=lambda c=c: stale.__setitem__(c, stale[c] + 1))
               for c, src in zip(ids, sources)]
    for r in readers:
        r.start()
    threads = [threading.Thread(target=slots.serve, args=(process, stop, batch, 0.2), daemon=True)
               for _ in range(workers)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while not all(r.alive() for r in readers) and time.monotonic() < deadline:
        time.sleep(0.1)  # every source open (RTSP opens take a while)
    time.sleep(2.0)  # warm-up
    for c in ids:
        dropped[c] = stale[c] = 0
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    server0 = cpu_seconds(server_pid) if server_pid else 0.0
    measuring.set()
    time.sleep(seconds)
    measuring.clear()
    cpu, wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
    server_cpu = cpu_seconds(server_pid) - server0 if server_pid else 0.0
    n_dropped, n_stale = sum(dropped.values()), sum(stale.values())
    stop.set()
    slots.close()
    for r in readers:
        r.stop()
    for t in threads:
        t.join()
    # a camera's rate from the times of its counted frames: not quantised by the window's edges
    rates = [(len(s) - 1) / (s[-1] - s[0]) if len(s) > 2 and s[-1] > s[0] else 0.0 for s in stamps.values()]
    counted = sum(len(s) for s in stamps.values())
    return {"cameras": n, "min_rate": min(rates), "mean_rate": sum(rates) / n, "det_s": counted / wall,
            "dropped": n_dropped, "stale": n_stale, "due": counted + n_dropped + n_stale,
            "age_max": max(ages, default=float("nan")), "age_p99": float(np.percentile(ages, 99)) if ages else 0.0,
            "cpu": cpu / wall, "server_cpu": server_cpu / wall}


@click.command()
@click.option("--model", default=DetectorConfig().model, show_default=True)
@click.option("--detect-fps", default=2.0, show_default=True)
@click.option("--seconds", default=10.0, show_default=True, help="Measured seconds per camera count.")
@click.option("--cameras", "counts", default="1,8,16,24,32,40,48,56,64", show_default=True)
@click.option("--workers", "workers_list", default="0", show_default=True,
              help="Detector threads (0: one per core, as hallgrid edge); a list sweeps.")
@click.option("--batch", "batch_list", default="8", show_default=True, help="Frames per session.run; a list sweeps.")
@click.option("--threads", default=0, show_default=True,
              help="onnxruntime threads per run (0: the cores shared among the workers, as hallgrid edge).")
@click.option("--spin/--no-spin", default=True, show_default=True, help="onnxruntime threads spin during a run.")
@click.option("--rtsp", is_flag=True, help="Cameras are RTSP/H.264 streams of the clip from a real RTSP server.")
@click.option("--site", "site_path", default=EXAMPLE, show_default=True)
def main(model: str, detect_fps: float, seconds: float, counts: str, workers_list: str, batch_list: str,
         threads: int, spin: bool, rtsp: bool, site_path: str) -> None:
    site = load_site(site_path)
    video = resolve_sample(site.resolve_source(site.cameras[0]))
    cores = len(os.sched_getaffinity(0))
    counts_n = [int(x) for x in counts.split(",")]
    server = None
    if rtsp:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))   # the tests' RTSP server
        from streams import RtspServer, encode_clip, missing_tools

        if why := missing_tools():
            raise click.ClickException(why)
        tmp = Path(tempfile.mkdtemp(prefix="hallgrid-rtsp-"))
        server = RtspServer(encode_clip(Path(video), tmp / "clip.mkv"), mounts=max(counts_n))
        server.start()
    try:
        print(f"model {model}, {cores} cores, load average {os.getloadavg()[0]:.2f} at start, target "
              f"{detect_fps:g} detections/s per camera, sources: "
              f"{'RTSP/H.264 streams' if rtsp else 'files'} of {video}, {seconds:g} s measured per row")
        for asked in (int(x) for x in workers_list.split(",")):
            workers, per_run = plan_workers(asked, threads, cores)
            for batch in (int(x) for x in batch_list.split(",")):
                detector = Detector(DetectorConfig(model=model, threads=per_run, spin=spin))
                sweep(detector, site, video, server, counts_n, detect_fps, seconds, workers, batch, cores)
    finally:
        if server:
            server.stop()


def sweep(detector: Detector, site, video: str, server, counts: list[int], detect_fps: float, seconds: float,
          workers: int, batch: int, cores: int) -> None:
    bare = bare_batched_rate(detector, video, batch, workers)
    print(f"\n{workers} worker(s), batch {batch}, {detector.config.threads} onnxruntime thread(s) per run, "
          f"spin {'on' if detector.config.spin else 'off'}: bare session.run in batches of {batch} by {workers} "
          f"thread(s): "
          f"{bare:.1f} frames/s")
    print(f"{'cameras':>7} {'min det/s':>9} {'mean det/s':>10} {'det/s':>6} {'dropped':>7} {'stale':>5} "
          f"{'age p99':>7} {'age max':>7} {'CPU %':>6} {'server %':>8}  sustained")
    best, last = None, None
    for n in counts:
        sources = [server.url(i) for i in range(n)] if server else [video] * n
        r = run_cameras(n, detector, site, sources, detect_fps, seconds, workers, batch,
                        server.proc.pid if server else None)
        ok = r["min_rate"] >= 0.975 * detect_fps and r["dropped"] + r["stale"] <= 0.005 * max(1, r["due"])
        print(f"{n:>7} {r['min_rate']:>9.2f} {r['mean_rate']:>10.2f} {r['det_s']:>6.1f} {r['dropped']:>7} "
              f"{r['stale']:>5} {r['age_p99']:>7.2f} {r['age_max']:>7.2f} {100 * r['cpu'] / cores:>6.1f} "
              f"{100 * r['server_cpu'] / cores:>8.1f}  {'yes' if ok else 'no'}", flush=True)
        last = r
        if not ok:
            break
        best = r
    load = os.getloadavg()[0]
    if best:
        print(f"sustained: {best['cameras']} cameras at {detect_fps:g} detections/s each ({workers} worker(s), "
              f"batch {batch}); CPU {100 * best['cpu'] / cores:.0f} % of the box"
              + (f" + RTSP server {100 * best['server_cpu'] / cores:.0f} %" if server else "")
              + f"; {best['det_s']:.1f} detections/s = {best['det_s'] / bare:.2f} x bare batched session.run; "
              f"load average {load:.2f}")
    else:
        print(f"sustained: none at {detect_fps:g} detections/s; load average {load:.2f}")
    if last and last is not best:
        print(f"saturated at {last['cameras']} cameras: {last['det_s']:.1f} detections/s = "
              f"{last['det_s'] / bare:.2f} x bare batched session.run")


if __name__ == "__main__":
    main()
