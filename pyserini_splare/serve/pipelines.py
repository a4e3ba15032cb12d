"""Pipeline expressions: ``rrf(splare, splade, k=10)``, ``rerank(rrf(a, b), depth=100)``.

An expression is parsed with :mod:`ast` (a call tree of names and constants; nothing is evaluated)
into :class:`Node` objects. Leaves name an index or another pipeline; a call's function is a fusion
method of the fusion stage (``rrf``, ``combsum``, ...; its keyword arguments are the fusion CLI's:
``k`` = ``--rrf.k``, ``depth``, ``norm``, ``weights``) or ``rerank`` (``depth``, the rerank CLI's
``--depth``). What each step then runs is the stage's own function (see :mod:`.core`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Union

from .._errors import UsageError

FUSION_KWARGS = {"k": "rrf_k", "depth": "depth", "norm": "norm", "weights": "weights"}
RERANK_KWARGS = {"depth"}
DEFAULT_DEPTH = 1000  # hits of each input that enter fusion (fusion --depth default)
DEFAULT_RERANK_DEPTH = 100  # rerank --depth default


@dataclass
class Leaf:
    name: str


@dataclass
class Call:
    op: str
    args: list["Node"]
    kwargs: dict[str, Any] = field(default_factory=dict)


Node = Union[Leaf, Call]


def _const(node: ast.AST, where: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name):  # norm=min_max style bare words
        return node.id
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_const(e, where) for e in node.elts]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
        return -node.operand.value
    raise UsageError(f"{where}: a keyword value must be a number or a word")


def parse(expr: str, fusion_methods: list[str], where: str = "pipeline") -> Node:
    try:
        tree = ast.parse(expr.strip(), mode="eval").body
    except SyntaxError as e:
        raise UsageError(f"{where}: cannot parse {expr!r} ({e.msg})") from None

    def conv(n: ast.AST) -> Node:
        if isinstance(n, ast.Name):
            return Leaf(n.id)
        if isinstance(n, ast.Constant) and isinstance(n.value, str):  # 'index-with-dash'
            return Leaf(n.value)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            op = n.func.id
            kwargs = {kw.arg: _const(kw.value, where) for kw in n.keywords if kw.arg}
            args = [conv(a) for a in n.args]
            if op == "rerank":
                if len(args) != 1:
                    raise UsageError(f"{where}: rerank takes one input, e.g. rerank(rrf(a, b), depth=100)")
                bad = set(kwargs) - RERANK_KWARGS
            elif op in fusion_methods:
                if len(args) < 2:
                    raise UsageError(f"{where}: {op} fuses two or more inputs")
                bad = set(kwargs) - set(FUSION_KWARGS)
            else:
                raise UsageError(f"{where}: unknown step {op!r} (fusion methods: {', '.join(fusion_methods)}; rerank)")
            if bad:
                raise UsageError(f"{where}: {op} has no setting {sorted(bad)[0]!r}")
            if "depth" in kwargs and (not isinstance(kwargs["depth"], int) or kwargs["depth"] < 1):
                raise UsageError(f"{where}: depth must be a positive integer")
            return Call(op, args, kwargs)
        raise UsageError(f"{where}: {expr!r} is not an expression of index names and steps such as rrf(a, b, k=60)")

    return conv(tree)


def leaves(node: Node) -> list[str]:
    if isinstance(node, Leaf):
        return [node.name]
    return [n for a in node.args for n in leaves(a)]


def resolve(pipelines: dict[str, str], indexes: set[str], fusion_methods: list[str]) -> dict[str, Node]:
    """Parse every pipeline, check every name is an index or pipeline, and refuse cycles."""
    parsed = {name: parse(expr, fusion_methods, f"pipeline {name}") for name, expr in pipelines.items()}
    for name, node in parsed.items():
        for leaf in leaves(node):
            if leaf not in indexes and leaf not in parsed:
                raise UsageError(f"pipeline {name}: {leaf!r} is neither an index nor a pipeline")

    def visit(name: str, stack: tuple[str, ...]):
        if name in stack:
            raise UsageError(f"pipeline {name} refers to itself ({' -> '.join(stack + (name,))})")
        for leaf in leaves(parsed[name]):
            if leaf in parsed:
                visit(leaf, stack + (name,))

    for name in parsed:
        visit(name, ())
    return parsed


def needs_reranker(node: Node, parsed: dict[str, Node]) -> bool:
    if isinstance(node, Leaf):
        return node.name in parsed and needs_reranker(parsed[node.name], parsed)
    return node.op == "rerank" or any(needs_reranker(a, parsed) for a in node.args)
