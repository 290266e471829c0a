"""Fitting a camera's occlusion correction from hand counts, and scoring it on images it was not fitted on.

The model is one number per camera, people per detection (calibration.site.
CountCorrection), fitted by least squares through the origin: no detections means
nobody, and zone counts keep adding up. Cross-validation splits the images in name
order into contiguous folds (snapshot names carry the capture time), so each fold
is scored by a correction fitted on other times of day, never on itself.
scikit-learn is only needed here, on the installer's machine; the edge applies
the stored factor with arithmetic (edge/correction.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_IMAGES = 10  # fewer hand counts cannot be cross-validated meaningfully
FOLDS = 5


class FitError(ValueError):
    """Too few or unusable hand counts for a correction."""


@dataclass(frozen=True)
class CorrectionFit:
    """The fitted factor and what cross-validation measured for it (counts rounded as published)."""

    people_per_detection: float
    images: int
    folds: int
    cv_mae: float
    cv_bias: float
    raw_mae: float
    raw_bias: float


def _require_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise FitError("fitting needs scikit-learn: pip install 'hallgrid[fit]' (the edge box does not)") from None


def _factor(raw: np.ndarray, truth: np.ndarray) -> float:
    _require_sklearn()
    from sklearn.linear_model import LinearRegression

    model = LinearRegression(fit_intercept=False, positive=True).fit(raw[:, None], truth)
    return float(model.coef_[0])


def cross_validated(raw: np.ndarray, truth: np.ndarray, folds: int = FOLDS) -> np.ndarray:
    """Each image's corrected count from a factor fitted on the other folds (contiguous, in the given order)."""
    _require_sklearn()
    from sklearn.model_selection import KFold

    predicted = np.zeros(len(raw))
    for fit_idx, score_idx in KFold(folds).split(raw):
        predicted[score_idx] = np.round(_factor(raw[fit_idx], truth[fit_idx]) * raw[score_idx])
    return predicted


def fit_correction(raw: np.ndarray | list[int], truth: np.ndarray | list[int], folds: int = FOLDS) -> CorrectionFit:
    """Fit people per detection on all images, after measuring its error by ``folds``-fold cross-validation.

    >>> fit = fit_correction([4, 8, 2, 6, 10, 5, 3, 7, 9, 1], [6, 12, 3, 9, 15, 8, 4, 10, 14, 2])
    >>> round(fit.people_per_detection, 2), fit.raw_bias
    (1.51, -2.8)
    """
    raw, truth = np.asarray(raw, float), np.asarray(truth, float)
    if len(raw) < MIN_IMAGES:
        raise FitError(f"{len(raw)} hand-counted images; at least {MIN_IMAGES} are needed (a few dozen "
                       "snapshots across quiet and busy times is right)")
    if not raw.any():
        raise FitError("the detector found nobody in any image: check the camera's detector settings "
                       "(input_size, confidence) with `hallgrid check` before fitting a correction")
    folds = min(folds, len(raw))
    err = cross_validated(raw, truth, folds) - truth
    return CorrectionFit(round(_factor(raw, truth), 4), len(raw), folds, round(float(np.abs(err).mean()), 3),
                         round(float(err.mean()), 3), round(float(np.abs(raw - truth).mean()), 3),
                         round(float((raw - truth).mean()), 3))
