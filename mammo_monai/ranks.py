"""Which process this is under ``torchrun``: the rank and the number of processes of the
``torch.distributed`` group (0 and 1 without one). The one rank helper of the package: it sits below
every stage, so evaluation, tracking and training all ask it (``training.distributed`` re-exports it).

Not Ignite's ``idist.get_rank``: with a group that ``torch.distributed`` made itself, Ignite's first
call in each process makes a gloo group and all-reduces over it, a collective that hangs when only
rank 0 asks (as in ``if is_main_process(): ...`` on a path the other ranks do not take).
"""

from __future__ import annotations

import torch.distributed as dist


def _in_group() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if _in_group() else 0


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    return dist.get_world_size() if _in_group() else 1


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return world_size() > 1


def is_main_process() -> bool:
    """True on rank 0, and in a single process: the one that writes files and logs to MLflow."""
    return rank() == 0
