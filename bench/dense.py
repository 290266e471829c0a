"""Counting accuracy and speed in packed waiting areas (README: "Packed waiting areas").

For each camera of the Beijing-BRT sample (``../shared/footage/beijing-brt-train``),
in one run on this machine, every detector setting below is applied to every image,
the settings taking turns image by image so that they share the same load:

- ``default``: the site default model at its own input (320), confidence 0.45, whole frame;
- whole frame enlarged to 640, 960 (the example site's camera setting: the baseline of the
  speed ratios) and 1280 px, confidence 0.1;
- tiled (edge/tiling.py): overlapping square tiles enlarged 1.5x, with the whole frame at 960,
  over the whole view or over the far part only (where people are small);
- the same tiles through the ``sahi`` package (its slicing and GREEDYNMM merge, our
  onnxruntime detector in each slice), when it is importable;
- each scored raw (detections = count), with the people-per-detection correction
  cross-validated (5 folds in capture-time order: every image's corrected count comes
  from a factor fitted on the other folds), and against the head points (recall/precision).

images/s covers detection and counting of a decoded image (the JPEG is read once, untimed).
PETS09-S2L1 with the default settings is run first, as ``hallgrid eval`` runs it.

    .venv/bin/python bench/dense.py [--step 1] [--footage ../shared/footage] [--only NAME,...]
    PYTHONPATH=/path/to/sahi .venv/bin/python bench/dense.py   # sahi installed apart (--no-deps)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import cv2
import numpy as np

from calibration.site import Camera, CameraDetector
from edge.count_fit import cross_validated
from edge.counting import CameraCounter
from edge.detections import Detections
from edge.detector import Detector, DetectorConfig
from edge.evaluation import evaluate, match_points
from edge.hand_counts import load_counts, load_points

FOOTAGE = Path(__file__).resolve().parents[1].parent / "shared" / "footage"
BASELINE = "960"
# name -> a camera's detector settings (None: the site default, as a camera without settings)
SETTINGS: dict[str, dict | None] = {
    "default": None,
    "640": {"input_size": 640, "confidence": 0.1},
    "960": {"input_size": 960, "confidence": 0.1},
    "1280": {"input_size": 1280, "confidence": 0.1},
    "tiles": {"input_size": 960, "confidence": 0.1, "tiles": {"tile": 0.7, "overlap": 0.25, "scale": 1.5}},
    "far-tiles": {"input_size": 640, "confidence": 0.1,
                  "tiles": {"region": [0, 0, 1, 0.39], "tile": 0.7, "overlap": 0.25, "scale": 1.5}},
    "sahi": {"input_size": 960, "confidence": 0.1, "tiles": {"tile": 0.7, "overlap": 0.25, "scale": 1.5}},
}
LABELS = {
    "default": "input 320, conf 0.45 (default)",
    "640": "input 640, conf 0.1",
    "960": "input 960, conf 0.1 (today's dense)",
    "1280": "input 1280, conf 0.1",
    "tiles": "own tiles 252 px x1.5, overlap 0.25 + frame 960, conf 0.1",
    "far-tiles": "own tiles, far 39 % only x1.5 + frame 640, conf 0.1",
    "sahi": "sahi slices 252 px x1.5, overlap 0.25 + frame 960, GREEDYNMM IOS 0.5, conf 0.1",
}


class SahiCounter:
    """The ``sahi`` package's sliced prediction around our Detector, counted like a CameraCounter."""

    def __init__(self, detector: Detector, settings: dict):
        from sahi.models.base import DetectionModel
        from sahi.prediction import ObjectPrediction

        tiles = settings["tiles"]
        self.settings, self.tiles = settings, tiles

        class OurModel(DetectionModel):
            def load_model(self) -> None:
                self.model = detector

            def perform_inference(self, image: np.ndarray) -> None:
                long_side = max(image.shape[:2])
                size = settings["input_size"] if long_side > self.slice_side else round(tiles["scale"] * long_side)
                self._original_predictions = detector(image, input_size=size, confidence=settings["confidence"])

            def _create_object_prediction_list_from_original_predictions(self, shift_amount_list=[[0, 0]],
                                                                         full_shape_list=None) -> None:
                # sahi passes [[x, y]] for a slice and [x, y] for the whole image
                shift = shift_amount_list or [0, 0]
                shift = shift[0] if isinstance(shift[0], (list, tuple)) else shift
                full = full_shape_list[0] if full_shape_list and isinstance(full_shape_list[0], (list, tuple)) \
                    else full_shape_list
                found = self._original_predictions
                self._object_prediction_list_per_image = [[
                    ObjectPrediction(bbox=[float(v) for v in box], category_id=0, category_name="person",
                                     score=float(score), shift_amount=list(shift), full_shape=full)
                    for box, score in zip(found.xyxy, found.confidence)]]

        self.model = OurModel(confidence_threshold=settings["confidence"], category_mapping={"0": "person"})
        self.model.slice_side = 0

    def detect(self, frame: np.ndarray) -> Detections:
        from sahi.predict import get_sliced_prediction

        side = round(self.tiles["tile"] * min(frame.shape[:2]))
        self.model.slice_side = side
        result = get_sliced_prediction(frame, self.model, slice_height=side, slice_width=side,
                                       overlap_height_ratio=self.tiles["overlap"],
                                       overlap_width_ratio=self.tiles["overlap"], perform_standard_pred=True,
                                       postprocess_type="GREEDYNMM", postprocess_match_metric="IOS",
                                       postprocess_match_threshold=0.5, verbose=0)
        boxes = [p.bbox.to_xyxy() for p in result.object_prediction_list]
        scores = [p.score.value for p in result.object_prediction_list]
        return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32))


@dataclass
class Tally:
    """One setting on one camera: per-image raw counts, truths, head matches and busy time."""

    raw: list[int] = field(default_factory=list)
    truth: list[int] = field(default_factory=list)
    matched: int = 0
    points: int = 0
    boxes: int = 0
    busy_s: float = 0.0


def counter_for(name: str, detector: Detector, camera_id: str):
    settings = SETTINGS[name]
    if name == "sahi":
        return SahiCounter(detector, settings)
    camera = Camera(id=camera_id, source="rtsp://192.0.2.1/s",
                    detector=CameraDetector.model_validate(settings) if settings else None)
    return CameraCounter(detector, camera)


def err(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    e = pred - truth
    return float(np.abs(e).mean()), float(e.mean())


@click.command()
@click.option("--step", default=1, show_default=True, type=click.IntRange(1), help="Every Nth image (quick look).")
@click.option("--footage", default=str(FOOTAGE), show_default=True, type=click.Path(exists=True, file_okay=False))
@click.option("--only", default=",".join(SETTINGS), show_default=True, help="Settings to run, comma-separated.")
@click.option("--pets/--no-pets", default=True, show_default=True, help="PETS09-S2L1 with the default settings.")
def main(step: int, footage: str, only: str, pets: bool) -> None:
    base = Path(footage)
    brt = base / "beijing-brt-train"
    all_counts = load_counts(brt / "counts.csv")
    points = load_points(brt / "points.csv")
    names = [n for n in only.split(",") if n]
    if "sahi" in names:
        try:
            import sahi  # noqa: F401
        except ImportError:
            click.echo("sahi is not importable: its row is left out (pip install --target DIR --no-deps sahi fire "
                       "termcolor pyyaml; PYTHONPATH=DIR)", err=True)
            names.remove("sahi")
    load_before = os.getloadavg()
    detector = Detector(DetectorConfig())
    pets_score = evaluate(CameraCounter(detector), base / "pets09-s2l1" / "vtest.avi",
                          base / "pets09-s2l1" / "gt.txt") if pets else None
    tallies: dict[tuple[str, str], Tally] = {}
    loads: list[float] = []
    for cam in ("cam1", "cam2"):
        images = sorted(n for n in all_counts if n.startswith(cam[-1] + "-"))[::step]  # names start with the camera
        counters = {name: counter_for(name, detector, cam) for name in names}
        first = cv2.imread(str(brt / "frames" / images[0]))
        for counter in counters.values():
            counter.detect(first)  # builds the session for this input shape: a live camera's one-off cost
        for k, image in enumerate(images):
            frame = cv2.imread(str(brt / "frames" / image))
            h, w = frame.shape[:2]
            heads = points.get(image, np.zeros((0, 2), np.float32))
            for name in names[k % len(names):] + names[:k % len(names)]:  # each setting first in turn
                counter, tally = counters[name], tallies.setdefault((cam, name), Tally())
                started = time.perf_counter()
                found = counter.detect(frame)
                n = len(found) if name == "sahi" else sum(counter.count(found, w, h, float(k)).raw.values())
                tally.busy_s += time.perf_counter() - started
                tally.raw.append(n)
                tally.truth.append(all_counts[image])
                tally.matched += match_points(heads, found.xyxy)
                tally.points += len(heads)
                tally.boxes += len(found)
            if k % 50 == 0:
                loads.append(os.getloadavg()[0])
    load_after = os.getloadavg()

    click.echo(f"load average (1, 5, 15 min) at the start {load_before[0]:.1f} {load_before[1]:.1f} "
               f"{load_before[2]:.1f}, at the end {load_after[0]:.1f} {load_after[1]:.1f} {load_after[2]:.1f}; "
               f"1-min load while the cameras ran: {min(loads):.1f}..{max(loads):.1f}; {os.cpu_count()} cores")
    if pets_score:
        click.echo(f"PETS09-S2L1, default settings ({pets_score['model']}, confidence {pets_score['confidence']}): "
                   f"count MAE {pets_score['count_mae']:.3f}, {pets_score['fps']:.1f} frames/s")
    click.echo("| camera | setting | images | images/s | speed vs 960 | head recall | head precision | raw MAE "
               "| raw bias | corrected MAE (5-fold by time) | corrected bias |")
    click.echo("|---|---|---|---|---|---|---|---|---|---|---|")
    for (cam, name), t in tallies.items():
        raw, truth = np.array(t.raw, float), np.array(t.truth, float)
        raw_mae, raw_bias = err(raw, truth)
        cv_mae, cv_bias = err(cross_validated(raw, truth), truth)
        fps = len(raw) / t.busy_s
        base_t = tallies.get((cam, BASELINE))
        ratio = f"{fps / (len(base_t.raw) / base_t.busy_s):.2f}" if base_t else "-"
        click.echo(f"| {cam} | {LABELS[name]} | {len(raw)} | {fps:.1f} | {ratio} | {t.matched / max(t.points, 1):.2f} "
                   f"| {t.matched / max(t.boxes, 1):.2f} | {raw_mae:.2f} | {raw_bias:+.2f} | {cv_mae:.2f} "
                   f"| {cv_bias:+.2f} |")


if __name__ == "__main__":
    main()
