"""Placement error of maps mapped back onto the original image, on synthetic films with known lesions.

For each case (left / right breast, stretched to the network size / cropped to the breast and padded with
``keep_aspect``), films of a CBIS-DDSM-like size get masses at random places; an oracle map (a Gaussian at
each lesion's centroid in the network's frame, see :mod:`mammo_monai.inference.placement_check`) goes back
through :func:`~mammo_monai.inference.original_grid.to_original_grid`, and the distance from its peak to the
lesion's true centroid on the film is printed as median / p95 / max in original pixels ("peak"), with
the same for the mapped centroid itself ("point").

    python scripts/bench_placement.py [--films 3] [--lesions 4] [--shape 4400 2800] [--size 1152 896]
"""

from __future__ import annotations

import argparse

import numpy as np

from mammo_monai.inference.placement_check import placement_errors
from mammo_monai.synthetic.lesion_films import film_with_lesions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--films", type=int, default=3, help="films per breast side")
    parser.add_argument("--lesions", type=int, default=4, help="masses per film")
    parser.add_argument("--shape", type=int, nargs=2, default=(4400, 2800), help="original rows, cols")
    parser.add_argument("--size", type=int, nargs=2, default=(1152, 896), help="network rows, cols")
    args = parser.parse_args()
    shape, size = tuple(args.shape), tuple(args.size)
    print(
        f"films {shape[0]} x {shape[1]} -> network {size[0]} x {size[1]}, {args.films} films x {args.lesions} lesions"
    )
    print(
        f"{'case':<33}{'n':>4}  {'peak median':>11} {'p95':>6} {'max':>6}  {'point median':>12} {'p95':>6} {'max':>6}"
    )
    films = {side: [film_with_lesions(s, shape, side, args.lesions) for s in range(args.films)] for side in "LR"}
    for side in "LR":
        for crop in (False, True):
            peak, point = [], []
            for film in films[side]:
                found = placement_errors(film, size, crop=crop, keep_aspect=crop)
                peak += found["peak"]
                point += found["point"]
            name = f"{'left' if side == 'L' else 'right'} breast, {'crop + keep_aspect' if crop else 'stretch'}"
            p, q = np.asarray(peak), np.asarray(point)
            print(
                f"{name:<33}{len(p):>4}  {np.median(p):>11.2f} {np.percentile(p, 95):>6.2f} {p.max():>6.2f}"
                f"  {np.median(q):>12.2f} {np.percentile(q, 95):>6.2f} {q.max():>6.2f}"
            )


if __name__ == "__main__":
    main()
