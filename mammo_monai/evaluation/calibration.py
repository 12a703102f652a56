"""Calibration of a binary P(malignant) on labelled cases, so that a score of 0.3 means about 30 % malignant
among the cases of this site, and the named operating points chosen on the calibrated scores
(:mod:`~mammo_monai.evaluation.operating_points`).

Three methods, all fitted on the cases' probabilities ``p``:

- ``temperature``: ``sigmoid(logit(p) / T)``, one parameter (T > 0); it spreads or squeezes the scores
  around 0.5 but cannot move them (no bias);
- ``platt``: ``sigmoid(a * logit(p) + b)``, a logistic regression on the logit (scikit-learn, unpenalised),
  its slope held at ``a >= 0``: where the unconstrained fit's slope is negative (scores that run against the
  labels, e.g. a near-chance model on another site) the constrained maximum of the likelihood is ``a = 0``,
  ``b = logit(prevalence)``, one constant for every case, and the parameters say so (``"clamped": true``);
- ``isotonic``: the non-decreasing step function of scikit-learn's ``IsotonicRegression`` (linear between
  its knots, clipped outside them).

All three are non-decreasing in ``p``: a calibration may tie scores but never reverses their order, so it
never turns a model that ranks worse than chance into one that seems to rank better (nor the reverse).

The method is the one whose log-loss is lowest on cases it was not fitted on: k-fold cross-validation
(stratified, :data:`FOLDS` folds or fewer when a class has fewer cases) pools the out-of-fold calibrated
probabilities of each method. Scored on the cases it was fitted on, isotonic regression always wins (it is
the best non-decreasing fit of those very labels), so an in-sample comparison would always pick it, also on
30 cases where it only memorises them. The chosen method is then refitted on all the cases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

from mammo_monai.evaluation.operating_points import OperatingPoint, check_both_classes, choose_operating_points
from mammo_monai.evaluation.reliability import ECE_BINS, expected_calibration_error

METHODS = ("temperature", "platt", "isotonic")
FOLDS = 5
#: probabilities are clipped to [EPS, 1 - EPS] before a logit or a log-loss
EPS = 1e-6
#: the version of ``models/calibration.json``'s layout
FORMAT = 1


def logit(probs: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probs, dtype=float), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def _loss(labels: np.ndarray, probs: np.ndarray) -> float:
    return float(log_loss(labels, np.clip(probs, EPS, 1 - EPS), labels=[0, 1]))


def fit_method(method: str, probs: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The parameters of ``method`` fitted on ``probs`` and 0/1 ``labels`` (JSON-safe)."""
    p, y = np.asarray(probs, dtype=float), np.asarray(labels, dtype=int)
    if method == "temperature":
        z = logit(p)
        found = minimize_scalar(lambda log_t: _loss(y, expit(z / np.exp(log_t))), bounds=(-5, 5), method="bounded")
        return {"temperature": float(np.exp(found.x))}
    if method == "platt":
        model = LogisticRegression(C=np.inf).fit(logit(p)[:, None], y)
        slope, intercept = float(model.coef_[0, 0]), float(model.intercept_[0])
        if slope > 0:
            return {"slope": slope, "intercept": intercept}
        # the log-likelihood is concave in (a, b): with a <= 0 at its free maximum, a = 0 is the constrained one
        return {"slope": 0.0, "intercept": float(logit(np.array([y.mean()]))[0]), "clamped": True}
    if method == "isotonic":
        model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(p, y)
        return {"x": model.X_thresholds_.tolist(), "y": model.y_thresholds_.tolist()}
    raise ValueError(f"calibration method {method!r}; expected one of {METHODS}")


def apply_method(method: str, params: Mapping[str, Any], probs: np.ndarray) -> np.ndarray:
    """``probs`` calibrated by ``method`` with ``params`` (:func:`fit_method`)."""
    p = np.asarray(probs, dtype=float)
    if method == "temperature":
        return expit(logit(p) / float(params["temperature"]))
    if method == "platt":
        return expit(float(params["slope"]) * logit(p) + float(params["intercept"]))
    if method == "isotonic":  # IsotonicRegression.predict: linear between the knots, clipped outside
        return np.interp(p, np.asarray(params["x"], dtype=float), np.asarray(params["y"], dtype=float))
    raise ValueError(f"calibration method {method!r}; expected one of {METHODS}")


def cross_validated_log_loss(
    method: str, probs: np.ndarray, labels: np.ndarray, folds: int = FOLDS, seed: int = 0
) -> float:
    """The log-loss of ``method``'s out-of-fold calibrated probabilities (stratified ``folds``-fold)."""
    p, y = np.asarray(probs, dtype=float), np.asarray(labels, dtype=int)
    out = np.empty_like(p)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(p, y):
        out[test] = apply_method(method, fit_method(method, p[train], y[train]), p[test])
    return _loss(y, out)


def _check_increasing(method: str, params: Mapping[str, Any]) -> None:
    """Refuse (one ``ValueError`` line) parameters under which the calibration would reverse the scores' order."""
    bad = ""
    if method == "temperature" and not float(params["temperature"]) > 0:
        bad = f"temperature {params['temperature']} (must be > 0)"
    elif method == "platt" and not float(params["slope"]) >= 0:
        bad = f"slope {params['slope']} (must be >= 0)"
    elif method == "isotonic" and any((np.diff(np.asarray(params[k], float)) < 0).any() for k in ("x", "y")):
        bad = "steps that decrease"
    if bad:
        raise ValueError(f"calibration {method}: {bad}; a calibration must never reverse the order of scores")


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration of P(malignant), with the operating points chosen on its calibrated scores.

    Attributes:
        method, params: one of :data:`METHODS` and its fitted parameters.
        n, positives: the cases it was fitted on, and how many were malignant.
        log_loss_before, log_loss_after, ece_before, ece_after: on those cases (ECE: ``ece_bins``
            equal-width bins), before and after calibration.
        cv_log_loss, folds: each method's cross-validated log-loss (the choice) and the folds used.
        operating_points: name -> :class:`~mammo_monai.evaluation.operating_points.OperatingPoint` on the
            calibrated probability.
        fitted_on: what the cases were (e.g. ``{"split": "val", "n": 120, "positives": 40}``), no paths.
    """

    method: str
    params: dict[str, Any]
    n: int = 0
    positives: int = 0
    log_loss_before: float = float("nan")
    log_loss_after: float = float("nan")
    ece_before: float = float("nan")
    ece_after: float = float("nan")
    ece_bins: int = ECE_BINS
    cv_log_loss: dict[str, float] = field(default_factory=dict)
    folds: int = 0
    operating_points: dict[str, OperatingPoint] = field(default_factory=dict)
    fitted_on: dict[str, Any] = field(default_factory=dict)

    def apply(self, probs: np.ndarray | Sequence[float]) -> np.ndarray:
        """Calibrated P(malignant) of raw ``probs``."""
        return apply_method(self.method, self.params, np.asarray(probs, dtype=float))

    def to_record(self) -> dict[str, Any]:
        """A JSON-safe dict (``models/calibration.json``); :meth:`from_record` reads it back."""
        figures = {k: getattr(self, k) for k in ("n", "positives", "log_loss_before", "log_loss_after")}
        figures |= {k: getattr(self, k) for k in ("ece_before", "ece_after", "ece_bins", "cv_log_loss", "folds")}
        return {
            "format": FORMAT,
            "method": self.method,
            "params": dict(self.params),
            "figures": figures,
            "operating_points": {name: op.to_record() for name, op in self.operating_points.items()},
            "fitted_on": dict(self.fitted_on),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Calibration:
        """The calibration of :meth:`to_record`'s dict.

        Raises:
            ValueError: an unknown method or format, or a missing parameter (one line).
        """
        if record.get("format", FORMAT) != FORMAT:
            raise ValueError(f"calibration format {record.get('format')!r}; this version reads {FORMAT}")
        method, params = record.get("method"), dict(record.get("params") or {})
        needed = {"temperature": {"temperature"}, "platt": {"slope", "intercept"}, "isotonic": {"x", "y"}}
        if method not in needed:
            raise ValueError(f"calibration method {method!r}; expected one of {METHODS}")
        if not needed[method] <= set(params):
            raise ValueError(f"calibration {method} needs parameters {sorted(needed[method])}, found {sorted(params)}")
        _check_increasing(method, params)
        figures = dict(record.get("figures") or {})
        points = record.get("operating_points") or {}
        return cls(
            method=str(method),
            params=params,
            **{k: v for k, v in figures.items() if k in cls.__dataclass_fields__},
            operating_points={str(k): OperatingPoint.from_record(v) for k, v in points.items()},
            fitted_on=dict(record.get("fitted_on") or {}),
        )


def fit_calibration(
    probs: np.ndarray,
    labels: np.ndarray,
    methods: Sequence[str] = METHODS,
    folds: int = FOLDS,
    seed: int = 0,
    what: str = "the cases",
    fitted_on: Mapping[str, Any] | None = None,
) -> Calibration:
    """Choose among ``methods`` by cross-validated log-loss, refit the chosen one on all cases, and choose
    the operating points on the calibrated probabilities.

    Raises:
        ValueError: one class, or fewer than 2 cases of a class (no fold could hold both), naming ``what``.
    """
    y = check_both_classes(labels, what)
    p = np.asarray(probs, dtype=float)
    if len(p) != len(y) or not np.isfinite(p).all():
        raise ValueError(f"{what}: {len(p)} finite probabilities expected for {len(y)} labels")
    smaller = int(min(y.sum(), y.size - y.sum()))
    if smaller < 2:
        raise ValueError(f"{what}: {smaller} case(s) of one class; calibration needs at least 2 of each")
    k = min(folds, smaller)
    cv = {m: cross_validated_log_loss(m, p, y, k, seed) for m in methods}
    method = min(cv, key=lambda m: (cv[m], methods.index(m)))  # a tie goes to the simpler method
    params = fit_method(method, p, y)
    calibrated = apply_method(method, params, p)
    found = Calibration(
        method=method,
        params=params,
        n=int(y.size),
        positives=int(y.sum()),
        log_loss_before=_loss(y, p),
        log_loss_after=_loss(y, calibrated),
        ece_before=expected_calibration_error(p, y),
        ece_after=expected_calibration_error(calibrated, y),
        cv_log_loss=cv,
        folds=k,
        fitted_on=dict(fitted_on or {}),
    )
    return replace(found, operating_points=choose_operating_points(calibrated, y, what))
