from __future__ import annotations

import multiprocessing
import os
import signal

import pytest

from mammo_monai.parallel import WorkerDied, run_parallel, warm_up


def crash_on(value: int, bad: int, marker_dir: str) -> int:
    """Square ``value``; the process dies of SIGSEGV on ``bad`` (every attempt, counted in ``marker_dir``)."""
    if value == bad:
        with open(os.path.join(marker_dir, f"attempt-{os.getpid()}"), "w"):
            pass
        os.kill(os.getpid(), signal.SIGSEGV)
    if value == -1:
        raise ValueError("negative one is refused")
    return value * value


def test_a_dead_worker_fails_only_its_own_item_after_one_retry(tmp_path):
    jobs = [(v, 3, str(tmp_path)) for v in [1, 2, 3, 4, 5, -1, 6]]
    errors = {}
    out = run_parallel(
        crash_on, jobs, workers=2, progress=False, on_error=lambda job, err: errors.setdefault(job[0], err) and None
    )
    assert out == [1, 4, None, 16, 25, None, 36]
    assert isinstance(errors[3], WorkerDied) and "SIGSEGV" in str(errors[3])
    assert isinstance(errors[-1], ValueError)
    assert len(list(tmp_path.glob("attempt-*"))) == 2  # the first try and one retry, in two processes


def test_without_on_error_the_first_failure_propagates(tmp_path):
    with pytest.raises(ValueError, match="negative one"):
        run_parallel(crash_on, [(-1, 3, str(tmp_path))], workers=1, progress=False)


def parent_and_probe(_: int) -> tuple[int, str | None]:
    """The worker's parent process and the value of ``MAMMO_PARALLEL_PROBE`` it sees."""
    return os.getppid(), os.environ.get("MAMMO_PARALLEL_PROBE")


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(), reason="no fork server here")
def test_workers_of_every_call_fork_from_one_warm_server_with_the_callers_environment(monkeypatch):
    warm_up(parent_and_probe)
    monkeypatch.setenv("MAMMO_PARALLEL_PROBE", "set after the server started")
    first = run_parallel(parent_and_probe, [(i,) for i in range(3)], workers=2, progress=False)
    second = run_parallel(parent_and_probe, [(i,) for i in range(2)], workers=2, progress=False)
    parents = {pid for pid, _ in first + second}
    assert len(parents) == 1 and os.getpid() not in parents  # one server, never the caller itself
    assert {probe for _, probe in first + second} == {"set after the server started"}
