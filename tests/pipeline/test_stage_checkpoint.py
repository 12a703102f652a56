"""Resume on Ignite's Checkpoint, in one process: a stage stopped after an epoch and resumed from its
``last.pt`` draws what an uninterrupted one draws and ends with the same weights."""

from __future__ import annotations

import monai
import torch
from ignite.engine import Events
from monai.data import CacheDataset, DataLoader
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import ValidationHandler
from monai.transforms import Compose, RandFlipd, RandGaussianNoised
from torch.utils.data import WeightedRandomSampler

from mammo_monai.evaluation import prob_label
from mammo_monai.training import RandomStates, StageCheckpoint, StageEarlyStopping
from mammo_monai.training.checkpoints import LAST, StageFileSaver


def _loader(sampler_seed: int = 0) -> DataLoader:
    data = [{"image": torch.full((1, 4, 4), float(i)), "label": torch.tensor(i % 2)} for i in range(12)]
    augment = Compose([RandFlipd("image", prob=0.5, spatial_axis=1), RandGaussianNoised("image", prob=0.5)])
    dataset = CacheDataset(data, augment, cache_rate=1.0, progress=False)
    sampler = WeightedRandomSampler([1.0] * 12, 12, generator=torch.Generator().manual_seed(sampler_seed))
    return DataLoader(dataset, batch_size=4, sampler=sampler, num_workers=0)


def _epoch(loader: DataLoader) -> list[torch.Tensor]:
    return [batch["image"].clone() for batch in loader]


def test_random_states_give_the_next_epoch_its_augmentations_and_order_again():
    monai.utils.set_determinism(seed=0)
    loader = _loader()
    _epoch(loader)
    states = RandomStates(loader)
    saved = states.state_dict()
    expected = _epoch(loader)
    monai.utils.set_determinism(seed=0)
    fresh = _loader()  # a new process: the pipeline as built, its generators at their first state
    RandomStates(fresh).load_state_dict(saved)
    assert all(torch.equal(a, b) for a, b in zip(expected, _epoch(fresh), strict=True))
    assert len(saved["transforms"]) == 4 and len(saved["generators"]) == 1  # Compose, RandFlipd, RandGaussianNoised
    # and the array RandGaussianNoise inside it; the sampler's generator
    monai.utils.set_determinism(seed=0)
    unrestored = _loader()
    assert not all(torch.equal(a, b) for a, b in zip(expected, _epoch(unrestored)))  # the states matter


def _stage(stage_dir, max_epochs: int, stop_after: int | None = None, patience: int = 10, score=None):
    """A tiny stage as a bundle wires it: trainer, evaluator, early stopping, StageCheckpoint."""
    monai.utils.set_determinism(seed=0)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    optimizer = torch.optim.Adam(net.parameters(), 1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    auc = monai.handlers.ROCAUC(output_transform=prob_label)
    stopper = StageEarlyStopping(patience, score or (lambda e: e.state.metrics["val_auc"]))
    evaluator = SupervisedEvaluator("cpu", _loader(1), net, key_val_metric={"val_auc": auc}, val_handlers=[stopper])
    trainer = SupervisedTrainer(
        "cpu",
        max_epochs,
        _loader(),
        net,
        optimizer,
        torch.nn.CrossEntropyLoss(),
        train_handlers=[ValidationHandler(1, evaluator)],
    )
    stopper.set_trainer(trainer)
    StageCheckpoint(str(stage_dir), "t1", 1, net, optimizer, evaluator, stopper, scheduler).attach(trainer)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: scheduler.step())
    if stop_after is not None:
        trainer.add_event_handler(Events.EPOCH_COMPLETED(once=stop_after), lambda e: e.terminate())
    trainer.run()
    return net, trainer, evaluator, stopper


def test_a_stage_stopped_after_an_epoch_resumes_to_the_uninterrupted_weights(tmp_path):
    whole, _, whole_eval, whole_stop = _stage(tmp_path / "whole", 3)
    _stage(tmp_path / "stopped", 3, stop_after=1)
    assert torch.load(tmp_path / "stopped" / LAST, weights_only=True)["trainer"]["iteration"] == 3  # one epoch
    resumed, trainer, evaluator, stopper = _stage(tmp_path / "stopped", 3)
    assert trainer.state.epoch == 3
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    assert evaluator.state.best_metric_epoch == whole_eval.state.best_metric_epoch
    assert stopper.state_dict() == whole_stop.state_dict()


def test_a_stage_killed_after_early_stopping_and_before_done_json_trains_no_more(tmp_path):
    flat = lambda e: 0.5  # noqa: E731 - never better: patience 1 stops after the second epoch
    _, trainer, _, stopper = _stage(tmp_path, 5, patience=1, score=flat)
    assert trainer.state.epoch == 2 and stopper.stopped
    (tmp_path / "done.json").unlink()  # as if killed while publishing, before the stage was recorded done
    _, resumed, _, _ = _stage(tmp_path, 5, patience=1, score=flat)
    assert resumed.state.epoch == 2 and (tmp_path / "done.json").is_file()


def test_a_last_checkpoint_of_another_training_is_moved_aside(tmp_path):
    _stage(tmp_path, 3, stop_after=1)
    last = torch.load(tmp_path / LAST, weights_only=True)
    last["stage"]["training_id"] = "another"
    torch.save(last, tmp_path / LAST)
    _, trainer, _, _ = _stage(tmp_path, 1)  # training t1: starts from epoch 0, runs its one epoch
    assert trainer.state.iteration == 3 and (tmp_path / "last.another.pt").is_file()


def test_the_saver_replaces_a_file_and_never_deletes_it(tmp_path):
    saver = StageFileSaver(tmp_path)
    saver({"x": torch.zeros(1)}, LAST)
    saver.remove(LAST)  # what Ignite calls before writing the file's successor
    assert torch.load(tmp_path / LAST, weights_only=True)["x"].shape == (1,)
    saver({"x": torch.ones(2)}, LAST)
    assert torch.equal(torch.load(tmp_path / LAST, weights_only=True)["x"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == [LAST]  # no temporary left


def test_early_stopping_state_given_before_the_trainer_is_kept():
    stopper = StageEarlyStopping(patience=3, score_function=lambda e: 0.0)
    stopper.load_state_dict({"counter": 2, "best_score": 0.5})
    trainer = SupervisedTrainer(
        "cpu",
        1,
        [],
        torch.nn.Linear(1, 1),
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], 0.1),
        torch.nn.MSELoss(),
    )
    stopper.set_trainer(trainer)
    assert {k: stopper.state_dict()[k] for k in ("counter", "best_score")} == {"counter": 2, "best_score": 0.5}
