"""Run a function over many items in worker processes with a progress bar, never stopping on one failure.

A worker that dies (the OOM killer, a segmentation fault in a native library) fails only the item it
was holding: each worker takes one item at a time over its own pipe, so the parent always knows which
item a dead worker had. That item is retried once in a fresh worker, then reported through
``on_error``; every other item goes on. (``concurrent.futures.ProcessPoolExecutor`` cannot do this:
one dead worker breaks the pool and fails every pending item.)
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.connection import Connection, wait
from typing import Any


class WorkerDied(RuntimeError):
    """A worker process ended (killed, crashed) while it held an item."""


def _init_worker() -> None:
    """One core per worker: the pool provides the parallelism."""
    torch = sys.modules.get("torch")  # imported with the job's module, if the job needs it at all
    if torch is not None:
        torch.set_num_threads(1)
    else:
        os.environ["OMP_NUM_THREADS"] = "1"  # for a torch imported later by the job


def _context(module: str) -> Any:
    """A fork server that has imported ``module`` (the job function's), where the platform has one; spawn
    elsewhere.

    The server is one fresh process per parent (started at the first call, kept until the parent exits)
    that imports ``module`` once and then forks every worker of every later call: a worker starts in
    milliseconds instead of importing torch and MONAI again (about 5 s of CPU each here; MONAI imports all
    its sub-packages on ``import monai``), and the workers share those pages. The server never runs
    PyTorch's thread pools, so forking it is safe where forking the parent is not. Its modules are the
    ones of the first call; a later call's function from another module is imported by each worker.
    """
    if "forkserver" not in get_all_start_methods():
        return get_context("spawn")
    ctx = get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", module])  # no effect once the server runs
    return ctx


def warm_up(target: Callable[..., Any] | str, workers: int | None = None) -> None:
    """Start the fork server for :func:`run_parallel` of ``target`` now, in the background.

    ``target`` is the job function or the name of its module. Call it with the name before the caller
    imports that module itself: the server's import (torch and MONAI, about 6 s of CPU) then runs on the
    second core while the caller's own runs on the first, instead of after it, when the workers would
    wait for it (measured: that wait was why ``prepare`` gained nothing from a second worker). Does
    nothing where ``workers`` (default: all cores) is 1: :func:`run_parallel` then runs in-process.
    """
    if (workers or os.cpu_count() or 1) <= 1:
        return
    module = target if isinstance(target, str) else target.__module__
    if _context(module).get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _worker_loop(conn: Connection, fn: Callable[..., Any], environ: dict[str, str] | None = None) -> None:
    """Receive ``(index, job)``, send back ``(index, ok, result_or_error)``, until ``None`` arrives.

    ``environ``: the parent's environment now (a forked worker inherits the fork server's, of when it
    started)."""
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    _init_worker()
    while True:
        task = conn.recv()
        if task is None:
            return
        index, job = task
        try:
            conn.send((index, True, fn(*job)))
        except Exception as err:  # reported to the parent, which decides what the item's result is
            try:
                conn.send((index, False, err))
            except Exception:  # an exception that cannot be pickled travels as its text
                conn.send((index, False, RuntimeError(f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}")))


def describe_exit(exitcode: int | None) -> str:
    """ "killed by signal SIGSEGV" / "exit code 3" for a process's exit code."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


class _Worker:
    def __init__(self, ctx: Any, fn: Callable[..., Any]) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_loop, args=(child, fn, dict(os.environ)), daemon=True)
        self.process.start()
        child.close()
        self.item: int | None = None

    def give(self, index: int, job: tuple) -> None:
        self.item = index
        self.conn.send((index, job))

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class _Dispatcher:
    """The parent's side of a pool of :class:`_Worker`: hands out one item at a time, collects the results,
    and replaces a worker that died (its item retried first, up to ``retries`` times)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        jobs: Sequence[tuple],
        workers: int,
        retries: int,
        results: list[Any],
        fail: Callable[[int, BaseException], None],
        bar: Any,
    ) -> None:
        self.fn, self.jobs, self.workers, self.retries = fn, jobs, workers, retries
        self.results, self.fail, self.bar = results, fail, bar
        self.ctx = _context(fn.__module__)
        self.queue: deque[int] = deque(range(len(jobs)))
        self.attempts = [0] * len(jobs)
        self.pool: list[_Worker] = []

    def run(self) -> None:
        try:
            while self.queue or any(w.item is not None for w in self.pool):
                self._hand_out()
                busy = [w for w in self.pool if w.item is not None]
                ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
                for w in busy:
                    if w.conn in ready or w.process.sentinel in ready:
                        self._collect(w)
        finally:
            for w in self.pool:
                w.stop()

    def _hand_out(self) -> None:
        for w in [w for w in self.pool if w.item is None and not w.process.is_alive()]:
            self._died(w)  # died between items: nothing lost, replaced below
        outstanding = len(self.queue) + sum(w.item is not None for w in self.pool)
        while len(self.pool) < min(self.workers, outstanding):
            self.pool.append(_Worker(self.ctx, self.fn))
        for w in self.pool:
            if w.item is None and self.queue:
                i = self.queue.popleft()
                self.attempts[i] += 1
                w.give(i, self.jobs[i])

    def _collect(self, w: _Worker) -> None:
        try:
            index, ok, value = w.conn.recv()
        except (EOFError, OSError):  # the worker is gone: its pipe closed
            self._died(w)
            return
        w.item = None
        if ok:
            self.results[index] = value
        else:
            self.fail(index, value)
        self.bar.update()

    def _died(self, w: _Worker) -> None:
        w.process.join()
        self.pool.remove(w)
        w.conn.close()
        index, w.item = w.item, None
        if index is None:
            return
        if self.attempts[index] <= self.retries:
            self.queue.appendleft(index)  # retried first, in a fresh worker
        else:
            attempts = self.attempts[index]
            self.fail(
                index, WorkerDied(f"worker {describe_exit(w.process.exitcode)} on this item ({attempts} attempts)")
            )
            self.bar.update()


def run_parallel(
    fn: Callable[..., Any],
    jobs: Sequence[tuple],
    workers: int | None = None,
    desc: str = "",
    progress: bool = True,
    on_error: Callable[[tuple, BaseException], Any] | None = None,
    retries: int = 1,
) -> list[Any]:
    """``[fn(*job) for job in jobs]`` over ``workers`` processes (default: all cores), in job order.

    Workers are forked from a fork server, never from the parent: forking a parent that already runs
    PyTorch's thread pools can hang the children (see :func:`_context`; spawned where there is no fork
    server). Like spawned ones they get the parent's environment and ``sys.path``, not its changes to
    module state. ``fn`` must be importable (a module-level function). When a call raises,
    ``on_error(job, error)`` gives its result instead; without ``on_error`` the error propagates.
    When a worker dies while holding an item, the item is retried ``retries`` times in a fresh
    worker, then fails with :class:`WorkerDied`; the other items are not affected.
    """
    from tqdm import tqdm

    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    results: list[Any] = [None] * len(jobs)
    bar = tqdm(total=len(jobs), desc=desc, disable=not progress, unit="item")

    def _fail(i: int, err: BaseException) -> None:
        if on_error is None:
            raise err
        results[i] = on_error(jobs[i], err)

    try:
        if workers > 1:
            _Dispatcher(fn, jobs, workers, retries, results, _fail, bar).run()
            return results
        for i, job in enumerate(jobs):  # in-process: no start-up cost, but no protection from a native crash
            try:
                results[i] = fn(*job)
            except Exception as err:
                _fail(i, err)
            bar.update()
    finally:
        bar.close()
    return results
