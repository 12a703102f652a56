from __future__ import annotations

import pytest
import torch

from mammo_monai.training import stage_lr_scheduler


def _rates(schedule: str, steps: int = 20) -> list[float]:
    opt = torch.optim.Adam(torch.nn.Linear(2, 1).parameters(), lr=1e-3)
    sched = stage_lr_scheduler(opt, schedule, 1e-3, steps)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def test_constant_schedule_keeps_the_stage_rate():
    assert _rates("constant") == [1e-3] * 20


def test_one_cycle_warms_up_to_the_stage_rate_then_decays():
    rates = _rates("one_cycle")
    peak = max(range(20), key=rates.__getitem__)
    assert rates[0] < 1e-4 and rates[-1] < 1e-5  # starts and ends low
    assert rates[peak] == pytest.approx(1e-3, rel=1e-3) and 2 <= peak <= 6  # peak at the stage rate, 20 % in


def test_unknown_schedule_is_refused():
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match="unknown lr_schedule 'cosine'"):
        stage_lr_scheduler(opt, "cosine", 0.1, 10)


@pytest.mark.parametrize("steps", range(1, 11))
def test_one_cycle_runs_any_small_stage(steps):
    # 5 steps at pct_start 0.2 (and 4 at 0.25) give OneCycleLR a one-step warm-up: ZeroDivisionError
    for pct_start in (0.2, 0.25):
        opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
        sched = stage_lr_scheduler(opt, "one_cycle", 0.1, steps, pct_start=pct_start)
        rates = []
        for _ in range(steps):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert all(0 <= r <= 0.1 for r in rates) and rates[-1] < 1e-3
        if steps >= 2:
            assert max(rates) > 0.05  # the stage reaches near its rate, whatever its length


def test_one_cycle_refuses_a_warm_up_of_every_step():
    opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"pct_start must be in \[0, 1\)"):
        stage_lr_scheduler(opt, "one_cycle", 0.1, 10, pct_start=1.0)
