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
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
    for c in classes:
        y = labels == c
        if y.all() or not y.any():
            continue
        fpr, tpr, _ = roc_curve(y, probs[:, c])
        ax.plot(fpr, tpr, label=f"{names[c]} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_confusion(preds: np.ndarray, labels: np.ndarray, names: Sequence[str], path: str | Path) -> None:
    """Confusion matrix with counts; rows are the true class."""
    cm = confusion_matrix(labels, preds, labels=list(range(len(names))))
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(names), 1.0 + 0.8 * len(names)), dpi=100)
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="black" if v < cm.max() / 2 else "white", fontsize=8)
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xlabel="predicted", ylabel="true", title="confusion")
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
    ax.set_yticklabels(names, fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
