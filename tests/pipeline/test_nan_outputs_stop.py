"""A diverged network (NaN outputs) stops its stage before anything is saved: no ``model.pt`` of NaN
weights in the stage folder, and under ``torchrun`` every rank stops with the same one line."""

from __future__ import annotations

import warnings
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from monai.engines import SupervisedEvaluator
from monai.handlers import ROCAUC
from torch.utils.data import DataLoader

from mammo_monai.evaluation import prob_label
from mammo_monai.io.errors import describe_error
from mammo_monai.training import SaveBest, ValidationPlots
from mammo_monai.training.distributed import sum_over_ranks
from mammo_monai.training.finite_outputs import nonfinite_items


def _evaluator(stage_dir: Path, nan: bool, images: int = 4) -> SupervisedEvaluator:
    """A tiny evaluator wired like ``common_train.yaml``: ``SaveBest`` before the recipe's ``ValidationPlots``."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    if nan:
        with torch.no_grad():
            net[1].weight[0, 0] = float("nan")
    data = [{"image": torch.rand(1, 2, 2), "label": torch.tensor(i % 2)} for i in range(images)]
    return SupervisedEvaluator(
        device="cpu",
        val_data_loader=DataLoader(data, batch_size=2),
        network=net,
        key_val_metric={"val_auc": ROCAUC(output_transform=prob_label)},
        val_handlers=[SaveBest(str(stage_dir), net), ValidationPlots(str(stage_dir / "plots"))],
    )


def _validate(evaluator: SupervisedEvaluator, epoch: int = 1) -> str | None:
    """Run one validation; the one-line error it stopped with, or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            evaluator.run(epoch)
    except ValueError as err:
        return describe_error(err)
    return None


def test_a_nan_epoch_saves_no_best_model(tmp_path):
    """MONAI's ROCAUC gives a number for NaN outputs, so without the check SaveBest would save them."""
    message = _validate(_evaluator(tmp_path, nan=True))
    assert message == (
        "ValueError: the network's validation outputs contain NaN or inf (diverged?): 4 of 4 images, epoch 1"
    )
    assert not (tmp_path / "model.pt").exists()
    assert not (tmp_path / "best.json").exists()


def test_finite_outputs_still_save_the_best_model(tmp_path):
    assert _validate(_evaluator(tmp_path, nan=False)) is None
    assert (tmp_path / "model.pt").is_file()


def test_nonfinite_items_counts_items_of_a_batch_and_of_a_decollated_list():
    pred = torch.zeros(3, 2, 4, 4)
    pred[1, 0, 2, 2] = float("inf")
    assert nonfinite_items({"pred": pred}) == (1, 3)
    pred[2, 1, 0, 0] = float("nan")
    assert nonfinite_items([{"pred": p} for p in pred]) == (2, 3)
    assert nonfinite_items({"pred": torch.tensor([0.5, float("nan")])}) == (1, 2)  # one value per image


def test_sum_over_ranks_in_a_one_process_group():
    assert sum_over_ranks([2, 5]) == [2, 5]  # no group: the values themselves
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        assert sum_over_ranks([2, 5]) == [2, 5]
    finally:
        dist.destroy_process_group()


def _rank_validates(rank: int, store_file: str, stage_dir: str, messages: str) -> None:
    """One of two gloo ranks: rank 1 alone holds a NaN network (as if its shard diverged)."""
    store = dist.FileStore(store_file, 2)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=2, timeout=timedelta(seconds=20))
    try:
        message = _validate(_evaluator(Path(stage_dir), nan=rank == 1, images=2 + rank))
    except Exception as err:  # a rank that timed out waiting for the other: recorded, so the test fails
        message = describe_error(err)
    finally:
        Path(messages, f"rank{rank}.txt").write_text(str(message))
        dist.destroy_process_group()


def test_every_rank_stops_with_the_same_line_when_one_rank_sees_nan(tmp_path, monkeypatch):
    """Two processes (gloo, CPU): rank 1's NaN outputs stop rank 0 too, with the same line, and rank 0
    (the one that writes) saves no model.pt. Rank 0 validates 2 images, rank 1 validates 3."""
    stage_dir = tmp_path / "stage1"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    mp.spawn(_rank_validates, args=(str(tmp_path / "store"), str(stage_dir), str(tmp_path)), nprocs=2)
    lines = [(tmp_path / f"rank{r}.txt").read_text() for r in (0, 1)]
    expected = "ValueError: the network's validation outputs contain NaN or inf (diverged?): 3 of 5 images, epoch 1"
    assert lines == [expected, expected]
    assert not (stage_dir / "model.pt").exists()
