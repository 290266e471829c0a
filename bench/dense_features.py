"""Which detection features can a camera's count correction learn from? (the design study of the candidates form)

One detector pass per image of one Beijing-BRT camera at its dense setting (960 px), down to a
score of 0.01, with the boxes proposed before NMS. For each set of per-image features below, a
non-negative linear fit without a constant, by least absolute deviations (as ``fit-counts``),
scored leave-one-capture-date-out: each day counted by weights fitted on the other days. Also
the same fit scored on the images it was fitted on (what no fit of those features can beat), and
two forests over all the features (a bound on what a larger model of them could do).

Run on camera 1 (the design set); camera 2 was kept for the held-out check
(bench/dense_correction.py).

    .venv/bin/python bench/dense_features.py [--camera 1]
"""

from __future__ import annotations

from pathlib import Path

import click
import cv2
import numpy as np

from edge.count_fit import _lad
from edge.detector import Detector, DetectorConfig
from edge.hand_counts import load_counts

FOOTAGE = Path(__file__).resolve().parents[1].parent / "shared" / "footage"
THRESHOLDS = (0.02, 0.05, 0.1, 0.2, 0.4)
# name -> feature columns (see features())
SETS: dict[str, list[str]] = {
    "detections above 0.1 (raw)": ["n>0.1"],
    "score histogram, 5 bands": ["n>0.02", "n>0.05", "n>0.1", "n>0.2", "n>0.4"],
    "score histogram + crowding": ["n>0.02", "n>0.05", "n>0.1", "n>0.2", "n>0.4", "crowd>0.05"],
    "sum of scores above 0.02": ["sum>0.02"],
    "sum of scores above 0.02 + detections": ["sum>0.02", "n>0.1"],
    "detections + box coverage of the frame": ["n>0.05", "cov>0.05"],
    "detections + detections squared": ["n>0.05", "nsq>0.05"],
    "box sizes: small / middle / large": ["small>0.05", "mid>0.05", "big>0.05"],
    "sum of sqrt(box area)": ["sqrtarea>0.05"],
    "banded (before): 0.05-0.1, >0.1, crowding": ["b0.05", "n>0.1", "crowd>0.05"],
    "candidates above 0.005": ["cand>0.005"],
    "candidates above 0.01": ["cand>0.01"],
    "candidates above 0.02": ["cand>0.02"],
    "candidates above 0.01 + crowding": ["cand>0.01", "crowd>0.05"],
    "banded + candidates above 0.01 (kept)": ["b0.05", "n>0.1", "crowd>0.05", "cand>0.01"],
}


def features(found, w: int, h: int) -> dict[str, float]:
    s, xyxy = found.confidence, found.xyxy
    area = np.prod(xyxy[:, 2:] - xyxy[:, :2], axis=1) / (w * h)
    tall = (xyxy[:, 3] - xyxy[:, 1]) / h
    f = {f"n>{t}": float((s > t).sum()) for t in THRESHOLDS}
    f["b0.05"] = f["n>0.05"] - f["n>0.1"]
    m = s > 0.05
    f |= {"sum>0.02": float(s[s > 0.02].sum()), "cov>0.05": float(area[m].sum()),
          "crowd>0.05": float(m.sum() * area[m].sum()), "nsq>0.05": float(m.sum()) ** 2 / 100,
          "small>0.05": float((m & (tall < 0.1)).sum()), "mid>0.05": float((m & (tall >= 0.1) & (tall < 0.25)).sum()),
          "big>0.05": float((m & (tall >= 0.25)).sum()), "sqrtarea>0.05": float(np.sqrt(area[m]).sum())}
    return f


@click.command()
@click.option("--camera", default="1", show_default=True, type=click.Choice(["1", "2"]))
@click.option("--footage", default=str(FOOTAGE), show_default=True, type=click.Path(exists=True, file_okay=False))
def main(camera: str, footage: str) -> None:
    brt = Path(footage) / "beijing-brt-train"
    counts = load_counts(brt / "counts.csv")
    names = sorted(n for n in counts if n.startswith(f"{camera}-"))
    detector = Detector(DetectorConfig())
    rows = []
    for name in names:
        frame = cv2.imread(str(brt / "frames" / name))
        h, w = frame.shape[:2]
        blob, box = detector.preprocess(frame, 960)
        output = detector.infer(blob)
        found = detector.postprocess(output, box, 0.01, None, 0.005)
        f = features(found, w, h)
        for t in (0.005, 0.01, 0.02):  # the same output decoded for each candidates threshold
            f[f"cand>{t}"] = float(len(detector.postprocess(output, box, 0.5, None, t).candidates))
        rows.append(f)
    truth = np.array([counts[n] for n in names], float)
    dates = np.array([n[2:10] for n in names])
    table = {k: np.array([r[k] for r in rows]) for k in rows[0]}

    def by_date(x: np.ndarray) -> np.ndarray:
        predicted = np.zeros(len(truth))
        for day in np.unique(dates):
            out = dates == day
            predicted[out] = np.round(x[out] @ _lad(x[~out], truth[~out], [1000.0] * x.shape[1]))
        return predicted

    click.echo(f"camera {camera}: {len(names)} images, {len(np.unique(dates))} capture dates, "
               f"{truth.mean():.1f} people on average")
    click.echo("| features | weights | MAE by date | bias | MAE on the fitted images |")
    click.echo("|---|---|---|---|---|")
    for label, cols in SETS.items():
        x = np.stack([table[c] for c in cols], 1)
        e = by_date(x) - truth
        fitted = np.abs(np.round(x @ _lad(x, truth, [1000.0] * x.shape[1])) - truth).mean()
        click.echo(f"| {label} | {len(cols)} | {np.abs(e).mean():.2f} | {e.mean():+.2f} | {fitted:.2f} |")
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor

    x = np.stack(list(table.values()), 1)
    for model in (RandomForestRegressor(300, min_samples_leaf=3, random_state=0),
                  HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, loss="absolute_error")):
        predicted = np.zeros(len(truth))
        for day in np.unique(dates):
            out = dates == day
            predicted[out] = model.fit(x[~out], truth[~out]).predict(x[out])
        e = np.round(predicted) - truth
        click.echo(f"| {type(model).__name__}, all {x.shape[1]} features | - | {np.abs(e).mean():.2f} "
                   f"| {e.mean():+.2f} | - |")


if __name__ == "__main__":
    main()
