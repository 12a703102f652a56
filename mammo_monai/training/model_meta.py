"""What inference must know about trained weights, recorded beside them in ``models/model_meta.json``
(architecture, input size, the cache's preprocessing, input normalisation, class names)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mammo_monai.io.atomic import write_json

MODEL_META = "model_meta.json"


def trained_setting(bundle_root: str | os.PathLike, key: str, default: Any) -> Any:
    """A setting recorded with the trained weights (``models/model_meta.json``: arch, image size,
    ...), so inference builds the network that was trained; ``default`` when absent."""
    path = Path(bundle_root) / "models" / MODEL_META
    if path.is_file():
        return json.loads(path.read_text()).get(key, default)
    return default


def write_model_meta(path: str | os.PathLike, settings: dict[str, Any]) -> None:
    """Record the settings inference needs next to ``model.pt`` (temporary file, then rename)."""
    write_json(settings, path)
