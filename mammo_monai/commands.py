"""What each ``mammo-monai`` command does: parse-free functions of the parsed arguments, one per command
(the parser is in :mod:`mammo_monai.cli`). Each returns the command's exit status.

Exit status of every command: 0 when every item succeeded; 1 (:data:`EXIT_SOME_FAILED`) when a batch
command finished but some items failed (the good outputs are written and the summary says how many
failed); 2 (:data:`EXIT_ERROR`) when the command could not run at all (bad arguments, a dataset table
it cannot read, a cache made with other settings).
"""

from __future__ import annotations

import argparse
import json
import sys

from mammo_monai.bundle_names import bundle_to_train, resolve_bundle

EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR = 0, 1, 2


def modalities(args: argparse.Namespace) -> list[str] | None:
    """Accepted DICOM modalities: MG plus --accept-modality values; 'any' accepts every modality."""
    extra = [m.upper() for m in (args.accept_modality or [])]
    return None if "ANY" in extra else ["MG", *extra]


def synth(args: argparse.Namespace) -> int:
    from mammo_monai.synthetic import make_cbis_tree, make_rsna_tree

    if args.layout == "rsna":
        summary = make_rsna_tree(
            args.out,
            patients=args.patients,
            seed=args.seed,
            size=tuple(args.size),
            positive_fraction=args.positive_fraction,
            workers=args.workers,
            progress=not args.quiet,
        )
        print(json.dumps(summary, indent=2))
        return 0
    summary = make_cbis_tree(
        args.out,
        patients=args.patients,
        seed=args.seed,
        size=tuple(args.size),
        workers=args.workers,
        progress=not args.quiet,
        p_film_artefacts=args.film_artefacts,
        p_both_tables=args.both_tables,
        lesion_scale=args.lesion_scale,
    )
    print(json.dumps(summary, indent=2))
    return 0


def preprocess(args: argparse.Namespace) -> int:
    from mammo_monai.data.preprocess import preprocess

    report = preprocess(
        args.inputs,
        args.out,
        size=tuple(args.size),
        workers=args.workers,
        overwrite=args.overwrite,
        progress=not args.quiet,
        keep_aspect=args.keep_aspect,
        crop=args.crop,
        intensity=args.intensity,
        modalities=modalities(args),
    )
    bad = report[report["status"] != "ok"]
    print(f"preprocess: {len(report) - len(bad)} ok, {len(bad)} failed; report {args.out}/preprocess.csv")
    for _, row in bad.iterrows():
        print(f"  {row['status']}", file=sys.stderr)
    return EXIT_OK if len(report) and bad.empty else EXIT_SOME_FAILED


def prepare(args: argparse.Namespace) -> int:
    from mammo_monai.parallel import warm_up

    if not args.merge:  # the workers' fork server imports torch and MONAI while this process does (2 cores)
        warm_up("mammo_monai.data.cache", args.workers)
    from mammo_monai.data.prepare import prepare

    adapter = {"birads_cut": args.birads_cut} if args.dataset == "inbreast" else {}
    if args.patients_csv:
        if args.dataset != "folder":
            raise ValueError("--patients-csv applies to --dataset folder only")
        adapter["patients_csv"] = args.patients_csv
    options = {
        "keep_aspect": args.keep_aspect,
        "crop": args.crop,
        "intensity": args.intensity,
        "modalities": modalities(args),
    }
    summary = prepare(
        args.dataset,
        args.root,
        args.out,
        size=tuple(args.size),
        split_seed=args.split_seed,
        official_split=args.official_split,
        test_fraction=args.test_fraction,
        val_fraction=args.val_fraction,
        workers=args.workers,
        progress=not args.quiet,
        adapter_options=adapter,
        transform_options=options,
        rebuild=args.rebuild,
        shard=args.shard,
        merge=args.merge,
    )
    print(json.dumps(summary, indent=2))
    if "shard" in summary:
        print(
            f"prepare: shard {summary['shard']}: {summary['images']} images cached, {summary['failed_images']} "
            f"failed, in {summary['out']}; run `prepare --merge` when every shard is done",
            file=sys.stderr,
        )
        return EXIT_SOME_FAILED if summary["failed_images"] else EXIT_OK
    truth = f" from {summary['truth_rows']} truth rows" if summary.get("truth_rows") is not None else ""
    labels = ", ".join(f"label {k}: {v}" for k, v in summary["labels"].items())
    print(
        f"prepare: {summary['images']} images ({labels}), {summary['lesions']} lesions{truth}; "
        f"{summary['failed_images']} image(s) failed, {summary['excluded_by_adapter']} excluded while reading the dataset",
        file=sys.stderr,
    )
    if summary["problems"]:
        print(f"prepare: {summary['problems']} problem(s) reported in {args.out}/errors.csv", file=sys.stderr)
    return EXIT_SOME_FAILED if summary["failed_images"] or summary["excluded_by_adapter"] else EXIT_OK


def patches(args: argparse.Namespace) -> int:
    from mammo_monai.data.patches import make_patches

    summary = make_patches(
        args.manifest,
        args.out,
        scheme=args.scheme,
        size=args.patch_size,
        per_roi=args.per_roi,
        background=args.background,
        seed=args.seed,
        workers=args.workers,
        progress=not args.quiet,
    )
    print(json.dumps(summary, indent=2))
    if summary["failed_images"]:
        print(f"patches: {summary['failed_images']} image(s) failed; see {args.out}/patch_errors.csv", file=sys.stderr)
    return EXIT_SOME_FAILED if summary["failed_images"] else EXIT_OK


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


def compare(args: argparse.Namespace) -> int:
    from mammo_monai.tracking.compare import compare_runs

    table = compare_runs(args.experiment, args.tracking_uri)
    print(table.to_string(index=False) if not table.empty else "no runs recorded")
    return 0


def export(args: argparse.Namespace) -> int:
    from mammo_monai.inference.export import export_bundle

    print(export_bundle(resolve_bundle(args.bundle), args.out, getattr(args, "manifest", None)))
    return 0


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
    print(line)
    print(json.dumps(metrics, indent=2))
    return 0


def predict(args: argparse.Namespace) -> int:
    from mammo_monai.inference.predict import predict

    table = predict(
        resolve_bundle(args.bundle),
        args.input,
        args.out,
        tta=args.tta,
        heatmaps=args.heatmaps,
        patch_bundle=args.patch_bundle and resolve_bundle(args.patch_bundle, "--patch-bundle"),
        batch_size=args.batch_size,
        stride=args.stride,
        progress=not args.quiet,
        modalities=modalities(args) if args.accept_modality else "model",
        backend=args.backend,
    )
    images = table[table["level"] == "image"]
    bad = images[images["status"] != "ok"]
    print(f"predict: {len(images) - len(bad)} images predicted, {len(bad)} errors; {args.out}")
    for status in bad["status"]:
        print(f"  {status}", file=sys.stderr)
    return EXIT_OK if bad.empty else EXIT_SOME_FAILED


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
    )
    return 0 if summary["test_auc"] == summary["test_auc"] else 1  # NaN: the test split had one class only
