"""The package's shape (issue 18): each module readable in one sitting, private names private, every
module on the README's map."""
import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mcunet_lite"
README = PACKAGE.parent / "README.md"
MAX_LINES = 600


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package."""
    return {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imported_modules(tree: ast.Module, name: str, known: dict[str, Path]) -> dict[str, str]:
    """Local name -> package module, for every `import` / `from ... import` of a package module."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")[:-node.level]
                base = ".".join(parts + ([node.module] if node.module else []))
            for a in node.names:
                if f"{base}.{a.name}" in known:
                    found[a.asname or a.name] = f"{base}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name in known:
                    found[a.asname or a.name.split(".")[0]] = a.name
    return found


def private_uses(name: str, path: Path, known: dict[str, Path]) -> list[str]:
    """`module._name` and `from module import _name` in `path` where the module is another one of the package."""
    tree = ast.parse(path.read_text())
    aliases = _imported_modules(tree, name, known)
    uses = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level + bool(node.module):
            uses += [f"from {node.module or '.'} import {a.name}" for a in node.names
                     if a.name.startswith("_") and not a.name.startswith("__")]
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                and node.attr.startswith("_") and not node.attr.startswith("__"):
            uses.append(f"{node.value.id}.{node.attr}")
    return [f"{path.name}:{u}" for u in uses]


def test_no_private_name_is_used_outside_its_module():
    known = modules()
    found = [u for name, path in known.items() for u in private_uses(name, path, known)]
    assert found == []


def test_the_private_name_check_can_fail(tmp_path):
    known = {**modules(), "mcunet_lite.fake": tmp_path / "fake.py"}
    (tmp_path / "fake.py").write_text("from . import int8ref\nfrom .patch import _area\nx = int8ref._windows\n")
    assert private_uses("mcunet_lite.fake", tmp_path / "fake.py", known) == ["fake.py:from patch import _area",
                                                                             "fake.py:int8ref._windows"]


@pytest.mark.parametrize("name", sorted(modules()))
def test_every_module_is_readable_in_one_sitting(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by concept"


def test_every_module_is_on_the_readme_map():
    """README's "What is inside" table names every module (a newcomer finds each idea there)."""
    table = README.read_text().split("## What is inside", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"([A-Za-z0-9_/]+)\.py", table))
    missing = [n for n, p in modules().items() if p.stem != "__init__" and p.stem not in {Path(x).name for x in named}]
    assert missing == []
