"""Laterality and view from file and folder names (CBIS-DDSM, INbreast, MIAS-style conventions)."""

from __future__ import annotations

import re
from pathlib import Path

#: View codes accepted from names and DICOM tags, upper case.
VIEWS = ("CC", "MLO", "ML", "LM", "LMO", "XCCL", "XCCM", "AT", "SIO", "FB", "CV", "RL", "RM", "ID")
_SIDES = {"L": "L", "LEFT": "L", "R": "R", "RIGHT": "R"}
_SPLIT = re.compile(r"[_\-.\s]+")
_GLUED = re.compile(r"^([LR])(CC|MLO|ML)$")
#: DICOM CodeMeaning of the View Code Sequence -> view code.
VIEW_MEANINGS = {
    "cranio-caudal": "CC",
    "medio-lateral oblique": "MLO",
    "medio-lateral": "ML",
    "latero-medial": "LM",
    "exaggerated cranio-caudal": "XCCL",
}


def parse_name(name: str) -> tuple[str, str]:
    """Read laterality and view from one name such as ``Mass-Training_P_00001_LEFT_CC``,
    ``22678622_61b13c59bcba149e_MG_R_ML_ANON`` or ``scan_LMLO``.

    Returns:
        (laterality, view): laterality "L", "R" or "" when absent; view a code of :data:`VIEWS` or "".
    """
    tokens = [t for t in _SPLIT.split(name.upper()) if t]
    side, view = "", ""
    for i, tok in enumerate(tokens):
        glued = _GLUED.match(tok)
        if glued:
            return glued.group(1), glued.group(2)
        if tok in _SIDES:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
            if nxt in VIEWS:
                return _SIDES[tok], nxt
            # a bare L/R is too ambiguous on its own; LEFT/RIGHT is not
            if len(tok) > 1:
                side = _SIDES[tok]
        elif tok in VIEWS and tok not in ("ID", "AT") and not view:
            view = tok
    return side, view


def parse_path(path: str | Path, levels: int = 4) -> tuple[str, str]:
    """Laterality and view from a file name, then from its parent folders (nearest first).

    The current TCIA CBIS-DDSM layout names the file ``1-1.dcm`` and keeps the case name three
    folders up, hence the search upwards.
    """
    p = Path(path)
    side, view = "", ""
    for part in [p.stem, *[q.name for q in list(p.parents)[:levels]]]:
        s, v = parse_name(part)
        side, view = side or s, view or v
        if side and view:
            break
    return side, view
