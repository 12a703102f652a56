"""The README's main job: synthetic CBIS-DDSM-like data through every step of the pipeline."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mammo_monai.bundle_names import bundles_source  # scripts import it from here too
from mammo_monai.data.manifest import read_manifest
from mammo_monai.data.patches import make_patches
from mammo_monai.data.prepare import prepare
from mammo_monai.inference.evaluate import evaluate
from mammo_monai.inference.export import export_bundle
from mammo_monai.io.atomic import write_json
from mammo_monai.synthetic import SynthOptions, make_cbis_tree
from mammo_monai.synthetic.ceiling import attainable_auc
from mammo_monai.tracking.compare import compare_runs
from mammo_monai.tracking.runs import default_tracking_uri
from mammo_monai.tracking.ui_links import ui_links
from mammo_monai.training.workflow import train_bundle

BUNDLE_NAMES = ("patch_classifier", "whole_image_classifier")
TOTAL_STEPS = 7


def _rounded(value: float | None) -> float | None:
    """A stage's best metric for the summary; None when no validation gave a number."""
    return None if value is None else round(value, 4)


def _step(n: int, total: int, text: str) -> None:
    print(f"\n[{n}/{total}] {text}", flush=True)


@dataclass(frozen=True)
class DemoPlan:
    """What :func:`run_demo` runs (its arguments, the work folder resolved) and where each step writes."""

    work: Path
    patients: int
    test_patients: int
    seed: int
    workers: int | None
    size: tuple[int, int]
    patch_size: int
    patch_pretraining: bool
    overrides: dict[str, dict[str, Any]]
    lesion_scale: float
    val_fraction: float
    per_roi: int
    background: int
    intensity: str

    @property
    def bundles(self) -> tuple[Path, Path]:
        """The demo's copies of the patch and the whole-image bundle."""
        patch, whole = (self.work / "bundles" / name for name in BUNDLE_NAMES)
        return patch, whole


def run_demo(
    workdir: str | os.PathLike = "demo",
    patients: int = 300,
    seed: int = 0,
    workers: int | None = None,
    size: tuple[int, int] = (576, 448),
    patch_size: int = 112,
    patch_pretraining: bool = True,
    overrides: dict[str, dict[str, Any]] | None = None,
    test_patients: int = 250,
    lesion_scale: float = 2.0,
    val_fraction: float = 0.2,
    per_roi: int = 5,
    background: int = 5,
    intensity: str = "bit_depth",
) -> dict[str, Any]:
    """Synthesise, prepare, cut S10-style patches, train every stage of both bundles (demo overlays),
    evaluate the whole-image model on the test split with and without TTA next to the best AUC any model
    can reach there (:mod:`mammo_monai.synthetic.ceiling`), export both bundles, print the MLflow
    comparison. Writes ``<workdir>/summary.json``.

    Args:
        patients: patients for training and validation (``val_fraction`` of them validate).
        test_patients: extra patients held out for the test split only: the test AUC's 95 % interval
            is about +-0.045 with the default 250 (about 590 images), not +-0.15 as with a 15 % split of 150.
        size: film, cache and whole-image network size. The demo halves Shen's 1152 x 896 (and the
            224 px patches to 112) so that it fits a 2-core CPU in minutes.
        lesion_scale: lesions drawn this many times their size at ``size``; 2 at 576 x 448 gives them the
            pixel sizes they have at Shen's 1152 x 896 (calcification specks 1-4 px), which at half size
            would fall below a pixel (a patch classifier then tells benign from malignant calcifications
            at chance: measured AUC 0.50; 0.86-0.92 with the scale).
        per_roi, background: patches drawn around each lesion and of background per film. Shen's S10
            draws 10 of each; the demo draws 5 from twice as many patients: as many patches to train
            on, of twice as many distinct lesions.
        patch_pretraining: False trains the whole-image network from scratch (all layers): the
            ablation of the two-step design.
        overrides: extra config overrides per bundle name.
    """
    t0 = time.time()
    plan = DemoPlan(
        Path(workdir).resolve(),
        patients,
        test_patients,
        seed,
        workers,
        size,
        patch_size,
        patch_pretraining,
        overrides or {},
        lesion_scale,
        val_fraction,
        per_roi,
        background,
        intensity,
    )
    plan.work.mkdir(parents=True, exist_ok=True)
    prep = _synthesise_and_prepare(plan)  # steps 1-2
    _copy_bundles(plan)
    patches, patch_results, whole_over = _train_patch_classifier(plan)  # steps 3-4
    whole_results = _train_whole_image_classifier(plan, whole_over)  # step 5
    plain, tta, ceiling = _evaluate_on_test(plan)  # step 6
    exported = _export(plan)  # step 7
    _show_runs(len(patch_results) + len(whole_results))
    results = {"prep": prep, "patches": patches, "plain": plain, "tta": tta, "ceiling": ceiling}
    summary = _summary(plan, time.time() - t0, results, patch_results, whole_results, exported)
    _write_summary(summary, plan.work / "summary.json")
    return summary


def _synthesise_and_prepare(plan: DemoPlan) -> dict[str, Any]:
    """Steps 1-2: the synthetic CBIS-DDSM-like tree, then its manifest and cache; returns prepare's summary."""
    work, size, everyone = plan.work, plan.size, plan.patients + plan.test_patients
    _step(
        1,
        TOTAL_STEPS,
        f"synthesising {everyone} CBIS-DDSM-like patients ({plan.patients} to train and validate, "
        f"{plan.test_patients} held out for testing; {size[0]} x {size[1]} DICOMs) into {work / 'cbis-ddsm'}",
    )
    make_cbis_tree(
        work / "cbis-ddsm",
        patients=everyone,
        seed=plan.seed,
        size=size,
        lesion_scale=plan.lesion_scale,
        workers=plan.workers,
        progress=True,
    )
    _step(2, TOTAL_STEPS, f"preparing the manifest and the {size[0]} x {size[1]} cache in {work / 'manifest'}")
    return prepare(
        "cbis-ddsm",
        work / "cbis-ddsm",
        work / "manifest",
        size=size,
        split_seed=plan.seed,
        workers=plan.workers,
        rebuild=True,  # the demo owns its work folder: a cache from another run is remade
        test_fraction=plan.test_patients / everyone,
        val_fraction=plan.val_fraction,
        transform_options={"intensity": plan.intensity},
    )


def _copy_bundles(plan: DemoPlan) -> None:
    """Fresh copies of the shipped bundles in the work folder (a copy from an earlier run is replaced)."""
    for name, target in zip(BUNDLE_NAMES, plan.bundles):
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(bundles_source() / name, target)


def _train_patch_classifier(plan: DemoPlan) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """Steps 3-4: cut the patches and train the patch classifier; returns the patch summary, the stages'
    results and the whole-image bundle's overrides (start from it, or from random weights without it)."""
    work, patch_bundle = plan.work, plan.bundles[0]
    if not plan.patch_pretraining:
        print("\n[3-4/7] no patch pre-training: the whole-image network starts from random weights", flush=True)
        return {"patches": 0}, [], {"patch_checkpoint": None, "stages#1#trainable": "all"}
    _step(
        3,
        TOTAL_STEPS,
        f"cutting S10-style patches ({plan.patch_size} px, {plan.per_roi} per lesion, {plan.background} of "
        f"background per film) into {work / 'patches'}",
    )
    patches = make_patches(
        work / "manifest",
        work / "patches",
        scheme="s10",
        size=plan.patch_size,
        per_roi=plan.per_roi,
        background=plan.background,
        seed=plan.seed,
        workers=plan.workers,
    )
    _step(4, TOTAL_STEPS, "training the patch classifier from scratch: one stage, every layer (demo overlay)")
    results = train_bundle(
        patch_bundle,
        ["demo.yaml"],
        {
            "dataset_dir": str(work / "patches"),
            "image_size": [plan.patch_size, plan.patch_size],
            **plan.overrides.get("patch_classifier", {}),
        },
    )
    return patches, results, {"patch_checkpoint": str(patch_bundle / "models" / "model.pt")}


def _train_whole_image_classifier(plan: DemoPlan, whole_over: dict[str, Any]) -> list[dict[str, Any]]:
    """Step 5: every stage of the whole-image bundle; returns the stages' results."""
    _step(5, TOTAL_STEPS, "training the whole-image classifier: its new top on the patch network (demo overlay)")
    return train_bundle(
        plan.bundles[1],
        ["demo.yaml"],
        {
            "dataset_dir": str(plan.work / "manifest"),
            "image_size": list(plan.size),
            **whole_over,
            **plan.overrides.get("whole_image_classifier", {}),
        },
    )


def _evaluate_on_test(plan: DemoPlan) -> tuple[dict[str, Any], dict[str, Any], float]:
    """Step 6: the whole-image model's test metrics without and with TTA, and the attainable test AUC."""
    work, whole_bundle = plan.work, plan.bundles[1]
    _step(6, TOTAL_STEPS, "evaluating the whole-image model on the held-out test split, without and with 4-flip TTA")
    plain = evaluate(whole_bundle, work / "manifest", "test", tta=False, out_dir=work / "evaluation" / "test")
    tta = evaluate(whole_bundle, work / "manifest", "test", tta=True, out_dir=work / "evaluation" / "test-tta")
    images, _ = read_manifest(work / "manifest", check_files=False)  # ids, labels and splits only
    ceiling = attainable_auc(work / "cbis-ddsm", images[images["split"] == "test"])
    discordant = 100 * (1 - SynthOptions().concordance)
    print(
        f"test AUC {plain['image']['auc']:.3f} (TTA {tta['image']['auc']:.3f}); a perfect reader of the lesions' "
        f"drawn looks would reach {ceiling:.3f} on these images ({discordant:.0f} % of the lesions are drawn with "
        "the other pathology's look)",
        flush=True,
    )
    print(_calibration_lines(calibration_summary(whole_bundle, plain)), flush=True)
    return plain, tta, ceiling


def calibration_summary(bundle: Path, test: dict[str, Any]) -> dict[str, Any] | None:
    """What training's calibration (``models/calibration.json``) did: its ECE before and after on the
    validation images it was fitted on and on the test split (``evaluate``'s ``calibration``), and each
    operating point's threshold with its validation and test sensitivity and specificity; None when the
    bundle carries none (a validation split too small to calibrate)."""
    path = bundle / "models" / "calibration.json"
    if not path.is_file() or "calibration" not in test:
        return None
    record, tested = json.loads(path.read_text()), test["calibration"]
    figures = record["figures"]
    points = {
        name: {
            "threshold": round(point["threshold"], 4),
            **{f"val_{k}": round(point[k], 4) for k in ("sensitivity", "specificity")},
            **{f"test_{k}": round(tested["operating_points"][name][k], 4) for k in ("sensitivity", "specificity")},
        }
        for name, point in record["operating_points"].items()
    }
    return {
        "method": record["method"],
        "fitted_on": record["fitted_on"],
        "val_ece": [round(figures["ece_before"], 4), round(figures["ece_after"], 4)],
        "test_ece": [round(tested["ece_before"], 4), round(tested["ece_after"], 4)],
        "operating_points": points,
    }


def _calibration_lines(summary: dict[str, Any] | None) -> str:
    """The calibration's figures as the demo prints them (ECE as before -> after)."""
    if summary is None:
        return "no calibration: switched off, or the validation split too small to fit one (see the training log)"
    fitted = summary["fitted_on"]
    lines = [
        f"calibration ({summary['method']}, fitted on {fitted['n']} validation images, {fitted['positives']} "
        f"malignant): ECE validation {summary['val_ece'][0]:.3f} -> {summary['val_ece'][1]:.3f}, "
        f"test {summary['test_ece'][0]:.3f} -> {summary['test_ece'][1]:.3f}"
    ]
    for name, p in summary["operating_points"].items():
        lines.append(
            f"  {name} (calibrated P >= {p['threshold']:.3f}): sensitivity {p['val_sensitivity']:.3f} validation, "
            f"{p['test_sensitivity']:.3f} test; specificity {p['val_specificity']:.3f} validation, "
            f"{p['test_specificity']:.3f} test"
        )
    return "\n".join(lines)


def _export(plan: DemoPlan) -> list[str]:
    """Step 7: the trained bundles as Model Zoo zips in ``<work>/dist``; returns their paths."""
    work, (patch_bundle, whole_bundle) = plan.work, plan.bundles
    _step(7, TOTAL_STEPS, f"exporting the bundles into {work / 'dist'}")
    exported = [str(export_bundle(patch_bundle, work / "dist"))] if plan.patch_pretraining else []
    # predict --backend auto runs what export measured on the validation films (inference/backend_choice.py)
    exported.append(str(export_bundle(whole_bundle, work / "dist", work / "manifest")))
    return exported


def _show_runs(runs: int) -> None:
    """Print the demo's last ``runs`` MLflow runs and the links that open them in the MLflow UI."""
    table = compare_runs()
    shown = table[table["experiment"].isin(BUNDLE_NAMES)].tail(runs)
    print("\nMLflow runs of this demo (mammo-monai compare):")
    print(shown.to_string(index=False))
    links = ui_links()  # MLflow 3.17's UI shows the runs and their metrics only through such a link
    print(f"\nMLflow UI: mlflow ui --backend-store-uri {default_tracking_uri()}  then open")
    print("\n".join(f"  {name}: {links[name]}" for name in BUNDLE_NAMES if name in links))


def _summary(
    plan: DemoPlan,
    seconds: float,
    results: dict[str, Any],
    patch_results: list[dict[str, Any]],
    whole_results: list[dict[str, Any]],
    exported: list[str],
) -> dict[str, Any]:
    """What ``summary.json`` holds. ``results``: prepare's summary ("prep"), the patch set's ("patches"),
    the test metrics without and with TTA ("plain", "tta") and the attainable test AUC ("ceiling")."""
    prep, plain, tta, ceiling = results["prep"], results["plain"], results["tta"], results["ceiling"]
    patch_bundle, whole_bundle = plan.bundles
    ci95 = plain["image"]["auc_ci95"]
    calibration = calibration_summary(whole_bundle, plain)
    reliability = (
        {"test_reliability": str(plan.work / "evaluation" / "test" / "reliability.png")} if calibration else {}
    )
    return {
        "wall_seconds": round(seconds, 1),
        "patients": plan.patients,
        "test_patients": plan.test_patients,
        "lesion_scale": plan.lesion_scale,
        "intensity": plan.intensity,
        "images": prep["images"],
        "splits": prep["splits"],
        "patches": results["patches"]["patches"],
        "patch_pretraining": plan.patch_pretraining,
        "test_auc": round(plain["image"]["auc"], 4),
        "test_auc_ci95": [round(x, 4) for x in ci95],
        "test_auc_ci95_half_width": round((ci95[1] - ci95[0]) / 2, 4),
        "test_auc_tta": round(tta["image"]["auc"], 4),
        "test_auc_attainable": round(ceiling, 4),
        "test_exam_auc": round(plain["exam_mean"]["auc"], 4),
        "calibration": calibration,
        "patch_val_auc": _rounded(patch_results[-1]["best_metric"]) if patch_results else None,
        "whole_val_auc": _rounded(whole_results[-1]["best_metric"]),
        "stages": {"patch_classifier": patch_results, "whole_image_classifier": whole_results},
        "exported": exported,
        "tracking_uri": default_tracking_uri(),
        "experiments": [
            *(BUNDLE_NAMES if plan.patch_pretraining else BUNDLE_NAMES[1:]),
            "whole_image_classifier-evaluation",
        ],
        "plots": {
            "test_roc": str(plan.work / "evaluation" / "test" / "roc.png"),
            "validation": str(whole_bundle / "eval"),
            "patch_validation": str(patch_bundle / "eval"),
            **reliability,
        },
    }


def _write_summary(summary: dict[str, Any], path: Path) -> None:
    """Write ``summary.json`` and print where the plots are and the headline numbers."""
    write_json(summary, path)
    print(f"\nplots: {summary['plots']}\nsummary: {path}")
    keys = ("wall_seconds", "test_auc", "test_auc_ci95", "test_auc_tta", "test_auc_attainable", "test_exam_auc")
    keys += ("patch_val_auc",)
    print(json.dumps({k: summary[k] for k in keys}, indent=2))
    print(_calibration_lines(summary["calibration"]))
