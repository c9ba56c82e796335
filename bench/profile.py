"""Where a generated function spends its time: every operation of its body timed on its own.

The body is rewritten so that each call and each arithmetic operation is one assignment (``_p1 = X @ w``,
``_p2 = y * _p1``, ...); the rewritten body runs once to fill in every intermediate, then each assignment is
timed by itself with its inputs ready. Views (``X.T``, ``y[:, None]``) and names are not operations.
"""

from __future__ import annotations

import ast
import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.report import fmt_time
from bench.timing import calibrate, sample

_OPS = (ast.Call, ast.BinOp, ast.UnaryOp, ast.Compare)


@dataclass(frozen=True)
class Step:
    """One operation: its source (inner operations shown as …) and seconds per run."""

    text: str
    seconds: float


class _Flatten(ast.NodeTransformer):
    """Hoists each operation into its own assignment, innermost first."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, ast.Assign]] = []

    def hoist(self, node: ast.expr) -> ast.expr:
        shown = ast.unparse(_Elide().visit(copy.deepcopy(node)))
        node = self.visit(node)
        if not isinstance(node, _OPS):
            return node
        name = f"_p{len(self.steps) + 1}"
        self.steps.append((shown, ast.Assign([ast.Name(name, ast.Store())], node)))
        return ast.Name(name, ast.Load())

    def visit_Call(self, node: ast.Call) -> ast.Call:
        node.args = [self.hoist(a) for a in node.args]
        for k in node.keywords:
            k.value = self.hoist(k.value)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.BinOp:
        node.left, node.right = self.hoist(node.left), self.hoist(node.right)
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.UnaryOp:
        node.operand = self.hoist(node.operand)
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.Compare:
        node.left, node.comparators = self.hoist(node.left), [self.hoist(c) for c in node.comparators]
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.Attribute:  # np.linalg.inv(X).T
        node.value = self.hoist(node.value)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.Subscript:  # f(z)[:, None]
        node.value = self.hoist(node.value)
        return node

    def visit_Tuple(self, node: ast.Tuple) -> ast.Tuple:
        node.elts = [self.hoist(e) for e in node.elts]
        return node


class _Elide(ast.NodeTransformer):
    """An operation's text with its operand operations replaced by … (a call by f(…)): each step's own work."""

    def __init__(self) -> None:
        self.depth = 0

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, _OPS) and self.depth > 0:
            gone = ast.Name("…", ast.Load())
            return ast.Call(node.func, [gone], []) if isinstance(node, ast.Call) else gone
        self.depth += isinstance(node, _OPS)
        out = super().generic_visit(node)
        self.depth -= isinstance(node, _OPS)
        return out


def _function(source: str, name: str) -> ast.FunctionDef:
    return next(f for f in ast.parse(source).body if isinstance(f, ast.FunctionDef) and f.name == name)


def _compiled(st: ast.stmt) -> Any:
    return compile(ast.fix_missing_locations(ast.Module([st], [])), "<profile>", "exec")


def profile(source: str, name: str, env: Mapping[str, Any], kwargs: Mapping[str, Any]) -> list[Step]:
    """Every operation of function ``name`` in ``source`` (a module whose globals are ``env``), called with
    ``kwargs``: its seconds per run, the median of 5 samples of about 2 ms (one run when it takes over 0.5 s)."""
    fn = _function(source, name)
    body = fn.body[1:] if ast.get_docstring(fn) else fn.body
    scope: dict[str, Any] = {**env, **kwargs}
    run_ = exec  # the rewritten body of derive's own generated function, never user text
    for st in body:  # every intermediate the operations read (x = np.ravel(x), t1 = ...)
        if isinstance(st, ast.Assign):
            run_(_compiled(st), scope)
    flat = _Flatten()
    for st in body:
        if isinstance(st, ast.Assign | ast.Return) and st.value is not None:
            flat.hoist(st.value)
    out = []
    for text, st in flat.steps:
        code = _compiled(st)
        run_(code, scope)

        def once(code: Any = code) -> None:
            run_(code, scope)

        t, calls = calibrate(once, 0.002)
        runs = [t] if t > 0.5 else sorted(sample(once, calls) for _ in range(5))
        out.append(Step(text, runs[len(runs) // 2]))
    return out


def summary(steps: list[Step], share: float = 0.05, most: int = 4) -> str:
    """The operations that take at least ``share`` of the total, largest first: 'text t (p%)'."""
    total = sum(s.seconds for s in steps) or math.nan
    big = sorted((s for s in steps if s.seconds >= share * total), key=lambda s: -s.seconds)[:most]
    return "; ".join(f"`{s.text}` {fmt_time(s.seconds)} ({s.seconds / total:.0%})" for s in big)
