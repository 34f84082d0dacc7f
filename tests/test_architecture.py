"""The layers of service/ import one way (the README's architecture section says which).

Every ``import`` of every module is read from its source (``ast``, no import executed) and
checked against the layer order: a module may import its own package, the layers below it,
and ``ops`` (operations, which import nothing of the service above them). Imports under
``if TYPE_CHECKING:`` count too: a circle drawn only for the type checker is still a circle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parent.parent / "service"
#: Top-level packages and modules of service/, lowest first; a layer may import those before it.
LAYERS = [
    {"kernels"},
    {"reduction"},
    {"validation"},
    {"expressions", "scores"},
    {"losses"},
    {"compute"},
    {"api"},
    {"app", "__main__"},
]
RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}
#: Beside every layer: imported by anyone, importing only itself and the version.
OPERATIONS = "ops"


def modules() -> list[Path]:
    return sorted(SERVICE.rglob("*.py"))


def top_level(path: Path) -> str:
    relative = path.relative_to(SERVICE)
    return relative.parts[0].removesuffix(".py")


def service_imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level part) of every import of ``service.<part>`` in the module."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "service":
                names = [f"service.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "service" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def test_every_top_level_part_has_a_layer() -> None:
    parts = {top_level(path) for path in modules()} - {"__init__"}
    assert parts <= set(RANK) | {OPERATIONS}, parts - set(RANK) - {OPERATIONS}


@pytest.mark.parametrize("path", modules(), ids=lambda path: str(path.relative_to(SERVICE)))
def test_imports_run_down_the_layers(path: Path) -> None:
    own = top_level(path)
    wrong = []
    for line, part in service_imports(path):
        if part in (own, OPERATIONS, "__version__"):
            continue
        if own in (OPERATIONS, "__init__"):
            wrong.append(f"line {line}: {own} imports {part} (ops imports nothing above it)")
        elif part not in RANK:
            continue  # a name from service/__init__.py
        elif RANK[part] >= RANK[own]:
            wrong.append(f"line {line}: {own} (layer {RANK[own]}) imports {part} ({RANK[part]})")
    assert not wrong, "\n".join(wrong)


def test_no_module_is_longer_than_400_lines() -> None:
    long = {
        str(path.relative_to(SERVICE)): count
        for path in modules()
        if (count := len(path.read_text().splitlines())) > 400
    }
    assert not long, long


def module_name(path: Path) -> str:
    parts = path.relative_to(SERVICE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The service modules ``path`` imports (``from a.b import c`` is a.b.c when c is one)."""
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in known}


def test_no_import_circles() -> None:
    paths = {module_name(path): path for path in modules()}
    graph = {name: imported_modules(path, set(paths)) - {name} for name, path in paths.items()}
    circles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                circles.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not circles, "\n".join(circles)


README = (SERVICE.parent / "README.md").read_text(encoding="utf-8")


def test_the_readme_module_map_names_every_module_and_only_real_ones() -> None:
    """Every path the README's module table names exists, and every module of the service is
    covered by a row (itself, its package, or a ``*.py`` row of its folder)."""
    section = README.split("### Architecture", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(service/[\w/.*]+)`", section))
    assert named, "the README has no module table"
    for path in named:
        matches = list(SERVICE.parent.glob(path.rstrip("/")))
        assert matches, f"the README names {path}, which does not exist"
    uncovered = []
    for path in modules():
        relative = str(path.relative_to(SERVICE.parent))
        folders = [
            str(parent.relative_to(SERVICE.parent)) + "/"
            for parent in path.parents
            if parent.is_relative_to(SERVICE)
        ]
        if path.name == "__init__.py":  # a package marker; its modules are what count
            continue
        if relative in named or any(folder in named for folder in folders):
            continue
        if f"{path.parent.relative_to(SERVICE.parent)}/*.py" in named:
            continue
        uncovered.append(relative)
    assert not uncovered, uncovered


def test_the_readme_tree_lists_the_layers_in_order() -> None:
    """The tree block of the architecture section lists the layers top-down, as LAYERS has them
    bottom-up."""
    section = README.split("### Architecture", 1)[1]
    tree = section.split("```text", 1)[1].split("```", 1)[0]
    order = []
    for line in tree.splitlines():
        for word in re.findall(r"[\w.]+", line.split("  ")[1] if line.startswith("  ") else ""):
            name = word.removesuffix("/").removesuffix(".py").rstrip(",")
            if name in RANK or name == OPERATIONS:
                order.append(name)
    ranks = [RANK[name] for name in order if name in RANK]
    assert ranks == sorted(ranks, reverse=True), order
    assert set(order) == set(RANK) | {OPERATIONS}
