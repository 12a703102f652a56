"""How far a probability is from the frequency it claims: expected calibration error (ECE) and the
reliability plot, before and after a calibration (:mod:`~mammo_monai.evaluation.calibration`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mammo_monai.io.atomic import atomic_path  # noqa: E402

#: equal-width bins of [0, 1] for the ECE and the reliability plot
ECE_BINS = 10


def _bins(probs: np.ndarray, n_bins: int) -> np.ndarray:
    """The bin of each probability: [0, 1/n), [1/n, 2/n), ..., [(n-1)/n, 1] (1.0 in the last bin)."""
    return np.minimum((np.asarray(probs, dtype=float) * n_bins).astype(int), n_bins - 1)


def reliability_table(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per non-empty equal-width bin: its ``count``, mean probability (``confidence``) and fraction of
    positives (``frequency``)."""
    p, y = np.asarray(probs, dtype=float), np.asarray(labels, dtype=float)
    which = _bins(p, n_bins)
    return [
        {"bin": int(b), "count": int((which == b).sum()), "confidence": float(p[which == b].mean())}
        | {"frequency": float(y[which == b].mean())}
        for b in np.unique(which)
    ]


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE: the case-weighted mean over equal-width bins of |mean probability - fraction of positives|."""
    rows = reliability_table(probs, labels, n_bins)
    n = sum(r["count"] for r in rows)
    return float(sum(r["count"] * abs(r["confidence"] - r["frequency"]) for r in rows) / max(n, 1))


def plot_reliability(
    curves: Mapping[str, np.ndarray], labels: np.ndarray, path: str | Path, n_bins: int = ECE_BINS, title: str = ""
) -> None:
    """A reliability plot (fraction of positives against mean probability per bin, the diagonal being
    perfect calibration) of each named set of probabilities of the same ``labels``, with its ECE in the
    legend; written atomically as a PNG."""
    fig, ax = plt.subplots(figsize=(6, 6), dpi=120)
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfectly calibrated")
    for name, probs in curves.items():
        rows = reliability_table(probs, labels, n_bins)
        ece = expected_calibration_error(probs, labels, n_bins)
        ax.plot(
            [r["confidence"] for r in rows],
            [r["frequency"] for r in rows],
            "o-",
            label=f"{name} (ECE {ece:.3f}, {n_bins} bins)",
        )
    ax.set(xlabel="mean predicted P(malignant)", ylabel="fraction malignant", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(title or "reliability", fontsize=10)
    ax.legend(loc="upper left", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
