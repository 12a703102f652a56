"""What every ``mammo-monai`` command shares: ``-v`` before or after the command, ``--version``, the
exit status in each command's ``--help``, and the commands defined outside :mod:`mammo_monai.cli`."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from importlib import metadata

import mammo_monai
from mammo_monai.cli_bundles import add_bundles_command

#: the exit status of the commands whose parser does not state it in its epilog (checked in their code:
#: main turns an OSError, ValueError or RuntimeError into one line and exit 2)
EXIT_STATUS = {
    "synth": "exit status: 0 the dataset is written; 2 the command could not run (bad arguments, a folder it "
    "cannot write)",
    "train": "exit status: 0 every stage finished (or had finished in an earlier run); 2 the training could not "
    "start or a stage stopped with an error (printed on one line; -v also logs its traceback)",
    "compare": "exit status: 0 the table is printed (also when no run is recorded); 2 the command could not run",
    "export": "exit status: 0 the zip is written; 2 nothing was written (no trained model, a bundle that cannot be "
    "read or exported)",
    "evaluate": "exit status: 0 metrics.json, predictions.csv and roc.png are written; 2 the evaluation could not "
    "run (a bundle or manifest it cannot read)",
    "demo": "exit status: 0 the demo finished; 1 it finished but the test split held one class (test AUC "
    "undefined); 2 it stopped with an error",
}


def package_version() -> str:
    """The installed distribution's version (importlib.metadata), else the package's own ``__version__``."""
    try:
        return metadata.version("mammo-monai")
    except metadata.PackageNotFoundError:  # imported from a source tree that was never installed
        return mammo_monai.__version__


def add_verbose(parser: argparse.ArgumentParser, before_command: bool = False) -> None:
    """``-v/--verbose``. After the command its default is suppressed, so that ``mammo-monai -v train``
    is not reset to False by the command's parser."""
    default = False if before_command else argparse.SUPPRESS
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="log progress details")


def subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every command parser under ``parser``, nested ones too, as ("bundles copy", parser)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from subcommands(sub, f"{prefix}{name} ")


def finish_parser(parser: argparse.ArgumentParser, sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``bundles`` command, ``--version`` and ``-v`` (before or after any command) to ``parser``,
    and each command's exit status (:data:`EXIT_STATUS`) to its ``--help``. Returns ``parser``."""
    add_bundles_command(sub)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    add_verbose(parser, before_command=True)
    for name, command in subcommands(parser):
        add_verbose(command)
        if name in EXIT_STATUS and "exit status" not in (command.epilog or ""):
            command.epilog = f"{command.epilog}\n\n{EXIT_STATUS[name]}" if command.epilog else EXIT_STATUS[name]
    return parser


def error_text(err: BaseException) -> str:
    """A command's error as its one line: ours (OSError, ValueError, RuntimeError) say what and where;
    anything else is named as unexpected, its first line only (``-v`` logs the traceback)."""
    if isinstance(err, (OSError, ValueError, RuntimeError)):
        return str(err)
    return f"unexpected {type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]} (-v shows where)"
