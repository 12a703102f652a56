"""The ``mammo-monai`` command line: synthesise, preprocess, prepare, cut patches, train, evaluate, export,
predict (what each command does is in :mod:`mammo_monai.commands`).

Exit status of every command: 0 when every item succeeded; 1 (:data:`EXIT_SOME_FAILED`) when a batch
command finished but some items failed (the good outputs are written and the summary says how many
failed); 2 (:data:`EXIT_ERROR`) when the command could not run at all (bad arguments, a dataset table
it cannot read, a cache made with other settings).
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from collections.abc import Sequence

from mammo_monai import commands
from mammo_monai.cli_common import error_text, finish_parser
from mammo_monai.commands import (
    EXIT_ERROR,
)

EXIT_CODES = (
    "exit status: 0 every item succeeded; 1 some items failed (the rest is written, the summary says "
    "how many failed); 2 the command could not run"
)


def _accept_modality(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accept-modality",
        action="append",
        metavar="MODALITY",
        help="also accept DICOMs of this Modality (e.g. CT, DX; 'any' for all); by default only MG "
        "(mammography) is accepted and other modalities are error rows",
    )


def _size(parser: argparse.ArgumentParser, default: tuple[int, int]) -> None:
    parser.add_argument(
        "--size",
        nargs=2,
        type=int,
        metavar=("H", "W"),
        default=list(default),
        help=f"output height and width in pixels (default: {default[0]} {default[1]})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mammo-monai",
        description="Mammography classification on MONAI (Shen et al. 2019 and beyond).",
        epilog=EXIT_CODES,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "synth",
        help="generate a synthetic CBIS-DDSM-like dataset (DICOMs, ROI masks, CSVs)",
        description="Write a CBIS-DDSM-like tree: full-field DICOMs (16-bit, some MONOCHROME1, some "
        "windowed, some RLE), ROI masks and crops in the current TCIA layout, and the four description CSVs.",
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
    _size(p, (1152, 896))
    p.set_defaults(func=commands.synth)

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
    p.add_argument("--keep-aspect", action="store_true", help="pad instead of stretching to the output size")
    p.add_argument("--crop", action="store_true", help="crop to the breast's bounding box before resizing")
    p.add_argument(
        "--intensity",
        choices=["bit_depth", "percentile"],
        default="bit_depth",
        help="intensity scaling: bit_depth = the range the data use (DICOM Bits Stored / VOI window; PNG/TIFF: "
        "the bit depth of the maximum, so 12-bit data in 16-bit PNGs fill 0..1), percentile = 0.5-99.5 %% of "
        "the breast (default: bit_depth)",
    )
    _accept_modality(p)
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="redo every file, also those whose output exists "
        "(needed when the outputs in --out were made with other settings)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _size(p, (1152, 896))
    p.epilog = EXIT_CODES + "; also 1 when no input file was found"
    p.set_defaults(func=commands.preprocess)
    p = sub.add_parser(
        "prepare",
        help="dataset on disk -> manifest (images.csv, lesions.csv) + preprocessed cache",
        description="Read a dataset in its own layout, split it by patient (stratified by label), cache every\n"
        "image as a masked, oriented, resized 16-bit PNG with its breast and lesion masks, and write images.csv,\n"
        "lesions.csv and errors.csv into --out.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", required=True, choices=["cbis-ddsm", "mias", "inbreast", "rsna", "folder"])
    p.add_argument("--root", required=True, help="the dataset's folder")
    p.add_argument("--out", required=True, help="manifest and cache folder")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the patient-grouped split (default: 0)")
    p.add_argument("--official-split", action="store_true", help="cbis-ddsm: keep the official Training/Test split")
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
    p.add_argument("--keep-aspect", action="store_true", help="pad instead of stretching to the output size")
    p.add_argument("--crop", action="store_true", help="crop to the breast's bounding box before resizing")
    p.add_argument(
        "--intensity",
        choices=["bit_depth", "percentile"],
        default="bit_depth",
        help="intensity scaling (default: bit_depth)",
    )
    _accept_modality(p)
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
    _size(p, (1152, 896))
    p.epilog = (
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
    p.set_defaults(func=commands.prepare)

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
    p.set_defaults(func=commands.patches)

    p = sub.add_parser(
        "train",
        help="run every stage of a bundle in order (each one MONAI bundle workflow)",
        description="Run the stages of a bundle's configs/train.yaml in order, each starting from the previous "
        "stage's best checkpoint, as one training: one MLflow parent run with a nested run per stage. Killed "
        "and rerun, it resumes the interrupted stage from its last finished epoch and skips finished stages.",
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
    p.set_defaults(func=commands.train)

    p = sub.add_parser(
        "compare",
        help="print a table of MLflow runs (stage, parameters, best metrics)",
        description="One row per MLflow run of the project's tracking store.",
    )
    p.add_argument("--experiment", default=None, help="one experiment (a bundle name); default: all")
    p.add_argument(
        "--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI or sqlite:///<cwd>/mlruns/mlflow.db"
    )
    p.set_defaults(func=commands.compare)

    p = sub.add_parser(
        "export",
        help="export a trained bundle as <name>-<version>.zip with TorchScript",
        description="Write the bundle (configs, docs, LICENSE, models/model.pt, models/model.ts) as a Model Zoo zip.",
    )
    p.add_argument("--bundle", required=True, help="bundle folder, or a shipped bundle's name")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--manifest", help="prepared manifest: choose predict --backend auto on its validation images")
    p.set_defaults(func=commands.export)

    p = sub.add_parser(
        "evaluate",
        help="AUC (bootstrap CI), operating points, pF1, per image and per exam",
        description="Evaluate a whole-image bundle (folder or exported zip) on a split of a prepared manifest; "
        "writes metrics.json, predictions.csv and roc.png and one MLflow run.",
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
    p.set_defaults(func=commands.evaluate)

    p = sub.add_parser(
        "predict",
        help="probability of malignancy for a folder of mammograms (+ heatmaps)",
        description="Predict every DICOM / PNG / PGM / TIFF under --input with a whole-image bundle. CSV: a row per "
        "image, then per breast (mean of its n_views, or the model's stored rule) and per exam (its top breast), even "
        "of one image. Exam = DICOM study, else a name pattern (0_L-CC, P_00001_LEFT_CC, mdb001), else the file alone "
        "(grouped_by); patient and exam are salted hashes, never IDs. Columns: file, level, patient, exam, breast, "
        "laterality, view, n_views, probability, [decision], grouped_by, status. Unreadable files get an error row.",
    )
    p.add_argument("--bundle", required=True, help="whole-image bundle: folder, zip (<=1 GiB, <=100:1) or shipped name")
    p.add_argument("--input", required=True, nargs="+", help="folders and/or files")
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
        help="how the classifier runs: auto (the backend `export --manifest` chose on validation images, else OpenVINO "
        "fp32), eager PyTorch (bf16 autocast where the CPU has it), ONNX Runtime, or OpenVINO (bf16 where the CPU has it)",
    )
    _accept_modality(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.epilog = EXIT_CODES
    p.set_defaults(func=commands.predict)

    p = sub.add_parser(
        "demo",
        help="the end-to-end demo on synthetic data (README command 1)",
        description="Synthesise a CBIS-DDSM-like dataset and run the pipeline on it; writes <workdir>/summary.json.",
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
    _size(p, (576, 448))
    p.add_argument(
        "--patch-size",
        type=int,
        default=112,
        help="patch side in pixels (default: 112, half of Shen's 224 as the size is halved)",
    )
    p.add_argument(
        "--no-patch-pretraining", action="store_true", help="ablation: train the whole-image network from scratch"
    )
    p.set_defaults(func=commands.demo)
    return finish_parser(parser, sub)  # + bundles, --version, -v after any command, exit status in --help


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mammo-monai`` console script. Errors print one line, not a traceback
    (``-v`` logs it too), and exit 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except Exception as err:  # noqa: BLE001 - any error is one line; -v logs the traceback first
        if args.verbose:
            logging.getLogger("mammo_monai").exception("mammo-monai %s failed", args.command)
        print(f"mammo-monai {args.command}: error: {error_text(err)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
