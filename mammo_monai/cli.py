"""The ``mammo-monai`` command: synthesise data, preprocess mammograms (more subcommands follow)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence


def _size(parser: argparse.ArgumentParser, default: tuple[int, int]) -> None:
    parser.add_argument("--size", nargs=2, type=int, metavar=("H", "W"), default=list(default),
                        help=f"output height and width in pixels (default: {default[0]} {default[1]})")


def _cmd_synth(args: argparse.Namespace) -> int:
    from mammo_monai.synthetic import make_cbis_tree

    summary = make_cbis_tree(args.out, patients=args.patients, seed=args.seed, size=tuple(args.size),
                             workers=args.workers, progress=not args.quiet)
    print(json.dumps(summary, indent=2))
    return 0


def _cmd_preprocess(args: argparse.Namespace) -> int:
    from mammo_monai.preprocess import preprocess

    report = preprocess(args.inputs, args.out, size=tuple(args.size), workers=args.workers, overwrite=args.overwrite,
                        progress=not args.quiet, keep_aspect=args.keep_aspect, crop=args.crop, intensity=args.intensity)
    bad = report[report["status"] != "ok"]
    print(f"preprocess: {len(report) - len(bad)} ok, {len(bad)} failed; report {args.out}/preprocess.csv")
    for _, row in bad.iterrows():
        print(f"  {row['status']}", file=sys.stderr)
    return 0 if len(report) and bad.empty else (1 if report.empty or len(bad) == len(report) else 0)


def _cmd_demo(args: argparse.Namespace) -> int:
    from mammo_monai.demo import run_demo

    summary = run_demo(args.workdir, patients=args.patients, seed=args.seed, workers=args.workers)
    return 0 if summary["preprocessed_failed"] == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mammo-monai", description="Mammography classification on MONAI (Shen et al. 2019 and beyond).")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="generate a synthetic CBIS-DDSM-like dataset (DICOMs, ROI masks, CSVs)",
                       description="Write a CBIS-DDSM-like tree: full-field DICOMs (16-bit, some MONOCHROME1, some "
                       "windowed, some RLE), ROI masks and crops in the current TCIA layout, and the four description CSVs.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--patients", type=int, default=100, help="number of patients (default: 100)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files (default: 0)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _size(p, (1152, 896))
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("preprocess", help="mask, orient and resize mammograms into 16-bit PNGs",
                       description="For each DICOM/PNG/PGM/TIFF file (folders are searched recursively) write "
                       "<name>.png (16-bit, breast-masked, chest wall left, resized) and <name>_mask.png, and a "
                       "preprocess.csv with one row per input. Bad files become error rows; finished outputs are skipped on re-run.")
    p.add_argument("inputs", nargs="+", help="files or folders")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--keep-aspect", action="store_true", help="pad instead of stretching to the output size")
    p.add_argument("--crop", action="store_true", help="crop to the breast's bounding box before resizing")
    p.add_argument("--intensity", choices=["bit_depth", "percentile"], default="bit_depth", help="intensity scaling (default: bit_depth)")
    p.add_argument("--overwrite", action="store_true", help="redo files whose output already exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _size(p, (1152, 896))
    p.set_defaults(func=_cmd_preprocess)
    p = sub.add_parser("demo", help="the end-to-end demo on synthetic data (README command 1)",
                       description="Synthesise a CBIS-DDSM-like dataset and run the pipeline on it; writes <workdir>/summary.json.")
    p.add_argument("--workdir", default="demo", help="folder for everything the demo writes (default: ./demo)")
    p.add_argument("--patients", type=int, default=100, help="synthetic patients (default: 100)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mammo-monai`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
