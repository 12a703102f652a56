"""Training fits the bundle's calibration: when the last stage of a classifier's training has published
its best model (``models/model.pt``), that model scores the validation split as ``evaluate`` scores it
(:func:`~mammo_monai.inference.evaluate.score_split`), a calibration and its named operating points are
fitted on those scores (:func:`~mammo_monai.evaluation.calibration.fit_calibration`, as ``mammo-monai
calibrate`` fits them) and written as ``models/calibration.json``; the reliability plot (before and after)
goes beside the stage's validation plots, and both, with the figures, onto the stage's MLflow runs.

The switch is ``calibrate_on_validation`` in ``configs/common_train.yaml`` (on by default; a recipe whose
output is no image-level P(malignant) turns it off). A stage that publishes a model always removes the
calibration of the model it replaces: a calibration never outlives the weights it was fitted for.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from ignite.engine import Engine, Events

from mammo_monai.evaluation.calibrated_figures import calibration_metrics
from mammo_monai.evaluation.calibration import fit_calibration
from mammo_monai.evaluation.reliability import plot_reliability
from mammo_monai.inference.evaluate import score_split
from mammo_monai.inference.opened_bundle import CALIBRATION_FILE, open_bundle
from mammo_monai.io.atomic import write_json
from mammo_monai.tracking.calibration_run import log_calibration
from mammo_monai.training.distributed import is_main_process
from mammo_monai.training.records import records

logger = logging.getLogger(__name__)

#: the reliability plot, in the stage's evaluation folder and under ``calibration/`` in MLflow
RELIABILITY_PNG = "reliability.png"


def split_cases(data_table: str | os.PathLike, split: str, image_key: str = "image") -> pd.DataFrame:
    """The rows of ``split`` in the training's data table (checked as training checks them), with the
    image path in the column ``image``."""
    records(data_table, split, 2, image_key=image_key, both_classes=False)
    table = pd.read_csv(data_table, dtype={"patient_id": str})
    table = table[table["split"] == split].reset_index(drop=True)
    return table.assign(image=table[image_key])


def calibrate_trained_bundle(
    bundle_root: str | os.PathLike,
    data_table: str | os.PathLike,
    split: str = "val",
    image_key: str = "image",
    plot_dir: str | os.PathLike | None = None,
    training_id: str | None = None,
    batch_size: int = 4,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the calibration of the bundle's published model on ``split`` of its data table and write it as
    ``models/calibration.json`` (its ``fitted_on``: the split, its images and positives, ``fitted_by``
    training and the ``training_id``; no path) and the reliability plot into ``plot_dir``.

    Returns:
        ``{"calibration", "file", "plot"}``.

    Raises:
        ValueError: a bundle that declares no per-image classification, or a split too small to calibrate
            (fewer than 2 images of a class), in one line.
    """
    bundle = Path(bundle_root).resolve()
    table = split_cases(data_table, split, image_key)
    where = f"{data_table}: split {split!r}"
    with tempfile.TemporaryDirectory() as tmp:
        opened = open_bundle(bundle, tmp)
        if opened.pipeline != "classify":
            raise ValueError(f"{bundle.name}: declares {opened.pipeline}, not a per-image classification to calibrate")
        raw = score_split(opened, table, where, tmp, batch_size=batch_size)
    labels = table["label"].to_numpy(dtype=int)
    fitted_on = {"split": split, "n": int(labels.size), "positives": int(labels.sum()), "fitted_by": "training"}
    if training_id:
        fitted_on["training_id"] = str(training_id)
    calibration = fit_calibration(raw, labels, seed=seed, what=where, fitted_on=fitted_on)
    target = bundle / "models" / CALIBRATION_FILE
    write_json(calibration.to_record(), target)
    plot = Path(plot_dir or bundle / "eval") / RELIABILITY_PNG
    plot.parent.mkdir(parents=True, exist_ok=True)
    title = f"{opened.name}: validation split {split!r} ({calibration.method})"
    plot_reliability({"before": raw, "after": calibration.apply(raw)}, labels, plot, title=title)
    return {"calibration": calibration, "file": target, "plot": plot}


class CalibrateOnValidation:
    """When a stage that published ``models/model.pt`` completes: remove the calibration of the model it
    replaced and, in the training's last stage with ``enabled``, fit a new one on the validation split
    (:func:`calibrate_trained_bundle`) and log it to MLflow. Attach after ``PublishBest`` and before
    ``LogTrainedModel`` (the logged bundle then carries it). Under ``torchrun`` only rank 0 calibrates. A
    validation split too small to calibrate is a warning, never a failed training.

    Args:
        bundle_root, data_table, image_key: the bundle and the table its stage trained on.
        stage_dir: the stage's checkpoint folder (its ``model.pt`` is what was published; ``run.json``).
        output_dir: where the reliability plot goes (the stage's validation plots).
        enabled: ``calibrate_on_validation``.
        last_stage: whether this stage is the training's last.
        training_id: recorded in the calibration's ``fitted_on``.
        split, batch_size: the cases and the scoring batch.
    """

    def __init__(
        self,
        bundle_root: str,
        data_table: str,
        stage_dir: str,
        output_dir: str | None = None,
        enabled: bool = True,
        last_stage: bool = True,
        image_key: str = "image",
        training_id: str | None = None,
        split: str = "val",
        batch_size: int = 4,
    ) -> None:
        self.bundle_root, self.data_table, self.stage_dir = Path(bundle_root), str(data_table), Path(stage_dir)
        self.output_dir, self.enabled, self.last_stage = output_dir, bool(enabled), bool(last_stage)
        self.image_key, self.training_id, self.split, self.batch_size = image_key, training_id, split, int(batch_size)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if not is_main_process() or not (self.stage_dir / "model.pt").is_file():
            return  # PublishBest published nothing: the bundle's model and calibration stay as they were
        stale = self.bundle_root / "models" / CALIBRATION_FILE
        if stale.is_file():
            stale.unlink()
            logger.info("%s: removed the calibration of the model this stage replaced", self.bundle_root.name)
        if not (self.enabled and self.last_stage):
            return
        try:
            found = calibrate_trained_bundle(
                self.bundle_root,
                self.data_table,
                self.split,
                self.image_key,
                self.output_dir,
                self.training_id,
                self.batch_size,
            )
        except ValueError as err:
            logger.warning(
                "%s: no calibration on validation: %s (a recipe whose images are not labelled benign / malignant "
                "sets calibrate_on_validation: false)",
                self.bundle_root.name,
                err,
            )
            return
        cal = found["calibration"]
        log_calibration(self.stage_dir, calibration_metrics(cal), [found["file"], found["plot"]])
        points = "; ".join(
            f"{name} {p.threshold:.3f} (sensitivity {p.sensitivity:.3f}, specificity {p.specificity:.3f})"
            for name, p in cal.operating_points.items()
        )
        logger.info(
            "%s: calibrated on validation (%d images, %d malignant): %s, ECE %.4f -> %.4f; operating points %s",
            self.bundle_root.name,
            cal.n,
            cal.positives,
            cal.method,
            cal.ece_before,
            cal.ece_after,
            points,
        )
