"""The expression tree: one immutable node type, an op name and a shape.

Every expression derive handles, the user's and the derivatives it builds,
is a :class:`Node`. Shapes follow numpy: ``()`` is a scalar, ``(n,)`` a 1-D
vector, ``(m, n)`` a matrix; dimensions are SymPy expressions in positive
integer symbols, so a form holds for every size. What an op means (its
shape rule, rules, evaluation, printers) is defined once, in
:mod:`derive.ops`; nodes are made with :func:`derive.ops.node`, which
checks the operands against the op's shape rule.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

Dim = sp.Expr
Shape = tuple[Dim, ...]


class ShapeError(Exception):
    """Operands whose shapes do not fit an op; the parser adds where."""


@dataclass(frozen=True, eq=True)
class Node:
    """``op`` applied to ``args``; ``attr`` holds non-node data (a name, a number, an axis)."""

    op: str
    args: tuple[Node, ...] = ()
    attr: Any = None
    shape: Shape = field(default=(), compare=False)
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.op, self.args, self.attr)))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        """Structural equality, iterative (any depth); shared operands are compared once."""
        if self is other:
            return True
        if not isinstance(other, Node):
            return NotImplemented
        if self._hash != other._hash or self.op != other.op or self.attr != other.attr:
            return False
        if len(self.args) == len(other.args) and all(a is b for a, b in zip(self.args, other.args, strict=True)):
            return True
        stack, seen = [(self, other)], set()
        while stack:
            a, b = stack.pop()
            if a is b or (id(a), id(b)) in seen:
                continue
            if a._hash != b._hash or a.op != b.op or len(a.args) != len(b.args) or a.attr != b.attr:
                return False
            seen.add((id(a), id(b)))
            stack.extend(zip(a.args, b.args, strict=True))
        return True

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> Dim:
        return sp.Mul(*self.shape) if self.shape else sp.Integer(1)

    def __repr__(self) -> str:  # compact, for debugging only
        inner = ", ".join(repr(a) for a in self.args)
        extra = f"{self.attr!r}" if self.attr is not None else ""
        return f"{self.op}({extra}{', ' if extra and inner else ''}{inner})"


def dim(name: str) -> sp.Symbol:
    """A named dimension (a positive integer symbol)."""
    return sp.Symbol(name, positive=True, integer=True)


class Dims:
    """How shape rules compare dimensions: equality once shapes are known.

    The parser's subclass unifies instead (``A @ x`` ties A's columns to x's length)
    and knows declared sizes; ``value`` gives a dimension's number when known.
    """

    def __call__(self, x: Dim, y: Dim) -> bool:
        x, y = sp.S(x), sp.S(y)
        return x == y or (bool(x.free_symbols | y.free_symbols) and sp.expand(x - y) == 0)

    def value(self, d: Dim) -> int | None:
        d = sp.S(d)
        return int(d) if d.is_Integer else None


same = Dims()


def size_of(shape: Shape) -> Dim:
    return sp.Mul(*shape) if shape else sp.Integer(1)


def topo(e: Node, stop: Collection[Node] = ()) -> list[Node]:
    """Distinct subexpressions of ``e``, children before parents (iterative: any depth); the
    subexpressions in ``stop`` and those only inside them are left out."""
    out: list[Node] = []
    seen: set[Node] = {n for n in stop if n != e}
    stack: list[tuple[Node, bool]] = [(e, False)]
    while stack:
        n, done = stack.pop()
        if done:
            out.append(n)
            continue
        if n in seen:
            continue
        seen.add(n)
        stack.append((n, True))
        stack.extend((a, False) for a in reversed(n.args) if a not in seen)
    return out


def depth(e: Node) -> int:
    """The longest path from ``e`` to a leaf."""
    d: dict[Node, int] = {}
    for n in topo(e):
        d[n] = 1 + max((d[a] for a in n.args), default=0)
    return d[e]


def fold(e: Node, f: Callable[[Node, tuple[Any, ...]], Any]) -> Any:
    """``f(node, results of its operands)`` bottom-up over the DAG, each distinct node once."""
    memo: dict[Node, Any] = {}
    for n in topo(e):
        memo[n] = f(n, tuple(memo[a] for a in n.args))
    return memo[e]


def depends_on(e: Node, name: str) -> set[Node]:
    """The subexpressions of ``e`` that contain the variable ``name``."""
    out: set[Node] = set()
    for n in topo(e):
        if (n.op == "var" and n.attr[0] == name) or any(a in out for a in n.args):
            out.add(n)
    return out


def depends(e: Node, name: str) -> bool:
    return e in depends_on(e, name)


def variables(e: Node) -> Iterator[Node]:
    """The distinct variables of ``e``, in order of first appearance."""
    return (n for n in topo(e) if n.op == "var")
