"""Every command's ``--help`` lists the options it listed before the parser was split into one piece per
command (issue 20): the option sets below were read from main's ``--help`` output before the split."""

from __future__ import annotations

import re

import pytest

from mammo_monai.cli import build_parser, main
from mammo_monai.cli_common import subcommands

_COMMON = {"-h", "--help", "-v", "--verbose"}
_QUIET_WORKERS = {"--quiet", "--workers"}
#: command -> the options and positionals its --help listed on main before the split
LISTED_BEFORE = {
    "": {"--version", "COMMAND"},
    "synth": {"--both-tables", "--film-artefacts", "--layout", "--lesion-scale", "--out", "--patients"}
    | {"--positive-fraction", "--seed", "--size"}
    | {"--site-profile", "--site-option"}  # issue 23
    | _QUIET_WORKERS,
    "preprocess": {"--accept-modality", "--crop", "--intensity", "--keep-aspect", "--out", "--overwrite", "--size"}
    | {"inputs"}
    | _QUIET_WORKERS,
    "prepare": {"--accept-modality", "--birads-cut", "--crop", "--dataset", "--intensity", "--keep-aspect"}
    | {"--merge", "--official-split", "--out", "--patients-csv", "--rebuild", "--root", "--shard", "--size"}
    | {"--split-seed", "--test-fraction", "--val-fraction"}
    | {"--datasets-yaml", "--test-dataset", "--download-cache", "--download-cache-size"}  # issue 23
    | _QUIET_WORKERS,
    "patches": {"--background", "--manifest", "--out", "--patch-size", "--per-roi", "--scheme", "--seed"}
    | _QUIET_WORKERS,
    "train": {"--bundle", "--overlay", "--restart", "--stages", "key=value"},
    "compare": {"--experiment", "--tracking-uri"},
    "export": {"--bundle", "--manifest", "--out"},
    "evaluate": {"--bundle", "--ensemble", "--manifest", "--no-tracking", "--out", "--patch-bundle", "--split"}
    | {"--tta"},
    "predict": {"--accept-modality", "--backend", "--batch-size", "--bundle", "--heatmaps", "--input", "--out"}
    | {"--exam-list", "--nyu-tables", "--patch-bundle", "--quiet", "--stride", "--tta"}
    | {"--dicom-out", "--anonymous-outputs"},  # issue 21: DICOM SEG / SR outputs
    "calibrate": {"--bundle", "--manifest", "--out", "--split", "--tta"},
    "demo": {"--lesion-scale", "--no-patch-pretraining", "--patch-size", "--patches-per-lesion", "--patients"}
    | {"--intensity", "--seed", "--size", "--test-patients", "--workdir", "--workers"},
    "bundles": {"ACTION"},
    "bundles list": set(),
    "bundles copy": {"folder", "name"},
}


def _listed_options(text: str) -> set[str]:
    """The option strings and positionals of a ``--help`` text's argument sections (argparse indents
    each argument by two spaces; its help text, wrapped, lies further in)."""
    found: set[str] = set()
    section = None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            section = line.rstrip(":")
            continue
        match = re.match(r"^  (\S.*?)(?:\s{2,}|$)", line)
        if not match or section not in ("positional arguments", "options"):
            continue
        head = match.group(1)
        if head.startswith("-"):
            found |= {token.rstrip(",") for token in head.split() if token.startswith("-")}
        else:
            found.add(head.split()[0])
    return found


def _help(command: str, capsys) -> str:
    with pytest.raises(SystemExit) as done:
        main([*command.split(), "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(LISTED_BEFORE))
def test_help_lists_the_options_it_listed_before_the_split(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert _listed_options(_help(command, capsys)) == LISTED_BEFORE[command] | _COMMON


def test_every_command_listed_before_still_exists():
    parser = build_parser()
    assert set(LISTED_BEFORE) - {""} <= {name for name, _ in subcommands(parser)}
