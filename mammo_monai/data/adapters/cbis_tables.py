"""CBIS-DDSM description tables: reading the four CSVs and merging them into one row per physical image.

CBIS-DDSM ships some films twice, once under a ``Mass-...`` and once under a ``Calc-...`` case
folder (71 films in the real tables, 16 of them with a different image label in each table), and
its official split puts some patients in the training part of one table and the test part of the
other (31 real patients). Everything here works from the tables alone, so it can be checked on the
real CSVs without any DICOM.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from mammo_monai.data.adapters.base import read_table, require_columns, safe_name

CSV_GLOB = "*_case_description_*_set.csv"
PATHOLOGY = {"MALIGNANT": "malignant", "BENIGN": "benign", "BENIGN_WITHOUT_CALLBACK": "benign"}
LESION_TYPE = {"mass": "mass", "calcification": "calc"}
REQUIRED = [
    "patient_id",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "pathology",
    "image file path",
    "ROI mask file path",
]
PATH_COLUMNS = ("image file path", "cropped image file path", "ROI mask file path")
SIDES = {"LEFT": "L", "RIGHT": "R"}
PARTS = {"training": "train", "train": "train", "test": "test"}


def read_cbis_csv(path: str | os.PathLike) -> pd.DataFrame:
    """One description CSV with its quirks smoothed: ``breast density`` -> ``breast_density``, path
    fields stripped of the newline some carry inside their quotes, the source file recorded.

    Raises:
        DatasetTableError: the file cannot be read or lacks a column the adapter needs.
    """
    df = read_table(path, dtype=str, keep_default_na=False)
    df.columns = [c.replace("breast density", "breast_density") for c in df.columns]
    require_columns(df, REQUIRED, path)
    for col in PATH_COLUMNS:
        if col in df.columns:
            df[col] = df[col].str.strip()
    df["csv"] = Path(path).name
    return df


def find_csvs(root: Path) -> list[Path]:
    """The description CSVs in ``root`` or one folder down."""
    return sorted(root.glob(CSV_GLOB)) or sorted(root.glob(f"*/{CSV_GLOB}"))


def describe_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Add the columns the merge works on to the concatenated CSV rows.

    ``case`` (the case folder, first component of ``image file path``), ``table`` (mass/calc, from
    the folder prefix, else the abnormality type), ``part`` (official train/test, from the folder,
    else the CSV name), ``laterality``, ``view``, ``image_id`` (``P_00001_LEFT_CC``: one per
    physical film) and ``pathology_norm`` (malignant/benign, empty when unknown).
    """
    t = table.copy()
    t["case"] = t["image file path"].str.split("/").str[0].str.strip()
    prefix = t["case"].str.extract(r"^(Mass|Calc)-(Training|Test)_", expand=True)
    by_type = t["abnormality type"].str.strip().str.lower().map(LESION_TYPE).fillna("")
    t["table"] = prefix[0].str.lower().fillna(by_type)
    by_name = t["csv"].str.extract(r"_(train|test)_set", expand=False)
    t["part"] = prefix[1].str.lower().fillna(by_name).map(PARTS).fillna("")
    t["patient_id"] = t["patient_id"].str.strip()
    side = t["left or right breast"].str.strip().str.upper()
    t["laterality"] = side.map(SIDES).fillna("")
    t["view"] = t["image view"].str.strip().str.upper()
    t["image_id"] = (t["patient_id"] + "_" + side + "_" + t["view"]).map(safe_name)
    t["pathology_norm"] = t["pathology"].str.strip().str.upper().map(PATHOLOGY).fillna("")
    t["lesion_type"] = by_type.where(by_type != "", t["abnormality type"].str.strip())
    return t


def drop_duplicate_rows(t: pd.DataFrame, errors: list[dict[str, str]]) -> pd.DataFrame:
    """Keep the first of the rows that list the same abnormality (case folder and ``abnormality id``)
    and report the others in ``errors``: a lesion listed twice would count twice and get twice the
    patches. Rows that disagree are reported with the columns they differ in (the first is kept).

    Args:
        t: rows after :func:`describe_rows` (``case`` and ``csv`` columns present).
        errors: the adapter's problem rows, appended to.
    """
    key = ["case", "abnormality id"]
    repeated = t.duplicated(key, keep=False)
    if not repeated.any():
        return t
    truth = [c for c in table_columns(t) if c not in key]
    for (case, abn), rows in t[repeated].groupby(key, sort=True, dropna=False):
        differ = [c for c in truth if rows[c].nunique(dropna=False) > 1]
        how = f"with different {differ}" if differ else "in identical rows"
        errors.append(
            {
                "file": f"{rows['csv'].iloc[0]}: {case} abnormality {abn}",
                "reason": f"abnormality listed {len(rows)} times ({how}); the first row kept",
            }
        )
    return t[~t.duplicated(key, keep="first")]


def table_columns(t: pd.DataFrame) -> list[str]:
    """The columns of ``t`` that come from a description CSV (not those :func:`describe_rows` adds)."""
    added = {"csv", "case", "table", "part", "laterality", "view", "image_id", "pathology_norm", "lesion_type"}
    return [c for c in t.columns if c not in added]


def _usable_rows(t: pd.DataFrame, errors: list[dict[str, str]]) -> pd.DataFrame:
    """The described rows without those lacking patient, side or view, and without the images whose
    label cannot be known (an unknown pathology and no malignant lesion to settle it); every unknown
    pathology, skipped row and excluded image is reported."""
    where = t["csv"] + ": " + t["case"] + " abnormality " + t["abnormality id"].astype(str)
    unknown = t["pathology_norm"] == ""
    for w, p in zip(where[unknown], t.loc[unknown, "pathology"]):
        errors.append({"file": w, "reason": f"unknown pathology {p!r}; lesion dropped"})
    bad_key = (t["laterality"] == "") | (t["patient_id"] == "") | (t["view"] == "")
    for w in where[bad_key]:
        errors.append({"file": w, "reason": "patient, side or view missing; row skipped"})
    t = t[~bad_key]
    malignant = t.groupby("image_id")["pathology_norm"].agg(lambda s: (s == "malignant").any())
    doubtful = t.loc[t["pathology_norm"] == "", "image_id"].unique()
    excluded = sorted(i for i in doubtful if not malignant[i])
    for i in excluded:
        errors.append(
            {
                "file": i,
                "reason": "image label unknown (a lesion's pathology is unknown, none is malignant); image excluded",
            }
        )
    return t[~t["image_id"].isin(excluded)]


def merge_images(
    table: pd.DataFrame, official_split: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, str]]]:
    """One row per physical image (patient, side, view) from the rows of all four tables.

    Args:
        table: the concatenated output of :func:`read_cbis_csv`.
        official_split: give ``split`` from the official parts; a patient in the training part of
            one table and the test part of another goes to ``test`` with all their images
            (reported).

    Returns:
        ``images`` (``image_id``, ``patient_id``, ``laterality``, ``view``, ``label``, ``dataset``,
        ``split``, ``breast_density``, ``case_folders``: the case folders the film is listed under,
        mass first, ``;``-joined; ``csv_paths``: their ``image file path`` values in the same
        order, ``;``-joined), ``lesions`` (one per CSV row whose image is kept: ``image_id``,
        ``lesion_type``, ``pathology``, ``abnormality_id``, ``case_folder``, ``roi_path``, ``csv``) and
        the problems as ``{"file", "reason"}`` rows.
    """
    t = describe_rows(table)
    errors: list[dict[str, str]] = []
    t = _usable_rows(drop_duplicate_rows(t, errors), errors)
    order = t.assign(_mass=t["table"] != "mass").sort_values(["image_id", "_mass", "case"], kind="stable")
    firsts = order.groupby("image_id", sort=True)
    images = firsts.agg(
        patient_id=("patient_id", "first"),
        laterality=("laterality", "first"),
        view=("view", "first"),
        label=("pathology_norm", lambda s: int((s == "malignant").any())),
        case_folders=("case", lambda s: ";".join(dict.fromkeys(s))),
        csv_paths=("image file path", lambda s: ";".join(dict.fromkeys(s))),
    ).reset_index()
    if "breast_density" in t.columns:
        density = order[order["breast_density"].str.strip() != ""].groupby("image_id")["breast_density"].first()
        images["breast_density"] = images["image_id"].map(density).fillna("")
    images.insert(5, "dataset", "cbis-ddsm")
    images.insert(6, "split", "")
    if official_split:
        split, problems = official_splits(t)
        images["split"] = images["patient_id"].map(split).fillna("")
        errors += problems
    known = order[order["pathology_norm"] != ""]
    lesions = pd.DataFrame(
        {
            "image_id": known["image_id"],
            "lesion_type": known["lesion_type"],
            "pathology": known["pathology_norm"],
            "abnormality_id": known["abnormality id"],
            "case_folder": known["case"],
            "roi_path": known["ROI mask file path"],
            "csv": known["csv"],
        }
    ).reset_index(drop=True)
    return images, lesions, errors


def official_splits(t: pd.DataFrame) -> tuple[pd.Series, list[dict[str, str]]]:
    """Official split per patient from rows with ``part`` (see :func:`describe_rows`): a patient found
    in both parts goes to test, with one problem row naming the tables."""
    parts = t[t["part"] != ""].groupby("patient_id")["part"].agg(lambda s: set(s))
    split = parts.map(lambda s: "test" if "test" in s else "train")
    errors = []
    for pid in parts.index[parts.map(len) > 1]:
        rows = t[t["patient_id"] == pid]
        train = ", ".join(sorted(rows.loc[rows["part"] == "train", "csv"].unique()))
        test = ", ".join(sorted(rows.loc[rows["part"] == "test", "csv"].unique()))
        errors.append(
            {
                "file": pid,
                "reason": f"patient {pid} is in the training part of {train} and the test part of {test}; put in test",
            }
        )
    return split, errors
