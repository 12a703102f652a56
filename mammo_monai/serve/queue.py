"""A bounded queue in front of the one model instance: a request either waits its turn or is refused at once.

The model runs in one worker thread (one instance, so its memory and threads are bounded); the event loop
stays free to answer ``/health``, ``/ready`` and refusals while it runs. At most ``max_queue`` requests
wait behind the one running; the next is refused with :class:`QueueFull`, which the app answers with
503 and a ``Retry-After`` estimated from recent service times, never a hang.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class QueueFull(Exception):
    """The queue holds ``max_queue`` waiting requests; ``retry_after`` is the suggested wait in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the service is busy; retry after {retry_after} s")
        self.retry_after = retry_after


class InferenceQueue:
    """Runs jobs one at a time in a worker thread, with at most ``max_queue`` waiting.

    Args:
        max_queue: requests allowed to wait behind the running one (0: refuse whenever one runs).
    """

    def __init__(self, max_queue: int = 8) -> None:
        if max_queue < 0:
            raise ValueError(f"max_queue must be 0 or more, got {max_queue}")
        self.max_queue = max_queue
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mammo-serve-model")
        self._lock = threading.Lock()
        self._admitted = 0  # running + waiting
        self._recent: deque[float] = deque(maxlen=20)  # seconds per job

    @property
    def depth(self) -> int:
        """Requests admitted now: the running one and those waiting."""
        return self._admitted

    def retry_after(self) -> int:
        """Seconds after which the queue is likely to have room: the recent mean job time per job ahead."""
        mean = sum(self._recent) / len(self._recent) if self._recent else 1.0
        return max(1, math.ceil(mean * max(1, self._admitted)))

    def _admit(self) -> None:
        with self._lock:
            if self._admitted > self.max_queue:  # one running and max_queue waiting
                raise QueueFull(self.retry_after())
            self._admitted += 1

    async def run(self, job: Callable[[], T]) -> tuple[T, float]:
        """Run ``job`` in the model thread; returns its result and the seconds it waited for its turn.

        Raises:
            QueueFull: ``max_queue`` requests wait already (raised at once, before anything runs).
        """
        self._admit()
        loop = asyncio.get_running_loop()
        queued = loop.time()
        waited = 0.0

        def timed() -> T:
            nonlocal waited
            waited = loop.time() - queued
            start = loop.time()
            try:
                return job()
            finally:
                self._recent.append(loop.time() - start)

        try:
            return await loop.run_in_executor(self._executor, timed), waited
        finally:
            with self._lock:
                self._admitted -= 1

    def close(self) -> None:
        """Stop the worker thread after the job it runs."""
        self._executor.shutdown(wait=True, cancel_futures=True)
