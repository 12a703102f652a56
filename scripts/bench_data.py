"""Benchmark: ``prepare`` images/s and ``patches`` patches/s on synthetic patients, 1 and 2 workers.

Usage: python scripts/bench_data.py [--patients 100] [--workdir /tmp/bench_data]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from mammo_monai.data.patches import make_patches
from mammo_monai.data.prepare import prepare
from mammo_monai.synthetic import make_cbis_tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--workdir", default="/tmp/bench_data")
    args = parser.parse_args()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    synth = make_cbis_tree(work / "raw", patients=args.patients, seed=0)
    print(
        f"synth: {args.patients} patients, {synth['images']} images, {synth['lesions']} lesions in {synth['seconds']} s"
    )
    for workers in (1, 2):
        prep = prepare("cbis-ddsm", work / "raw", work / f"manifest{workers}", workers=workers, progress=False)
        print(
            f"prepare  workers={workers}: {prep['images_per_second']:7.2f} images/s  ({prep['images']} images, 1152x896 cache)"
        )
    for workers in (1, 2):
        pat = make_patches(
            work / "manifest1", work / f"patches{workers}", scheme="s10", workers=workers, progress=False
        )
        print(
            f"patches  workers={workers}: {pat['patches_per_second']:7.1f} patches/s ({pat['patches']} S10 patches, 224 px)"
        )


if __name__ == "__main__":
    main()
