"""Options every ``mammo-monai`` command shares: ``-v`` before or after the command, ``--version``, and the
exit status stated in every command's ``--help``."""

from __future__ import annotations

import argparse
import logging
from importlib import metadata

import pytest

from mammo_monai.cli import build_parser, main


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(*prefix, name), *_commands(sub, (*prefix, name))]
    return found


@pytest.mark.parametrize(
    "argv, verbose",
    [
        (["train", "--bundle", "b", "dataset_dir=d", "-v"], True),  # as the README writes it
        (["train", "--verbose", "--bundle", "b"], True),
        (["-v", "train", "--bundle", "b"], True),
        (["train", "--bundle", "b"], False),
        (["bundles", "list", "-v"], True),
        (["compare"], False),
    ],
)
def test_verbose_is_accepted_before_and_after_the_command(argv, verbose):
    assert build_parser().parse_args(argv).verbose is verbose


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"mammo-monai {metadata.version('mammo-monai')}"


def test_every_command_help_states_its_exit_status(capsys):
    commands = _commands(build_parser())
    assert {"train", "predict", "bundles", ("bundles", "copy")} <= {c[0] if len(c) == 1 else c for c in commands}
    missing = []
    for command in commands:
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        text = " ".join(capsys.readouterr().out.split())  # the help formatter wraps lines
        if "exit status: 0" not in text or " 2 " not in text:
            missing.append(" ".join(command))
    assert not missing, missing


def test_an_error_under_verbose_is_logged_with_its_traceback_and_still_one_line_and_exit_2(
    tmp_path, monkeypatch, capsys, caplog
):
    monkeypatch.chdir(tmp_path)
    # an earlier in-process main() left basicConfig's handler on a capture stream that is closed now
    stale = [h for h in logging.root.handlers if type(h) is logging.StreamHandler]
    monkeypatch.setattr(logging.root, "handlers", [h for h in logging.root.handlers if h not in stale])
    assert main(["export", "--bundle", "nope", "--out", "dist", "-v"]) == 2
    assert capsys.readouterr().err.startswith("mammo-monai export: error: --bundle nope: no such file or folder")
    assert any(r.exc_info and isinstance(r.exc_info[1], FileNotFoundError) for r in caplog.records)


def test_an_unexpected_error_is_still_one_line_and_exit_2(monkeypatch, capsys):
    from mammo_monai import commands_model

    def boom(args):
        raise KeyError("no such column\nsecond line")

    monkeypatch.setattr(commands_model, "compare", boom)
    assert main(["compare"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mammo-monai compare: error: unexpected KeyError:")
