"""A stop request (SIGTERM, Ctrl-C) is honoured at the next iteration, never in the middle of a write."""

from __future__ import annotations

import os
import signal

import pytest
from ignite.engine import Engine

from mammo_monai.training.interrupt import StopRequest


def test_first_signal_waits_for_the_next_iteration_and_a_second_stops_at_once():
    seen = []

    def step(engine, batch):
        seen.append(batch)
        if batch == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # handled here: no exception in the middle of the step
            seen.append("after signal")
        return batch

    engine, before = Engine(step), signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        stop.attach(engine)
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            engine.run([0, 1, 2, 3], max_epochs=1)
        assert seen == [0, 1, "after signal"] and stop.requested == "SIGTERM"
        with pytest.raises(KeyboardInterrupt, match="second"):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored
