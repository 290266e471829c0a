"""Real-time factor of `hallgrid replay` on the sample clip: footage seconds per wall second, whole run.

Measures the whole replay (decode, detect, count, publish schedule, hub fusion and
rules, series, Parquet, report) at every frame and at 2 detections per second, in
one process with the cores onnxruntime is given. Other work on the machine lowers
the figures; run it on a quiet box for numbers to quote.

    .venv/bin/python bench/replay.py [--threads N] [--repeat N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from calibration.site import load_site  # noqa: E402
from edge.cli import detector_config  # noqa: E402
from edge.samples import resolve_sample  # noqa: E402
from hub.replay.run import ReplayConfig, run  # noqa: E402

SITE = REPO / "calibration" / "examples" / "pets09-s2l1.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all cores)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per setting; the best is reported")
    args = ap.parse_args()
    video = resolve_sample("sample://vtest.avi")
    site = load_site(SITE)
    det = detector_config(site, None, None, args.threads, None)
    import os

    print(f"clip {Path(video).name}, site {site.id}, model {det.model}, cores {os.cpu_count()}, "
          f"threads {args.threads or 'all'}")
    for label, fps in (("every frame (10 fps)", 10.0), ("2 detections/s", 2.0)):
        best = None
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                config = ReplayConfig([video], str(SITE), Path(tmp), starts=["2026-11-23T09:00:00"], detector=det,
                                      detect_fps=fps, progress=False)
                started = time.perf_counter()
                summary = run(config)
                wall = time.perf_counter() - started
            if best is None or wall < best[0]:
                best = (wall, summary)
        wall, summary = best
        footage = summary["recordings"][0]["duration_s"]
        frames = summary["recordings"][0]["frames"]
        counting = summary["busy_s"][0]
        print(f"{label:22s} footage {footage:6.1f} s  wall {wall:6.2f} s  real-time x{footage / wall:6.1f}  "
              f"({frames} frames, {frames / counting:6.1f} frames/s counting, "
              f"{wall - counting:5.2f} s fusion+outputs)")


if __name__ == "__main__":
    main()
