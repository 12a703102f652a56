"""Segment-then-classify pieces: discs from centre + radius, the SSL objective learning, the max rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import DataLoader, Dataset

from mammo_monai.data.prepare import prepare
from mammo_monai.data.segmentation import segmentation_records
from mammo_monai.inference.opened_bundle import DecisionRule, OpenedBundle
from mammo_monai.inference.segment_classify import NO_CANDIDATE, SegmentThenClassify, crop_at
from mammo_monai.networks.unet_ssl import lesion_unet
from mammo_monai.transforms.ssl import segmentation_transforms, ssl_transforms
from tests.data.test_other_adapters import build_mias


def test_a_lesion_given_by_centre_and_radius_becomes_a_disc_mask(tmp_path):
    prepare("mias", build_mias(tmp_path / "mias"), tmp_path / "m", size=(128, 128), workers=1, progress=False)
    records = {r["image_id"]: r for s in ("train", "val", "test") for r in _records(tmp_path / "m", s)}
    target = segmentation_transforms(train=False)(records["mdb001"])["label"][0].numpy() > 0
    # mdb001: radius 10 px in a 128 x 128 film cached at 128 x 128 (maybe mirrored): a disc of ~pi * 10^2 px
    assert abs(target.sum() - np.pi * 10**2) < 0.15 * np.pi * 10**2
    rows, cols = np.nonzero(target)
    assert rows.max() - rows.min() in (18, 19, 20) and cols.max() - cols.min() in (18, 19, 20)  # 19-21 px across


def _records(manifest, split):
    try:
        return segmentation_records(manifest, split, 1.0, normals=None)
    except ValueError:  # a split without lesion images in this tiny set
        return []


def test_the_self_supervised_objective_decreases_in_a_few_steps(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :48]
    paths = []
    for i in range(4):
        img = (((yy - 32) / 28) ** 2 + (xx / 40) ** 2 <= 1) * (
            20000 + 8000 * np.sin(xx / (3 + i)) + 2000 * rng.random((64, 48))
        )
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(img.astype(np.uint16)).save(paths[-1])
    torch.manual_seed(0)
    net = lesion_unet(1, "unet-tiny")
    data = DataLoader(
        Dataset([{"image": p, "label": 0} for p in paths], ssl_transforms((64, 48), validation=True)), batch_size=4
    )
    batch = next(iter(data))
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        optimiser.zero_grad()
        loss = torch.nn.functional.l1_loss(net(batch["image"]), batch["label"])
        loss.backward()
        optimiser.step()
        losses.append(float(loss))
    assert losses[-1] < 0.6 * losses[0], losses[::5]


class _FixedSegmenter(torch.nn.Module):
    def __init__(self, lesion: np.ndarray) -> None:
        super().__init__()
        self.logits = torch.log(torch.tensor(np.stack([1 - lesion, lesion]), dtype=torch.float32).clamp_min(1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[None].expand(x.shape[0], -1, -1, -1)


class _BrightnessClassifier(torch.nn.Module):
    """P(malignant) grows with the crop's mean: logits (benign, malignant) = (0, 10 * (mean - 0.5))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.float().mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(m), 10 * (m - 0.5)], 1)


def _declaring(activation: str, class_names=("benign", "malignant")) -> OpenedBundle:
    """A partner as opened, with nothing but its declared activation and classes (no files)."""
    fields = dict.fromkeys(
        (
            "name",
            "version",
            "folder",
            "given",
            "pipeline",
            "metadata",
            "trained",
            "preprocessing",
            "preprocessing_record",
        )
    )
    return OpenedBundle(
        **fields,
        output_activation=activation,
        decision_rule=DecisionRule(),
        outputs=("probability",),
        class_names=list(class_names),
    )


def _pipeline(lesion: np.ndarray, activation: str = "softmax") -> SegmentThenClassify:
    p = SegmentThenClassify.__new__(SegmentThenClassify)  # the networks without bundles
    p.segmenter, p.classifier, p.patch_size = _FixedSegmenter(lesion), _BrightnessClassifier(), 8
    p.probability = _declaring(activation).probability  # as __init__ takes it from the partner
    p.threshold, p.max_candidates, p.no_candidate = 0.5, 10, NO_CANDIDATE
    return p


def test_the_image_is_as_suspicious_as_its_most_suspicious_candidate():
    lesion = np.zeros((32, 32))
    lesion[4:8, 4:8] = 0.9  # candidate A, over a dark region
    lesion[20:26, 20:26] = 0.7  # candidate B, over a bright region
    image = torch.zeros(1, 32, 32)
    image[0, 16:32, 16:32] = 1.0
    found = _pipeline(lesion)(image)
    a, b = sorted(found["candidates"], key=lambda c: c["centroid"][0])
    # A's 8 x 8 crop is dark: mean 0 -> P = sigmoid(-5); B's crop lies in the bright quarter: mean 1 -> sigmoid(5)
    assert abs(a["malignancy"] - 1 / (1 + np.exp(5))) < 1e-4 and abs(b["malignancy"] - 1 / (1 + np.exp(-5))) < 1e-4
    assert found["probability"] == max(a["malignancy"], b["malignancy"]) and a["score"] > b["score"]
    assert _pipeline(np.zeros((32, 32)))(image)["probability"] == NO_CANDIDATE  # no candidate: the low prior


def test_crops_are_centred_and_zero_padded_at_the_edges():
    image = torch.arange(16.0).reshape(1, 4, 4)
    crop = crop_at(image, (0, 0), 3)
    assert crop.shape == (1, 3, 3) and crop[0, 1, 1] == 0 and crop[0, 0].tolist() == [0.0, 0.0, 0.0]
    assert crop[0, 2, 2] == image[0, 1, 1]


def test_a_partner_declaring_sigmoid_scores_its_one_logit_by_sigmoid():
    class _OneLogit(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full((x.shape[0], 1), 2.0)

    lesion = np.zeros((32, 32))
    lesion[4:8, 4:8] = 0.9
    p = _pipeline(lesion, "sigmoid")
    p.classifier = _OneLogit()
    found = p(torch.zeros(1, 32, 32))
    assert abs(found["probability"] - 1 / (1 + np.exp(-2.0))) < 1e-6  # not the softmax of one column (1.0)
    p.probability = _declaring("softmax").probability  # the same logit declared softmax: refused, not guessed
    with pytest.raises(ValueError, match="declares a softmax output but the network gives one logit"):
        p(torch.zeros(1, 32, 32))


def test_a_five_class_partner_sums_its_malignant_classes():
    names = ["background", "calc_malignant", "calc_benign", "mass_malignant", "mass_benign"]
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.25, 0.15]]))
    assert _declaring("softmax", names).probability(logits).item() == pytest.approx(0.45)
