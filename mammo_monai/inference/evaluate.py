"""``mammo-monai evaluate``: per-image and per-exam figures of a whole-image bundle on a manifest split,
with 4-flip test-time augmentation and model averaging. AUC intervals resample patients; operating
thresholds are chosen on the validation split and applied to the evaluated one.

A bundle that declares ``pipeline: segment_then_classify`` is evaluated with its partner classifier
``patch_bundle`` (:class:`~mammo_monai.inference.segment_classify.SegmentThenClassify`: an image is as
suspicious as its most suspicious candidate lesion); no TTA or ensembles there. A bundle that declares
a ``decision_rule`` adds its per-breast figures under ``decision``.

A calibrated bundle (``models/calibration.json``) adds ``calibration``: its ECE and log-loss before and
after calibration on ``split`` and each operating point's sensitivity, specificity and recall rate there
(:func:`~mammo_monai.evaluation.calibrated_figures.calibrated_figures`), the calibrated columns of
``predictions.csv`` and ``reliability.png`` (before and after).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mammo_monai.data.cache_record import check_same_preprocessing, read_record
from mammo_monai.evaluation.per_dataset import per_dataset_metrics
from mammo_monai.evaluation.report import split_metrics
from mammo_monai.inference.opened_bundle import OpenedBundle, open_bundle
from mammo_monai.inference.segment_classify import SegmentThenClassify
from mammo_monai.inference.tta import predict_probabilities
from mammo_monai.io.atomic import write_csv, write_json
from mammo_monai.io.errors import describe_error
from mammo_monai.io.exam_key import table_breast_key
from mammo_monai.tracking.evaluation_run import log_evaluation
from mammo_monai.training.records import records
from mammo_monai.transforms.pipelines import eval_transforms


def _scored(score: Callable[[pd.Series], np.ndarray], table: pd.DataFrame, where: str) -> np.ndarray:
    """``score(table["image"])``; an image that cannot be read or transformed raises one line naming
    ``where`` (the manifest and split) and the file, not MONAI's "applying transform <...>" wrapper."""
    try:
        return score(table["image"])
    except (OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"{where}: {describe_error(err)}") from err


def _image_scorer(
    opened: OpenedBundle, ensemble: Sequence[str | os.PathLike], tta: bool, batch_size: int, workdir: str
) -> tuple[Callable[[pd.Series], np.ndarray], int]:
    """P(malignant) of cached images by the bundle's declared pipeline, and how many networks score them."""
    transform = eval_transforms(from_cache=True)
    if opened.pipeline == "segment_then_classify":
        pipeline = SegmentThenClassify(opened)
        return (lambda paths: np.array([pipeline(transform({"image": p})["image"])["probability"] for p in paths])), 1
    nets = opened.networks(ensemble, workdir)
    return (
        lambda paths: predict_probabilities(
            nets, [{"image": p} for p in paths], transform, opened.probability, tta, batch_size
        )
    ), len(nets)


def evaluate(
    bundle: str | os.PathLike,
    manifest_dir: str | os.PathLike,
    split: str = "test",
    tta: bool = False,
    ensemble: Sequence[str | os.PathLike] = (),
    out_dir: str | os.PathLike | None = None,
    track: bool = True,
    seed: int = 0,
    batch_size: int = 4,
    threshold_split: str | None = "val",
    patch_bundle: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Evaluate a whole-image bundle (folder or exported zip) on ``split`` of a prepared manifest
    (segment-then-classify, decision-rule and calibrated bundles: the module docstring).

    The images of ``threshold_split`` (validation) are predicted too, with the same networks and
    TTA, to choose the Youden and best-pF1 thresholds that are then applied to ``split``; the
    thresholds tuned on ``split`` itself are reported apart, under ``oracle``. No threshold split
    (None, absent from the manifest, or ``split`` itself) leaves only the oracle figures.

    Writes ``metrics.json``, ``predictions.csv`` (and ``predictions_<threshold_split>.csv``) and
    ``roc.png`` into ``out_dir`` and, with ``track``, one MLflow run in the experiment
    ``<bundle>-evaluation``. Returns the metrics.
    """
    from mammo_monai.evaluation.calibrated_figures import calibrated_figures

    images_csv = Path(manifest_dir) / "images.csv"
    table, tuning = _split_tables(images_csv, split, threshold_split)
    with tempfile.TemporaryDirectory() as tmp:
        opened = open_bundle(bundle, tmp, partner=patch_bundle)
        opened.check_request(tta, ensemble)
        check_same_preprocessing(
            opened.preprocessing_record, read_record(manifest_dir), f"{manifest_dir} for {Path(bundle).name}"
        )
        score, models = _image_scorer(opened, ensemble, tta, batch_size, tmp)
        table["probability"] = _scored(score, table, f"{images_csv}: split {split!r}")
        if tuning is not None:
            tuning["probability"] = _scored(score, tuning, f"{images_csv}: split {threshold_split!r}")
    metrics = {
        "split": split,
        "tta": tta,
        "models": models,
        "thresholds_from": threshold_split if tuning is not None else None,
        **split_metrics(table, tuning, str(threshold_split), seed),
        **opened.decision_rule.metrics(table),
        **per_dataset_metrics(table, tuning, str(threshold_split), seed),
    }
    table["exam"] = table_breast_key(table)
    if opened.calibration is not None:  # the bundle's calibration and operating points on this split
        metrics["calibration"] = calibrated_figures(opened.calibration, table["probability"], table["label"])
    out = Path(out_dir or Path(manifest_dir) / "evaluation" / f"{split}{'-tta' if tta else ''}")
    _write_outputs(opened, table, tuning, metrics, split, threshold_split, out)
    if track:
        log_evaluation(opened.name, metrics, out)
    return metrics


def _split_tables(
    images_csv: Path, split: str, threshold_split: str | None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The rows of ``split`` and of ``threshold_split`` (None when it is not given, is ``split`` or has no
    rows), after the checks ``train`` makes (a patient in several splits, no rows, labels other than 0/1,
    image files gone), each naming the table, the split and the rows, before any bundle is opened."""
    records(images_csv, split, 2, both_classes=False)
    images = pd.read_csv(images_csv, dtype={"patient_id": str})
    table = images[images["split"] == split].reset_index(drop=True)
    if not threshold_split or threshold_split == split:
        return table, None
    tuning = images[images["split"] == threshold_split].reset_index(drop=True)
    if tuning.empty:
        return table, None
    records(images_csv, str(threshold_split), 2, both_classes=False)
    return table, tuning


def _write_outputs(
    opened: OpenedBundle, table: pd.DataFrame, tuning: pd.DataFrame | None, metrics: dict[str, Any], split: str,
    threshold_split: str | None, out: Path,
) -> None:  # fmt: skip
    """``predictions.csv`` (with the calibrated columns), ``predictions_<threshold_split>.csv``, ``metrics.json``,
    ``roc.png`` and, for a calibrated bundle, ``reliability.png`` into ``out``."""
    from mammo_monai.evaluation.calibrated_columns import with_calibrated_columns
    from mammo_monai.evaluation.plots import plot_roc

    out.mkdir(parents=True, exist_ok=True)
    columns = ["image_id", "exam", "label", "probability"]
    write_csv(with_calibrated_columns(table[columns], opened.calibration), out / "predictions.csv")
    if tuning is not None:
        write_csv(tuning.assign(exam=table_breast_key(tuning))[columns], out / f"predictions_{threshold_split}.csv")
    write_json(metrics, out / "metrics.json")
    probs2 = np.stack([1 - table["probability"], table["probability"]], 1)
    plot_roc(probs2, table["label"].to_numpy(), ["benign", "malignant"], out / "roc.png")
    if opened.calibration is not None:
        _plot_calibration(opened, table, split, out)


def _plot_calibration(opened: OpenedBundle, table: pd.DataFrame, split: str, out: Path) -> None:
    """``reliability.png``: the split's probabilities before and after the bundle's calibration."""
    from mammo_monai.evaluation.reliability import plot_reliability

    raw = table["probability"].to_numpy(dtype=float)
    curves = {"before": raw, "after": opened.calibration.apply(raw)}
    title = f"{opened.name} {opened.version}: split {split!r} ({opened.calibration.method})"
    plot_reliability(curves, table["label"].to_numpy(dtype=int), out / "reliability.png", title=title)


def score_split(
    opened: OpenedBundle, table: pd.DataFrame, where: str, workdir: str, tta: bool = False, batch_size: int = 4
) -> np.ndarray:
    """P(malignant) of the cached images of ``table`` (a manifest split) as :func:`evaluate` scores them
    (the bundle's declared pipeline, optional flip TTA); an unreadable image raises one line naming ``where``."""
    score, _ = _image_scorer(opened, (), tta, batch_size, workdir)
    return _scored(score, table, where)
