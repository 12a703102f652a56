from __future__ import annotations

import pandas as pd
import pytest
import torch
from ignite.metrics import Accuracy
from monai.engines import SupervisedTrainer

from mammo_monai.evaluation import pred_label, prob_label
from mammo_monai.networks import patch_resnet
from mammo_monai.training import apply_stage, prepare_network, records, trainable_parameters


def test_frozen_layers_stay_frozen_through_a_monai_trainer():
    torch.manual_seed(0)
    net = apply_stage(patch_resnet("resnet10-tiny"), ["layer4", "fc"])
    frozen_bn = net.bn1
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.Adam(trainable_parameters(net), lr=1e-2)
    data = [{"image": torch.rand(1, 32, 32) * (i + 1), "label": i % 5} for i in range(8)]
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    SupervisedTrainer(
        device="cpu",
        max_epochs=2,
        train_data_loader=loader,
        network=net,
        optimizer=opt,
        loss_function=torch.nn.CrossEntropyLoss(),
    ).run()
    after = net.state_dict()
    assert torch.equal(before["bn1.running_mean"], after["bn1.running_mean"]) and not frozen_bn.training
    assert torch.equal(before["layer1.0.conv1.weight"], after["layer1.0.conv1.weight"])
    assert net.layer1[0].conv1.weight.grad is None
    assert not torch.equal(before["fc.weight"], after["fc.weight"])
    assert not torch.equal(before["layer4.0.bn1.running_mean"], after["layer4.0.bn1.running_mean"])
    state_params = {id(p) for p in opt.state}
    assert state_params == {id(p) for p in net.parameters() if p.requires_grad}


def test_unknown_trainable_prefix_is_an_error():
    with pytest.raises(ValueError, match=r"\['head'\] match no parameter"):
        apply_stage(patch_resnet("resnet10-tiny"), ["head"])


def test_stage_two_needs_a_matching_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="stage 1 checkpoint not found"):
        prepare_network(patch_resnet("resnet10-tiny"), 2, "all", tmp_path / "stage1" / "model.pt")
    torch.save(patch_resnet("resnet18-narrow").state_dict(), tmp_path / "other.pt")
    with pytest.raises(ValueError, match="does not match ResNet"):
        prepare_network(patch_resnet("resnet10-tiny"), 2, "all", tmp_path / "other.pt")


def _table(tmp_path, labels, split="train"):
    for i in range(len(labels)):
        (tmp_path / f"{i}.png").write_bytes(b"x")
    path = tmp_path / "t.csv"
    pd.DataFrame(
        {"path": [str(tmp_path / f"{i}.png") for i in range(len(labels))], "label": labels, "split": split}
    ).to_csv(path, index=False)
    return path


def test_records_refuse_labels_outside_the_classes_and_empty_splits(tmp_path):
    table = _table(tmp_path, [0, 1, 7])
    with pytest.raises(ValueError, match=r"1 row\(s\) of split 'train' have a label outside 0..4"):
        records(table, "train", 5, image_key="path")
    with pytest.raises(ValueError, match="no rows in split 'val'"):
        records(table, "val", 8, image_key="path")
    assert [r["label"] for r in records(table, "train", 8, image_key="path")] == [0, 1, 7]


def test_accuracy_uses_class_indices_and_auc_probabilities():
    logits = torch.tensor([[2.0, 0.1, 0.0], [0.0, 3.0, 0.1], [0.0, 0.2, 1.0], [1.0, 0.0, 0.0]])
    out = [{"pred": p, "label": torch.tensor(y)} for p, y in zip(logits, [0, 1, 1, 2])]
    acc = Accuracy()
    acc.update(pred_label(out))
    assert acc.compute() == pytest.approx(0.5)  # element-wise one-hot accuracy would say 0.667
    probs, onehot = prob_label(out)
    assert probs.shape == (4, 3) and torch.allclose(probs.sum(1), torch.ones(4)) and onehot.shape == (4, 3)
    binary = [{"pred": torch.tensor([0.0, 1.0]), "label": torch.tensor(1)}]
    p, y = prob_label(binary)
    assert p.shape == (1,) and 0.7 < float(p[0]) < 0.75 and y.tolist() == [1]


def test_prepare_network_guards_the_convolutions_of_any_network():
    from mammo_monai.networks import GuardedConv2d

    plain = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 1, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(16, 4, 3))
    net = prepare_network(plain, 1, "all", channels_last=True)
    assert [type(m) for m in net if isinstance(m, torch.nn.Conv2d)] == [GuardedConv2d, GuardedConv2d]
    assert list(net.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
