"""The product's layers only point down: features <- ingest, training <- serving <- commands.

Every import of every product module is read (with ``ast``, function-level imports too, since
a lazy import crosses a layer as much as one at the top), and one that reaches a higher layer,
or a sibling of the same layer, fails the test naming the module and the line.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The settings are read by every layer (one source of truth); the command layer sits on top.
LAYERS: dict[str, int] = {
    "denial_triage.settings": 0,
    "models": 0,  # the model specs' YAML files, read through training.specs
    "features": 1,
    "ingest": 2,
    "training": 2,
    "serving": 3,
    "denial_triage": 4,
}
PACKAGES = ("features", "ingest", "training", "serving", "models", "denial_triage")


def layer_of(module: str) -> str | None:
    """The most specific layer a dotted module name belongs to, or None outside the product."""
    named = [name for name in LAYERS if module == name or module.startswith(name + ".")]
    return max(named, key=len, default=None)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.Module, module: str, is_package: bool) -> list[tuple[str, int]]:
    """Every module ``module`` imports, absolute, with its line."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from training import plots`` imports the module training.plots
            found.extend((f"{base}.{alias.name}", node.lineno) for alias in node.names)
    return found


def upward_imports(root: Path) -> list[str]:
    """``path:line: module imports target (layer a above layer b)`` for each import that does
    not point down."""
    problems: list[str] = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue  # Alembic's scripts: run by Alembic, part of serving's records
            module = module_name(path, root)
            own = layer_of(module)
            assert own is not None, module
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for target, line in imported_modules(tree, module, path.name == "__init__.py"):
                theirs = layer_of(target)
                if theirs is None or theirs == own:
                    continue
                if LAYERS[theirs] >= LAYERS[own]:
                    where = path.relative_to(root)
                    problems.append(
                        f"{where}:{line}: {module} imports {target} ({theirs} is not below {own})"
                    )
    return problems


def test_no_product_module_imports_up_or_across_the_layers() -> None:
    assert upward_imports(ROOT) == []


def test_the_walk_sees_every_product_package() -> None:
    modules = {module_name(p, ROOT) for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    for expected in ("features.contract", "training.run", "serving.batch", "denial_triage.cli"):
        assert expected in modules


def test_an_upward_import_is_named_with_its_module_and_line(tmp_path: Path) -> None:
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "training" / "feedback.py").write_text(
        '"""Reads the records."""\n\n\ndef load():\n    from serving.repository import rows\n'
    )
    (tmp_path / "features" / "codes.py").write_text("from . import mapping\nimport ingest.x12\n")
    (tmp_path / "ingest" / "batch.py").write_text("from ..training import fit\n")
    (tmp_path / "serving" / "app.py").write_text(
        "from denial_triage.settings import Settings\nfrom training import run\n"
    )
    assert upward_imports(tmp_path) == [
        "features/codes.py:2: features.codes imports ingest.x12 (ingest is not below features)",
        "ingest/batch.py:1: ingest.batch imports training.fit (training is not below ingest)",
        "training/feedback.py:5: training.feedback imports serving.repository.rows "
        "(serving is not below training)",
    ]
