"""The columns a calibrated bundle adds to ``predict``'s table: ``probability_calibrated`` and one
``decision@<operating point>`` per named operating point (1: recall, 0: not)."""

from __future__ import annotations

import pandas as pd

from mammo_monai.evaluation.calibration import Calibration


def decision_column(name: str) -> str:
    """The column of the decision at the operating point ``name``."""
    return f"decision@{name}"


def with_calibrated_columns(table: pd.DataFrame, calibration: Calibration | None) -> pd.DataFrame:
    """``table`` with the calibrated probability and the decisions of its operating points, placed after
    ``probability`` (and ``decision``); ``table`` itself when there is no calibration.

    Every row with a probability gets them: an image from its own probability, a breast (and an exam)
    from its probability as aggregated today (the mean or max of the raw probabilities of its views),
    calibrated afterwards. Rows without one (errors) stay empty.
    """
    if calibration is None:
        return table
    scored = table["probability"].notna()
    calibrated = pd.Series(float("nan"), index=table.index)
    calibrated[scored] = calibration.apply(table.loc[scored, "probability"].to_numpy(dtype=float))
    added = {"probability_calibrated": calibrated}
    for name, point in calibration.operating_points.items():
        decision = pd.Series(pd.NA, index=table.index, dtype="Int64")
        decision[scored] = point.decide(calibrated[scored].to_numpy())
        added[decision_column(name)] = decision
    columns = list(table.columns)
    at = columns.index("decision" if "decision" in columns else "probability") + 1
    order = [*columns[:at], *added, *columns[at:]]
    return table.assign(**added)[order]
