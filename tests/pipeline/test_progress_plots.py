from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from ignite.engine import Engine, State
from matplotlib.colors import to_rgb

from mammo_monai.evaluation.plots import confusion_figure
from mammo_monai.training.progress import StageProgress


def _luminance(rgb) -> float:
    r, g, b = rgb[:3]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_confusion_counts_stay_readable_when_all_counts_are_equal():
    labels = np.array([0, 0, 1, 1] * 5)
    preds = np.array([0, 1, 0, 1] * 5)  # 5 in every cell
    fig = confusion_figure(preds, labels, ["benign", "malignant"])
    ax = fig.axes[0]
    cell = ax.images[0].cmap(ax.images[0].norm(5))
    for text in ax.texts:
        assert abs(_luminance(to_rgb(text.get_color())) - _luminance(cell)) > 0.4, text.get_color()
    assert fig.get_size_inches()[0] >= 5
    plt.close(fig)


def test_one_summary_line_per_epoch_with_loss_metrics_best_and_eta():
    trainer, evaluator = Engine(lambda e, b: None), Engine(lambda e, b: None)
    progress = StageProgress(2, evaluator, bar=False)
    progress.attach(trainer)
    trainer.state = State(epoch=3, max_epochs=8, metrics={"train_loss": 0.41234})
    evaluator.state = State(metrics={"val_auc": 0.75, "val_acc": 0.7})
    evaluator.state.key_metric_name, evaluator.state.best_metric, evaluator.state.best_metric_epoch = "val_auc", 0.8, 2
    progress.t0 = progress.t_epoch = 0.0
    line = progress.summary(trainer)
    assert line.startswith("stage 2 epoch 3/8: loss 0.4123 | val_auc 0.7500 (best 0.8000 @2) | val_acc 0.7000 | ")
    assert "ETA" in line and "\n" not in line
