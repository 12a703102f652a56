"""Stop a training at a safe point when asked to (SIGTERM, Ctrl-C).

Raising ``KeyboardInterrupt`` straight from a signal handler can land anywhere, including inside an
MLflow write to its sqlite store: the half-done transaction then keeps the database locked and the
stage's run cannot be ended KILLED. So the first signal only sets a flag, and the trainer raises at
the start of its next iteration, where no write is in flight. A second signal stops at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from ignite.engine import Engine, Events

logger = logging.getLogger(__name__)


class StopRequest:
    """Context manager that turns SIGTERM and SIGINT into a deferred ``KeyboardInterrupt``.

    Inside the ``with`` block the first signal sets :attr:`requested`; :meth:`attach` makes an Ignite
    engine raise at its next ``ITERATION_STARTED``. Outside the main thread it does nothing (Python
    only delivers signals there).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None:
            raise KeyboardInterrupt(f"signal {name} (second)")
        self.requested = name
        logger.warning("%s received: stopping after the current iteration (send it again to stop now)", name)

    def check(self, engine: Engine | None = None) -> None:
        """Raise ``KeyboardInterrupt`` when a stop was requested."""
        if self.requested is not None:
            raise KeyboardInterrupt(f"signal {self.requested}")

    def attach(self, engine: Engine) -> None:
        if not engine.has_event_handler(self.check, Events.ITERATION_STARTED):
            engine.add_event_handler(Events.ITERATION_STARTED, self.check)
