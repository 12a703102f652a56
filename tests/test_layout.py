"""The package's folders follow the data flow and import one way: nothing imports from a later stage."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mammo_monai"
#: the order of the data flow (../shared/DESIGN.md); a module may import its own folder and earlier ones.
#: tracking comes before training because a stage ends its own MLflow run; evaluation (scores of a table
#: of predictions) before both, since validation uses its metrics and plots.
LAYERS = [
    "ranks",
    "io",
    "parallel",
    "transforms",
    "synthetic",
    "data",
    "networks",
    "evaluation",
    "tracking",
    "training",
    "inference",
    "serve",
    "bundle_names",
    "demo",
    "commands_sources",
    "commands",
    "commands_model",
    "commands_calibrate",
    "commands_serve",
    "cli_bundles",
    "cli_common",
    "cli",
]
MAX_LINES = 420


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "mammo_monai" or len(parts) == 1:
        return None  # the package root (version, logging) is below everything
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def test_every_module_lives_in_a_known_stage():
    top = {
        p.stem if p.is_file() else p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").is_file())
    }
    assert top <= set(LAYERS), sorted(top - set(LAYERS))


def test_imports_point_one_way_down_the_data_flow():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = _layer(".".join(("mammo_monai", *path.relative_to(PACKAGE).with_suffix("").parts)))
        for line, module in _imports(path):
            there = _layer(module)
            if here is not None and there is not None and there > here:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_no_module_is_much_over_400_lines():
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long
