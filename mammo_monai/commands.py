"""The dataset commands of ``mammo-monai``: synth, preprocess, prepare and patches. Each command is an
``add_<command>`` function that adds its parser and options, next to the function of the parsed arguments
that runs it and returns its exit status; :mod:`mammo_monai.cli` registers them. The commands that train,
compare, export and run models are in :mod:`mammo_monai.commands_model`.

Exit status of every command: 0 when every item succeeded; 1 (:data:`EXIT_SOME_FAILED`) when a batch
command finished but some items failed (the good outputs are written and the summary says how many
failed); 2 (:data:`EXIT_ERROR`) when the command could not run at all (bad arguments, a dataset table
it cannot read, a cache made with other settings).
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from mammo_monai.commands_sources import add_dataset_sources, add_site_options, prepare_arguments, site_profile

EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR = 0, 1, 2
#: the exit status in the ``--help`` of the batch commands
EXIT_CODES = (
    "exit status: 0 every item succeeded; 1 some items failed (the rest is written, the summary says "
    "how many failed); 2 the command could not run"
)


def add_accept_modality(parser: argparse.ArgumentParser) -> None:
    """``--accept-modality`` (preprocess, prepare, predict)."""
    parser.add_argument(
        "--accept-modality",
        action="append",
        metavar="MODALITY",
        help="also accept DICOMs of this Modality (e.g. CT, DX; 'any' for all); by default only MG "
        "(mammography) is accepted and other modalities are error rows",
    )


def add_size(parser: argparse.ArgumentParser, default: tuple[int, int]) -> None:
    """``--size H W`` with its default in the help."""
    parser.add_argument(
        "--size",
        nargs=2,
        type=int,
        metavar=("H", "W"),
        default=list(default),
        help=f"output height and width in pixels (default: {default[0]} {default[1]})",
    )


def add_preprocessing_options(parser: argparse.ArgumentParser, intensity_help: str) -> None:
    """How images are preprocessed (preprocess, prepare): ``--keep-aspect``, ``--crop``, ``--intensity``
    and ``--accept-modality``."""
    parser.add_argument("--keep-aspect", action="store_true", help="pad instead of stretching to the output size")
    parser.add_argument("--crop", action="store_true", help="crop to the breast's bounding box before resizing")
    parser.add_argument("--intensity", choices=["bit_depth", "percentile"], default="bit_depth", help=intensity_help)
    add_accept_modality(parser)


def modalities(args: argparse.Namespace) -> list[str] | None:
    """Accepted DICOM modalities: MG plus --accept-modality values; 'any' accepts every modality."""
    extra = [m.upper() for m in (args.accept_modality or [])]
    return None if "ANY" in extra else ["MG", *extra]


def add_synth(sub: argparse._SubParsersAction) -> None:
    """``mammo-monai synth`` and its options, under the command parsers ``sub``."""
    p = sub.add_parser(
        "synth",
        help="generate a synthetic CBIS-DDSM-like dataset (DICOMs, ROI masks, CSVs)",
        description="Write a CBIS-DDSM-like tree: full-field DICOMs (16-bit, some MONOCHROME1, some "
        "windowed, some RLE), ROI masks and crops in the current TCIA layout, and the four description CSVs.",
        epilog="exit status: 0 the dataset is written; 2 the command could not run (bad arguments, a folder it "
        "cannot write)",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--patients", type=int, default=100, help="number of patients (default: 100)")
    p.add_argument(
        "--film-artefacts",
        type=float,
        default=0.3,
        metavar="P",
        help="share of films with digitised-film artefacts: bright frame, garbage rows, labels, rulers (default: 0.3)",
    )
    p.add_argument(
        "--both-tables",
        type=float,
        default=0.05,
        metavar="P",
        help="share of breasts listed in both the mass and the calcification tables, as in CBIS-DDSM (default: 0.05)",
    )
    p.add_argument(
        "--lesion-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="lesions F times their size at --size (2 with --size 576 448: the pixel sizes they have at 1152 x 896, "
        "as the demo draws them; default: 1)",
    )
    p.add_argument(
        "--layout",
        choices=["cbis-ddsm", "rsna"],
        default="cbis-ddsm",
        help="cbis-ddsm: DICOMs, ROI masks, four CSVs; rsna: the RSNA screening challenge's train.csv and "
        "train_images/<patient>/<image>.dcm (JPEG 2000 / JPEG lossless, MONOCHROME1 with SIGMOID windows)",
    )
    p.add_argument(
        "--positive-fraction",
        type=float,
        default=0.03,
        metavar="P",
        help="rsna: share of breasts with cancer, at least one (default: 0.03)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files (default: 0)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_size(p, (1152, 896))
    add_site_options(p)
    p.set_defaults(func=synth)


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
        site=site_profile(args),
    )
    print(json.dumps(summary, indent=2))
    return 0


def add_preprocess(sub: argparse._SubParsersAction) -> None:
    """``mammo-monai preprocess`` and its options, under the command parsers ``sub``."""
    p = sub.add_parser(
        "preprocess",
        help="mask, orient and resize mammograms into 16-bit PNGs",
        description="For each DICOM/PNG/PGM/TIFF file (folders are searched recursively) write "
        "<name>.png (16-bit, breast-masked, chest wall left, resized) and <name>_mask.png, and a "
        "preprocess.csv with one row per input. Bad files become error rows; finished outputs are skipped on re-run.",
    )
    p.add_argument("inputs", nargs="+", help="files or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    add_preprocessing_options(
        p,
        "intensity scaling: bit_depth = the range the data use (DICOM Bits Stored / VOI window; PNG/TIFF: "
        "the bit depth of the maximum, so 12-bit data in 16-bit PNGs fill 0..1), percentile = 0.5-99.5 %% of "
        "the breast (default: bit_depth)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="redo every file, also those whose output exists "
        "(needed when the outputs in --out were made with other settings)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_size(p, (1152, 896))
    p.epilog = EXIT_CODES + "; also 1 when no input file was found"
    p.set_defaults(func=preprocess)


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


#: the ``prepare --help`` epilog: a sharded run on a cluster
PREPARE_EPILOG = (
    "a dataset too large for one machine: a job array of N shards, then one merge, e.g. with Slurm:\n"
    "  ARGS='--dataset cbis-ddsm --root /data/cbis --out /shared/manifest'\n"
    '  jid=$(sbatch --parsable --array=1-16 --wrap "mammo-monai prepare $ARGS --shard \\$SLURM_ARRAY_TASK_ID/16")\n'
    '  sbatch --dependency=afterany:$jid --wrap "mammo-monai prepare $ARGS --merge"\n'
    "Each shard reads the dataset's tables and caches its part; a rerun resumes a shard (finished images are\n"
    "kept). The merge refuses a missing or unfinished shard and shards made with other settings, assigns the\n"
    "splits (--split-seed, --test-fraction, ... count there) and writes the manifest an unsharded prepare\n"
    "would. A shard exits 1 when some of its images failed (afterany, not afterok); the merge lists them.\n\n"
    + textwrap.fill(EXIT_CODES, 104)
)


def add_prepare(sub: argparse._SubParsersAction) -> None:
    """``mammo-monai prepare`` and its options, under the command parsers ``sub``."""
    p = sub.add_parser(
        "prepare",
        help="dataset on disk -> manifest (images.csv, lesions.csv) + preprocessed cache",
        description="Read a dataset in its own layout, split it by patient (stratified by label), cache every\n"
        "image as a masked, oriented, resized 16-bit PNG with its breast and lesion masks, and write images.csv,\n"
        "lesions.csv and errors.csv into --out.",
        epilog=PREPARE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataset_sources(p)
    p.add_argument("--out", required=True, help="manifest and cache folder")
    _add_split_and_dataset_options(p)
    add_preprocessing_options(p, "intensity scaling (default: bit_depth)")
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="delete and remake cached images made with other settings "
        "(without it, a cache made differently is refused)",
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="K/N",
        help="cache only shard K of N (1 <= K <= N; whole patients, balanced) into --out/shards/K-of-N, "
        "no manifest; then run --merge",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="merge the N shards in --out/shards into one manifest with the splits (every shard must be "
        "complete and made with the same settings; give the shard jobs' arguments)",
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_size(p, (1152, 896))
    p.set_defaults(func=prepare)


def _add_split_and_dataset_options(p: argparse.ArgumentParser) -> None:
    """prepare: the patient-grouped split, and the options of one dataset's reader."""
    p.add_argument("--split-seed", type=int, default=0, help="seed of the patient-grouped split (default: 0)")
    p.add_argument(
        "--official-split",
        action="store_true",
        help="keep the dataset's official test split (cbis-ddsm and any adapter that reads one)",
    )
    p.add_argument("--test-fraction", type=float, default=0.15, help="patients held out for test (default: 0.15)")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.10,
        help="of the rest, patients for validation (default: 0.10; a 70/20/10 split: --test-fraction 0.1 --val-fraction 0.2222)",
    )
    p.add_argument("--birads-cut", type=int, default=4, help="inbreast: label 1 from this Bi-Rads up (default: 4)")
    p.add_argument(
        "--patients-csv",
        default=None,
        help="folder: a CSV with columns file, patient_id grouping the files by "
        "patient (default: every file is its own patient)",
    )


def prepare(args: argparse.Namespace) -> int:
    from mammo_monai.parallel import warm_up

    if not args.merge:  # the workers' fork server imports torch and MONAI while this process does (2 cores)
        warm_up("mammo_monai.data.cache", args.workers)
    from mammo_monai.data.prepare import prepare

    options = {
        "keep_aspect": args.keep_aspect,
        "crop": args.crop,
        "intensity": args.intensity,
        "modalities": modalities(args),
    }
    summary = prepare(
        out_dir=args.out,
        size=tuple(args.size),
        split_seed=args.split_seed,
        official_split=args.official_split,
        test_fraction=args.test_fraction,
        val_fraction=args.val_fraction,
        workers=args.workers,
        progress=not args.quiet,
        transform_options=options,
        rebuild=args.rebuild,
        shard=args.shard,
        merge=args.merge,
        **prepare_arguments(args),
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
    for name, rules in summary.get("label_sources", {}).items():
        print(f"prepare: {name} labels: {'; '.join(rules)}", file=sys.stderr)
    if summary["problems"]:
        print(f"prepare: {summary['problems']} problem(s) reported in {args.out}/errors.csv", file=sys.stderr)
    return EXIT_SOME_FAILED if summary["failed_images"] or summary["excluded_by_adapter"] else EXIT_OK


def add_patches(sub: argparse._SubParsersAction) -> None:
    """``mammo-monai patches`` and its options, under the command parsers ``sub``."""
    p = sub.add_parser(
        "patches",
        help="cut the S or S10 patch set from a prepared manifest",
        description="Shen et al.'s patch sets, 5 classes (0 background, 1 calc malignant, 2 calc benign, "
        "3 mass malignant, 4 mass benign), as 16-bit PNGs plus patches.csv.",
    )
    p.add_argument("--manifest", required=True, help="folder written by `mammo-monai prepare`")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--scheme",
        choices=["s", "s10"],
        default="s10",
        help="S: one patch per ROI + 1 background per image; S10: N each (default)",
    )
    p.add_argument("--patch-size", type=int, default=224, help="patch side in pixels (default: 224)")
    p.add_argument("--per-roi", type=int, default=10, help="S10: patches per ROI (default: 10)")
    p.add_argument("--background", type=int, default=10, help="S10: background patches per image (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.epilog = EXIT_CODES
    p.set_defaults(func=patches)


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
