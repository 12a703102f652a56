"""What the adapters of the newer datasets share: finding their tables, reading spreadsheets and numbers.
Lesion geometry lives in :mod:`mammo_monai.data.adapters.geometry`."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mammo_monai.data.adapters.base import DatasetTableError, read_table, require_columns


def find_table(root: Path, names: Sequence[str], depth: int = 4) -> Path | None:
    """The first of ``names`` found in ``root`` or up to ``depth`` folders below it (a TCIA
    ``manifest-*`` or PhysioNet ``physionet.org/files/<name>/<version>`` wrapper), shallowest first."""
    for level in range(depth + 1):
        prefix = "*/" * level
        for name in names:
            found = sorted(root.glob(prefix + name))
            if found:
                return found[0]
    return None


def read_sheet(
    path: str | os.PathLike, required: Iterable[str] = (), sheet: str | None = None, **options: Any
) -> pd.DataFrame:
    """A ``.xlsx`` (the sheet named ``sheet`` when there is one, else the first; via openpyxl) or
    ``.csv`` table as strings, column names stripped.

    Raises:
        DatasetTableError: the file cannot be read or lacks a column of ``required``.
    """
    if Path(path).suffix.lower() in (".xlsx", ".xls"):
        try:
            with pd.ExcelFile(path, engine="openpyxl") as book:
                name = sheet if sheet in book.sheet_names else 0
                table = pd.read_excel(book, sheet_name=name, dtype=str, keep_default_na=False, **options)
        except Exception as err:  # zipfile.BadZipFile, openpyxl's own errors, a missing openpyxl: all one line
            first = (str(err).splitlines() or [""])[0]
            raise DatasetTableError(f"{path}: cannot be read as a spreadsheet ({type(err).__name__}: {first})") from err
        table = table.fillna("").astype(str)
        table.columns = [str(c).strip() for c in table.columns]
        require_columns(table, required, path)
        return table
    return read_table(path, required=required, dtype=str, keep_default_na=False, **options)


def number(value: Any) -> float:
    """``value`` as a float; NaN when empty or not a number."""
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return float("nan")
