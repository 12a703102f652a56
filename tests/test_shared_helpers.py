"""The test modules share the bundle folders, the tiny data loading and the MLflow store of
``tests/conftest.py`` instead of spelling them out again."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import BUNDLES, TINY, mlflow_store

TESTS = Path(__file__).resolve().parent
#: a test module's own bundle path or SQLite MLflow store (an f-string: a store made for the test)
SPELLED_OUT = re.compile(r"""parents\[\d\] / ["']bundles["']|\bf["']sqlite:///""")


def test_the_shared_helpers():
    assert (BUNDLES / "patch_classifier" / "configs").is_dir()
    assert dict(TINY) == {"batch_size": 8, "num_workers": 0, "cache_rate": 0.0}
    assert mlflow_store(Path("/runs")) == "sqlite:////runs/mlflow.db"
    assert mlflow_store("/runs", "single.db") == "sqlite:////runs/single.db"


def test_no_test_module_spells_out_the_bundles_folder_or_an_mlflow_store():
    found = [
        str(p.relative_to(TESTS))
        for p in TESTS.rglob("*.py")
        if p.name not in ("conftest.py", Path(__file__).name) and SPELLED_OUT.search(p.read_text())
    ]
    assert not found, found
