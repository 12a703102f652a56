"""``--bundle NAME`` finds a shipped bundle from any folder; ``mammo-monai bundles`` lists and copies them."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from mammo_monai import bundle_names
from mammo_monai.bundle_names import bundle_to_train, bundles_source, resolve_bundle
from mammo_monai.cli import main

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.name for p in (ROOT / "bundles").iterdir() if (p / "configs" / "train.yaml").is_file())


def _fake_install(tmp_path: Path, monkeypatch) -> Path:
    """A read-only installed bundle folder holding training outputs, as bundles_source()."""
    src = tmp_path / "site" / "bundles"
    shutil.copytree(ROOT / "bundles" / "patch_classifier", src / "patch_classifier")
    (src / "patch_classifier" / "models" / "stage1").mkdir(parents=True)
    (src / "patch_classifier" / "models" / "stage1" / "model.pt").write_bytes(b"weights")
    (src / "patch_classifier" / "eval").mkdir()
    for path in sorted(src.rglob("*"), reverse=True):  # files before their folders
        path.chmod(0o555 if path.is_dir() else 0o444)
    monkeypatch.setattr(bundle_names, "bundles_source", lambda: src)
    return src / "patch_classifier"


def test_a_shipped_name_resolves_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_bundle("patch_classifier") == bundles_source() / "patch_classifier"
    assert (resolve_bundle("whole_image_classifier") / "configs" / "train.yaml").is_file()


def test_an_existing_path_wins_over_a_shipped_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "patch_classifier").mkdir()
    assert resolve_bundle("patch_classifier") == Path("patch_classifier")
    assert bundle_to_train("patch_classifier") == (Path("patch_classifier"), False)


@pytest.mark.parametrize("command", ["export", "evaluate", "predict"])
def test_an_unknown_bundle_is_one_line_naming_the_shipped_ones_and_exit_2(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rest = {
        "export": ["--out", "dist"],
        "evaluate": ["--manifest", "manifest"],
        "predict": ["--input", "scans", "--out", "p.csv"],
    }[command]
    assert main([command, "--bundle", "no_such_bundle", *rest]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "--bundle no_such_bundle" in err and all(name in err for name in SHIPPED), err


def test_a_patch_bundle_name_is_checked_like_bundle(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "w").mkdir()
    args = ["predict", "--bundle", "w", "--patch-bundle", "nope", "--input", "x", "--out", "p.csv"]
    assert main(args) == 2
    assert "--patch-bundle nope: no such file or folder" in capsys.readouterr().err


def test_bundles_list_names_every_shipped_bundle(capsys):
    assert main(["bundles", "list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == SHIPPED


def test_bundles_copy_copies_the_recipe_and_never_overwrites(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["bundles", "copy", "patch_classifier", "my_bundle"]) == 0
    shipped = bundles_source() / "patch_classifier" / "configs" / "train.yaml"
    assert (tmp_path / "my_bundle" / "configs" / "train.yaml").read_text() == shipped.read_text()
    (tmp_path / "my_bundle" / "configs" / "train.yaml").write_text("edited")
    assert main(["bundles", "copy", "whole_image_classifier", "my_bundle"]) == 2
    assert "my_bundle: exists" in capsys.readouterr().err
    assert (tmp_path / "my_bundle" / "configs" / "train.yaml").read_text() == "edited"
    assert main(["bundles", "copy", "screening_classifier"]) == 0  # default folder: ./NAME
    assert (tmp_path / "screening_classifier" / "configs" / "metadata.json").is_file()
    assert main(["bundles", "copy", "nope", "x"]) == 2
    assert "nope: no shipped bundle has that name (shipped: " in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_bundle", "screening_classifier"]


def test_a_copy_of_a_read_only_install_is_writable_and_has_no_training_outputs(tmp_path, monkeypatch):
    _fake_install(tmp_path, monkeypatch)
    dest = bundle_names.copy_bundle("patch_classifier", tmp_path / "mine")
    assert sorted(p.name for p in dest.iterdir()) == ["LICENSE", "configs", "docs"]
    for path in [dest, *dest.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) & stat.S_IWUSR, path


def test_a_failed_copy_leaves_no_folder_and_no_temporary(tmp_path, monkeypatch):
    _fake_install(tmp_path, monkeypatch)
    copied, copyfile = [], shutil.copyfile

    def copy_then_fail(src, dst):
        if len(copied) == 3:
            raise OSError(28, "No space left on device")
        copied.append(copyfile(src, dst))

    monkeypatch.setattr(bundle_names.shutil, "copyfile", copy_then_fail)
    with pytest.raises(OSError, match="No space"):
        bundle_names.copy_bundle("patch_classifier", tmp_path / "out" / "mine")
    assert list((tmp_path / "out").iterdir()) == []


def test_train_by_name_trains_a_copy_in_the_working_folder(tmp_path, monkeypatch, capsys):
    installed = _fake_install(tmp_path, monkeypatch)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    # the overlay is missing: train stops (exit 2) after choosing its bundle folder, before any training
    assert main(["train", "--bundle", "patch_classifier", "--overlay", "missing.yaml"]) == 2
    err = capsys.readouterr().err
    assert "shipped bundle patch_classifier copied to ./patch_classifier" in err
    assert f"overlay missing.yaml not found (as a path or in {work / 'patch_classifier' / 'configs'})" in err
    assert (work / "patch_classifier" / "configs" / "train.yaml").is_file()
    assert not (work / "patch_classifier" / "models").exists()
    assert sorted(p.name for p in installed.iterdir()) == ["LICENSE", "configs", "docs", "eval", "models"]
    assert main(["train", "--bundle", "patch_classifier", "--overlay", "missing.yaml"]) == 2  # a rerun: the copy
    assert "copied" not in capsys.readouterr().err
