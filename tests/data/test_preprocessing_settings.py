"""PreprocessingSettings: one typed owner of the settings, records old caches and models still read, and a
declared version that refuses a cache only when its pixels would differ."""

from __future__ import annotations

import inspect
import json

import pytest
import torch

from mammo_monai.data.cache_record import (
    CACHE_RECORD,
    CacheMismatchError,
    check_same_preprocessing,
    claim_cache,
    read_settings,
)
from mammo_monai.data.preprocess import preprocess
from mammo_monai.data.preprocessing_settings import PREPROCESSING_VERSION, PreprocessingSettings
from mammo_monai.transforms.pipelines import preprocess_transforms


def test_the_record_is_the_json_caches_and_models_have_always_stored():
    settings = PreprocessingSettings.from_options((64, 48), {"keep_aspect": True, "modalities": ["mg", "DX"]})
    record = settings.to_record()
    assert list(record) == [
        "size",
        "keep_aspect",
        "crop",
        "intensity",
        "threshold",
        "modalities",
        "preprocessing_version",
    ]
    assert record["size"] == [64, 48] and record["keep_aspect"] is True and record["modalities"] == ["DX", "MG"]
    assert record["preprocessing_version"] == PREPROCESSING_VERSION
    assert json.loads(json.dumps(record)) == record  # plain JSON types


@pytest.mark.parametrize(
    "settings",
    [
        PreprocessingSettings(),
        PreprocessingSettings(size=(96, 72), keep_aspect=True, crop=True, intensity="percentile", threshold=0.1),
        PreprocessingSettings(modalities=None, patch_size=48),
    ],
)
def test_a_record_reads_back_as_the_same_settings(settings):
    assert PreprocessingSettings.from_record(json.loads(json.dumps(settings.to_record()))) == settings


def test_an_old_record_reads_with_the_old_defaults_and_its_run_keys_are_ignored():
    old = {"size": [96, 72], "keep_aspect": True, "dataset": "cbis-ddsm", "root": "/data", "split_seed": 3}
    settings = PreprocessingSettings.from_record({**old, "preprocessing_version": "0123456789ab"})
    assert settings.size == (96, 72) and settings.keep_aspect is True
    assert (settings.crop, settings.intensity, settings.threshold, settings.modalities) == (
        False,
        "bit_depth",
        0.05,
        ("MG",),
    )
    assert settings.version == "0123456789ab"  # a code hash of the releases before versions were declared
    assert PreprocessingSettings.from_record(old).version is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": (0, 48)}, "size must be two positive whole numbers"),
        ({"size": (64,)}, "size must be two positive whole numbers"),
        ({"intensity": "gamma"}, "intensity must be one of"),
        ({"threshold": 1.5}, r"threshold must lie in \(0, 1\)"),
        ({"modalities": "MG"}, "modalities must be a list"),
        ({"version": 0}, "preprocessing_version must be a positive whole number"),
    ],
)
def test_a_bad_setting_is_refused_in_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        PreprocessingSettings(**kwargs)
    assert "\n" not in str(err.value)


def test_an_unknown_option_is_refused_by_name():
    with pytest.raises(ValueError, match=r"unknown preprocessing option\(s\) \['keep_aspekt'\]"):
        PreprocessingSettings.from_options((64, 48), {"keep_aspekt": True})


def test_the_settings_build_the_preprocessing_pipeline(dicom_file):
    path, *_ = dicom_file()
    settings = PreprocessingSettings(size=(64, 48), keep_aspect=True, crop=True, intensity="percentile")
    ours = settings.transforms()({"image": str(path)})
    direct = preprocess_transforms(size=(64, 48), keep_aspect=True, crop=True, intensity="percentile")(
        {"image": str(path)}
    )
    assert torch.equal(ours["image"], direct["image"]) and torch.equal(ours["mask"], direct["mask"])


def _cache_with_record(folder, record):
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "a.png").write_bytes(b"cached")
    (folder / CACHE_RECORD).write_text(json.dumps(record))


def test_a_cache_recorded_earlier_at_the_same_version_stays_usable(tmp_path):
    """An edit that changes no pixel (a comment, a refactor, a package upgrade) keeps PREPROCESSING_VERSION,
    so a cache recorded before it, by a release that recorded fewer keys, is reused as it is."""
    settings = PreprocessingSettings.from_options((64, 48))
    earlier = {k: v for k, v in settings.to_record().items() if k not in ("threshold", "modalities")}
    _cache_with_record(tmp_path, {**earlier, "dataset": "cbis-ddsm", "png_options": {"compress_level": 1}})
    assert claim_cache(tmp_path, settings) is True
    assert (tmp_path / "images" / "a.png").read_bytes() == b"cached"
    assert read_settings(tmp_path) == settings


def test_a_cache_made_with_another_setting_or_version_is_refused_in_one_line(tmp_path):
    settings = PreprocessingSettings.from_options((64, 48))
    for name, record, expected in [
        ("crop", {**settings.to_record(), "crop": True}, "crop True -> False"),
        (
            "bumped",
            {**settings.to_record(), "preprocessing_version": PREPROCESSING_VERSION + 1},
            "preprocessing_version",
        ),
        ("hash", {**settings.to_record(), "preprocessing_version": "0123456789ab"}, "before preprocessing versions"),
    ]:
        _cache_with_record(tmp_path / name, record)
        with pytest.raises(CacheMismatchError, match=f"{expected}.*run again with --rebuild") as err:
            claim_cache(tmp_path / name, settings)
        assert "\n" not in str(err.value)
        assert claim_cache(tmp_path / name, settings, rebuild=True) is False
        assert json.loads((tmp_path / name / CACHE_RECORD).read_text()) == settings.to_record()


def test_preprocess_keeps_outputs_recorded_at_the_same_version_and_refuses_a_changed_threshold(tmp_path, dicom_file):
    path, *_ = dicom_file()
    out = tmp_path / "out"
    first = preprocess([path], out, size=(64, 48), workers=1, progress=False)
    record = json.loads((out / "preprocess.json").read_text())
    (out / "preprocess.json").write_text(json.dumps({k: v for k, v in record.items() if k != "modalities"}))
    again = preprocess([path], out, size=(64, 48), workers=1, progress=False)
    assert list(again["status"]) == list(first["status"]) == ["ok"]
    with pytest.raises(CacheMismatchError, match=r"threshold 0.05 -> 0.1.*--overwrite") as err:
        preprocess([path], out, size=(64, 48), workers=1, progress=False, threshold=0.1)
    assert "\n" not in str(err.value)


def test_a_model_and_its_data_are_compared_as_settings():
    model = PreprocessingSettings(size=(64, 48)).to_record()
    check_same_preprocessing(model, {**model, "modalities": ["mg"], "preprocessing_version": "old-hash"}, "x")
    with pytest.raises(CacheMismatchError, match=r"x: .*keep_aspect: model False, data True"):
        check_same_preprocessing(model, PreprocessingSettings(size=(64, 48), keep_aspect=True), "x")


def test_transform_options_are_the_recorded_settings_preprocess_transforms_takes():
    """One field list: the options are the record's values, for every recorded setting the transforms take."""
    settings = PreprocessingSettings(
        size=(96, 72),
        keep_aspect=True,
        crop=True,
        intensity="percentile",
        threshold=0.1,
        modalities=None,
        patch_size=48,
    )
    options, record = settings.transform_options(), settings.to_record()
    assert options == {
        "size": [96, 72],
        "keep_aspect": True,
        "crop": True,
        "intensity": "percentile",
        "threshold": 0.1,
        "modalities": None,
    }  # patch_size and the version are recorded but are no transform option
    assert set(options) == set(record) & set(inspect.signature(preprocess_transforms).parameters)
    assert preprocess_transforms(**options) is not None
