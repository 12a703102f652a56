"""What every ``mammo-monai`` command shares: ``-v`` before or after the command, ``--version``, and the
``bundles`` command (:mod:`mammo_monai.cli_bundles`)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from importlib import metadata

import mammo_monai
from mammo_monai.cli_bundles import add_bundles_command


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
    """Add the ``bundles`` command, ``--version`` and ``-v`` (before or after any command) to ``parser``.
    Returns ``parser``."""
    add_bundles_command(sub)
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    add_verbose(parser, before_command=True)
    for _, command in subcommands(parser):
        add_verbose(command)
    return parser


def error_text(err: BaseException) -> str:
    """A command's error as its one line: ours (OSError, ValueError, RuntimeError) say what and where;
    anything else is named as unexpected, its first line only (``-v`` logs the traceback)."""
    if isinstance(err, (OSError, ValueError, RuntimeError)):
        return str(err)
    return f"unexpected {type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]} (-v shows where)"
