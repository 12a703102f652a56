"""Multi-process training (``torchrun``): which process this is, and decisions taken once on rank 0.

Under ``torchrun --nproc_per_node N`` every process runs the same bundle config. Whatever reads or
writes shared state (the training id, a finished stage, ``last.pt``, checkpoints, MLflow) is decided
or done by rank 0 alone; the other ranks receive rank 0's answer by broadcast, so every rank takes the
same branch and no collective operation waits for a rank that went another way. Without an initialised
process group (one process) every helper here does what the plain single-process code does.

Backends: NCCL on GPUs (one device per process, ``cuda:<LOCAL_RANK>``), gloo on the CPU. The rank
helpers (``rank``, ``world_size``, ``is_distributed``, ``is_main_process``) live in
:mod:`mammo_monai.ranks`, below tracking and evaluation, and are re-exported here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from ignite.engine import Engine, Events
from monai.data import DistributedSampler
from torch.utils.data import Dataset, Sampler

from mammo_monai.ranks import is_distributed, is_main_process, rank, world_size  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)

T = TypeVar("T")


def local_device() -> torch.device:
    """``cuda:<LOCAL_RANK>`` when CUDA is available (``torchrun`` sets ``LOCAL_RANK`` per node), else the CPU."""
    if torch.cuda.is_available():
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return torch.device("cpu")


def init_distributed(backend: str | None = None) -> bool:
    """Join the process group ``torchrun`` describes (``env://``: RANK, WORLD_SIZE, MASTER_ADDR, ...).

    Args:
        backend: None: NCCL when CUDA is available, else gloo.

    Returns:
        True when this process is part of a group of more than one (False: a plain single process,
        started without ``torchrun``; nothing is initialised).
    """
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed: multi-process training is not possible")
    if not dist.is_initialized():
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            logger.warning("multi_gpu_train.yaml without torchrun (no RANK / WORLD_SIZE): training in one process")
            return False
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if torch.cuda.is_available():
            torch.cuda.set_device(local_device())
        dist.init_process_group(backend=backend)
        logger.info("rank %d of %d (%s, %s)", rank(), world_size(), backend, local_device())
    return is_distributed()


#: set while ``mammo-monai train`` holds the process group across its stages (see :func:`hold_process_group`)
_HELD = {"by_training": False}


def finish_distributed() -> None:
    """Wait for every rank, then leave the process group (rank 0 may still be writing when others end);
    while ``mammo-monai train`` holds the group across stages, only wait."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        if not _HELD["by_training"]:
            dist.destroy_process_group()


def hold_process_group() -> bool:
    """Join the ``torchrun`` process group for a whole multi-stage training, so the decisions between
    stages (training id, finished stages) are taken on rank 0; stages' ``finalize`` then keep it.

    Returns:
        True when a group of more than one process is held (False: a single process, nothing to hold).
    """
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return False
    held = init_distributed()
    _HELD["by_training"] = held
    return held


def release_process_group() -> None:
    """Leave the group :func:`hold_process_group` joined."""
    _HELD["by_training"] = False
    finish_distributed()


def _collective_device() -> torch.device:
    """Where NCCL wants the tensors of a collective; gloo works on the CPU."""
    return local_device() if dist.get_backend() == "nccl" else torch.device("cpu")


def broadcast_object(obj: T, src: int = 0) -> T:
    """``obj`` of rank ``src`` on every rank (picklable objects; the identity in one process)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=_collective_device())
    return box[0]


def on_rank0(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn`` on rank 0 only and give every rank its result, or raise its exception everywhere.

    This is how a decision that reads or changes shared state (a file, the MLflow store) is taken once:
    the other ranks never evaluate ``fn``, and an error on rank 0 stops every rank instead of leaving
    them waiting in the next collective. In one process it is ``fn(*args, **kwargs)``.
    """
    if not is_distributed():
        return fn(*args, **kwargs)
    outcome: tuple[bool, Any] = (True, None)
    if is_main_process():
        try:
            outcome = (True, fn(*args, **kwargs))
        except Exception as err:  # sent to every rank, raised there too
            outcome = (False, err)
    ok, value = broadcast_object(outcome)
    if not ok:
        raise value
    return value


def all_gather_objects(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order (``[obj]`` in one process)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on at least one (``flag`` in one process)."""
    if not is_distributed():
        return bool(flag)
    value = torch.tensor([1 if flag else 0], device=_collective_device())
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def sum_over_ranks(values: Sequence[int]) -> list[int]:
    """The element-wise sum of ``values`` over every rank, on every rank (``values`` in one process):
    how a count that each rank makes of its own share becomes one decision that all ranks take."""
    if not is_distributed():
        return [int(v) for v in values]
    total = torch.tensor([int(v) for v in values], dtype=torch.int64, device=_collective_device())
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return [int(v) for v in total.tolist()]


def data_parallel(network: torch.nn.Module, device: torch.device | str | None = None) -> torch.nn.Module:
    """``network`` wrapped in ``DistributedDataParallel`` for the trainer (gradients averaged over the
    ranks); the network itself in one process. The unwrapped network stays what the evaluator runs and
    the checkpoints save, so its state_dict keys never gain a ``module.`` prefix.

    ``find_unused_parameters`` is on: a stage may hold trainable layers its forward pass does not use.
    """
    if not is_distributed():
        return network
    device = torch.device(device) if device is not None else local_device()
    ids = [device] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(network, device_ids=ids, find_unused_parameters=True)


def sync_buffers_before(engine: Engine, network: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics) when ``engine`` starts an epoch.

    DDP copies rank 0's buffers to the others before each training forward pass, but the last training
    batch of an epoch moves each rank's statistics its own way. Attached to the evaluator, this makes
    every rank validate exactly the network rank 0 saves.
    """

    def _sync(_: Engine) -> None:
        if is_distributed():
            for buffer in network.buffers():
                dist.broadcast(buffer.data, src=0)

    if is_distributed():
        engine.add_event_handler(Events.EPOCH_STARTED, _sync)


class ShardedSampler(Sampler[int]):
    """Rank ``rank``'s share of the indices another sampler draws (e.g. a class-balancing
    ``WeightedRandomSampler``): every rank draws the same sequence (same seed, same number of draws)
    and keeps every ``world``-th index, padded so that each rank gets the same number."""

    def __init__(self, sampler: Sampler[int], num_replicas: int, rank: int) -> None:
        self.sampler, self.num_replicas, self.rank = sampler, int(num_replicas), int(rank)
        self.num_samples = -(-len(sampler) // self.num_replicas)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[int]:
        indices = list(self.sampler)
        indices += indices[: self.num_samples * self.num_replicas - len(indices)]
        return iter(indices[self.rank :: self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples


def shard(
    sampler: Sampler[int] | None, dataset: Dataset, shuffle: bool = True, even_divisible: bool = True
) -> Sampler[int] | None:
    """The sampler of this rank's share of ``dataset``; ``sampler`` unchanged in one process.

    Args:
        sampler: the single-process sampler (None: plain shuffling or order).
        dataset: the dataset the loader reads.
        shuffle: without ``sampler``, shuffle (training) or keep the order (validation).
        even_divisible: pad so every rank gets as many items as the others (training: every rank must
            run the same number of iterations); False for validation, so no image counts twice.

    Returns:
        ``monai.data.DistributedSampler`` (without ``sampler``) or :class:`ShardedSampler`.
    """
    if not is_distributed():
        return sampler
    n, world = len(dataset), world_size()  # type: ignore[arg-type]
    if n < world:
        raise ValueError(f"{n} items cannot be shared by {world} processes: every rank needs at least one")
    if sampler is None:
        return DistributedSampler(dataset, even_divisible=even_divisible, shuffle=shuffle)
    if not even_divisible:
        raise ValueError("a sampler that draws (e.g. class balancing) can only be sharded with even_divisible=True")
    return ShardedSampler(sampler, world, rank())
