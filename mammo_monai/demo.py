"""The README's main job: synthetic CBIS-DDSM-like data through every step of the pipeline."""

from __future__ import annotations

import json
import os
import shutil
import time
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


def _rounded(value: float | None) -> float | None:
    """A stage's best metric for the summary; None when no validation gave a number."""
    return None if value is None else round(value, 4)


def _step(n: int, total: int, text: str) -> None:
    print(f"\n[{n}/{total}] {text}", flush=True)


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
    work = Path(workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    overrides = overrides or {}
    total = 7
    everyone = patients + test_patients
    _step(
        1,
        total,
        f"synthesising {everyone} CBIS-DDSM-like patients ({patients} to train and validate, {test_patients} "
        f"held out for testing; {size[0]} x {size[1]} DICOMs) into {work / 'cbis-ddsm'}",
    )
    make_cbis_tree(
        work / "cbis-ddsm",
        patients=everyone,
        seed=seed,
        size=size,
        lesion_scale=lesion_scale,
        workers=workers,
        progress=True,
    )
    _step(2, total, f"preparing the manifest and the {size[0]} x {size[1]} cache in {work / 'manifest'}")
    prep = prepare(
        "cbis-ddsm",
        work / "cbis-ddsm",
        work / "manifest",
        size=size,
        split_seed=seed,
        workers=workers,
        rebuild=True,  # the demo owns its work folder: a cache from another run is remade
        test_fraction=test_patients / everyone,
        val_fraction=val_fraction,
    )
    for name in BUNDLE_NAMES:
        target = work / "bundles" / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(bundles_source() / name, target)
    patch_bundle, whole_bundle = (work / "bundles" / n for n in BUNDLE_NAMES)
    patch_results: list[dict[str, Any]] = []
    if patch_pretraining:
        _step(
            3,
            total,
            f"cutting S10-style patches ({patch_size} px, {per_roi} per lesion, {background} of background per "
            f"film) into {work / 'patches'}",
        )
        patches = make_patches(
            work / "manifest",
            work / "patches",
            scheme="s10",
            size=patch_size,
            per_roi=per_roi,
            background=background,
            seed=seed,
            workers=workers,
        )
        _step(4, total, "training the patch classifier from scratch: one stage, every layer (demo overlay)")
        patch_results = train_bundle(
            patch_bundle,
            ["demo.yaml"],
            {
                "dataset_dir": str(work / "patches"),
                "image_size": [patch_size, patch_size],
                **overrides.get("patch_classifier", {}),
            },
        )
        whole_over = {"patch_checkpoint": str(patch_bundle / "models" / "model.pt")}
    else:
        patches = {"patches": 0}
        print("\n[3-4/7] no patch pre-training: the whole-image network starts from random weights", flush=True)
        whole_over = {"patch_checkpoint": None, "stages#1#trainable": "all"}
    _step(5, total, "training the whole-image classifier: its new top on the patch network (demo overlay)")
    whole_results = train_bundle(
        whole_bundle,
        ["demo.yaml"],
        {
            "dataset_dir": str(work / "manifest"),
            "image_size": list(size),
            **whole_over,
            **overrides.get("whole_image_classifier", {}),
        },
    )
    _step(6, total, "evaluating the whole-image model on the held-out test split, without and with 4-flip TTA")
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
    _step(7, total, f"exporting the bundles into {work / 'dist'}")
    exported = [str(export_bundle(patch_bundle, work / "dist"))] if patch_pretraining else []
    # predict --backend auto runs what export measured on the validation films (inference/backend_choice.py)
    exported.append(str(export_bundle(whole_bundle, work / "dist", work / "manifest")))
    table = compare_runs()
    shown = table[table["experiment"].isin(BUNDLE_NAMES)].tail(len(patch_results) + len(whole_results))
    print("\nMLflow runs of this demo (mammo-monai compare):")
    print(shown.to_string(index=False))
    links = ui_links()  # MLflow 3.17's UI shows the runs and their metrics only through such a link
    print(f"\nMLflow UI: mlflow ui --backend-store-uri {default_tracking_uri()}  then open")
    print("\n".join(f"  {name}: {links[name]}" for name in BUNDLE_NAMES if name in links))
    summary = {
        "wall_seconds": round(time.time() - t0, 1),
        "patients": patients,
        "test_patients": test_patients,
        "lesion_scale": lesion_scale,
        "images": prep["images"],
        "splits": prep["splits"],
        "patches": patches["patches"],
        "patch_pretraining": patch_pretraining,
        "test_auc": round(plain["image"]["auc"], 4),
        "test_auc_ci95": [round(x, 4) for x in plain["image"]["auc_ci95"]],
        "test_auc_ci95_half_width": round((plain["image"]["auc_ci95"][1] - plain["image"]["auc_ci95"][0]) / 2, 4),
        "test_auc_tta": round(tta["image"]["auc"], 4),
        "test_auc_attainable": round(ceiling, 4),
        "test_exam_auc": round(plain["exam_mean"]["auc"], 4),
        "patch_val_auc": _rounded(patch_results[-1]["best_metric"]) if patch_results else None,
        "whole_val_auc": _rounded(whole_results[-1]["best_metric"]),
        "stages": {"patch_classifier": patch_results, "whole_image_classifier": whole_results},
        "exported": exported,
        "tracking_uri": default_tracking_uri(),
        "experiments": [
            *(BUNDLE_NAMES if patch_pretraining else BUNDLE_NAMES[1:]),
            "whole_image_classifier-evaluation",
        ],
        "plots": {
            "test_roc": str(work / "evaluation" / "test" / "roc.png"),
            "validation": str(whole_bundle / "eval"),
            "patch_validation": str(patch_bundle / "eval"),
        },
    }
    write_json(summary, work / "summary.json")
    print(f"\nplots: {summary['plots']}\nsummary: {work / 'summary.json'}")
    keys = ("wall_seconds", "test_auc", "test_auc_ci95", "test_auc_tta", "test_auc_attainable", "test_exam_auc")
    keys += ("patch_val_auc",)
    print(json.dumps({k: summary[k] for k in keys}, indent=2))
    return summary
