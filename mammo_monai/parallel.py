"""Run a function over many items in worker processes with a progress bar, never stopping on one failure."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # one core per worker; the pool provides the parallelism


def run_parallel(
    fn: Callable[..., Any],
    jobs: Sequence[tuple],
    workers: int | None = None,
    desc: str = "",
    progress: bool = True,
    on_error: Callable[[tuple, BaseException], Any] | None = None,
) -> list[Any]:
    """``[fn(*job) for job in jobs]`` over ``workers`` processes (default: all cores), in job order.

    Processes are spawned, not forked: forking a parent that already runs PyTorch's thread pools can
    hang the children. ``fn`` must be importable (a module-level function). When a call raises (a
    worker killed by the OOM killer, say) ``on_error(job, error)`` gives its result instead; without
    ``on_error`` the error propagates.
    """
    from tqdm import tqdm

    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    results: list[Any] = [None] * len(jobs)
    bar = tqdm(total=len(jobs), desc=desc, disable=not progress, unit="item")

    def _fail(i: int, err: BaseException) -> None:
        if on_error is None:
            raise err
        results[i] = on_error(jobs[i], err)

    if workers == 1:
        for i, job in enumerate(jobs):
            try:
                results[i] = fn(*job)
            except Exception as err:
                _fail(i, err)
            bar.update()
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
            futures = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
            for fut in as_completed(futures):
                try:
                    results[futures[fut]] = fut.result()
                except Exception as err:
                    _fail(futures[fut], err)
                bar.update()
    bar.close()
    return results
