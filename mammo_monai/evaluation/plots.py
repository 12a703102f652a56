"""ROC and confusion-matrix figures (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import auc, confusion_matrix, roc_curve  # noqa: E402


def plot_roc(probs: np.ndarray, labels: np.ndarray, names: Sequence[str], path: str | Path) -> None:
    """ROC of each class against the rest (for two classes, of class 1), with AUCs in the legend."""
    fig, ax = plt.subplots(figsize=(6, 6), dpi=120)
    classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
    for c in classes:
        y = labels == c
        if y.all() or not y.any():
            continue
        fpr, tpr, _ = roc_curve(y, probs[:, c])
        ax.plot(fpr, tpr, label=f"{names[c]} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def text_colour(rgba: Sequence[float]) -> str:
    """Black on light cells, white on dark ones (relative luminance of the cell's colour)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "white"


def confusion_figure(preds: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> plt.Figure:
    """Confusion matrix with counts; rows are the true class. Each count is drawn in black or white by
    the brightness of its own cell (equal counts stay readable), on a colour scale from 0."""
    cm = confusion_matrix(labels, preds, labels=list(range(len(names))))
    side = 3.0 + 1.0 * len(names)
    fig, ax = plt.subplots(figsize=(side, side), dpi=120)
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(int(cm.max()), 1))
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color=text_colour(im.cmap(im.norm(v))), fontsize=12)
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xlabel="predicted", ylabel="true", title="confusion")
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=10)
    ax.set_yticklabels(names, fontsize=10)
    fig.tight_layout()
    return fig


def plot_confusion(preds: np.ndarray, labels: np.ndarray, names: Sequence[str], path: str | Path) -> None:
    """Save :func:`confusion_figure` as an image."""
    fig = confusion_figure(preds, labels, names)
    fig.savefig(path)
    plt.close(fig)
