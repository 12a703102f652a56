"""The ablation users ask of the segment-then-classify recipe: does self-supervised pretraining (stages
1-2) help when few lesion masks are given? On synthetic CBIS-DDSM-like data, stage 3 is trained with
10 %, 30 % and 100 % of the training split's lesion masks, once from the pretrained autoencoder and once
from scratch; each is scored on the test split by lesion Dice, FROC sensitivity at 1 false positive per
image, and image AUC of segment-then-classify (with a patch classifier trained once on the same cache).

    python scripts/ablation_ssl.py --workdir /tmp/ablation [--patients 40] [--size 192 144] [--seed 0]

Prints a markdown table and writes <workdir>/ablation.json. Every run is tracked in <workdir>/mlflow.db.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from mammo_monai.data.patches import make_patches
from mammo_monai.data.prepare import prepare
from mammo_monai.data.segmentation import segmentation_records
from mammo_monai.demo import bundles_source
from mammo_monai.evaluation.lesion_detection import dice, find_candidates, froc, lesion_masks_of, probability_map
from mammo_monai.inference.bundle import build_inference_network
from mammo_monai.inference.evaluate import evaluate
from mammo_monai.synthetic import make_cbis_tree
from mammo_monai.training.workflow import train_bundle
from mammo_monai.transforms.ssl import segmentation_transforms


def stage(epochs: int, lr: float = 1e-3) -> dict:
    return {"trainable": "all", "learning_rate": lr, "weight_decay": 1e-5, "epochs": epochs}


@torch.inference_mode()
def test_figures(bundle: Path, manifest: Path, threshold: float) -> dict:
    """Mean Dice over the test images that have lesions, and FROC over all test images."""
    net = build_inference_network(bundle)
    transform = segmentation_transforms(train=False)
    dices, per_image = [], []
    for item in segmentation_records(manifest, "test", 1.0, normals=None):
        d = transform(item)
        prob = probability_map(net(d["image"][None].float())[0])
        target = d["label"][0].numpy() > 0
        if target.any():
            dices.append(dice(prob >= threshold, target))
        per_image.append((find_candidates(prob, threshold=threshold), lesion_masks_of(d["label"])))
    points = froc(per_image)
    return {"dice": float(np.mean(dices)) if dices else float("nan"), "froc_fp1": points["sensitivity"][1.0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--patients", type=int, default=40)
    parser.add_argument("--size", type=int, nargs=2, default=(192, 144))
    parser.add_argument("--fractions", type=float, nargs="+", default=(0.1, 0.3, 1.0))
    parser.add_argument("--ssl-epochs", type=int, default=5)
    parser.add_argument("--seg-epochs", type=int, default=12)
    parser.add_argument("--seg-lr", type=float, default=3e-3, help="stage 3 learning rate")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work}/mlflow.db")
    torch.manual_seed(args.seed)
    t0 = time.time()
    size = tuple(args.size)
    if not (work / "manifest" / "images.csv").is_file():
        make_cbis_tree(work / "raw", patients=args.patients, seed=args.seed, size=(size[0] * 2, size[1] * 2))
        prepare("cbis-ddsm", work / "raw", work / "manifest", size=size, progress=False)
        make_patches(work / "manifest", work / "patches", size=size[0] // 4, per_roi=5, background=5, progress=False)
    source = bundles_source()
    common = {"dataset_dir": str(work / "manifest"), "num_workers": 0, "cache_rate": 1.0, "batch_size": 8}
    patch = work / "patch_classifier"
    if not (patch / "models" / "model.pt").is_file():
        shutil.copytree(source / "patch_classifier", patch, dirs_exist_ok=True)
        train_bundle(patch, ["demo.yaml"], {**common, "dataset_dir": str(work / "patches"), "batch_size": 32})
    ssl = work / "ssl"
    shutil.copytree(source / "lesion_segmentation", ssl, dirs_exist_ok=True)
    train_bundle(ssl, ["demo.yaml"], {**common, "stages": {"1": stage(args.ssl_epochs), "2": stage(args.ssl_epochs)}})
    rows = []
    for fraction in args.fractions:
        for pretrained in (True, False):
            run = work / f"seg-{int(fraction * 100)}-{'ssl' if pretrained else 'scratch'}"
            shutil.copytree(source / "lesion_segmentation", run, dirs_exist_ok=True)
            if pretrained:  # the same training: stage 3 starts from this training's stage 2
                for item in ("stage1", "stage2", "training.json"):
                    src, dst = ssl / "models" / item, run / "models" / item
                    if not dst.exists():
                        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
            overrides = {
                **common,
                "stages": {"3": stage(args.seg_epochs, args.seg_lr)},
                "labelled_fraction": fraction,
                "ssl_pretraining": pretrained,
                "split_seed": args.seed,
            }
            train_bundle(run, ["demo.yaml"], overrides)
            figures = test_figures(run, work / "manifest", 0.5)
            metrics = evaluate(run, work / "manifest", patch_bundle=patch, track=False, out_dir=run / "eval")
            rows.append(
                {
                    "masks": fraction,
                    "ssl_pretraining": pretrained,
                    **figures,
                    "image_auc": metrics["image"]["auc"],
                    "image_auc_ci95": metrics["image"]["auc_ci95"],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    (work / "ablation.json").write_text(
        json.dumps({"rows": rows, "args": vars(args), "seconds": time.time() - t0}, indent=2)
    )
    print("\n| lesion masks given | stages 1-2 | test Dice | FROC sens. @ 1 FP/image | image AUC (95 % CI) |")
    print("|---|---|---|---|---|")
    for r in rows:
        lo, hi = r["image_auc_ci95"]
        print(
            f"| {r['masks']:.0%} | {'yes' if r['ssl_pretraining'] else 'no'} | {r['dice']:.3f} | {r['froc_fp1']:.3f} | "
            f"{r['image_auc']:.3f} ({lo:.2f}-{hi:.2f}) |"
        )
    print(f"\n{time.time() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
