"""One rank helper (``mammo_monai.ranks``): what it answers with and without a process group, that
tracking's MLflow handlers and training ask it, and that no other module asks ``torch.distributed``."""

from __future__ import annotations

import re
from pathlib import Path

import torch.distributed as dist

from mammo_monai import ranks
from mammo_monai.tracking.handlers import StageMLFlowHandler, StageValMLFlowHandler
from mammo_monai.training import distributed

PACKAGE = Path(__file__).resolve().parents[1] / "mammo_monai"


def test_ranks_without_and_inside_a_process_group():
    assert (ranks.rank(), ranks.world_size(), ranks.is_distributed(), ranks.is_main_process()) == (0, 1, False, True)
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        assert (ranks.rank(), ranks.world_size(), ranks.is_distributed(), ranks.is_main_process()) == (
            0,
            1,
            False,
            True,
        )
    finally:
        dist.destroy_process_group()
    # training.distributed re-exports the same functions (bundles call ...training.distributed.world_size())
    assert (distributed.rank, distributed.world_size) == (ranks.rank, ranks.world_size)
    assert (distributed.is_distributed, distributed.is_main_process) == (ranks.is_distributed, ranks.is_main_process)


def test_mlflow_handlers_of_another_rank_open_no_store(monkeypatch, tmp_path):
    monkeypatch.setattr(ranks, "rank", lambda: 1)
    # rank 1: inactive before any MLflow argument is read (no tracking_uri, no store opened)
    assert StageMLFlowHandler(stage_dir=str(tmp_path), training_id="t", bundle="b").inactive
    assert StageValMLFlowHandler(stage_dir=str(tmp_path)).inactive


def test_no_other_module_asks_torch_distributed_for_the_rank():
    asking = re.compile(r"\b(?:dist|distributed)\.(?:get_rank|get_world_size)\(")
    found = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if p.name != "ranks.py" and asking.search(p.read_text())
    ]
    assert not found, found
