"""What an exported bundle says about its trained model, generated from what training recorded in
``models/model_meta.json`` (:func:`~mammo_monai.training.model_meta.training_record`): the input size,
the stages run, the published checkpoint's validation figures, and the calibration the bundle carries
(``models/calibration.json``). The recipe's own text (its defaults)
stays as written; these facts are added to ``metadata.json`` (``description``, ``eval_metrics``) and to
the model card (``docs/README.md``: a section after its title)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mammo_monai.evaluation.calibration import Calibration

CARD_HEADING = "## This model"


def _stages_text(stages: Sequence[Mapping[str, Any]]) -> str:
    runs = "; ".join(f"stage {s['stage']}: {s['epochs']} epoch{'s' if s['epochs'] != 1 else ''}" for s in stages)
    return f"{len(stages)} stage{'s' if len(stages) != 1 else ''} ({runs})"


def _metric_text(key: Mapping[str, Any]) -> str:
    value = key.get("value")
    shown = f"{value:.4f}" if isinstance(value, (int, float)) else "not recorded"
    return f"best validation {key['name']} {shown} (stage {key['stage']}, epoch {key.get('epoch')})"


def trained_sentence(size: Sequence[int], training: Mapping[str, Any] | None) -> str:
    """One sentence on how the exported weights were trained, e.g. "This model: trained at 576 x 448
    pixels (height x width) in 1 stage (stage 1: 3 epochs); best validation val_auc 0.7507 (stage 1,
    epoch 3)." Without a training record it says what is unknown rather than guess."""
    text = f"This model: trained at {int(size[0])} x {int(size[1])} pixels (height x width)"
    if not training or not training.get("stages"):
        return text + "; its stages and validation figures were not recorded (trained by an older mammo-monai)."
    text += f" in {_stages_text(training['stages'])}"
    key = training.get("key_metric")
    return text + (f"; {_metric_text(key)}." if key else "; no validation ran.")


def eval_metrics(recipe: Mapping[str, Any], training: Mapping[str, Any] | None) -> dict[str, Any]:
    """``eval_metrics`` of the exported ``metadata.json``: the published checkpoint's key metric first,
    then the other validation figures of its epoch; the recipe's (empty) entries when none was recorded."""
    key = (training or {}).get("key_metric")
    if not key:
        return dict(recipe)
    others = {k: v for k, v in (training or {}).get("val_metrics", {}).items() if k != key["name"]}
    return {key["name"]: key.get("value"), **others}


def calibration_rows(calibration: Calibration) -> list[tuple[str, str]]:
    """The model card's rows on the calibration a bundle carries, from what its fit recorded
    (``models/calibration.json``): the method, the cases it was fitted on and by whom, ECE before and after
    on those cases, and each operating point's threshold with its sensitivity and specificity there."""
    fitted = calibration.fitted_on
    by = {"training": "at the end of training"}.get(str(fitted.get("fitted_by")), "by `mammo-monai calibrate`")
    split = f"split `{fitted['split']}`" if fitted.get("split") else "labelled cases"
    chosen = ", ".join(f"{m} {v:.4f}" for m, v in calibration.cv_log_loss.items())
    method = f"{calibration.method} (lowest {calibration.folds}-fold cross-validated log-loss: {chosen})"
    rows = [
        ("calibration", method if chosen else calibration.method),
        ("fitted on", f"{split}: {calibration.n} images, {calibration.positives} malignant, {by}"),
        (
            "ECE",
            f"{calibration.ece_before:.4f} before, {calibration.ece_after:.4f} after calibration "
            f"({calibration.ece_bins} equal-width bins, on those images)",
        ),
    ]
    for name, p in calibration.operating_points.items():
        rows.append(
            (
                f"operating point `{name}`",
                f"calibrated P(malignant) >= {p.threshold:.4f}: sensitivity {p.sensitivity:.3f}, specificity "
                f"{p.specificity:.3f}, recall rate {p.recall_rate:.3f} on those images ({p.target})",
            )
        )
    return rows


def card_section(
    size: Sequence[int],
    training: Mapping[str, Any] | None,
    preprocessing: Mapping | None,
    calibration: Calibration | None = None,
) -> str:
    """The model card's section on the exported weights (markdown), from the same record and, for a
    calibrated bundle, its calibration (:func:`calibration_rows`)."""
    rows = [("input", f"{int(size[0])} x {int(size[1])} pixels (height x width), one channel")]
    if preprocessing:
        shown = ", ".join(f"{k} {preprocessing[k]}" for k in ("keep_aspect", "crop", "intensity") if k in preprocessing)
        rows.append(("preprocessing", shown or "as recorded in models/model_meta.json"))
        if preprocessing.get("dataset"):
            rows.append(("data", f"a `{preprocessing['dataset']}` manifest"))
    if training and training.get("stages"):
        rows.append(("training", _stages_text(training["stages"])))
        key = training.get("key_metric")
        rows.append(("checkpoint", _metric_text(key) if key else "no validation ran"))
        others = {k: v for k, v in training.get("val_metrics", {}).items() if not key or k != key["name"]}
        if others:
            rows.append(("same epoch", ", ".join(f"{k} {v:.4f}" for k, v in others.items())))
    else:
        rows.append(("training", "stages and validation figures not recorded (trained by an older mammo-monai)"))
    rows += (
        calibration_rows(calibration)
        if calibration is not None
        else [("calibration", "none: scores are the network's raw P(malignant) (`mammo-monai calibrate` fits one)")]
    )
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return (
        f"{CARD_HEADING}\n\nWritten by `mammo-monai export` from what training recorded with these weights "
        "(`models/model_meta.json`). The sections below describe the recipe and its defaults; where they "
        f"differ (image size, stages), this section describes the weights in `models/`.\n\n| | |\n|---|---|\n{table}\n"
    )


def write_card(source: Path, target: Path, section: str) -> None:
    """Copy the model card ``source`` to ``target`` with ``section`` after its title (the first ``# `` line)."""
    lines = source.read_text().splitlines(keepends=True) if source.is_file() else ["# Model card\n"]
    at = next((i + 1 for i, line in enumerate(lines) if line.startswith("# ")), 0)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(lines[:at]) + "\n" + section + "\n" + "".join(lines[at:]).lstrip("\n"))
