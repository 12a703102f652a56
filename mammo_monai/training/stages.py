"""Progressive unfreezing: which parameters train in a stage, and keeping frozen layers really frozen."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
from torch import nn

from mammo_monai.networks.onednn_guards import guard_convolutions
from mammo_monai.networks.weights import bf16_supported, enable_cpu_autocast, load_weights

logger = logging.getLogger(__name__)


def apply_stage(network: nn.Module, trainable: str | Sequence[str]) -> nn.Module:
    """Freeze every parameter whose name does not start with one of ``trainable`` ("all" trains all).

    Frozen means: ``requires_grad`` False (no gradients, and :func:`trainable_parameters` leaves
    them out of the optimizer, so no optimizer state), and BatchNorm layers whose parameters are all
    frozen kept in eval mode so their running statistics do not move. MONAI's ``SupervisedTrainer``
    calls ``network.train()`` every iteration; a forward pre-hook puts those layers back in eval
    mode before each forward pass.
    """
    prefixes = (
        None
        if trainable == "all" or trainable == ["all"]
        else tuple(str(p).rstrip(".") for p in ([trainable] if isinstance(trainable, str) else trainable))
    )
    if prefixes is not None:
        names = [n for n, _ in network.named_parameters()]
        unknown = [p for p in prefixes if not any(n == p or n.startswith(p + ".") for n in names)]
        if unknown:
            raise ValueError(f"trainable prefixes {unknown} match no parameter of {type(network).__name__}")
    for name, param in network.named_parameters():
        param.requires_grad = prefixes is None or any(name == p or name.startswith(p + ".") for p in prefixes)
    frozen_bn = [
        m
        for m in network.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        and not any(p.requires_grad for p in m.parameters(recurse=False))
    ]
    handle = getattr(network, "_frozen_bn_hook", None)
    if handle is not None:
        handle.remove()
    if frozen_bn:

        def _freeze_bn(module: nn.Module, args: tuple) -> None:
            for bn in frozen_bn:
                bn.eval()

        network._frozen_bn_hook = network.register_forward_pre_hook(_freeze_bn)
    n_train = sum(p.numel() for p in network.parameters() if p.requires_grad)
    logger.info(
        "stage: %d of %d parameters trainable, %d BatchNorm layers frozen",
        n_train,
        sum(p.numel() for p in network.parameters()),
        len(frozen_bn),
    )
    return network


def trainable_parameters(network: nn.Module) -> list[nn.Parameter]:
    """The parameters an optimizer should see (frozen ones get no state)."""
    params = [p for p in network.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(network).__name__}: no trainable parameter in this stage")
    return params


def prepare_network(
    network: nn.Module,
    stage: int,
    trainable: str | Sequence[str],
    previous: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    channels_last: bool = True,
    bf16: bool | str = False,
    load_previous: bool = True,
) -> nn.Module:
    """Load the previous stage's best checkpoint (stage > 1; ``load_previous`` False: the network was
    built from it already, as when stages change the architecture), apply the stage's freezing, move to
    ``device`` (channels_last: 4.4x faster ResNet forward on this project's CPUs) and, with ``bf16``
    (True, or "auto": when the CPU has bfloat16 kernels), enable CPU autocast. Plain ``nn.Conv2d``
    layers become :class:`~mammo_monai.networks.GuardedConv2d`, which avoid two oneDNN bugs that
    channels_last and bf16 reach (a heap overflow, wrong bf16 results; networks/onednn_guards.py)."""
    if stage > 1 and load_previous:
        if not previous:
            raise ValueError(f"stage {stage} needs the previous stage's checkpoint")
        n = load_weights(network, previous, f"stage {stage - 1} checkpoint")
        logger.info("stage %d starts from %s (%d tensors)", stage, previous, n)
    apply_stage(network, trainable)
    guard_convolutions(network)
    network = network.to(device)
    if channels_last:
        network = network.to(memory_format=torch.channels_last)
    if bf16 is True or (bf16 == "auto" and bf16_supported(device)):
        enable_cpu_autocast(network)
    return network


LR_SCHEDULES = ("constant", "one_cycle")


def stage_lr_scheduler(
    optimizer: torch.optim.Optimizer,
    schedule: str,
    learning_rate: float,
    total_steps: int,
    pct_start: float = 0.2,
) -> torch.optim.lr_scheduler.LRScheduler:
    """The stage's learning-rate schedule, stepped once per iteration.

    Args:
        schedule: ``constant``: ``learning_rate`` throughout (Shen et al.: one rate per stage);
            ``one_cycle``: warm up to ``learning_rate`` over ``pct_start`` of the steps, then cosine
            decay (``OneCycleLR``): a network trained from scratch in few epochs (the CPU demo) settles
            instead of ending on a noisy step.
        total_steps: iterations in the stage (epochs x batches per epoch); any number from 1 works.
    """
    if schedule == "constant":
        return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if schedule == "one_cycle":
        if not 0 <= pct_start < 1:  # OneCycleLR accepts 1, then divides by the empty decay phase
            raise ValueError(f"pct_start must be in [0, 1) (the warm-up's share of the steps), got {pct_start}")
        steps = max(1, int(total_steps))
        # OneCycleLR ends the warm-up at step pct_start * steps - 1 and divides by that length: a warm-up
        # of exactly one step (5 steps at 0.2, 4 at 0.25) raises ZeroDivisionError. Half a step more
        # gives what 6 steps at 0.2 give: step 0 at the initial rate, the peak right after.
        if float(pct_start * steps) == 1.0:
            pct_start = 1.5 / steps
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=learning_rate, total_steps=steps, pct_start=pct_start
        )
    raise ValueError(f"unknown lr_schedule {schedule!r}; choose from {list(LR_SCHEDULES)}")
