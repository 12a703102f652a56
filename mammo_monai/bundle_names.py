"""Shipped bundles by name: ``--bundle patch_classifier`` works from any folder after ``pip install``.

The recipes in the repository's ``bundles/`` ship inside the wheel as ``mammo_monai/bundles``. A
``--bundle`` value is an existing path first (a folder, or an exported zip), else the name of a shipped
bundle. Training writes into its bundle's ``models/``, so a shipped bundle is trained in a copy in the
working folder (:func:`bundle_to_train`), never inside the installed package. Only the standard library
is imported here: ``mammo-monai bundles list`` answers at once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import mammo_monai

#: the folders training and evaluation write into a bundle: never part of a copied recipe
OUTPUTS = ("models", "eval", "cache")
#: the package folder holding the configs every bundle shares (one source; each bundle's ``configs/`` has copies)
SKELETON = Path(mammo_monai.__file__).resolve().parent / "bundle_skeleton"


def skeleton_files() -> list[Path]:
    """The shared config files (``common_train.yaml``, ``multi_gpu_train.yaml``, ``logging.conf``, ...)."""
    return sorted(p for p in SKELETON.iterdir() if p.is_file() and not p.name.startswith("."))


def stale_skeleton_copies(bundle: str | os.PathLike) -> list[Path]:
    """The copies in ``<bundle>/configs`` that are missing or differ from :data:`SKELETON`'s files."""
    configs = Path(bundle) / "configs"
    return [
        configs / f.name
        for f in skeleton_files()
        if not (configs / f.name).is_file() or (configs / f.name).read_bytes() != f.read_bytes()
    ]


def sync_skeleton(bundle: str | os.PathLike) -> list[Path]:
    """Rewrite the bundle's stale copies of the shared configs from :data:`SKELETON` (each written under
    a temporary name, then renamed); returns the files rewritten."""
    stale = stale_skeleton_copies(bundle)
    for target in stale:
        tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
        shutil.copyfile(SKELETON / target.name, tmp)
        os.replace(tmp, target)
    return stale


def bundles_source() -> Path:
    """The bundles: ``mammo_monai/bundles`` in an installed wheel, else the checkout's ``bundles/``."""
    package = Path(mammo_monai.__file__).resolve().parent
    for src in (package / "bundles", package.parent / "bundles"):
        if (src / "whole_image_classifier" / "configs" / "train.yaml").is_file():
            return src
    raise FileNotFoundError(
        f"bundles not found in {package / 'bundles'} (installed) or {package.parent / 'bundles'} (checkout); "
        "reinstall mammo-monai"
    )


def shipped_bundles() -> dict[str, Path]:
    """Name -> folder of every bundle the package ships (a folder with ``configs/metadata.json``)."""
    src = bundles_source()
    return {p.name: p for p in sorted(src.iterdir()) if (p / "configs" / "metadata.json").is_file()}


def _unknown(value: str | os.PathLike, option: str, shipped: dict[str, Path]) -> FileNotFoundError:
    return FileNotFoundError(
        f"{option} {value}: no such file or folder, and no shipped bundle has that name (shipped: {', '.join(shipped)})"
    )


def resolve_bundle(value: str | os.PathLike, option: str = "--bundle") -> Path:
    """The bundle a command-line value names: an existing path as given, else the shipped bundle of that name.

    Args:
        value: a bundle folder, an exported zip, a checkpoint, or a shipped bundle's name.
        option: the option the value came from, named in the error.

    Raises:
        FileNotFoundError: neither a path nor a shipped name; the message lists the shipped names.
    """
    if Path(value).exists():
        return Path(value)
    shipped = shipped_bundles()
    if str(value) in shipped:
        return shipped[str(value)]
    raise _unknown(value, option, shipped)


def copy_bundle(name: str, dest: str | os.PathLike) -> Path:
    """Copy the shipped bundle ``name`` to ``dest`` to edit or train it: its recipe (configs, docs,
    LICENSE) without training outputs (:data:`OUTPUTS`), writable by the user whatever the installed
    files' permissions. Written under a temporary name beside ``dest``, then renamed.

    Raises:
        FileNotFoundError: ``name`` is not a shipped bundle (the message lists them).
        FileExistsError: ``dest`` exists (a copy is never merged into or over it).
    """
    shipped = shipped_bundles()
    if name not in shipped:
        raise FileNotFoundError(f"{name}: no shipped bundle has that name (shipped: {', '.join(shipped)})")
    src, dest = shipped[name], Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest}: exists; choose a new folder (a copy never overwrites)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent))
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes it owner-only; a copied folder is like a new one
        for path in sorted(src.rglob("*")):  # sorted: a folder before its contents
            rel = path.relative_to(src)
            if rel.parts[0] in OUTPUTS or "__pycache__" in rel.parts:
                continue
            if path.is_dir():
                (tmp / rel).mkdir()
            else:
                shutil.copyfile(path, tmp / rel)  # contents only: a read-only install gives a writable copy
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def bundle_to_train(value: str | os.PathLike) -> tuple[Path, bool]:
    """The bundle folder ``train`` writes into, and whether it was copied now.

    An existing path is used as given. A shipped bundle's name is copied to ``./<name>`` first, so its
    models land in the working folder, and a rerun with the same ``--bundle <name>`` finds that copy and
    resumes it. When another process (a ``torchrun`` rank) made the copy meanwhile, that copy is used.
    """
    if Path(value).exists():
        return Path(value), False
    shipped = shipped_bundles()
    if str(value) not in shipped:
        raise _unknown(value, "--bundle", shipped)
    dest = Path(str(value))
    try:
        return copy_bundle(str(value), dest), True
    except OSError:
        if (dest / "configs" / "train.yaml").is_file():
            return dest, False
        raise
