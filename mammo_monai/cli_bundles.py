"""``mammo-monai bundles``: list the bundles the package ships; copy one out to edit or train it; refresh
the shared configs (``mammo_monai/bundle_skeleton``) every bundle holds a copy of."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from mammo_monai.bundle_names import (
    SKELETON,
    bundles_source,
    copy_bundle,
    shipped_bundles,
    stale_skeleton_copies,
    sync_skeleton,
)
from mammo_monai.commands import EXIT_OK

#: ``bundles sync --check``: some copy differs from the skeleton
EXIT_STALE = 1


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


def bundles_sync(args: argparse.Namespace) -> int:
    """Rewrite (or with ``--check`` only name) the bundles' stale copies of the shared configs."""
    folders = [Path(f) for f in args.folders] or list(shipped_bundles().values())
    for folder in folders:
        if not (folder / "configs" / "train.yaml").is_file():
            raise FileNotFoundError(f"{folder}: not a bundle (configs/train.yaml missing)")
    stale = [f for folder in folders for f in (stale_skeleton_copies if args.check else sync_skeleton)(folder)]
    for f in stale:
        print(f"{'stale' if args.check else 'rewritten'}: {f}")
    what = f"{len(stale)} stale" if args.check else f"{len(stale)} rewritten"
    print(f"bundles sync: {len(folders)} bundles, {what} (source {SKELETON})", file=sys.stderr)
    return EXIT_STALE if args.check and stale else EXIT_OK


def add_bundles_command(sub: argparse._SubParsersAction) -> None:
    """Add ``bundles list``, ``bundles copy`` and ``bundles sync`` to the command parsers ``sub``."""
    p = sub.add_parser(
        "bundles",
        help="list the shipped bundles, copy one out to edit or train it, refresh their shared configs",
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
    q = actions.add_parser(
        "sync",
        help="rewrite each bundle's copies of the shared configs (common_train.yaml, ...)",
        description="Every bundle's configs/ holds byte-identical copies of the files in "
        "mammo_monai/bundle_skeleton/ (MONAI resolves no file across folders, so a bundle folder runs on its "
        "own). Rewrite the copies that differ or are missing, in the given bundle folders or in every shipped "
        "bundle; --check only names them.",
        epilog="exit status: 0 done (or, with --check, every copy current); 1 --check found stale copies; "
        "2 the command could not run (a folder that is not a bundle)",
    )
    q.add_argument("folders", nargs="*", help="bundle folders (default: every shipped bundle)")
    q.add_argument("--check", action="store_true", help="change nothing; exit 1 naming the stale copies")
    q.set_defaults(func=bundles_sync)
