"""``mammo-monai calibrate`` writes a new bundle version and never touches the original; ``predict`` writes a
calibrated bundle's columns; and on a site with another intensity profile calibration restores the decision
rates of the operating points while the AUC stays what it was."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from mammo_monai.cli import main
from mammo_monai.evaluation.calibration import logit
from mammo_monai.evaluation.operating_points import OperatingPoint
from mammo_monai.inference.calibrate import next_version
from mammo_monai.inference.evaluate import score_split
from mammo_monai.inference.opened_bundle import open_bundle
from mammo_monai.inference.predict import COLUMNS, predict
from tests.pipeline.calibration_sites import site_manifest, tiny_bundle


def _digest(path: Path) -> dict[str, str]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("calibrate")
    manifest = site_manifest(root / "site", {"val": 120, "test": 12, "benign": 6})
    table = pd.read_csv(manifest / "images.csv")
    table.loc[table["split"] == "benign", "label"] = 0  # a split of one class
    table.to_csv(manifest / "images.csv", index=False)
    return {"bundle": tiny_bundle(root / "tiny"), "manifest": manifest}


def _calibrate(bundle, manifest, out, capsys, *more) -> tuple[int, str, str]:
    rc = main(["calibrate", "--bundle", str(bundle), "--manifest", str(manifest), "--out", str(out), *more])
    got = capsys.readouterr()
    return rc, got.out, got.err


def test_calibrate_writes_a_new_version_and_leaves_the_original_untouched(site, tmp_path, capsys):
    before = _digest(site["bundle"])
    rc, out, _ = _calibrate(site["bundle"], site["manifest"], tmp_path / "tiny-cal", capsys)
    assert rc == 0 and _digest(site["bundle"]) == before
    opened = open_bundle(tmp_path / "tiny-cal", tmp_path / "w")
    assert opened.version == "0.1.1" and opened.metadata["calibrated_from"]["version"] == "0.1.0"
    assert set(opened.metadata["changelog"]) == {"0.1.0", "0.1.1"}
    cal = opened.calibration
    assert cal.fitted_on == {"split": "val", "n": 120, "positives": cal.positives} and cal.positives > 2
    assert set(cal.operating_points) == {"high_sensitivity", "balanced", "recall_rate_10pct"}
    record = (tmp_path / "tiny-cal" / "models" / "calibration.json").read_text()
    assert str(tmp_path.parent) not in record and "site" not in record  # no paths
    assert (tmp_path / "tiny-cal-reliability.png").stat().st_size > 0
    assert f"method {cal.method}" in out and f"ECE ({cal.ece_bins} equal-width bins)" in out
    assert f"balanced: threshold {cal.operating_points['balanced'].threshold:.4f}" in out


def test_a_zip_gives_a_zip_and_stays_as_it_was(site, tmp_path, capsys):
    original = tmp_path / "tiny-0.1.0.zip"
    with zipfile.ZipFile(original, "w") as zf:
        for f in sorted(site["bundle"].rglob("*")):
            if f.is_file():
                zf.write(f, Path("tiny") / f.relative_to(site["bundle"]))
    before = _digest(original)
    rc, _, _ = _calibrate(original, site["manifest"], tmp_path / "tiny-0.1.1.zip", capsys)
    assert rc == 0 and _digest(original) == before
    opened = open_bundle(tmp_path / "tiny-0.1.1.zip", tmp_path / "w")
    assert opened.version == "0.1.1" and opened.calibration is not None
    with zipfile.ZipFile(tmp_path / "tiny-0.1.1.zip") as zf:
        assert sorted(zf.namelist()) == sorted([*zipfile.ZipFile(original).namelist(), "tiny/models/calibration.json"])


def test_an_exported_calibrated_bundle_stays_calibrated(site, tmp_path, capsys):
    from mammo_monai.inference.export import export_bundle

    assert _calibrate(site["bundle"], site["manifest"], tmp_path / "tiny-cal", capsys)[0] == 0
    exported = export_bundle(tmp_path / "tiny-cal", tmp_path / "dist")
    assert exported.name == "tiny-0.1.1.zip"
    fitted = open_bundle(tmp_path / "tiny-cal", tmp_path / "w1").calibration
    assert open_bundle(exported, tmp_path / "w2").calibration == fitted


@pytest.mark.parametrize(
    "case,problem",
    [
        ("no manifest", "images.csv: data table not found"),
        ("no split", "no rows in split 'tuning'"),
        ("one class", "split 'benign': all 6 cases have label 0; both benign and malignant cases are needed"),
        ("out exists", "already exists; calibrate writes a new bundle"),
    ],
)
def test_what_cannot_be_calibrated_is_one_line_and_writes_nothing(site, tmp_path, capsys, case, problem):
    manifest, split, out = site["manifest"], "val", tmp_path / "new"
    if case == "no manifest":
        manifest = tmp_path / "nowhere"
    if case == "no split":
        split = "tuning"
    if case == "one class":
        split = "benign"
    if case == "out exists":
        out = site["bundle"]
    before = _digest(site["bundle"])
    rc, _, err = _calibrate(site["bundle"], manifest, out, capsys, "--split", split)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and problem in lines[0], lines
    assert not (tmp_path / "new").exists() and _digest(site["bundle"]) == before


def test_versions_count_on():
    assert [next_version(v) for v in ("0.1.0", "1.2-rc3", "7", "dev", "")] == [
        "0.1.1",
        "1.2-rc4",
        "8",
        "dev.1",
        "0.0.1",
    ]


def test_predict_writes_the_calibrated_probability_and_the_decisions(tmp_path):
    images = []
    for i, name in enumerate(("0_L-CC", "0_L-MLO", "0_R-CC")):
        pixels = np.zeros((80, 60), np.uint8)
        pixels[10:70, : 24 + 12 * i] = 70 + 50 * i
        images.append(tmp_path / f"{name}.png")
        Image.fromarray(pixels).save(images[-1])
    plain = tiny_bundle(tmp_path / "plain")
    table = predict(plain, [str(p) for p in images], tmp_path / "plain.csv", progress=False, backend="eager")
    assert list(table.columns) == [c for c in COLUMNS if c != "decision"]  # as before calibrations existed

    calibrated = tiny_bundle(tmp_path / "cal")
    points = {name: OperatingPoint(name, t, 0.9, 0.5, 0.3).to_record() for name, t in (("low", 0.2), ("high", 0.6))}
    record = {"method": "platt", "params": {"slope": 0.5, "intercept": 1.0}, "operating_points": points}
    (calibrated / "models" / "calibration.json").write_text(json.dumps(record))
    table = predict(calibrated, [str(p) for p in images], tmp_path / "cal.csv", progress=False, backend="eager")
    assert list(pd.read_csv(tmp_path / "cal.csv").columns) == list(table.columns)
    at = list(table.columns).index("probability")
    assert list(table.columns)[at + 1 : at + 4] == ["probability_calibrated", "decision@low", "decision@high"]
    expected = expit(0.5 * logit(table["probability"].to_numpy()) + 1.0)
    np.testing.assert_allclose(table["probability_calibrated"], expected, rtol=1e-9)
    for name, threshold in (("low", 0.2), ("high", 0.6)):
        assert (table[f"decision@{name}"] == (table["probability_calibrated"] >= threshold).astype(int)).all()
    left = table[(table["level"] == "breast") & (table["laterality"] == "L")].iloc[0]
    views = table[(table["level"] == "image") & (table["laterality"] == "L")]
    assert left["probability"] == pytest.approx(views["probability"].mean())  # raw views aggregated first
    assert left["probability_calibrated"] == pytest.approx(expit(0.5 * logit(np.array(left["probability"])) + 1.0))
    assert table["decision@low"].nunique() == 2 or table["decision@high"].nunique() == 2  # not all one answer
    breasts = pd.read_csv(tmp_path / "cal_breasts.csv").set_index("laterality")  # the breast table agrees
    for column in ("probability", "probability_calibrated", "decision@low", "decision@high"):
        assert breasts.loc["L", column] == pytest.approx(left[column]), column


def _rates(calibration, raw: np.ndarray) -> dict[str, float]:
    calibrated = calibration.apply(raw)
    return {name: float(op.decide(calibrated).mean()) for name, op in calibration.operating_points.items()}


def test_another_vendor_calibration_restores_the_decision_rates_and_keeps_the_auc(tmp_path, capsys):
    bundle = tiny_bundle(tmp_path / "tiny")
    sites = {
        "A": site_manifest(tmp_path / "A", {"val": 300, "test": 300}, seed=1),
        "B": site_manifest(tmp_path / "B", {"val": 300, "test": 300}, scale=0.7, gamma=1.2, seed=2),
    }
    assert _calibrate(bundle, sites["A"], tmp_path / "at-A", capsys)[0] == 0
    assert _calibrate(tmp_path / "at-A", sites["B"], tmp_path / "at-B", capsys)[0] == 0
    opened = {k: open_bundle(tmp_path / f"at-{k}", tmp_path / f"w{k}") for k in "AB"}
    raw, labels = {}, {}
    for k, manifest in sites.items():
        test = pd.read_csv(manifest / "images.csv").query("split == 'test'").reset_index(drop=True)
        raw[k], labels[k] = score_split(opened["A"], test, k, str(tmp_path)), test["label"].to_numpy()
    site_a = _rates(opened["A"].calibration, raw["A"])
    before = _rates(opened["A"].calibration, raw["B"])  # site A's calibration and thresholds on site B
    after = _rates(opened["B"].calibration, raw["B"])
    for name, rate in site_a.items():
        assert before[name] < 0.5 * rate, (name, before, site_a)  # "it always says benign"
        assert abs(after[name] - rate) < 0.1, (name, after, site_a)
    assert abs(after["recall_rate_10pct"] - 0.10) < 0.05
    cal_b = opened["B"].calibration
    auc_raw, auc_cal = roc_auc_score(labels["B"], raw["B"]), roc_auc_score(labels["B"], cal_b.apply(raw["B"]))
    if cal_b.method == "isotonic":  # ties made by its flat steps may move it
        assert abs(auc_cal - auc_raw) < 0.02
    else:
        assert auc_cal == auc_raw
