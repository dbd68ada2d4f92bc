"""The package's layers, checked by walking every import (ast), `TYPE_CHECKING` and function-level ones too.

core <- model, networks <- search <- analysis, codegen, hwc <- report <- cli: a module may import its own
folder and any folder of a lower rank, never one of the same rank or above.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "convsched"

#: Each top-level folder (or module) of the package and its rank: imports go to a lower rank only.
RANK = {
    "core": 0,
    "model": 1, "networks": 1,
    "search": 2,
    "analysis": 3, "codegen": 3, "hwc": 3,
    "report": 4,
    "cli": 5,
    "__init__": 6, "__main__": 6,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, imported names) of every `convsched` import in the file."""
    tree = ast.parse(path.read_text())
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "convsched" or target.startswith("convsched."):
                out.append((node.lineno, target, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((node.lineno, a.name, []) for a in node.names if a.name.startswith("convsched"))
    return out


def folder(module: str, names: list[str]) -> str:
    """The top-level folder an import reaches (`from convsched import search` reaches `search`)."""
    parts = module.split(".")
    if len(parts) > 1:
        return parts[1]
    return names[0] if names else "__init__"


def test_every_folder_has_a_rank():
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
            if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"}
    assert tops <= set(RANK), f"give these a rank in RANK: {sorted(tops - set(RANK))}"


def test_imports_point_one_way():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = folder(module_name(path), [])
        if source == "__init__" and path.parent != PACKAGE:
            continue
        for line, target, names in imports(path):
            reached = folder(target, names)
            if reached != source and RANK[reached] >= RANK[source]:
                wrong.append(f"{path.relative_to(SRC)}:{line}: {source} -> {reached}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)
