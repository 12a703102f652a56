"""``mammo-monai bundles``: list the bundles the package ships; copy one out to edit or train it."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap

from mammo_monai.bundle_names import bundles_source, copy_bundle, shipped_bundles
from mammo_monai.commands import EXIT_OK


def bundles_list(args: argparse.Namespace) -> int:
    """Print one line per shipped bundle: name, version, the start of its description."""
    for name, folder in shipped_bundles().items():
        meta = json.loads((folder / "configs" / "metadata.json").read_text())
        summary = textwrap.shorten(meta.get("description", ""), 80, placeholder=" ...")
        print(f"{name:24} {meta.get('version', '?'):8} {summary}")
    print(
        f"shipped in {bundles_source()}; `--bundle NAME` uses one, `mammo-monai bundles copy NAME FOLDER` copies it",
        file=sys.stderr,
    )
    return EXIT_OK


def bundles_copy(args: argparse.Namespace) -> int:
    """Copy a shipped bundle to a new folder (default ``./NAME``)."""
    dest = copy_bundle(args.name, args.folder or args.name)
    print(f"bundles: {args.name} copied to {dest}; train it with `mammo-monai train --bundle {dest} ...`")
    return EXIT_OK


def add_bundles_command(sub: argparse._SubParsersAction) -> None:
    """Add ``bundles list`` and ``bundles copy`` to the command parsers ``sub``."""
    p = sub.add_parser(
        "bundles",
        help="list the shipped bundles, or copy one out to edit or train it",
        description="The bundles (recipes: configs, model card, LICENSE) that ship with mammo-monai. Any --bundle "
        "option takes a bundle folder, an exported zip, or one of these names.",
        epilog="exit status: 0 done; 2 the command could not run (an unknown name, an existing folder)",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = actions.add_parser(
        "list",
        help="name, version and description of each shipped bundle",
        description="One line per shipped bundle: name, version, the start of its description.",
        epilog="exit status: 0 listed; 2 the installed bundles cannot be found (a broken installation)",
    )
    q.set_defaults(func=bundles_list)
    q = actions.add_parser(
        "copy",
        help="copy a shipped bundle to a new folder",
        description="Copy a shipped bundle's recipe (configs, docs, LICENSE; no trained models) to a new folder, "
        "to edit its configs or train it there. An existing folder is never overwritten; the copy is made "
        "under a temporary name and renamed when complete.",
        epilog="exit status: 0 copied; 2 nothing was copied (an unknown name, or FOLDER exists)",
    )
    q.add_argument("name", help="a shipped bundle (see `mammo-monai bundles list`)")
    q.add_argument("folder", nargs="?", default=None, help="the new folder (default: ./NAME)")
    q.set_defaults(func=bundles_copy)
