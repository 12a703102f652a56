"""Another vendor, on synthetic data: the decision rates at operating points chosen on site A, on a site B
whose films are darker (``scale * b ** gamma``), before and after ``mammo-monai calibrate`` on B's validation
split, and the AUC on B's test split before and after (isotonic forced too, to show what its ties do).

The sites and the tiny bundle (a fixed function of mean intensity, nothing trained) are those of the tests:
tests/pipeline/calibration_sites.py. Run from the repository root:

    python scripts/bench_calibration.py [--n 400] [--scale 0.7] [--gamma 1.2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' site generator

from mammo_monai.evaluation.calibration import fit_calibration  # noqa: E402
from mammo_monai.evaluation.reliability import expected_calibration_error  # noqa: E402
from mammo_monai.inference.calibrate import calibrate_bundle  # noqa: E402
from mammo_monai.inference.evaluate import score_split  # noqa: E402
from mammo_monai.inference.opened_bundle import open_bundle  # noqa: E402
from tests.pipeline.calibration_sites import site_manifest, tiny_bundle  # noqa: E402


def _test_split(opened, manifest: Path, workdir: str) -> tuple[np.ndarray, np.ndarray]:
    test = pd.read_csv(manifest / "images.csv").query("split == 'test'").reset_index(drop=True)
    return score_split(opened, test, str(manifest), workdir), test["label"].to_numpy()


def _rates(calibration, raw: np.ndarray, labels: np.ndarray) -> str:
    q = calibration.apply(raw)
    parts = []
    for name, op in calibration.operating_points.items():
        d = op.decide(q).astype(bool)
        sens, spec = d[labels == 1].mean(), (~d[labels == 0]).mean()
        parts.append(f"{name} rate {d.mean():.3f} (sens {sens:.3f}, spec {spec:.3f})")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="images per split (val and test) per site")
    parser.add_argument("--scale", type=float, default=0.7, help="site B's intensity scale")
    parser.add_argument("--gamma", type=float, default=1.2, help="site B's gamma")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle = tiny_bundle(root / "tiny")
        a = site_manifest(root / "A", {"val": args.n, "test": args.n}, seed=1)
        b = site_manifest(root / "B", {"val": args.n, "test": args.n}, scale=args.scale, gamma=args.gamma, seed=2)
        fit_a = calibrate_bundle(bundle, a, root / "at-A")
        fit_b = calibrate_bundle(root / "at-A", b, root / "at-B")
        cal_a, cal_b = fit_a["calibration"], fit_b["calibration"]
        opened = open_bundle(bundle, root / "w")
        raw_a, y_a = _test_split(opened, a, tmp)
        raw_b, y_b = _test_split(opened, b, tmp)
        print(f"site B: intensity scale {args.scale}, gamma {args.gamma}; {args.n} val + {args.n} test images per site")
        for name, cal in (("A val", cal_a), ("B val", cal_b)):
            print(
                f"calibration on {name}: {cal.method}, log-loss {cal.log_loss_before:.4f} -> {cal.log_loss_after:.4f}, "
                f"ECE ({cal.ece_bins} bins) {cal.ece_before:.4f} -> {cal.ece_after:.4f}"
            )
        print(f"A test, A's calibration:           {_rates(cal_a, raw_a, y_a)}")
        print(f"B test, A's calibration (before):  {_rates(cal_a, raw_b, y_b)}")
        print(f"B test, B's calibration (after):   {_rates(cal_b, raw_b, y_b)}")
        print(
            f"B test ECE: raw {expected_calibration_error(raw_b, y_b):.4f}, A's calibration "
            f"{expected_calibration_error(cal_a.apply(raw_b), y_b):.4f}, B's {expected_calibration_error(cal_b.apply(raw_b), y_b):.4f}"
        )
        iso = fit_calibration(fit_b["raw"], fit_b["labels"], methods=("isotonic",))
        auc = roc_auc_score(y_b, raw_b)
        print(
            f"B test AUC: raw {auc:.6f}, {cal_b.method} {roc_auc_score(y_b, cal_b.apply(raw_b)):.6f}, "
            f"isotonic (forced) {roc_auc_score(y_b, iso.apply(raw_b)):.6f}"
        )


if __name__ == "__main__":
    main()
