"""The layout stays as refactored: no import circle inside knip_host or
among the firmware's packages (imports inside functions count too: they run
all the same), no file in firmware/ or host/ over 600 lines and no function
over 120 lines. Read from the source with `ast`; nothing is imported."""
from __future__ import annotations

import ast
from pathlib import Path

HOST = Path(__file__).resolve().parent.parent / "host"
FIRMWARE = HOST.parent / "firmware"
TREES = (HOST, FIRMWARE)
PACKAGE = "knip_host"
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 120


def modules(root: Path = HOST / PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name a `from X import ...` reads from."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    if node.level > 1:
        base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `module` imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, is_package, node)
            found.add(source)
            found.update(f"{source}.{a.name}" for a in node.names)     # from pkg import module
    return {name for name in found if name in known and name != module}


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def firmware_graph() -> dict[str, set[str]]:
    """Every firmware package (knip, links, drivers, espboard, simboard) as one graph."""
    mods: dict[str, Path] = {}
    for pkg in sorted(p for p in FIRMWARE.iterdir() if p.is_dir() and any(p.glob("*.py"))):
        mods.update(modules(pkg))
    graph = {name: imports_of(name, path, set(mods)) for name, path in mods.items()}
    # a driver importing what its package's __init__ shares (the package then
    # loads that driver lazily) is how a package works, not a circle
    return {name: {m for m in deps if not name.startswith(m + ".")} for name, deps in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_sees_relative_and_function_imports():
    graph = import_graph()
    assert "knip_host.cli" in graph and graph["knip_host.cli"]
    assert "knip_host.device" in graph["knip_host.sync"]


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_no_import_circle_in_the_firmware():
    graph = firmware_graph()
    assert "knip.recorder" in graph["knip.app"] and "knip.record" in graph["knip.detector"]
    assert cycles(graph) == []


def _sources():
    return [p for tree in TREES for p in sorted(tree.rglob("*.py"))]


def test_no_file_over_600_lines():
    long = {str(p.relative_to(HOST.parent)): n for p in _sources()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES}
    assert long == {}


def test_no_function_over_120_lines():
    long = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(HOST.parent)}:{node.lineno} {node.name}"] = n
    assert long == {}
