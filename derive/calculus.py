"""Differentiation by rule: reverse mode for a scalar's gradient, forward mode for vec Jacobians.

Each op's rule (and the identity it encodes) is part of its definition in
:mod:`derive.ops`: ``vjp(e, G, i)`` is the adjoint of ``e.args[i]`` given the
adjoint ``G`` of ``e`` (df = tr(Gᵀ dX) => df/dX = G); ``jac(e, Js)`` is the
Jacobian of vec(e) from those of its operands (numerator layout,
column-major vec: vec(A dX B) = (Bᵀ ⊗ A) vec(dX)). A missing rule raises
:class:`~derive.ops.NoRule` once, naming the op; the caller then gives the
element-wise form and says so.
"""

from __future__ import annotations

import sympy as sp

from .context import Budget
from .ir import Node, Shape, depends_on, size_of, topo
from .ops import OPS
from .ops.build import const, eye, node, plus

__all__ = ["gradient", "jacobian", "normalize"]


def normalize(e: Node, budget: Budget | None = None) -> Node:
    """Fuse compositions that have a cleaner rule than their parts (each op's ``fuse`` piece):
    ||x||^2 -> x @ x, log(det(X)) -> logdet(X), log(softmax(z)) -> logsoftmax(z), ...

    ``budget`` (CPU time) is checked as it goes, here and in :func:`gradient` and :func:`jacobian`:
    past it, :class:`~derive.context.OutOfTime` is raised."""
    memo: dict[Node, Node] = {}
    for n in topo(e):
        if budget is not None:
            budget.tick()
        args = tuple(memo[a] for a in n.args)
        out = n if args == n.args else node(n.op, *args, attr=n.attr)
        fuse = OPS[out.op].fuse
        memo[n] = fuse(out) if fuse is not None else out
    return memo[e]


def gradient(e: Node, name: str, budget: Budget | None = None) -> Node | None:
    """Reverse mode: the gradient of the scalar ``e`` by ``name``, in its shape; None means zero."""
    if e.shape != ():
        raise ValueError("gradient needs a scalar expression")
    live = depends_on(e, name)
    adjoint: dict[Node, list[Node]] = {e: [const(1)]}
    result = None
    for n in reversed([n for n in topo(e) if n in live]):
        if budget is not None:
            budget.tick()
        parts = adjoint.pop(n, [])
        if not parts:
            continue
        g = plus(*parts)
        if n.op == "var":
            result = g
            continue
        vjp = OPS[n.op].piece("vjp")
        for i, a in enumerate(n.args):
            if a in live:
                contribution = vjp(n, g, i)
                if contribution is not None:
                    adjoint.setdefault(a, []).append(contribution)
    return result


def jacobian(e: Node, name: str, shape: Shape, budget: Budget | None = None) -> Node | None:
    """Forward mode: d vec(e) / d vec(name), a (size(e) x size(name)) matrix; None means zero."""
    live = depends_on(e, name)
    js: dict[Node, Node | None] = {}
    for n in topo(e):
        if budget is not None:
            budget.tick()
        if n not in live:
            js[n] = None
        elif n.op == "var":
            js[n] = eye(size_of(shape) if shape else sp.Integer(1))
        else:
            js[n] = OPS[n.op].piece("jac")(n, [js[a] for a in n.args])
    return js[e]
