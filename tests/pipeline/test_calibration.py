"""Calibration of P(malignant), its ECE, and the named operating points, on hand-made cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from mammo_monai.evaluation.calibration import (
    METHODS,
    Calibration,
    cross_validated_log_loss,
    fit_calibration,
    fit_method,
    logit,
)
from mammo_monai.evaluation.operating_points import choose_operating_points
from mammo_monai.evaluation.reliability import expected_calibration_error


def _cases(n: int, seed: int, truth) -> tuple[np.ndarray, np.ndarray]:
    """``n`` raw probabilities, uniform in (0.01, 0.99), and labels drawn with P(malignant) = truth(p)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, n)
    return p, (rng.random(n) < truth(p)).astype(int)


def test_ece_of_a_hand_computed_case():
    # bins of 0.1: [0.05] -> |0.05 - 0| ; [0.15, 0.12] -> |0.135 - 0.5| x 2 ; [0.95] -> |0.95 - 1|
    probs, labels = np.array([0.05, 0.15, 0.12, 0.95]), np.array([0, 1, 0, 1])
    assert expected_calibration_error(probs, labels) == pytest.approx((0.05 + 2 * 0.365 + 0.05) / 4)
    assert expected_calibration_error(np.array([1.0, 0.0]), np.array([1, 0])) == 0.0  # 1.0 lies in the last bin


@pytest.mark.parametrize("method", METHODS)
def test_a_calibration_round_trips_through_json(method):
    p, y = _cases(200, 0, lambda q: expit(0.5 * logit(q) - 1))
    fitted = fit_calibration(p, y, methods=(method,), fitted_on={"split": "val", "n": 200, "positives": int(y.sum())})
    back = Calibration.from_record(json.loads(json.dumps(fitted.to_record())))
    assert back == fitted and back.method == method
    np.testing.assert_array_equal(back.apply(p), fitted.apply(p))
    assert set(back.operating_points) == {"high_sensitivity", "balanced", "recall_rate_10pct"}


def test_a_record_with_a_missing_parameter_is_one_line():
    with pytest.raises(ValueError, match=r"calibration platt needs parameters \['intercept', 'slope'\]"):
        Calibration.from_record({"method": "platt", "params": {"slope": 1.0}})


def test_the_method_is_chosen_by_cross_validated_log_loss_not_in_sample():
    # labels drawn from a Platt model: the logistic on the logit is right, isotonic only fits the noise
    p, y = _cases(300, 1, lambda q: expit(0.4 * logit(q) + 0.5))
    fitted = fit_calibration(p, y)
    in_sample = {m: fit_calibration(p, y, methods=(m,)).log_loss_after for m in METHODS}
    assert min(in_sample, key=in_sample.get) == "isotonic"  # why it is not chosen on the cases it is fitted on
    assert fitted.method == "platt" == min(fitted.cv_log_loss, key=fitted.cv_log_loss.get)
    assert fitted.cv_log_loss["isotonic"] == pytest.approx(cross_validated_log_loss("isotonic", p, y, 5, 0))


def test_a_step_in_the_truth_chooses_isotonic():
    # P(malignant) jumps from 0.1 to 0.9 at 0.5: no sigmoid of the logit has two flat shelves
    p, y = _cases(2000, 2, lambda q: np.where(q < 0.5, 0.1, 0.9))
    fitted = fit_calibration(p, y)
    assert fitted.method == "isotonic"
    assert fitted.ece_after < fitted.ece_before and fitted.log_loss_after < fitted.log_loss_before


@pytest.mark.parametrize("method", ["temperature", "platt"])
def test_monotone_methods_leave_the_auc_unchanged(method):
    p, y = _cases(300, 3, lambda q: q)
    calibrated = fit_calibration(p, y, methods=(method,)).apply(p)
    assert roc_auc_score(y, calibrated) == roc_auc_score(y, p)


def test_temperature_fits_a_known_temperature():
    p, y = _cases(20000, 4, lambda q: expit(logit(q) / 3.0))
    assert fit_method("temperature", p, y)["temperature"] == pytest.approx(3.0, rel=0.1)


@pytest.mark.parametrize("labels", [[1, 1, 1, 1], [0, 0, 0, 1]])
def test_one_class_or_a_single_case_of_a_class_is_refused_in_one_line(labels):
    with pytest.raises(ValueError) as err:
        fit_calibration(np.linspace(0.1, 0.9, 4), np.array(labels), what="sites.csv: split 'val'")
    assert str(err.value).startswith("sites.csv: split 'val': ") and "\n" not in str(err.value)


# ten hand-made cases: positives at 0.9, 0.8, 0.6, 0.3; negatives at 0.7, 0.5, 0.4, 0.2, 0.1, 0.05
PROBS = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
LABELS = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0, 0])


def test_operating_points_on_hand_made_cases():
    found = choose_operating_points(PROBS, LABELS)
    # >= 0.90 sensitivity needs all 4 positives: 0.3, recalling 7 cases of which 3 benign (specificity 3/6)
    hs = found["high_sensitivity"]
    assert (hs.threshold, hs.sensitivity, hs.specificity, hs.recall_rate) == (0.3, 1.0, 0.5, 0.7)
    # Youden: at 0.6 sensitivity 3/4, specificity 5/6 (J 0.583; at 0.8 and 0.3 J is 0.5)
    b = found["balanced"]
    assert (b.threshold, b.sensitivity, b.recall_rate) == (0.6, 0.75, 0.4)
    assert b.specificity == pytest.approx(5 / 6)
    # 10 % of ten cases: the top one
    r = found["recall_rate_10pct"]
    assert (r.threshold, r.sensitivity, r.specificity, r.recall_rate) == (0.9, 0.25, 1.0, 0.1)
    np.testing.assert_array_equal(hs.decide(PROBS), (PROBS >= 0.3).astype(int))


def test_tied_scores_recall_together():
    # four cases share 0.5: recalling 10 % of 10 is impossible without all four, so the threshold is 0.5
    probs = np.array([0.5, 0.5, 0.5, 0.5, 0.4, 0.3, 0.2, 0.2, 0.1, 0.1])
    labels = np.array([1, 0, 1, 0, 1, 0, 0, 0, 0, 0])
    r = choose_operating_points(probs, labels)["recall_rate_10pct"]
    assert (r.threshold, r.recall_rate) == (0.5, 0.4)


def test_operating_points_refuse_one_class_in_one_line():
    with pytest.raises(ValueError, match=r"^val cases: all 3 cases have label 0; both benign and malignant"):
        choose_operating_points(np.array([0.1, 0.2, 0.3]), np.array([0, 0, 0]), "val cases")


def test_the_stored_isotonic_steps_predict_as_scikit_learn_does():
    from sklearn.isotonic import IsotonicRegression

    p, y = _cases(300, 5, lambda q: q**2)
    fitted = fit_calibration(p, y, methods=("isotonic",))
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    grid = np.linspace(0.0, 1.0, 501)  # beyond the fitted range too: clipped
    np.testing.assert_allclose(fitted.apply(grid), model.predict(grid), atol=1e-12)


def _anti_correlated() -> tuple[np.ndarray, np.ndarray]:
    """Scores that run against the labels (AUC about 0.3): a near-chance model on another site."""
    return _cases(300, 6, lambda q: 1 - q**0.5)


def test_the_unconstrained_platt_slope_of_anti_correlated_scores_is_negative():
    # why the constraint is needed: scikit-learn's fit alone would reverse the order
    from sklearn.linear_model import LogisticRegression

    p, y = _anti_correlated()
    assert roc_auc_score(y, p) < 0.4
    assert LogisticRegression(C=np.inf).fit(logit(p)[:, None], y).coef_[0, 0] < 0


@pytest.mark.parametrize("method", [*METHODS, None])
def test_a_calibration_never_reverses_the_order_of_scores(method):
    p, y = _anti_correlated()
    fitted = fit_calibration(p, y, methods=METHODS if method is None else (method,))
    grid = np.linspace(0.0, 1.0, 1001)
    assert (np.diff(fitted.apply(grid)) >= 0).all()
    # ties may pull the AUC towards 0.5, but a reversal would lift it to about 1 - 0.3
    assert roc_auc_score(y, fitted.apply(p)) <= 0.5
    if fitted.method == "platt":
        assert fitted.params["slope"] >= 0


def test_a_negative_platt_slope_is_held_at_zero_and_says_so():
    p, y = _anti_correlated()
    params = fit_method("platt", p, y)
    assert params["slope"] == 0.0 and params["clamped"] is True
    assert expit(params["intercept"]) == pytest.approx(y.mean())


@pytest.mark.parametrize(
    ("method", "params", "bad"),
    [
        ("platt", {"slope": -2.15, "intercept": 0.3}, "slope -2.15"),
        ("temperature", {"temperature": -1.0}, "temperature -1.0"),
        ("isotonic", {"x": [0.1, 0.5, 0.9], "y": [0.8, 0.4, 0.1]}, "steps that decrease"),
    ],
)
def test_a_record_that_would_reverse_the_order_is_refused_in_one_line(method, params, bad):
    with pytest.raises(ValueError, match=rf"^calibration {method}: {bad}.*never reverse the order of scores$"):
        Calibration.from_record({"method": method, "params": params})
