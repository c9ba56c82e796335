"""Making nodes: the one constructor :func:`node`, and the small builders rules use."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import sympy as sp

import derive.ops as _ops

from ..errors import DeriveError

__all__ = ["DIMS", "Dim", "make", "node"]
from ..ir import Dim, Dims, Node, Shape, ShapeError, same

#: How shape rules compare dimensions in this context: plain equality, or, while the parser
#: infers shapes, its unifier. A context variable, so threads never see each other's.
DIMS: ContextVar[Dims] = ContextVar("DIMS", default=same)


def make(op: str, args: tuple[Node, ...], attr: Any, dims: Dims) -> Node:
    """A node, its shape from the op's rule with ``dims`` deciding equal dimensions."""
    rule = _ops.OPS.get(op)
    if rule is None:
        raise ShapeError(f"unknown op '{op}'")
    return Node(op, args, attr, rule.shape(args, attr, dims))


def node(op: str, *args: Node, attr: Any = None) -> Node:
    """Make a node, checking the operands' shapes against the op's rule."""
    return make(op, tuple(args), attr, DIMS.get())


# ----- leaves -----


def var(name: str, shape: Shape, structure: str = "") -> Node:
    """A variable; ``structure`` is "", "symmetric" or "diagonal"."""
    return node("var", attr=(name, tuple(shape), structure))


def const(value: Any) -> Node:
    """A number; a non-finite one (a division by zero) is the user's error."""
    v = sp.nsimplify(value) if isinstance(value, float) else sp.S(value)
    if not v.is_finite:
        raise DeriveError("the expression divides by zero (a constant part of it is not finite)")
    if v.is_real is False:
        raise DeriveError(f"the constant {v} is not a real number (numpy would give nan)")
    return node("const", attr=v)


def size(d: Dim) -> Node:
    """A dimension used as a number (the n of a mean's 1/n)."""
    d = sp.S(d)
    return const(d) if d.is_Integer else node("size", attr=d)


def eye(n: Dim) -> Node:
    return node("eye", attr=(sp.S(n),))


def ones(shape: Shape) -> Node:
    return node("ones", attr=(tuple(sp.S(d) for d in shape),))


def zeros(shape: Shape) -> Node:
    return const(0) if shape == () else node("mul", const(0), ones(shape))


def commutation(m: Dim, n: Dim) -> Node:
    """K with K vec(A) = vec(A^T) for A of shape (m, n)."""
    return node("commutation", attr=(sp.S(m), sp.S(n)))


# ----- combinations -----


def hadamard(*xs: Node) -> Node:
    """The element-wise product of the operands (a scalar broadcasts)."""
    out = xs[0]
    for x in xs[1:]:
        out = node("mul", out, x)
    return out


def plus(*xs: Node | None) -> Node | None:
    """The sum of the operands that are not None (zero); None if all are."""
    kept = [x for x in xs if x is not None]
    if not kept:
        return None
    out = kept[0]
    for x in kept[1:]:
        out = node("add", out, x)
    return out


def power(a: Node, p: Any) -> Node:
    """``a`` to the (numeric) power ``p``, element-wise."""
    return node("pow", a, attr=sp.S(p))


def neg(a: Node) -> Node:
    return node("mul", const(-1), a)


def minus(a: Node, b: Node) -> Node:
    return node("add", a, neg(b))


def mm(a: Node, b: Node) -> Node:
    return node("matmul", a, b)


def T(a: Node) -> Node:
    return node("T", a)


def fn(name: str, a: Node, order: int = 0) -> Node:
    """An element-wise function (see :mod:`derive.ops.functions`), or its ``order``-th derivative."""
    return node("fn", a, attr=(name, order))


def vec(a: Node) -> Node:
    return a if a.ndim <= 1 else node("vec", a)


def row(a: Node) -> Node:
    return node("row", a)


def col(a: Node) -> Node:
    return node("col", a)


def diag_of(a: Node) -> Node:
    """diag(vec(a)): the Jacobian of an element-wise map with derivative ``a``."""
    return node("diag", vec(a))


def lin(m: Node, j: Node | None) -> Node | None:
    """``m @ j``, or zero (None) when ``j`` is zero."""
    return None if j is None else mm(m, j)


def is_const(e: Node, value: Any = None) -> bool:
    return e.op == "const" and (value is None or e.attr == value)


ONE_TEXT = "1"
