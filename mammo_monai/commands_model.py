"""The model commands of ``mammo-monai``: train, compare, export, evaluate, predict, and the demo that runs
the whole pipeline. Each command is an ``add_<command>`` function that adds its parser and options, next to
the function of the parsed arguments that runs it and returns its exit status (see
:mod:`mammo_monai.commands`); :mod:`mammo_monai.cli` registers them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mammo_monai.bundle_names import bundle_to_train, resolve_bundle
from mammo_monai.commands import EXIT_CODES, EXIT_OK, EXIT_SOME_FAILED, add_accept_modality, add_size, modalities


def add_train(sub: argparse._SubParsersAction) -> None:
    """``mammo-monai train`` and its options, under the command parsers ``sub``."""
    p = sub.add_parser(
        "train",
        help="run every stage of a bundle in order (each one MONAI bundle workflow)",
        description="Run the stages of a bundle's recipe (configs/common_train.yaml, then configs/train.yaml) in "
        "order, each starting from the previous "
        "stage's best checkpoint, as one training: one MLflow parent run with a nested run per stage. Killed "
        "and rerun, it resumes the interrupted stage from its last finished epoch and skips finished stages.",
        epilog="exit status: 0 every stage finished (or had finished in an earlier run); 2 the training could not "
        "start or a stage stopped with an error (printed on one line; -v also logs its traceback)",
    )
    p.add_argument("--bundle", required=True, help="bundle folder, or a shipped bundle's name (copied to ./NAME first)")
    p.add_argument(
        "--overlay", action="append", default=[], help="extra config file(s) merged over train.yaml (e.g. demo.yaml)"
    )
    p.add_argument(
        "--stages",
        type=lambda v: [int(x) for x in v.split(",")],
        default=None,
        metavar="N[,N...]",
        help="run only these stages, e.g. 2,3",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="start a new training: the old stage folders are moved aside "
        "(never overwritten); without it a rerun skips finished stages and resumes an interrupted one",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides, e.g. dataset_dir=data/patches batch_size=64",
    )
    p.set_defaults(func=train)


def train(args: argparse.Namespace) -> int:
    from mammo_monai.training.workflow import parse_overrides, train_bundle

    overrides = parse_overrides(args.overrides)
    if args.verbose:
        overrides.setdefault("verbose", True)
    bundle, copied = bundle_to_train(args.bundle)
    if copied:
        print(f"train: shipped bundle {args.bundle} copied to ./{bundle}; its models go there", file=sys.stderr)
    results = train_bundle(bundle, args.overlay, overrides, stages=args.stages, restart=args.restart)
    print(json.dumps(results, indent=2))
    return 0


def add_compare(sub: argparse._SubParsersAction) -> None:
    """``mammo-monai compare`` and its options, under the command parsers ``sub``."""
    p = sub.add_parser(
        "compare",
        help="print a table of MLflow runs (stage, parameters, best metrics)",
        description="One row per MLflow run of the project's tracking store.",
        epilog="exit status: 0 the table is printed (also when no run is recorded); 2 the command could not run",
    )
    p.add_argument("--experiment", default=None, help="one experiment (a bundle name); default: all")
    p.add_argument(
        "--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or sqlite:///<cwd>/mlruns/mlflow.db"
    )
    p.set_defaults(func=compare)


def compare(args: argparse.Namespace) -> int:
    from mammo_monai.tracking.compare import compare_runs

    table = compare_runs(args.experiment, args.tracking_uri)
    print(table.to_string(index=False) if not table.empty else "no runs recorded")
    return 0


def add_export(sub: argparse._SubParsersAction) -> None:
    """``mammo-monai export`` and its options, under the command parsers ``sub``."""
    p = sub.add_parser(
        "export",
        help="export a trained bundle as <name>-<version>.zip with TorchScript",
        description="Write the bundle (configs, docs, LICENSE, models/model.pt, models/model.ts) as a Model Zoo zip.",
        epilog="exit status: 0 the zip is written; 2 nothing was written (no trained model, a bundle that cannot be "
        "read or exported)",
    )
    p.add_argument("--bundle", required=True, help="bundle folder, or a shipped bundle's name")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--manifest", help="prepared manifest: choose predict --backend auto on its validation images")
    p.set_defaults(func=export)


def export(args: argparse.Namespace) -> int:
    from mammo_monai.inference.export import export_bundle

    print(export_bundle(resolve_bundle(args.bundle), args.out, getattr(args, "manifest", None)))
    return 0


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    """``mammo-monai evaluate`` and its options, under the command parsers ``sub``."""
    p = sub.add_parser(
        "evaluate",
        help="AUC (bootstrap CI), operating points, pF1, per image and per exam",
        description="Evaluate a whole-image bundle (folder or exported zip) on a split of a prepared manifest; "
        "writes metrics.json, predictions.csv and roc.png and one MLflow run.",
        epilog="exit status: 0 metrics.json, predictions.csv and roc.png are written; 2 the evaluation could not "
        "run (a bundle or manifest it cannot read)",
    )
    p.add_argument("--bundle", required=True, help="bundle folder, zip (unpacked <=1 GiB, <=100:1) or shipped name")
    p.add_argument("--manifest", required=True, help="folder written by `mammo-monai prepare`")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--tta", action="store_true", help="average over the 4 flips")
    p.add_argument("--ensemble", nargs="*", default=[], help="more checkpoints or bundles to average with")
    p.add_argument("--out", default=None, help="output folder (default: <manifest>/evaluation/<split>)")
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    p.add_argument(
        "--patch-bundle",
        default=None,
        help="with a lesion_segmentation bundle: the patch classifier that scores its candidate lesions",
    )
    p.set_defaults(func=evaluate)


def evaluate(args: argparse.Namespace) -> int:
    from mammo_monai.inference.evaluate import evaluate

    metrics = evaluate(
        resolve_bundle(args.bundle),
        args.manifest,
        split=args.split,
        tta=args.tta,
        ensemble=[resolve_bundle(e, "--ensemble") for e in args.ensemble],
        out_dir=args.out,
        track=not args.no_tracking,
        patch_bundle=args.patch_bundle and resolve_bundle(args.patch_bundle, "--patch-bundle"),
    )
    img, ex = metrics["image"], metrics["exam_mean"]
    line = (
        f"{args.split}: image AUC {img['auc']:.3f} (95% CI {img['auc_ci95'][0]:.3f}-{img['auc_ci95'][1]:.3f}, patients "
        f"resampled), exam AUC {ex['auc']:.3f}; pF1 {img['pf1']:.3f}"
    )
    if "pf1_at_val_threshold" in img:
        op = img["at_val_youden"]
        line += (
            f", {img['pf1_at_val_threshold']:.3f} at the validation-chosen threshold {img['val_pf1_threshold']:.2f}; "
            f"sensitivity {op['sensitivity']:.3f}, specificity {op['specificity']:.3f} at the validation Youden threshold"
        )
    else:
        line += " (no validation split: thresholds only in-sample, see 'oracle')"
    if "decision" in metrics:
        d = metrics["decision"]
        line += (
            f"\n{args.split}: the model's stored decision per {d['level']} at {d['threshold']:.3f}: pF1 {d['pf1']:.3f} "
            f"(raw {d['pf1_raw']:.3f}), sensitivity {d['sensitivity']:.3f}, specificity {d['specificity']:.3f}, "
            f"recall rate {d['recall_rate']:.3f}"
        )
    if "calibration" in metrics:
        c = metrics["calibration"]
        line += (
            f"\n{args.split}: calibrated ({c['method']}): ECE {c['ece_before']:.4f} -> {c['ece_after']:.4f}; "
            + "; ".join(
                f"{name} sensitivity {p['sensitivity']:.3f}, specificity {p['specificity']:.3f}"
                for name, p in c["operating_points"].items()
            )
        )
    print(line)
    print(json.dumps(metrics, indent=2))
    return 0


def add_predict(sub: argparse._SubParsersAction) -> None:
    """``mammo-monai predict`` and its options, under the command parsers ``sub``."""
    p = sub.add_parser(
        "predict",
        help="probability of malignancy for a folder of mammograms (+ heatmaps)",
        description="Predict every DICOM / PNG / PGM / TIFF under --input with a whole-image bundle. CSV: a row per "
        "image, then per breast (mean of its n_views, or the model's stored rule) and per exam (its top breast), even "
        "of one image. Exam = DICOM study, else a name pattern (0_L-CC, P_00001_LEFT_CC, mdb001), else the file alone "
        "(grouped_by); patient and exam are salted hashes, never IDs. Columns: file, level, patient, exam, breast, "
        "laterality, view, n_views, probability, [decision], grouped_by, status. Unreadable files get an error row. "
        "Beside it: <stem>_breasts.csv (patient, exam, laterality, views_used, n_views, probability, grouped_by, "
        "[decision@<operating point>]), <stem>_exams.csv (left/right malignant and benign; a missing breast is empty) "
        "and <stem>.json (the aggregation and grouping used).",
    )
    p.add_argument("--bundle", required=True, help="whole-image bundle: folder, zip (<=1 GiB, <=100:1) or shipped name")
    p.add_argument("--input", nargs="+", help="folders and/or files (with --exam-list: the folder of its images)")
    p.add_argument("--out", required=True, help="output CSV")
    p.add_argument("--tta", action="store_true", help="average over the 4 flips")
    p.add_argument("--heatmaps", default=None, help="folder for patch-classifier heatmaps (NIfTI + overlay PNG)")
    p.add_argument(
        "--patch-bundle",
        default=None,
        help="patch classifier bundle (folder or zip): draws --heatmaps; with a lesion_segmentation --bundle, scores "
        "its candidate lesions (segment-then-classify; --heatmaps then writes the lesion maps and candidates)",
    )
    p.add_argument("--stride", type=int, default=None, help="heatmap window stride in pixels (default: patch size / 4)")
    p.add_argument("--batch-size", type=int, default=4, help="images per forward pass (default: 4)")
    p.add_argument(
        "--backend",
        choices=["auto", "eager", "onnxruntime", "openvino"],
        default="auto",
        help="how the classifier and the heatmaps' patch classifier run: auto (the backend `export --manifest` chose on "
        "validation images, else OpenVINO fp32), eager PyTorch (bf16 autocast where the CPU has it), ONNX Runtime, or "
        "OpenVINO (bf16 where the CPU has it)",
    )
    _add_predict_outputs(p)
    add_accept_modality(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.epilog = EXIT_CODES
    p.set_defaults(func=predict)


def _add_predict_outputs(p: argparse.ArgumentParser) -> None:
    """``predict``'s options for the outputs beside the CSV: the NYU tables and the DICOM results."""
    p.add_argument(
        "--exam-list",
        default=None,
        help="NYU mammography metarepository exam list (data.pkl): predict the images it names (under --input, "
        "default the list's folder/images) and write image_predictions.csv and breast_predictions.csv beside --out",
    )
    p.add_argument(
        "--nyu-tables",
        action="store_true",
        help="also write the metarepository's image_predictions.csv and breast_predictions.csv for a folder",
    )
    p.add_argument(
        "--dicom-out",
        default=None,
        metavar="DIR",
        help="also write, per input DICOM, a DICOM Structured Report of its scores (<name>_sr.dcm) and, where a lesion "
        "map on the original image exists, a DICOM Segmentation of it (<name>_seg.dcm), referencing the source image",
    )
    p.add_argument(
        "--anonymous-outputs",
        action="store_true",
        help="with --dicom-out: write none of the source's identifiers (new study, stand-in patient, no reference to "
        "the source image: a PACS cannot attach them to the source study)",
    )


def predict(args: argparse.Namespace) -> int:
    from mammo_monai.inference.predict import predict

    inputs = args.input
    if not inputs and args.exam_list:
        folder = Path(args.exam_list).parent
        inputs = [str(folder / "images" if (folder / "images").is_dir() else folder)]
    if not inputs:
        raise ValueError("--input is required (without --exam-list)")
    table = predict(
        resolve_bundle(args.bundle),
        inputs,
        args.out,
        tta=args.tta,
        heatmaps=args.heatmaps,
        patch_bundle=args.patch_bundle and resolve_bundle(args.patch_bundle, "--patch-bundle"),
        batch_size=args.batch_size,
        stride=args.stride,
        progress=not args.quiet,
        modalities=modalities(args) if args.accept_modality else "model",
        backend=args.backend,
        exam_list=args.exam_list,
        nyu_tables=args.nyu_tables,
        dicom_out=args.dicom_out,
        anonymous_outputs=args.anonymous_outputs,
    )
    dicom_errors = table.attrs.get("dicom_errors", [])
    images = table[table["level"] == "image"]
    bad = images[images["status"] != "ok"]
    print(f"predict: {len(images) - len(bad)} images predicted, {len(bad)} errors; {args.out}")
    grouping = images.loc[images["status"] == "ok", "grouped_by"].value_counts()
    print("predict: exams grouped by " + (", ".join(f"{k} ({n} images)" for k, n in grouping.items()) or "nothing"))
    for status in bad["status"]:
        print(f"  {status}", file=sys.stderr)
    if args.dicom_out:
        n = table.attrs.get("dicom_written", {})
        print(
            f"predict: {n.get('sr', 0)} DICOM SR and {n.get('seg', 0)} SEG written to {args.dicom_out}; "
            f"{len(dicom_errors)} files failed"
        )
        for line in dicom_errors:
            print(f"  {line}", file=sys.stderr)
    return EXIT_OK if bad.empty and not dicom_errors else EXIT_SOME_FAILED


def add_demo(sub: argparse._SubParsersAction) -> None:
    """``mammo-monai demo`` and its options, under the command parsers ``sub``."""
    p = sub.add_parser(
        "demo",
        help="the end-to-end demo on synthetic data (README command 1)",
        description="Synthesise a CBIS-DDSM-like dataset and run the pipeline on it; writes <workdir>/summary.json.",
        epilog="exit status: 0 the demo finished; 1 it finished but the test split held one class (test AUC "
        "undefined); 2 it stopped with an error",
    )
    p.add_argument("--workdir", default="demo", help="folder for everything the demo writes (default: ./demo)")
    p.add_argument(
        "--patients", type=int, default=300, help="synthetic patients to train and validate on (default: 300)"
    )
    p.add_argument(
        "--patches-per-lesion",
        type=int,
        default=5,
        help="S10-style patches drawn around each lesion, and of background per film (default: 5; S10: 10)",
    )
    p.add_argument(
        "--test-patients",
        type=int,
        default=250,
        help="extra synthetic patients held out for the test split (default: 250, about 600 images)",
    )
    p.add_argument(
        "--lesion-scale",
        type=float,
        default=2.0,
        help="lesions this many times their size at --size (default: 2, their pixel sizes at 1152 x 896)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    add_size(p, (576, 448))
    p.add_argument(
        "--patch-size",
        type=int,
        default=112,
        help="patch side in pixels (default: 112, half of Shen's 224 as the size is halved)",
    )
    p.add_argument(
        "--intensity",
        choices=["bit_depth", "percentile"],
        default="bit_depth",
        help="intensity scaling of the cache, as prepare's (default: bit_depth)",
    )
    p.add_argument(
        "--no-patch-pretraining", action="store_true", help="ablation: train the whole-image network from scratch"
    )
    p.set_defaults(func=demo)


def demo(args: argparse.Namespace) -> int:
    from mammo_monai.demo import run_demo

    summary = run_demo(
        args.workdir,
        patients=args.patients,
        seed=args.seed,
        workers=args.workers,
        size=tuple(args.size),
        patch_size=args.patch_size,
        patch_pretraining=not args.no_patch_pretraining,
        test_patients=args.test_patients,
        lesion_scale=args.lesion_scale,
        per_roi=args.patches_per_lesion,
        background=args.patches_per_lesion,
        intensity=args.intensity,
    )
    return 0 if summary["test_auc"] == summary["test_auc"] else 1  # NaN: the test split had one class only
