"""The generalisation number, on synthetic data: train a small whole-image model on site A, judge it on site
A's test split and on site B (another vendor: ``synth --site-profile B``, lesions of B's lower contrast and
smaller size), without and with the site-aware calibration (``mammo-monai calibrate`` on site B's
validation split). The same steps as with real datasets (the recipe of ``mammo-monai demo``: a patch
classifier on S10 patches of A's training films, then the whole-image network's new top on it):

    mammo-monai synth --out A --patients 160 --size 128 96 --lesion-scale 3 --seed 0 \\
        --site-option lesion_contrast=2.5 --site-option lesion_size=1.5
    mammo-monai synth --out B --patients 100 --size 128 96 --lesion-scale 3 --seed 1 --site-profile B \\
        --site-option lesion_contrast=2.0 --site-option lesion_size=1.275
    mammo-monai prepare --dataset cbis-ddsm --root A --out mA --size 128 96 --val-fraction 0.2
    mammo-monai prepare --dataset cbis-ddsm --root B --out mB --size 128 96 --test-fraction 0.5 --val-fraction 0.99
    mammo-monai patches --manifest mA --out pA --patch-size 32 --per-roi 5 --background 5
    mammo-monai train --bundle patch_classifier --overlay demo.yaml dataset_dir=pA 'image_size=[32,32]'
    mammo-monai train --bundle whole_image_classifier --overlay demo.yaml dataset_dir=mA \\
        patch_checkpoint=patch_classifier/models/model.pt 'image_size=[128,96]' stages#1#epochs=20 stages#1#learning_rate=1e-4
    mammo-monai calibrate --bundle whole_image_classifier --manifest mA --out at-A      # A's val
    mammo-monai calibrate --bundle at-A --manifest mB --out at-B                       # B's val
    mammo-monai evaluate --bundle at-B --manifest mB --split test    (and at-A, and on mA)

Prints one table: AUC, ECE, and at each operating point sensitivity / specificity / recall rate. "raw" is
the network's probability at 0.5. Run from the repository root (CPU, about 10 minutes on a shared 2-core
machine; ``--patch-epochs 0`` trains the whole-image network from random weights instead):

    python scripts/bench_two_sites.py [--patients-a 160] [--patients-b 100] [--epochs 20] [--lr 1e-4] [--work DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from mammo_monai.bundle_names import bundles_source
from mammo_monai.data.patches import make_patches
from mammo_monai.data.prepare import prepare
from mammo_monai.evaluation.reliability import expected_calibration_error
from mammo_monai.inference.calibrate import calibrate_bundle
from mammo_monai.inference.evaluate import score_split
from mammo_monai.inference.opened_bundle import open_bundle
from mammo_monai.synthetic import SITE_PROFILES, make_cbis_tree
from mammo_monai.synthetic.site import SiteProfile
from mammo_monai.training.workflow import train_bundle

SIZE = (128, 96)


def sites(contrast: float, size: float) -> dict[str, SiteProfile]:
    """Site A: the generator's intensity profile with lesions ``contrast`` and ``size`` times its own; site B:
    profile B, its lesions B's fraction of A's (``--site-profile B --site-option lesion_contrast=...``)."""
    b = SITE_PROFILES["B"]
    return {
        "A": SiteProfile(lesion_contrast=contrast, lesion_size=size),
        "B": dataclasses.replace(b, lesion_contrast=b.lesion_contrast * contrast, lesion_size=b.lesion_size * size),
    }


def _data(work: Path, patients: dict[str, int], site: dict[str, SiteProfile], workers: int) -> tuple[Path, Path]:
    """Site A (train / val / test) and site B (val / test only) as two prepared manifests."""
    for name, seed in (("A", 0), ("B", 1)):
        make_cbis_tree(work / name, patients[name], seed, SIZE, workers, lesion_scale=3.0, site=site[name])
    common = {"size": SIZE, "workers": workers, "progress": False, "rebuild": True}
    prepare("cbis-ddsm", work / "A", work / "mA", val_fraction=0.2, **common)
    prepare("cbis-ddsm", work / "B", work / "mB", test_fraction=0.5, val_fraction=0.99, **common)
    return work / "mA", work / "mB"


def _patch_checkpoint(work: Path, manifest: Path, epochs: int, size: int) -> str:
    """The patch classifier trained on S10 patches of site A's training films (as ``mammo-monai demo``)."""
    make_patches(manifest, work / "patches", size=size, per_roi=5, background=5, progress=False)
    bundle = work / "patch_classifier"
    shutil.rmtree(bundle, ignore_errors=True)
    shutil.copytree(bundles_source() / "patch_classifier", bundle)
    overrides = {"dataset_dir": str(work / "patches"), "image_size": [size, size], "stages#1#epochs": epochs}
    train_bundle(bundle, ["demo.yaml"], overrides | {"register_model": False})
    return str(bundle / "models" / "model.pt")


def _train(work: Path, manifest: Path, epochs: int, lr: float, args: argparse.Namespace) -> Path:
    """The whole-image bundle on site A: on the patch network (its new top only) or, with ``patch_epochs``
    0, from random weights (every layer)."""
    overrides: dict[str, object] = {"patch_checkpoint": None, "stages#1#trainable": "all"}
    if args.patch_checkpoint:
        overrides = {"patch_checkpoint": str(Path(args.patch_checkpoint).resolve())}
    elif args.patch_epochs:
        overrides = {"patch_checkpoint": _patch_checkpoint(work, manifest, args.patch_epochs, args.patch_size)}
    if args.all_layers:
        overrides["stages#1#trainable"] = "all"
    bundle = work / "whole_image_classifier"
    shutil.rmtree(bundle, ignore_errors=True)
    shutil.copytree(bundles_source() / "whole_image_classifier", bundle)
    overrides |= {"dataset_dir": str(manifest), "stages#1#epochs": epochs, "stages#1#learning_rate": lr}
    overrides["image_size"] = list(SIZE)
    train_bundle(bundle, ["demo.yaml"], overrides | {"register_model": False})
    return bundle


def _row(model: str, site: str, probs: np.ndarray, labels: np.ndarray, calibration) -> dict[str, object]:
    row: dict[str, object] = {"model": model, "test site": site, "n": len(labels), "pos": int(labels.sum())}
    row["AUC"] = roc_auc_score(labels, probs)
    row["ECE"] = expected_calibration_error(probs, labels)
    points = calibration.operating_points.items() if calibration is not None else [("raw@0.5", None)]
    for name, op in points:
        d = (probs >= 0.5) if op is None else op.decide(probs).astype(bool)
        row[name] = f"{d[labels == 1].mean():.2f}/{(~d[labels == 0]).mean():.2f}/{d.mean():.2f}"
    return row


def _test(bundle: Path, manifest: Path, work: Path) -> tuple[np.ndarray, np.ndarray]:
    """The raw P(malignant) of ``bundle``'s network on the test split of ``manifest``, and the labels."""
    table = pd.read_csv(manifest / "images.csv").query("split == 'test'").reset_index(drop=True)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        raw = score_split(open_bundle(bundle, tmp), table, str(manifest), tmp)
    return raw, table["label"].to_numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients-a", type=int, default=160)
    parser.add_argument("--patients-b", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-4, help="the whole-image stage's peak learning rate")
    parser.add_argument("--patch-epochs", type=int, default=8, help="patch classifier first (0: from scratch)")
    parser.add_argument("--patch-size", type=int, default=32)
    parser.add_argument("--all-layers", action="store_true", help="train the patch network's layers too")
    parser.add_argument("--patch-checkpoint", help="a patch classifier trained on these patches (a previous run's)")
    parser.add_argument("--lesion-contrast", type=float, default=2.5, help="site A's lesion contrast (x generator's)")
    parser.add_argument("--lesion-size", type=float, default=1.5, help="site A's lesion size (x generator's)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="two-sites-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    t0 = time.time()
    site = sites(args.lesion_contrast, args.lesion_size)
    ma, mb = _data(work, {"A": args.patients_a, "B": args.patients_b}, site, args.workers)
    bundle = _train(work, ma, args.epochs, args.lr, args)
    for out in ("at-A", "at-B"):
        shutil.rmtree(work / out, ignore_errors=True)
    cal_a = calibrate_bundle(bundle, ma, work / "at-A")["calibration"]
    cal_b = calibrate_bundle(work / "at-A", mb, work / "at-B")["calibration"]
    (raw_a, y_a), (raw_b, y_b) = _test(bundle, ma, work), _test(bundle, mb, work)
    rows = [
        _row("uncalibrated", "A", raw_a, y_a, None),
        _row("uncalibrated", "B", raw_b, y_b, None),
        _row("calibrated on A val", "A", cal_a.apply(raw_a), y_a, cal_a),
        _row("calibrated on A val", "B", cal_a.apply(raw_b), y_b, cal_a),
        _row("calibrated on B val", "B", cal_b.apply(raw_b), y_b, cal_b),
    ]
    print(f"\nsite A ({args.patients_a} patients): {site['A']}\nsite B ({args.patients_b} patients): {site['B']}")
    print(f"{args.epochs} epochs at {SIZE[0]} x {SIZE[1]}; operating points: sensitivity/specificity/recall rate")
    for name, cal in (("A val", cal_a), ("B val", cal_b)):
        params = {k: round(v, 3) if isinstance(v, float) else v for k, v in cal.params.items() if k not in "xy"}
        print(f"calibrated on {name}: {cal.method} {params}, cross-validated log-loss {cal.cv_log_loss}")
    table = pd.DataFrame(rows).fillna("")
    print("| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns))
    for r in table.itertuples(index=False):
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")
    print(f"\n{time.time() - t0:.0f} s; work folder {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
