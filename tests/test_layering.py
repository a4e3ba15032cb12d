"""Stages import downward only, and no two modules import each other (directly or around a loop).

Every ``import`` statement of every module in ``pyserini_splare/`` is read with ``ast`` -- module level
and inside functions alike (a lazy import is still a dependency; it only moves the cost) -- and
resolved to the module it names. So is every registry string, a constant ``"pyserini_splare.mod:attr"``
(or ``"pyserini_splare.mod"``) that ``_lazy.load_callable`` or ``importlib`` imports later: a registry
naming a module depends on it as surely as an import does. Three checks:

* **Layers.** A module may import only from its own layer or a lower one (DESIGN.md's data flow:
  formats/distributed <- encode <- index <- search <- fusion/rerank/eval <- train <- CLIs <- repro/demo)::

      0  _errors, _signals, _outputs, _console, _java, _lazy, _argtypes, _schemas, topics   (and the package's own __init__)
      1  formats/, vectors (facade), corpus, backends (the backend registry: declarations only),
         distributed/ (Ray cluster plumbing: connect, resources, signals; no stage's code)
      2  encode/
      3  index/
      4  search/
      5  fusion/, rerank/, eval/, explain/
      6  train/
      8  every stage's __main__ (the CLI: parses arguments and chooses, e.g., a local or a Ray run)
      9  repro/, demo/, serve/ (their own __main__ included)
     10  testing/

  ``encode --ray`` and ``rerank --ray`` run their stage's own Ray driver (``encode/on_ray.py``,
  ``rerank/on_ray.py``), which uses the cluster plumbing of ``distributed/`` below every stage: no stage
  is imported by ``distributed/``, so no loop passes through it.

* **No module cycles** among import statements (a loop of modules can leave one half-initialized at
  import time). Registry strings are left out of this one check: a lazy registry names its own
  stage's implementations, which import the stage's base classes (``search.registry`` names
  ``search.lucene``, which imports ``search.base``), a loop closed only at call time, by design.

* **No stage cycles**: the graph of stages (a stage's ``__main__`` counted with its stage) has no loop,
  e.g. encode -> distributed -> encode.

* **No cycles** in the module graph (an edge per import; ``from pkg import name`` points at
  ``pkg.name`` where that is a module, else at ``pkg``). A package importing its own submodules to
  re-export them is an edge like any other, so ``pkg/__init__`` re-exporting ``pkg._x`` while
  ``pkg._x`` imports ``pkg`` is a cycle too.

``_lazy``, the ``module:attr`` loader every registry uses, sits at 0; ``corpus`` at 1, beside the
formats whose reader it uses. There are no exceptions.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = "pyserini_splare"
ROOT = Path(__file__).resolve().parents[1] / PKG

LAYERS: dict[str, int] = {
    "": 0, "_console": 0, "_errors": 0, "_java": 0, "_lazy": 0, "_outputs": 0, "_signals": 0, "topics": 0,
    # argparse types and the pydantic config reader: CLI and file plumbing every stage uses.
    "_argtypes": 0, "_schemas": 0,
    # corpus reads corpora through formats' one JSONL reader, and no format reads a
    # corpus: it sits beside formats.
    "formats": 1, "vectors": 1, "corpus": 1,
    # The backend registry declares backends and options; it names no index or search module.
    "backends": 1,
    "encode": 2,
    "index": 3, "export": 3,
    "search": 4,
    "fusion": 5, "rerank": 5, "eval": 5, "explain": 5,
    "train": 6,
    # Ray cluster plumbing only (the stages' Ray drivers live in encode/ and rerank/).
    "distributed": 1,
    "repro": 9, "demo": 9, "serve": 9,
    # tests, benchmarks and examples' material (synthetic collections, tiny models): nothing imports it
    "testing": 10,
}
CLI_LAYER = 8  # a stage's __main__ (see the module doc)

# A registry string: what _lazy.load_callable takes ("module:attr"), or a module name alone.
REGISTRY_STRING = re.compile(r"^pyserini_splare(\.\w+)+(:\w+)?$")


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


def _registry_target(node: ast.AST) -> str | None:
    """The module a registry string names (None: not a registry string)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and REGISTRY_STRING.match(node.value):
        module = node.value.partition(":")[0]
        return module if _is_module(module) else None
    return None


def _edges(name: str, is_pkg: bool, tree: ast.AST, strings: bool = True):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield from _resolve(name, is_pkg, node)
        elif strings:
            target = _registry_target(node)
            if target is not None:
                yield target, node.lineno


def _graph(strings: bool = True) -> dict[str, dict[str, int]]:
    """module -> {imported module: first line}, every import statement (and registry string) included."""
    graph: dict[str, dict[str, int]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = _module_name(path)
        is_pkg = path.name == "__init__.py"
        edges = graph.setdefault(name, {})
        for target, line in _edges(name, is_pkg, ast.parse(path.read_text(encoding="utf-8"), str(path)), strings):
            if target != name:
                edges.setdefault(target, line)
    return graph


def _stage(module: str) -> str:
    parts = module.split(".")[1:]
    return parts[0] if parts else ""


def _is_cli(module: str) -> bool:
    return module.endswith(".__main__")


def _layer(module: str) -> int | None:
    """A module's layer: its stage's, or the CLI layer for a stage's __main__ (repro's and demo's stay
    in their own, higher, layer)."""
    layer = LAYERS.get(_stage(module))
    if layer is not None and _is_cli(module):
        return max(layer, CLI_LAYER)
    return layer


def _stage_node(module: str) -> str:
    """A module's node in the stage graph: its stage (a stage's __main__ included: its CLI is part of it)."""
    return _stage(module)


GRAPH = _graph()
IMPORT_GRAPH = _graph(strings=False)


def test_every_module_has_a_layer():
    unknown = sorted({_stage(m) for m in GRAPH} - set(LAYERS))
    assert not unknown, f"give these top-level modules/subpackages a layer in tests/test_layering.py: {unknown}"


def test_imports_go_downward_only():
    bad = []
    for importer, edges in GRAPH.items():
        src = _layer(importer)
        for imported, line in edges.items():
            dst = _layer(imported)
            if src is None or dst is None or dst <= src:
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
    cycles = _cycles(IMPORT_GRAPH)
    lines = []
    for comp in cycles:
        members = set(comp)
        edges = [f"{a} -> {b} (line {IMPORT_GRAPH[a][b]})" for a in comp for b in IMPORT_GRAPH[a] if b in members]
        lines.append("; ".join(edges))
    assert not cycles, "import cycles:\n  " + "\n  ".join(lines)


def _stage_graph(graph: dict[str, dict[str, int]]) -> dict[str, dict[str, str]]:
    """stage -> {imported stage: "module:line" of one edge}."""
    out: dict[str, dict[str, str]] = {}
    for importer, edges in graph.items():
        a = _stage_node(importer)
        out.setdefault(a, {})
        for imported, line in edges.items():
            b = _stage_node(imported)
            if b != a and imported in graph:
                out[a].setdefault(b, f"{importer}:{line} -> {imported}")
    return out


def test_no_stage_cycles():
    """No loop between stages (subpackages), lazy imports and registry strings included."""
    stages = _stage_graph(GRAPH)
    cycles = _cycles(stages)
    lines = ["; ".join(f"{a} -> {b} ({stages[a][b]})" for a in comp for b in stages[a] if b in comp)
             for comp in cycles]
    assert not cycles, "stage cycles:\n  " + "\n  ".join(lines)


def test_the_index_cli_is_counted_with_the_index_stage():
    """``index --calibrate``: index/__main__ imports search/calibrate, an index -> search edge of the stage
    graph (a CLI is part of its stage, not a node above every stage). No loop is left only because no path
    leads back from search/ to index/: the index folders' file formats are formats/' (layer 1)."""
    stages = _stage_graph(GRAPH)
    assert stages["index"]["search"].startswith("pyserini_splare.index.__main__:")
    assert "index" not in stages["search"], stages["search"]["index"]
    assert _cycles(stages) == []


def test_registry_strings_are_edges():
    """A "module:attr" string is an edge: the index stage's builders and the search stage's searchers."""
    assert "pyserini_splare.index.lucene_impact" in GRAPH["pyserini_splare.index.backends"]
    assert "pyserini_splare.search.lucene" in GRAPH["pyserini_splare.search.registry"]
    tree = ast.parse('X = {"a": "pyserini_splare.search.lucene:ImpactSearcher", "b": "not.a:registry"}')
    assert {t for t, _ in _edges("pyserini_splare.index.x", False, tree)} == {"pyserini_splare.search.lucene"}


@pytest.mark.parametrize("src,expected", [
    ("from .._errors import UsageError", {"pyserini_splare._errors"}),
    ("from . import build_index", {"pyserini_splare.index"}),
    ("from . import lucene_impact", {"pyserini_splare.index.lucene_impact"}),
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
    assert _layer("pyserini_splare.encode.x") < _layer("pyserini_splare.search.y")
    # the Ray hand-off: the cluster plumbing is below every stage that uses it
    assert _layer("pyserini_splare.encode.on_ray") > _layer("pyserini_splare.distributed.cluster")
    assert _layer("pyserini_splare.rerank.on_ray") > _layer("pyserini_splare.distributed.cluster")
    assert _layer("pyserini_splare.demo.pipeline") > _layer("pyserini_splare.encode.__main__")
    # a stage loop through a lazy import: encode -> distributed -> encode
    g = {"pyserini_splare.encode.pipeline": {"pyserini_splare.distributed.encode": 1},
         "pyserini_splare.distributed.encode": {"pyserini_splare.encode.batching": 2},
         "pyserini_splare.encode.batching": {}}
    assert _cycles(_stage_graph(g)) == [["distributed", "encode"]]
    # a stage's CLI is part of its stage: the same loop through encode/__main__ is a loop
    g["pyserini_splare.encode.__main__"] = g.pop("pyserini_splare.encode.pipeline")
    assert _cycles(_stage_graph(g)) == [["distributed", "encode"]]
