"""Stages import downward only, and no two modules import each other (directly or around a loop).

Every ``import`` statement of every module in ``pyserini_splare/`` is read with ``ast`` -- module level
and inside functions alike (a lazy import is still a dependency; it only moves the cost) -- and
resolved to the module it names. Two checks:

* **Layers.** A module may import only from its own layer or a lower one (DESIGN.md's data flow:
  formats <- encode <- index <- search <- fusion/rerank/eval <- train <- distributed <- repro/demo)::

      0  _cli, _java, _lazy, topics             (and the package's own __init__)
      1  formats/, vectors (facade), corpus
      2  encode/
      3  index/
      4  search/
      5  fusion/, rerank/, eval/, explain/
      6  train/
      7  distributed/
      8  repro/, demo/
      9  serve/

* **No cycles** in the module graph (an edge per import; ``from pkg import name`` points at
  ``pkg.name`` where that is a module, else at ``pkg``). A package importing its own submodules to
  re-export them is an edge like any other, so ``pkg/__init__`` re-exporting ``pkg._x`` while
  ``pkg._x`` imports ``pkg`` is a cycle too.

Allowed exceptions are listed below, each with its reason; the list is meant to stay short. ``_lazy``,
the ``module:attr`` loader every registry uses, sits at 0; ``corpus`` at 1, beside the formats whose
reader it uses.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = "pyserini_splare"
ROOT = Path(__file__).resolve().parents[1] / PKG

LAYERS: dict[str, int] = {
    "": 0, "_cli": 0, "_java": 0, "_lazy": 0, "topics": 0,
    # corpus reads corpora through formats' one JSONL reader and id-hash set, and no format reads a
    # corpus: it sits beside formats.
    "formats": 1, "vectors": 1, "corpus": 1,
    "encode": 2,
    "index": 3,
    "search": 4,
    "fusion": 5, "rerank": 5, "eval": 5, "explain": 5,
    "train": 6,
    "distributed": 7,
    "repro": 8, "demo": 8,
    # serve puts every stage behind REST/MCP/web: the top layer, imported by nothing.
    "serve": 9,
}

# (importer, imported, reason). Importer/imported are module names without the package prefix; an
# importer ending in ".__main__" with "*" as its first part matches every CLI entry point.
ALLOWED_UPWARD: list[tuple[str, str, str]] = [
    # The brief's one sanctioned upward edge: a stage's CLI (encode, rerank, ...) hands its work to
    # the Ray driver when given --ray, by a lazy import inside main(); the stage's library code
    # never sees Ray.
    ("*.__main__", "distributed", "--ray entry of a stage's CLI (lazy, function-level)"),
]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT.parent / rel / "__init__.py").is_file()


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return _is_package(name) or (ROOT.parent / rel).with_suffix(".py").is_file()


def _resolve(importer: str, is_pkg: bool, node: ast.AST) -> list[tuple[str, int]]:
    """The package modules an import statement names, with its line number."""
    out = []
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.name == PKG or a.name.startswith(PKG + "."):
                out.append((a.name, node.lineno))
        return out
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = importer.split(".")
        if not is_pkg:
            base = base[:-1]
        base = base[:len(base) - (node.level - 1)]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    if not (module == PKG or module.startswith(PKG + ".")):
        return out
    for a in node.names:
        sub = f"{module}.{a.name}"
        out.append((sub if _is_module(sub) else module, node.lineno))
    return out


def _graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: first line}, every import statement included."""
    graph: dict[str, dict[str, int]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = _module_name(path)
        is_pkg = path.name == "__init__.py"
        edges = graph.setdefault(name, {})
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target, line in _resolve(name, is_pkg, node):
                    if target != name:
                        edges.setdefault(target, line)
    return graph


def _stage(module: str) -> str:
    parts = module.split(".")[1:]
    return parts[0] if parts else ""


def _allowed(importer: str, imported: str) -> bool:
    short_from, short_to = importer[len(PKG) + 1:], imported[len(PKG) + 1:]
    for pat_from, pat_to, _ in ALLOWED_UPWARD:
        from_ok = (short_from.endswith(".__main__") and pat_from == "*.__main__") or short_from == pat_from
        to_ok = short_to == pat_to or short_to.startswith(pat_to + ".")
        if from_ok and to_ok:
            return True
    return False


GRAPH = _graph()


def test_every_module_has_a_layer():
    unknown = sorted({_stage(m) for m in GRAPH} - set(LAYERS))
    assert not unknown, f"give these top-level modules/subpackages a layer in tests/test_layering.py: {unknown}"


def test_imports_go_downward_only():
    bad = []
    for importer, edges in GRAPH.items():
        src = LAYERS.get(_stage(importer))
        for imported, line in edges.items():
            dst = LAYERS.get(_stage(imported))
            if src is None or dst is None or dst <= src or _allowed(importer, imported):
                continue
            bad.append(f"{importer}:{line} (layer {src}) imports {imported} (layer {dst})")
    assert not bad, "upward imports:\n  " + "\n  ".join(sorted(bad))


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    lines = []
    for comp in cycles:
        members = set(comp)
        edges = [f"{a} -> {b} (line {GRAPH[a][b]})" for a in comp for b in GRAPH[a] if b in members]
        lines.append("; ".join(edges))
    assert not cycles, "import cycles:\n  " + "\n  ".join(lines)


@pytest.mark.parametrize("src,expected", [
    ("from .._cli import UsageError", {"pyserini_splare._cli"}),
    ("from . import build_index", {"pyserini_splare.index"}),
    ("from . import lucene", {"pyserini_splare.index.lucene"}),
    ("import pyserini_splare.search.exact", {"pyserini_splare.search.exact"}),
    ("def f():\n    from ..search import open_searcher", {"pyserini_splare.search"}),
])
def test_resolver(src, expected):
    """The walker itself: relative, absolute and function-level imports resolve to modules."""
    found = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= {t for t, _ in _resolve("pyserini_splare.index.__main__", False, node)}
    assert found == expected


def test_the_checks_catch_a_violation():
    """The checks can fail: an upward edge and a two-module loop planted in a copy of the graph."""
    g = {"pyserini_splare.encode.x": {"pyserini_splare.search.y": 1}, "pyserini_splare.search.y": {}}
    assert _cycles(g) == []
    g["pyserini_splare.search.y"]["pyserini_splare.encode.x"] = 2
    assert _cycles(g) == [["pyserini_splare.encode.x", "pyserini_splare.search.y"]]
    assert LAYERS[_stage("pyserini_splare.encode.x")] < LAYERS[_stage("pyserini_splare.search.y")]
    assert not _allowed("pyserini_splare.encode.x", "pyserini_splare.search.y")
    assert _allowed("pyserini_splare.encode.__main__", "pyserini_splare.distributed.encode")
