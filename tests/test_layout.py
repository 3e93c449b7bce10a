"""The shape of the package, as invariants: small files and functions, no import cycles, and the packages in
layers (LAYERS): nothing imports from a layer above its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nmt"
MAX_FILE_LINES, MAX_FUNCTION_LINES = 300, 50
# the packages by layer, lowest first: a module imports only from its own layer and those below it (README, Layout)
LAYERS = [("nmt.errors", "nmt.choices", "nmt.resources"), ("nmt.config",), ("nmt.data",), ("nmt.model",),
          ("nmt.checkpoint", "nmt.runtime"), ("nmt.decoding",), ("nmt.evaluation", "nmt.training"),
          ("nmt.plot", "nmt.serve"), ("nmt.api", "nmt.bench", "nmt.cli")]
TOP = ("nmt", "nmt.__main__")  # the package itself (which exports nmt.api lazily) and ``python -m nmt``


def _layer(name: str) -> int | None:
    for i, layer in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in layer):
            return i
    return None


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The nmt modules ``name`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in found if m in known and m != name}


def test_files_and_functions_are_small() -> None:
    too_long = []
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_FILE_LINES:
            too_long.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert not too_long


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    # a package's __init__ importing its own submodules is how Python packages work, not a cycle of design
    graph = {name: {m for m in deps if not m.startswith(name + ".")} for name, deps in graph.items()}
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            pytest.fail("import cycle: " + " -> ".join([*stack[stack.index(name):], name]))
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*stack, name])
        done.add(name)

    for name in graph:
        visit(name, [])


def test_every_module_has_a_layer_and_imports_only_its_own_or_lower_ones() -> None:
    modules = _modules()
    assert [name for name in modules if name not in TOP and _layer(name) is None] == []
    upward = [f"{name} (layer {_layer(name)}) imports {dep} (layer {_layer(dep)})"
              for name, path in modules.items() if name not in TOP
              for dep in sorted(_imports(name, path, set(modules))) if (_layer(dep) or 0) > _layer(name)]
    assert upward == []


def test_every_subpackage_goes_into_the_wheel() -> None:
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(PACKAGE.parent).parts) for p in PACKAGE.rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
