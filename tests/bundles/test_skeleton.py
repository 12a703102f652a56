"""One training skeleton: every bundle holds byte-identical copies of ``mammo_monai/bundle_skeleton``,
``bundles sync`` refreshes them, and a bundle's own configs never repeat what the common files say."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import yaml
from monai.bundle import ConfigParser

from mammo_monai.bundle_names import SKELETON, skeleton_files, stale_skeleton_copies
from mammo_monai.cli import main
from mammo_monai.io.raster import atomic_write_png
from mammo_monai.transforms import RandMammoAugmentd, train_transforms
from tests.conftest import BUNDLES

BUNDLE_NAMES = sorted(p.name for p in BUNDLES.iterdir() if (p / "configs" / "metadata.json").is_file())
#: a bundle's own config and the common file loaded before it (a pair is checked where both exist)
PAIRS = [
    ("train.yaml", "common_train.yaml"),
    ("inference.yaml", "common_inference.yaml"),
    ("evaluate.yaml", "common_evaluate.yaml"),
]
RUN = 6  # this many consecutive non-blank lines shared with the common file is a copy


def test_the_skeleton_holds_the_training_files():
    assert {"common_train.yaml", "multi_gpu_train.yaml", "logging.conf"} <= {f.name for f in skeleton_files()}


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_every_bundle_holds_identical_copies_of_every_skeleton_file(name):
    for source in sorted(SKELETON.iterdir()):  # every file, also ones added to the folder later
        if source.is_file():
            copy = BUNDLES / name / "configs" / source.name
            assert copy.is_file(), f"{copy} missing: run `mammo-monai bundles sync`"
            assert copy.read_bytes() == source.read_bytes(), f"{copy} differs from {source}: `mammo-monai bundles sync`"


def test_sync_check_names_a_stale_copy_and_sync_rewrites_it(tmp_path, capsys):
    bundle = tmp_path / "patch_classifier"
    shutil.copytree(BUNDLES / "patch_classifier", bundle)
    stale = bundle / "configs" / "common_train.yaml"
    stale.write_text(stale.read_text() + "# edited\n")
    (bundle / "configs" / "logging.conf").unlink()
    assert main(["bundles", "sync", "--check", str(bundle)]) == 1
    out = capsys.readouterr().out
    assert str(stale) in out and "logging.conf" in out
    assert stale.read_text().endswith("# edited\n")  # --check changes nothing
    assert main(["bundles", "sync", str(bundle)]) == 0
    assert stale_skeleton_copies(bundle) == []
    assert main(["bundles", "sync", "--check", str(bundle)]) == 0


def test_sync_refuses_a_folder_that_is_not_a_bundle(tmp_path, capsys):
    assert main(["bundles", "sync", str(tmp_path)]) == 2
    assert "not a bundle" in capsys.readouterr().err


def _nested(config: dict, key: str) -> tuple[bool, object]:
    """The value at MONAI id ``a#b#0`` in a loaded YAML, and whether it exists."""
    node: object = config
    for part in key.split("#"):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def repeated_ids(own: dict, common: dict) -> list[str]:
    """Ids of ``own`` that set what ``common`` already sets: an equal value at the same id, or a ``+key``
    entry already present in the common list or dict."""
    out = []
    for key, value in own.items():
        found, base = _nested(common, key.lstrip("+"))
        if not found:
            continue
        if not key.startswith("+") and base == value:
            out.append(key)
        elif key.startswith("+") and isinstance(value, list) and isinstance(base, list):
            out += [f"{key}: {v}" for v in value if v in base]
        elif key.startswith("+") and isinstance(value, dict) and isinstance(base, dict):
            out += [f"{key}#{k}" for k, v in value.items() if k in base and base[k] == v]
    return out


def repeated_runs(own: str, common: str, run: int = RUN) -> list[str]:
    """The first line of every run of ``run`` consecutive non-blank lines of ``own`` found in ``common``."""
    mine = [line.rstrip() for line in own.splitlines() if line.strip()]
    theirs = [line.rstrip() for line in common.splitlines() if line.strip()]
    windows = {tuple(theirs[i : i + run]) for i in range(len(theirs) - run + 1)}
    return [mine[i] for i in range(len(mine) - run + 1) if tuple(mine[i : i + run]) in windows]


def test_the_repeat_checks_catch_a_copied_block_and_an_equal_id():
    common = "a: 1\nb:\n  c: 2\nlist: [x]\n" + "".join(f"l{i}: {i}\n" for i in range(8))
    own = "a: 1\nb#c: 3\n+list: [x, y]\n" + "".join(f"l{i}: {i}\n" for i in range(2, 8))
    assert repeated_ids(yaml.safe_load(own), yaml.safe_load(common)) == [
        "a",
        "+list: x",
        "l2",
        "l3",
        "l4",
        "l5",
        "l6",
        "l7",
    ]
    assert repeated_runs(own, common) == ["l2: 2"]
    assert repeated_runs(own.replace("l5: 5", "l5: 0"), common) == []


@pytest.mark.parametrize("name", BUNDLE_NAMES)
def test_a_bundle_config_does_not_repeat_its_common_file(name):
    configs = BUNDLES / name / "configs"
    checked = 0
    for own_name, common_name in PAIRS:
        own, common = configs / own_name, configs / common_name
        if not (own.is_file() and common.is_file()):
            continue
        checked += 1
        own_text, common_text = own.read_text(), common.read_text()
        assert repeated_ids(yaml.safe_load(own_text) or {}, yaml.safe_load(common_text) or {}) == [], own
        assert repeated_runs(own_text, common_text) == [], own
    assert checked >= 1  # at least train.yaml over common_train.yaml


def _augmentation_parameters(transforms: list) -> list[tuple]:
    out = []
    for t in transforms:
        row: tuple = (type(t).__name__, t.prob)
        if hasattr(t, "flipper"):
            row += (t.flipper.spatial_axis,)
        if hasattr(t, "rand_affine"):
            grid = t.rand_affine.rand_affine_grid
            row += (grid.rotate_range, np.ravel(grid.scale_range).tolist(), grid.shear_range, tuple(t.mode))
        if hasattr(t, "shifter"):
            row += (tuple(t.shifter.offsets),)
        out.append(row)
    return out


def test_the_listed_augmentation_is_the_projects_augmentation():
    """The YAML list in the skeleton draws what :class:`RandMammoAugmentd` (the Python API) draws from:
    flips p=0.5 on both axes, affine p=0.9 (rotation 25 deg, zoom 0.8-1.2, shear 12 deg), shift 0.2 p=0.5."""
    parser = ConfigParser()
    parser.read_config([str(SKELETON / "common_train.yaml")])
    listed = _augmentation_parameters(parser.get_parsed_content("augmentation_transforms"))
    python = _augmentation_parameters(RandMammoAugmentd("image").pipeline.transforms)
    assert [row[:2] for row in listed] == [row[:2] for row in python]
    for mine, theirs in zip(listed, python):
        for a, b in zip(mine[2:], theirs[2:]):
            assert a == b or np.allclose(a, b, atol=1e-12), (mine, theirs)


def test_the_listed_training_pipeline_draws_as_train_transforms(tmp_path):
    """Same seed, same cached PNG: the skeleton's ``train#preprocessing`` and the Python
    ``train_transforms(from_cache=True)`` give the same tensor (they list the same MONAI steps)."""
    rng = np.random.default_rng(0)
    png = tmp_path / "cached.png"
    atomic_write_png(png, (rng.random((40, 32)) * 60000).astype(np.uint16))
    parser = ConfigParser()
    parser.read_config([str(SKELETON / "common_train.yaml")])
    listed = parser.get_parsed_content("train#preprocessing")
    python = train_transforms(from_cache=True)
    assert [type(t).__name__ for t in listed.transforms] == [type(t).__name__ for t in python.transforms]
    outputs = []
    for pipeline in (listed, python, listed):
        pipeline.set_random_state(11)
        outputs.append(torch.cat([pipeline({"image": str(png)})["image"] for _ in range(4)]))
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2])
    assert not torch.equal(outputs[0][0], outputs[0][1])  # the augmentation did move something
