"""Fitting a camera's occlusion correction from hand counts, and scoring it on images it was not fitted on.

Three forms of correction (calibration.site.CountCorrection, applied by edge/correction.py):

- the one factor: people per detection;
- the banded form: people per detection in each score band plus people per unit of
  crowding (edge.correction.zone_features);
- the banded form with candidates: plus people per box the detector proposed before NMS
  above CANDIDATE_SCORE (one more weight), how much of the zone the crowd fills.

Both are fitted through the origin with non-negative weights, by least absolute
deviations: the figure an installer reads and the issue scores is the mean absolute
error, and in a packed view a few snapshots where the detector sees half the crowd
would pull a least-squares fit away from all the others (it minimises squares, so
those few dominate). The fit is a small linear programme (scipy's HiGHS solver).
No constant and no negative weight: no detections means nobody, and a detection never
lowers a count. No regularisation parameter, so nothing is tuned on the images it
is scored on. (``_factor``/``cross_validated`` keep the first version's least-squares
factor, for comparison in the benches.)

``fit_correction`` scores detections alone, the factor and the banded forms by
cross-validation on the installer's hand counts and keeps the best (a correction
must earn its place). Folds are contiguous in name order (snapshot names carry
the capture time), so each fold is scored by a fit on other times of day, never on
itself. ``cross_validated_fit`` repeats that whole choice inside each outer fold
(nested cross-validation): the honest error of the procedure on unseen images.
scikit-learn is only needed here, on the installer's machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

MIN_IMAGES = 10  # fewer hand counts cannot be cross-validated meaningfully
FOLDS = 5
# The lowest detection score the banded form looks at: below it YOLOX's person scores are mostly background.
FLOOR = 0.05
# The lowest score of a box proposed before NMS that the candidates form counts (chosen on camera 1 of the
# Beijing-BRT sample among 0.005-0.03 at 960 px; README "Packed waiting areas").
CANDIDATE_SCORE = 0.01
MAX_PER_DETECTION = 20.0   # the site file's bounds (calibration.site.CountCorrection)
MAX_PER_CROWDING = 1000.0


class FitError(ValueError):
    """Too few or unusable hand counts for a correction."""


@dataclass(frozen=True)
class CorrectionFit:
    """The chosen correction and what cross-validation measured for each form (counts rounded as published).

    ``form`` is "none" (detections alone were best), "factor", "banded" or "candidates" (banded with
    candidates); ``people_per_detection`` is always the fitted factor, ``people_per_band``/
    ``people_per_crowding`` the fitted banded weights (None without features), ``candidates`` the
    banded-with-candidates weights (bands, crowding, candidate; None without candidate features);
    ``cv_mae``/``cv_bias`` are the chosen form's.
    """

    form: str
    images: int
    folds: int
    cv_mae: float
    cv_bias: float
    raw_mae: float
    raw_bias: float
    people_per_detection: float
    factor_cv_mae: float
    factor_cv_bias: float
    score_bands: tuple[float, ...] | None = None
    people_per_band: tuple[float, ...] | None = None
    people_per_crowding: float | None = None
    banded_cv_mae: float | None = None
    banded_cv_bias: float | None = None
    candidates: tuple[float, ...] | None = None
    candidates_cv_mae: float | None = None
    candidates_cv_bias: float | None = None

    def entry(self) -> dict | None:
        """The site file's ``count_correction`` mapping for the chosen form (None: no correction)."""
        if self.form == "none":
            return None
        common = {"images": self.images, "cv_mae": self.cv_mae, "raw_cv_mae": self.raw_mae}
        if self.form == "factor":
            return {"people_per_detection": self.people_per_detection, **common}
        if self.form == "candidates":
            *band, crowding, candidate = self.candidates
            return {"score_bands": list(self.score_bands), "people_per_band": band, "people_per_crowding": crowding,
                    "candidate_score": CANDIDATE_SCORE, "people_per_candidate": candidate, **common}
        return {"score_bands": list(self.score_bands), "people_per_band": list(self.people_per_band),
                "people_per_crowding": self.people_per_crowding, **common}


def _require_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise FitError("fitting needs scikit-learn: pip install 'hallgrid[fit]' (the edge box does not)") from None


def _nnls(x: np.ndarray, truth: np.ndarray) -> np.ndarray:
    _require_sklearn()
    from sklearn.linear_model import LinearRegression

    return LinearRegression(fit_intercept=False, positive=True).fit(x, truth).coef_


def _lad(x: np.ndarray, truth: np.ndarray, upper: list[float] | None = None) -> np.ndarray:
    """Non-negative weights w minimising sum |x w - truth|: min sum(u + v) with x w + u - v = truth, all >= 0.

    ``upper``: each weight's upper bound (the site file's; people per detection by default)."""
    _require_sklearn()  # scipy comes with scikit-learn
    from scipy.optimize import linprog

    x, truth = np.asarray(x, float), np.asarray(truth, float)
    n, k = x.shape
    eye = np.eye(n)
    upper = upper or [MAX_PER_DETECTION] * k
    result = linprog(np.r_[np.zeros(k), np.ones(2 * n)], A_eq=np.hstack([x, eye, -eye]), b_eq=truth,
                     bounds=[(0, u) for u in upper] + [(0, None)] * (2 * n), method="highs")
    if not result.success:
        raise FitError(f"the correction could not be fitted: {result.message}")
    return result.x[:k]


def _factor(raw: np.ndarray, truth: np.ndarray) -> float:
    """People per detection for image totals ``raw`` by least squares (the first version's fit)."""
    return float(_nnls(np.asarray(raw, float)[:, None], truth)[0])


def _lad_factor(raw: np.ndarray, truth: np.ndarray) -> float:
    return float(_lad(np.asarray(raw, float)[:, None], truth)[0])


def _zones(a: np.ndarray, trailing: int) -> np.ndarray:
    """Per-image arrays with a zone axis: (images,) -> (images, 1), (images, F) -> (images, 1, F)."""
    a = np.asarray(a, float)
    return a[:, None] if a.ndim == 1 + trailing else a


def _folds(n: int, folds: int):
    from sklearn.model_selection import KFold

    return KFold(min(folds, n)).split(np.arange(n))


def _cv(n: int, folds: int, fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    _require_sklearn()
    predicted = np.zeros(n)
    for fit_idx, score_idx in _folds(n, folds):
        predicted[score_idx] = fit_predict(fit_idx, score_idx)
    return predicted


def cross_validated(raw: np.ndarray, truth: np.ndarray, folds: int = FOLDS) -> np.ndarray:
    """Each image's count by the one factor fitted on the other folds (contiguous, in the given order).

    ``raw`` is (images,) or (images, zones); each zone is rounded, as the edge publishes it.
    """
    per_zone, truth = _zones(raw, 0), np.asarray(truth, float)
    return _cv(len(truth), folds, lambda fit, score: np.round(
        _factor(per_zone[fit].sum(1), truth[fit]) * per_zone[score]).sum(1))


def cross_validated_factor(raw: np.ndarray, truth: np.ndarray, folds: int = FOLDS) -> np.ndarray:
    """As ``cross_validated``, with the factor fitted by least absolute deviations (fit_correction's)."""
    per_zone, truth = _zones(raw, 0), np.asarray(truth, float)
    return _cv(len(truth), folds, lambda fit, score: np.round(
        _lad_factor(per_zone[fit].sum(1), truth[fit]) * per_zone[score]).sum(1))


def _banded(features: np.ndarray, truth: np.ndarray, candidates: bool = False) -> np.ndarray:
    """Banded weights for image features (images, bands + 1), or (images, bands + 2) with ``candidates``
    (their column last)."""
    bands = features.shape[1] - 1 - candidates
    return _lad(features, truth, [MAX_PER_DETECTION] * bands + [MAX_PER_CROWDING] + [MAX_PER_DETECTION] * candidates)


def cross_validated_banded(features: np.ndarray, truth: np.ndarray, folds: int = FOLDS,
                           candidates: bool = False) -> np.ndarray:
    """Each image's count by banded weights fitted on the other folds; ``features`` (images[, zones], F),
    the candidates' column last with ``candidates``."""
    per_zone, truth = _zones(features, 1), np.asarray(truth, float)
    return _cv(len(truth), folds, lambda fit, score: np.round(
        per_zone[score] @ _banded(per_zone[fit].sum(1), truth[fit], candidates)).sum(1))


def _stats(predicted: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    err = predicted - truth
    return round(float(np.abs(err).mean()), 3), round(float(err.mean()), 3)


def score_bands(threshold: float, floor: float = FLOOR) -> tuple[float, ...]:
    """The bands a camera's correction counts in: below its counting threshold (down to ``floor``) and above.

    Two bands and crowding make three weights, so a few dozen hand counts (about ten per weight) fit
    them; detections alone (0, 1, 0) and the one factor (0, k, 0) are special cases.

    >>> score_bands(0.1), score_bands(0.45), score_bands(0.03)
    ((0.05, 0.1), (0.05, 0.45), (0.03,))
    """
    return (floor, threshold) if threshold > floor else (threshold,)


def fit_correction(raw: np.ndarray | list[int], truth: np.ndarray | list[int], features: np.ndarray | None = None,
                   bands: tuple[float, ...] = (FLOOR, 0.1), folds: int = FOLDS) -> CorrectionFit:
    """Fit each form on all images after measuring its ``folds``-fold cross-validated error; keep the best.

    ``raw``: counted detections per image (images,) or per zone (images, zones); ``features``:
    edge.correction.zone_features per image (images[, zones], len(bands) + 1), with the candidates'
    column (len(bands) + 2) for the candidates form too, or None for the factor alone. A form replaces
    a simpler one only when its error is lower.

    >>> fit = fit_correction([4, 8, 2, 6, 10, 5, 3, 7, 9, 1], [6, 12, 3, 9, 15, 8, 4, 10, 14, 2])
    >>> fit.form, round(fit.people_per_detection, 2), fit.raw_bias
    ('factor', 1.5, -2.8)
    """
    raw_z, truth = _zones(raw, 0), np.asarray(truth, float)
    n = len(truth)
    if n < MIN_IMAGES:
        raise FitError(f"{n} hand-counted images; at least {MIN_IMAGES} are needed (a few dozen "
                       "snapshots across quiet and busy times is right)")
    if not raw_z.any() and (features is None or not np.asarray(features).any()):
        raise FitError("the detector found nobody in any image: check the camera's detector settings "
                       "(input_size, confidence) with `hallgrid check` before fitting a correction")
    folds = min(folds, n)
    raw_mae, raw_bias = _stats(raw_z.sum(1), truth)
    factor_mae, factor_bias = _stats(cross_validated_factor(raw_z, truth, folds), truth)
    factor = round(_lad_factor(raw_z.sum(1), truth), 4) if raw_z.any() else 1.0
    best = ("none", raw_mae, raw_bias)
    if factor > 0 and factor_mae < raw_mae:  # (a factor of 0 would publish nobody)
        best = ("factor", factor_mae, factor_bias)
    banded: dict = {}
    if features is not None:
        feats = _zones(features, 1)
        if feats.shape[-1] not in (len(bands) + 1, len(bands) + 2):
            raise ValueError(f"{feats.shape[-1]} features per zone for {len(bands)} score bands (expected "
                             f"{len(bands) + 1}, or {len(bands) + 2} with candidates)")
        plain = feats[..., :len(bands) + 1]
        banded_mae, banded_bias = _stats(cross_validated_banded(plain, truth, folds), truth)
        w = _banded(plain.sum(1), truth)
        banded = {"score_bands": tuple(bands), "people_per_band": tuple(round(float(v), 4) for v in w[:-1]),
                  "people_per_crowding": round(float(w[-1]), 4), "banded_cv_mae": banded_mae,
                  "banded_cv_bias": banded_bias}
        if banded_mae < best[1]:
            best = ("banded", banded_mae, banded_bias)
        if feats.shape[-1] == len(bands) + 2:
            cand_mae, cand_bias = _stats(cross_validated_banded(feats, truth, folds, candidates=True), truth)
            banded |= {"candidates": tuple(round(float(v), 4) for v in _banded(feats.sum(1), truth, True)),
                       "candidates_cv_mae": cand_mae, "candidates_cv_bias": cand_bias}
            if cand_mae < best[1]:
                best = ("candidates", cand_mae, cand_bias)
    return CorrectionFit(best[0], n, folds, best[1], best[2], raw_mae, raw_bias, factor, factor_mae, factor_bias,
                         **banded)


def predict(fit: CorrectionFit, raw: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
    """Image counts as the edge publishes them (each zone rounded) with the fit's chosen form."""
    raw_z = _zones(raw, 0)
    if fit.form == "none":
        return raw_z.sum(1)
    if fit.form == "factor":
        return np.round(fit.people_per_detection * raw_z).sum(1)
    feats = _zones(features, 1)
    if fit.form == "candidates":
        return np.round(feats @ np.array(fit.candidates)).sum(1)
    w = np.array([*fit.people_per_band, fit.people_per_crowding])
    return np.round(feats[..., :len(w)] @ w).sum(1)


def cross_validated_fit(raw: np.ndarray, truth: np.ndarray, features: np.ndarray | None = None,
                        bands: tuple[float, ...] = (FLOOR, 0.1), folds: int = FOLDS,
                        groups: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
    """Nested cross-validation of ``fit_correction``: each outer fold is counted by the form and weights
    that ``fit_correction`` chooses on the other folds alone (its own inner folds included).

    ``groups`` (e.g. each snapshot's capture date): the outer folds are the groups, each scored by a fit
    on all the others (snapshots of one day are alike, so a day is never both fitted and scored).
    Returns each image's count and the form chosen per outer fold.
    """
    raw_z, truth = _zones(raw, 0), np.asarray(truth, float)
    feats = None if features is None else _zones(features, 1)
    forms: list[str] = []

    def fit_predict(fit_idx: np.ndarray, score_idx: np.ndarray) -> np.ndarray:
        fit = fit_correction(raw_z[fit_idx], truth[fit_idx], None if feats is None else feats[fit_idx], bands,
                             folds)
        forms.append(fit.form)
        return predict(fit, raw_z[score_idx], None if feats is None else feats[score_idx])

    if groups is None:
        return _cv(len(truth), folds, fit_predict), forms
    predicted = np.zeros(len(truth))
    for day in np.unique(groups):
        scored = np.flatnonzero(groups == day)
        predicted[scored] = fit_predict(np.flatnonzero(groups != day), scored)
    return predicted, forms
