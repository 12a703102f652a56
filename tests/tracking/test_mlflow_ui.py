"""The MLflow UI as a person sees it: a two-stage training logged through the bundles' MLflow handlers,
``mlflow ui`` on its store as the README says, and the link the README and the demo print opened in a
fresh headless Chromium. It must list the training with its metrics, not MLflow 3's GenAI overview."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import mlflow
import pytest
from ignite.engine import Engine, Events

from mammo_monai.tracking import StageMLFlowHandler, StageValMLFlowHandler, ui_links
from mammo_monai.tracking.ui import RUNS_VIEW, VIEW_TAG, runs_page_url
from tests.conftest import mlflow_store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
README = Path(__file__).resolve().parents[2] / "README.md"
EXPERIMENT = "whole_image_classifier"
STAGE_AUCS = {1: [0.61, 0.65], 2: [0.70, 0.7507, 0.74]}  # validation AUC per epoch; stage 2's best is epoch 2


def _train_stage(root: Path, uri: str, stage: int, last: bool) -> None:
    """One stage of training ``t1``: plain Ignite engines carrying the handlers the bundles attach; per
    epoch a training loss, a validation AUC and the best so far, as MONAI's evaluator keeps it."""
    aucs = STAGE_AUCS[stage]
    common = {"tracking_uri": uri, "experiment_name": EXPERIMENT, "run_name": f"stage{stage}", "iteration_log": False}
    stage_dir = str(root / f"stage{stage}")
    trainer, evaluator = Engine(lambda e, b: {"loss": 0.5}), Engine(lambda e, b: None)

    @trainer.on(Events.EPOCH_COMPLETED)
    def _loss_then_validate(engine: Engine) -> None:
        engine.state.metrics["train_loss"] = 1.0 / (engine.state.epoch + 2 * stage)
        evaluator.run([0], max_epochs=1)

    @evaluator.on(Events.EPOCH_COMPLETED)
    def _auc(engine: Engine) -> None:
        seen = aucs[: trainer.state.epoch]
        engine.state.metrics["val_auc"] = seen[-1]
        engine.state.best_metric, engine.state.best_metric_epoch = max(seen), seen.index(max(seen)) + 1

    StageMLFlowHandler(
        stage_dir=stage_dir,
        training_id="t1",
        bundle=EXPERIMENT,
        last_stage=last,
        tags={"stage": stage, "bundle": EXPERIMENT},
        output_transform=lambda x: None,
        close_on_complete=True,
        **common,
    ).attach(trainer)
    StageValMLFlowHandler(
        stage_dir=stage_dir,
        state_attributes=["best_metric", "best_metric_epoch"],
        global_epoch_transform=lambda _: trainer.state.epoch,  # what MONAI's ValidationHandler gives
        **common,
    ).attach(evaluator)
    trainer.run([0, 1], max_epochs=len(aucs))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("mlflow_ui")
    uri = mlflow_store(root)
    _train_stage(root, uri, 1, last=False)
    _train_stage(root, uri, 2, last=True)
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    return {"uri": uri, "root": root, "client": client, "experiment": experiment, "runs": runs}


def test_parent_run_holds_each_stages_final_metrics(store):
    parent = store["runs"][f"{EXPERIMENT}-t1"]
    metrics = parent.data.metrics
    assert parent.info.status == "FINISHED"
    assert metrics["stage1/val_auc"] == 0.65 and metrics["stage1/best_metric"] == 0.65
    assert metrics["stage2/val_auc"] == 0.74 and metrics["stage2/best_metric"] == 0.7507
    assert metrics["stage2/best_metric_epoch"] == 2 and metrics["stage2/train_loss"] == pytest.approx(1 / 7)
    # under their own names: the latest stage's figures, in the stage runs' columns; the history is per stage
    assert metrics["val_auc"] == 0.74 and metrics["best_metric"] == 0.7507
    history = store["client"].get_metric_history(parent.info.run_id, "best_metric")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.65), (2, 0.7507)]
    assert "stage1/val_auc" not in store["runs"]["stage1"].data.metrics  # the stages keep their own names


def test_experiment_carries_the_view_the_printed_link_opens(store, capsys):
    view = json.loads(store["experiment"].tags[VIEW_TAG])
    columns = json.loads(view["state"])["selectedColumns"]
    assert view["name"] == "Training runs"
    assert columns[:3] == ["metrics.`best_metric`", "metrics.`stage1/best_metric`", "metrics.`stage2/best_metric`"]
    assert {"metrics.`val_auc`", "metrics.`train_loss`"} <= set(columns)
    url = runs_page_url(store["experiment"].experiment_id)
    assert url.startswith(f"http://127.0.0.1:5000/#/experiments/{store['experiment'].experiment_id}/runs?")
    assert url.endswith(f"?workflowType=machine_learning&viewStateShareKey={RUNS_VIEW}")
    # the README prints this very link (with <id> for the experiment's number), the demo and ui_links the real one
    assert runs_page_url("<id>") in README.read_text()
    assert ui_links.main(["--tracking-uri", store["uri"]]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"mlflow ui --backend-store-uri {store['uri']}",
        f"{EXPERIMENT}: {url}",
    ]


class _Text(HTMLParser):
    """The text a person reads on a page: everything but scripts and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(url: str, server: subprocess.Popen, log: Path, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow ui exited {server.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"mlflow ui did not answer {url} within {seconds:.0f} s: {log.read_text()[-2000:]}")


def _rendered_text(url: str, profile: Path) -> str:
    """The page as a new user's browser renders it (a fresh profile: nothing remembered)."""
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}"]
        + ["--window-size=1280,800", "--virtual-time-budget=20000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=180,
    )
    parser = _Text()
    parser.feed(out.stdout)
    return " ".join(parser.parts)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (Debian: apt-get install chromium)")
def test_printed_link_shows_the_training_runs_with_metrics_in_a_browser(store, tmp_path):
    port, log = _free_port(), tmp_path / "mlflow_ui.log"
    mlflow_cli = Path(sys.executable).with_name("mlflow")  # the README's command, from this environment
    command = [str(mlflow_cli), "ui", "--backend-store-uri", store["uri"], "--host", "127.0.0.1", "--port", str(port)]
    with log.open("w") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_serving(f"http://127.0.0.1:{port}/health", server, log)
        url = runs_page_url(store["experiment"].experiment_id, f"http://127.0.0.1:{port}")
        text = _rendered_text(url, tmp_path / "profile")
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # mlflow ui runs its server in child processes
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert f"{EXPERIMENT}-t1" in text, text[:2000]  # the training's row
    assert "best_metric" in text and "stage1/best_metric" in text, text[:2000]  # metric columns
    assert "0.7507" in text and "0.65" in text, text[:2000]  # its stages' best AUCs, on the parent row
    assert "Traces 0" not in text and "Latency" not in text and "Overview" not in text, text[:2000]


def test_compare_gives_the_parent_its_stages_best_not_the_best_of_their_last_epochs(store):
    from mammo_monai.tracking.compare import compare_runs

    table = compare_runs(EXPERIMENT, tracking_uri=store["uri"]).set_index("stage")
    # the parent's val_auc history holds the stages' last epochs (0.65, 0.74); its best epoch was 0.7507
    assert table.loc["", "best_val_auc"] == 0.7507
    assert table.loc["2", "best_val_auc"] == 0.7507 and table.loc["1", "best_val_auc"] == 0.65
