"""What every dataset adapter returns, and the helpers they share (table checks, folder walks)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mammo_monai.data.manifest import IMAGE_COLUMNS, lesion_columns
from mammo_monai.io.walk import walk_files  # noqa: F401  (re-exported for the adapters)


class DatasetTableError(ValueError):
    """A dataset's description table cannot be used (unreadable, or missing columns). The message is
    one line that names the file, e.g. ``/data/INbreast.csv: missing column(s) ['Bi-Rads']``."""


@dataclass
class AdapterResult:
    """Images and lesions in the manifest's columns (paths to the ORIGINAL files), plus every
    problem met as ``{"file": ..., "reason": ...}`` rows. ``split`` is empty unless the dataset
    defines one. ``truth_rows`` counts the rows of the dataset's truth tables the adapter read
    (``None`` when the dataset has none: labels from folder names)."""

    images: pd.DataFrame
    lesions: pd.DataFrame
    errors: list[dict[str, str]] = field(default_factory=list)
    truth_rows: int | None = None

    @classmethod
    def from_rows(
        cls,
        images: list[dict] | pd.DataFrame,
        lesions: list[dict] | pd.DataFrame,
        errors: list[dict[str, str]],
        truth_rows: int | None = None,
    ) -> AdapterResult:
        """Build a result with the contract columns first (missing ones added empty), lesions' box columns next."""
        img = pd.DataFrame(images)
        img = img.reindex(columns=IMAGE_COLUMNS + [c for c in img.columns if c not in IMAGE_COLUMNS]).reset_index(
            drop=True
        )
        les = pd.DataFrame(lesions)
        les = les.reindex(columns=lesion_columns(les.columns)).reset_index(drop=True)
        return cls(img, les, errors, None if truth_rows is None else int(truth_rows))


def require_columns(table: pd.DataFrame, columns: Iterable[str], path: str | os.PathLike) -> None:
    """Raise :class:`DatasetTableError` naming ``path`` and every column of ``columns`` it lacks."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DatasetTableError(f"{path}: missing column(s) {missing}")


def read_table(path: str | os.PathLike, required: Iterable[str] = (), **read_csv: Any) -> pd.DataFrame:
    """``pandas.read_csv`` with column names stripped; an unreadable file or a missing column raises
    one :class:`DatasetTableError` line instead of a parser traceback or a later ``KeyError``."""
    try:
        table = pd.read_csv(path, **read_csv)
    except (OSError, ValueError) as err:  # ParserError, EmptyDataError and UnicodeDecodeError are ValueErrors
        first = (str(err).splitlines() or [""])[0]
        raise DatasetTableError(f"{path}: cannot be read as a table ({type(err).__name__}: {first})") from err
    table.columns = [str(c).strip() for c in table.columns]
    require_columns(table, required, path)
    return table


def safe_name(text: str) -> str:
    """``text`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``_`` (file-name safe)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)
