"""The ``mammo-monai`` command line: synthesise, preprocess, prepare, cut patches, train, evaluate, export,
predict, calibrate. Each command's options sit next to the code that runs it (:mod:`mammo_monai.commands`,
:mod:`mammo_monai.commands_model`, :mod:`mammo_monai.commands_calibrate`, :mod:`mammo_monai.cli_bundles`);
this module registers them.

Exit status of every command: 0 when every item succeeded; 1 (:data:`EXIT_SOME_FAILED`) when a batch
command finished but some items failed (the good outputs are written and the summary says how many
failed); 2 (:data:`EXIT_ERROR`) when the command could not run at all (bad arguments, a dataset table
it cannot read, a cache made with other settings).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from mammo_monai import commands, commands_calibrate, commands_model, commands_serve
from mammo_monai.cli_common import error_text, finish_parser
from mammo_monai.commands import EXIT_CODES, EXIT_ERROR

#: each adds one command's parser and options, in the order ``mammo-monai --help`` lists them
#: (``bundles``, ``--version`` and ``-v`` are added by :func:`~mammo_monai.cli_common.finish_parser`)
COMMANDS = (
    commands.add_synth,
    commands.add_preprocess,
    commands.add_prepare,
    commands.add_patches,
    commands_model.add_train,
    commands_model.add_compare,
    commands_model.add_export,
    commands_model.add_evaluate,
    commands_model.add_predict,
    commands_calibrate.add_calibrate,
    commands_serve.add_serve,
    commands_model.add_demo,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``mammo-monai`` parser: every command of :data:`COMMANDS`, then ``bundles``."""
    parser = argparse.ArgumentParser(
        prog="mammo-monai",
        description="Mammography classification on MONAI (Shen et al. 2019 and beyond).",
        epilog=EXIT_CODES,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(sub)
    return finish_parser(parser, sub)  # + bundles, --version, -v after any command


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mammo-monai`` console script. Errors print one line, not a traceback
    (``-v`` logs it too), and exit 2."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except Exception as err:  # noqa: BLE001 - any error is one line; -v logs the traceback first
        if args.verbose:
            logging.getLogger("mammo_monai").exception("mammo-monai %s failed", args.command)
        print(f"mammo-monai {args.command}: error: {error_text(err)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
