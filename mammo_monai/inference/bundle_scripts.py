"""Make an exported bundle run with MONAI alone: the package ships in the bundle's ``scripts/``.

The Model Zoo way: what inference needs travels in the bundle. ``export`` copies the installed
``mammo_monai`` package (not a second copy kept in the repository) to ``scripts/mammo_monai`` and
writes ``scripts/__init__.py``, which puts that folder on ``sys.path``; every exported config then
imports ``scripts`` before ``mammo_monai``. MONAI evaluates a config's import statements first, in
order, so ``python -m monai.bundle run --config_file "['configs/common_inference.yaml','configs/inference.yaml']"``
run from the bundle folder finds the bundled package even where ``mammo-monai`` is not installed (the
common file, loaded first, holds the ``imports`` list; a recipe's own file extends it with ``+imports``).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import mammo_monai

BOOTSTRAP = '''"""Put the bundled ``mammo_monai`` package (written by ``mammo-monai export``) on the import path."""

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)
'''
IMPORT_LINE = "- $import scripts  # the bundled mammo_monai (scripts/mammo_monai) goes on the import path first\n"
#: what the bundled package imports at inference, beyond torch and MONAI (for metadata.json)
RUNTIME_PACKAGES = (
    "pydicom",
    "pylibjpeg",
    "pylibjpeg-libjpeg",
    "pylibjpeg-openjpeg",
    "pylibjpeg-rle",
    "scikit-image",
    "scipy",
    "pandas",
    "pillow",
    "nibabel",
    "pytorch-ignite",
    "pyyaml",
    "tqdm",
    "matplotlib",
    "scikit-learn",
)


def write_bundle_scripts(stage: Path) -> None:
    """Copy the installed package into ``<stage>/scripts/mammo_monai`` and make the configs import it."""
    package = Path(mammo_monai.__file__).resolve().parent
    scripts = stage / "scripts"
    shutil.copytree(package, scripts / "mammo_monai", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "bundles"))
    (scripts / "__init__.py").write_text(BOOTSTRAP)
    for config in (stage / "configs").glob("*.yaml"):
        text = config.read_text()
        if re.search(r"^imports:\n", text, flags=re.M) and "$import scripts" not in text:
            config.write_text(re.sub(r"^imports:\n", "imports:\n" + IMPORT_LINE, text, count=1, flags=re.M))


def runtime_requirements() -> dict[str, str]:
    """Installed versions of :data:`RUNTIME_PACKAGES` (for ``required_packages_version``)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in RUNTIME_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
