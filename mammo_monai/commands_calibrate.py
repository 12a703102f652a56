"""``mammo-monai calibrate``: its options (:func:`add_calibrate`, registered by :mod:`mammo_monai.cli`) and
the function of the parsed arguments that runs it (:func:`calibrate`) and prints what was fitted."""

from __future__ import annotations

import argparse

from mammo_monai.bundle_names import resolve_bundle
from mammo_monai.commands import EXIT_OK


def add_calibrate(sub: argparse._SubParsersAction) -> None:
    """``mammo-monai calibrate`` and its options, under the command parsers ``sub``."""
    p = sub.add_parser(
        "calibrate",
        help="fit a calibration and operating points on a site's labelled split; write a new bundle version",
        description="Score a split of a prepared manifest (default: val) with the bundle, as evaluate does; fit a "
        "calibration of P(malignant) (temperature, Platt or isotonic, the lowest cross-validated log-loss) and the "
        "operating points high_sensitivity (sensitivity >= 0.90), balanced (Youden) and recall_rate_10pct on the "
        "calibrated scores; write a copy of the bundle (folder or zip, as given) with models/calibration.json and "
        "the next version in configs/metadata.json. The original is never modified. predict then writes "
        "probability_calibrated and decision@<point>. A reliability plot (before/after) is written beside --out.",
        epilog="exit status: 0 the calibrated bundle is written; 2 nothing was written (no manifest or split, one "
        "class in the split, --out exists, a bundle that cannot be read)",
    )
    p.add_argument("--bundle", required=True, help="bundle folder, exported zip or shipped name (never modified)")
    p.add_argument("--manifest", required=True, help="folder written by `mammo-monai prepare` (the site's cases)")
    p.add_argument("--split", default="val", help="labelled split to fit on (default: val)")
    p.add_argument("--out", required=True, help="the new bundle: a folder, or a .zip when --bundle is a zip")
    p.add_argument("--tta", action="store_true", help="score with the 4 flips averaged (as predict --tta)")
    p.set_defaults(func=calibrate)


def calibrate(args: argparse.Namespace) -> int:
    from mammo_monai.inference.calibrate import calibrate_bundle

    done = calibrate_bundle(resolve_bundle(args.bundle), args.manifest, args.out, split=args.split, tta=args.tta)
    c = done["calibration"]
    print(
        f"calibrate: {done['out']} (version {done['version']}, calibrated from {done['calibrated_from']}) on split "
        f"{args.split!r}: {c.n} cases, {c.positives} malignant"
    )
    losses = ", ".join(f"{m} {v:.4f}" for m, v in c.cv_log_loss.items())
    print(f"  method {c.method} (cross-validated log-loss, {c.folds} folds: {losses})")
    print(f"  log-loss {c.log_loss_before:.4f} -> {c.log_loss_after:.4f}")
    print(f"  ECE ({c.ece_bins} equal-width bins) {c.ece_before:.4f} -> {c.ece_after:.4f}; plot {done['plot']}")
    for name, op in c.operating_points.items():
        print(
            f"  {name}: threshold {op.threshold:.4f}, sensitivity {op.sensitivity:.3f}, "
            f"specificity {op.specificity:.3f}, recall rate {op.recall_rate:.3f}"
        )
    return EXIT_OK
