"""The wheel works outside the checkout: it ships the bundles and finds them through the package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import mlflow_store

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The project built as a wheel (no build isolation: offline) and unpacked into a bare folder."""
    base = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(base / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=base,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((base / "dist").glob("mammo_monai-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(base / "site")
    return wheel, base / "site"


def _run(site: Path, code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    # the installed copy first on the path, run from a folder that is not the checkout
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(site), **env},
    )


def test_the_wheel_ships_both_bundles(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    for bundle in ("patch_classifier", "whole_image_classifier"):
        for f in ("configs/train.yaml", "configs/inference.yaml", "configs/metadata.json", "docs/README.md", "LICENSE"):
            assert f"mammo_monai/bundles/{bundle}/{f}" in names
    for f in ("common_train.yaml", "multi_gpu_train.yaml", "logging.conf"):  # the skeleton and its copies
        assert (
            f"mammo_monai/bundle_skeleton/{f}" in names and f"mammo_monai/bundles/patch_classifier/configs/{f}" in names
        )


def test_installed_copy_runs_demo_help_and_a_tiny_training_outside_the_checkout(installed, tmp_path):
    _, site = installed
    out = _run(site, "import sys; from mammo_monai.cli import main; sys.exit(main(['demo', '--help']))", tmp_path)
    assert out.returncode == 0 and "--workdir" in out.stdout, out.stderr[-2000:]
    code = f"""
import shutil, mammo_monai
from pathlib import Path
from mammo_monai.demo import bundles_source
from mammo_monai.synthetic import make_cbis_tree
from mammo_monai.data.prepare import prepare
from mammo_monai.training.workflow import train_bundle
src = bundles_source()
assert Path(mammo_monai.__file__).is_relative_to({str(site)!r}), mammo_monai.__file__
assert src == Path({str(site)!r}) / 'mammo_monai' / 'bundles', src
make_cbis_tree('raw', patients=8, seed=5, size=(96, 72), workers=1)  # both classes in train and val: train refuses one
prepare('cbis-ddsm', 'raw', 'manifest', size=(96, 72), workers=1, progress=False)
shutil.copytree(src / 'whole_image_classifier', 'w')
r = train_bundle('w', ['demo.yaml'], {{'dataset_dir': 'manifest', 'patch_checkpoint': None, 'stages#1#trainable': 'all',
    'arch': 'resnet10-tiny', 'image_size': [96, 72], 'batch_size': 4, 'num_workers': 0, 'cache_rate': 0.0,
    'stages#1#epochs': 1, 'register_model': False}})
print('stages', [x['stage'] for x in r])
"""
    run = _run(site, code, tmp_path, MLFLOW_TRACKING_URI=mlflow_store(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "stages [1]" in run.stdout  # the demo overlay's one stage


def test_installed_cli_finds_its_bundles_by_name_outside_the_checkout(installed, tmp_path):
    wheel, site = installed
    runs = [
        ["--version"],
        ["bundles", "list"],
        ["bundles", "copy", "whole_image_classifier", "mine"],
        ["train", "--bundle", "no_such_bundle"],
        ["train", "--bundle", "patch_classifier", "--overlay", "missing.yaml", "-v"],  # copies, then stops: exit 2
    ]
    code = f"""
from mammo_monai.cli import main
for argv in {runs!r}:
    try:
        rc = main(argv)
    except SystemExit as done:
        rc = done.code
    print('RC', rc, flush=True)
"""
    out = _run(site, code, tmp_path)
    assert [line for line in out.stdout.splitlines() if line.startswith("RC")] == [f"RC {c}" for c in (0, 0, 0, 2, 2)]
    version = wheel.name.split("-")[1]
    assert f"mammo-monai {version}" in out.stdout and "patch_classifier " in out.stdout, out.stderr[-2000:]
    assert f"shipped in {site / 'mammo_monai' / 'bundles'}" in out.stderr
    assert "--bundle no_such_bundle: no such file or folder" in out.stderr and "(shipped: " in out.stderr
    assert (tmp_path / "mine" / "configs" / "train.yaml").is_file()
    assert (tmp_path / "patch_classifier" / "configs" / "train.yaml").is_file()  # trained here, not in site
    assert not (site / "mammo_monai" / "bundles" / "patch_classifier" / "models").exists()
