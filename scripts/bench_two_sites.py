"""The generalisation number, on synthetic data: the demo's whole-image model, trained on site A only (the
generator's own look), judged on A's held-out test split and on site B (another vendor: ``synth
--site-profile B``, darker 12-bit films with more noise, lesions of lower contrast and smaller size), raw and
with the site-aware calibration (``mammo-monai calibrate`` on A's validation split, then on B's). Three more
"sites" split B's shift in three: its intensity curve, its noise and 12-bit levels, and its lesion look.

The same steps as with real datasets (site A: ``mammo-monai demo``'s own data and bundles):

    mammo-monai demo --workdir demo                               # site A: synthesise, prepare, train
    mammo-monai synth --out B --patients 150 --size 576 448 --lesion-scale 2 --seed 1 --site-profile B
    mammo-monai prepare --dataset cbis-ddsm --root B --out mB --size 576 448 --test-fraction 0.5 --val-fraction 0.99
    mammo-monai calibrate --bundle demo/bundles/whole_image_classifier --manifest demo/manifest --out at-A
    mammo-monai calibrate --bundle at-A --manifest mB --out at-B                   # B's validation split
    mammo-monai evaluate --bundle at-B --manifest mB --split test                  (and at-A, on mB and on A)

Prints one table: AUC, the attainable AUC (a perfect reader of the lesions' drawn looks,
:mod:`mammo_monai.synthetic.ceiling`), ECE, and at each operating point sensitivity / specificity / recall
rate ("raw@0.5": the network's probability at 0.5). Run from the repository root (CPU; the demo takes about
8 minutes on a quiet 2-core machine, each other site about 2; ``--demo DIR`` reuses a finished demo):

    python scripts/bench_two_sites.py [--demo DIR] [--intensity bit_depth|percentile] [--patients-b 150] [--work DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from mammo_monai.data.prepare import prepare
from mammo_monai.demo import run_demo
from mammo_monai.evaluation.reliability import expected_calibration_error
from mammo_monai.inference.calibrate import calibrate_bundle
from mammo_monai.inference.evaluate import score_split
from mammo_monai.inference.opened_bundle import open_bundle
from mammo_monai.synthetic import SITE_PROFILES, make_cbis_tree
from mammo_monai.synthetic.ceiling import attainable_auc
from mammo_monai.synthetic.site import SiteProfile

B = SITE_PROFILES["B"]
#: the sites judged besides A: B, and B's shift split in three: its intensity curve, its detector's noise and
#: 12-bit levels, and its lesion look
OTHER_SITES = {
    "B": B,
    "B curve only": SiteProfile(gamma=B.gamma, scale=B.scale, offset=B.offset),
    "B noise and 12-bit only": SiteProfile(noise=B.noise, bits=B.bits),
    "B lesions only": SiteProfile(lesion_contrast=B.lesion_contrast, lesion_size=B.lesion_size),
}


@dataclasses.dataclass(frozen=True)
class SiteData:
    """One site's generated tree and prepared manifest."""

    tree: Path
    manifest: Path

    def test(self) -> pd.DataFrame:
        """The manifest's test split."""
        return pd.read_csv(self.manifest / "images.csv").query("split == 'test'").reset_index(drop=True)


def _site_a(args: argparse.Namespace, work: Path) -> tuple[SiteData, Path, tuple, float]:
    """Site A: a finished demo (``--demo``) or a new one; its data, its whole-image bundle, (size, intensity
    scaling) of its cache, lesion scale."""
    demo = Path(args.demo).resolve() if args.demo else work / "demo"
    if not args.demo:
        run_demo(demo, seed=args.seed, workers=args.workers, intensity=args.intensity or "bit_depth")
    summary_path, cache_path = demo / "summary.json", demo / "manifest" / "cache.json"
    for path in (summary_path, cache_path):
        if not path.is_file():
            sys.exit(f"{path}: missing; --demo must name the work folder of a finished `mammo-monai demo`")
    summary, cache = json.loads(summary_path.read_text()), json.loads(cache_path.read_text())
    if args.intensity and args.intensity != cache["intensity"]:
        sys.exit(f"{cache_path}: the demo's cache is scaled {cache['intensity']!r}, not {args.intensity!r}")
    bundle = demo / "bundles" / "whole_image_classifier"
    cached = (tuple(cache["size"]), cache["intensity"])
    return SiteData(demo / "cbis-ddsm", demo / "manifest"), bundle, cached, summary["lesion_scale"]


def _other_site(work: Path, name: str, profile: SiteProfile, args: argparse.Namespace, look: tuple) -> SiteData:
    """Another site's films (the same patients' seed for every variant of B), half validation, half test,
    prepared as site A's cache was (``look``: ((size, intensity scaling), lesion scale))."""
    (size, intensity), lesion_scale = look
    slug = name.replace(" ", "-")
    tree, manifest = work / f"site-{slug}", work / f"manifest-{slug}"
    shutil.rmtree(tree, ignore_errors=True)
    make_cbis_tree(tree, args.patients_b, args.seed + 1, size, args.workers, lesion_scale=lesion_scale, site=profile)
    prepare(
        "cbis-ddsm",
        tree,
        manifest,
        size=size,
        workers=args.workers,
        progress=False,
        rebuild=True,
        split_seed=args.seed,
        test_fraction=0.5,
        val_fraction=0.99,
        transform_options={"intensity": intensity},
    )
    return SiteData(tree, manifest)


def _raw(bundle: Path, site: SiteData, work: Path) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The raw P(malignant) of ``bundle``'s network on ``site``'s test split, its labels, and the split."""
    table = site.test()
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        raw = score_split(open_bundle(bundle, tmp), table, str(site.manifest), tmp)
    return raw, table["label"].to_numpy(), table


def _row(model: str, site: str, probs: np.ndarray, test: pd.DataFrame, tree: Path, calibration) -> dict[str, object]:
    labels = test["label"].to_numpy()
    row: dict[str, object] = {"model": model, "test site": site, "n": len(labels), "pos": int(labels.sum())}
    row["AUC"] = roc_auc_score(labels, probs)
    row["attainable"] = attainable_auc(tree, test)
    row["ECE"] = expected_calibration_error(probs, labels)
    points = calibration.operating_points.items() if calibration is not None else [("raw@0.5", None)]
    for name, op in points:
        d = (probs >= 0.5) if op is None else op.decide(probs).astype(bool)
        row[name] = f"{d[labels == 1].mean():.2f}/{(~d[labels == 0]).mean():.2f}/{d.mean():.2f}"
    return row


def _table(rows: list[dict[str, object]]) -> str:
    table = pd.DataFrame(rows).fillna("")
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for r in table.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", help="the work folder of a finished `mammo-monai demo` (default: run one)")
    parser.add_argument("--patients-b", type=int, default=150, help="patients of each other site")
    parser.add_argument("--seed", type=int, default=0, help="the demo's seed; the other sites use seed + 1")
    parser.add_argument(
        "--intensity",
        choices=["bit_depth", "percentile"],
        default=None,
        help="the demo's intensity scaling (prepare --intensity; default bit_depth); with --demo, its cache's "
        "(the other sites are prepared as it was; a different one named here is refused)",
    )
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--work", default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="two-sites-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    t0 = time.time()
    site_a, bundle, cached, lesion_scale = _site_a(args, work)
    others = {name: _other_site(work, name, p, args, (cached, lesion_scale)) for name, p in OTHER_SITES.items()}
    for out in ("at-A", "at-B"):
        shutil.rmtree(work / out, ignore_errors=True)
    cal_a = calibrate_bundle(bundle, site_a.manifest, work / "at-A")["calibration"]
    cal_b = calibrate_bundle(work / "at-A", others["B"].manifest, work / "at-B")["calibration"]
    scored = {"A": (_raw(bundle, site_a, work), site_a.tree)}
    scored |= {name: (_raw(bundle, data, work), data.tree) for name, data in others.items()}
    rows = [_row("uncalibrated", name, raw, test, tree, None) for name, ((raw, _, test), tree) in scored.items()]
    for name, ((raw, _, test), tree) in scored.items():
        rows.append(_row("calibrated on A val", name, cal_a.apply(raw), test, tree, cal_a))
    (raw_b, _, test_b), tree_b = scored["B"]
    rows.append(_row("calibrated on B val", "B", cal_b.apply(raw_b), test_b, tree_b, cal_b))
    (height, width), intensity = cached
    print(f"\nsite A: the generator's own look; {height} x {width}, intensity {intensity}, lesion scale {lesion_scale}")
    for name, profile in OTHER_SITES.items():
        print(f"site {name} ({args.patients_b} patients, seed {args.seed + 1}): {profile}")
    for name, cal in (("A val", cal_a), ("B val", cal_b)):
        params = {k: round(v, 3) if isinstance(v, float) else v for k, v in cal.params.items() if k not in "xy"}
        print(f"calibrated on {name}: {cal.method} {params}, cross-validated log-loss {cal.cv_log_loss}")
    print("operating points: sensitivity/specificity/recall rate\n" + _table(rows))
    print(f"\n{time.time() - t0:.0f} s; work folder {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
