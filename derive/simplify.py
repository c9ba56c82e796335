"""Rewrite expressions into the form a person writes.

:func:`simplify` rebuilds a tree bottom-up; each op's rewrite is part of its
definition in :mod:`derive.ops` and is applied after the operands are
already simple. The rewrites only use identities that hold for all values
(no cancellation that needs a non-zero guard beyond the one the expression
itself already carries), so the result equals the input; the proof checks
this independently anyway.

What they do: pull numbers and scalars out of products (2 A^T r, never
(2 A^T) r), collect like terms, factor a common matrix out of a sum
((A + A^T) x), fold away identities, ones and Kronecker products with I,
and push transposes inward.
"""

from __future__ import annotations

from .context import Budget
from .ir import Node, topo
from .ops import OPS
from .ops.algebra import is_zero, split_coef, zeros
from .ops.build import node, ones

__all__ = ["is_zero", "simplify", "split_coef", "zeros"]


def simplify(e: Node, budget: Budget | None = None) -> Node:
    """An equal expression, in readable form; shapes are unchanged.

    Past ``budget`` (CPU time), :class:`~derive.context.OutOfTime` is raised.
    """
    memo: dict[Node, Node] = {}

    def settle(n: Node) -> Node:
        """Apply n's rewrite until it stops changing; new operands are simplified first."""
        for _ in range(64):
            if budget is not None:
                budget.tick(8)
            rewrite = OPS[n.op].simplify
            out = rewrite(n) if rewrite else n
            if out.shape != n.shape:  # a scalar left where the sum had a shape: keep the shape
                if out.shape != ():
                    return n
                out = node("mul", out, ones(n.shape))
            if out == n:
                return n
            n = rebuild(out)
        return n

    def rebuild(n: Node) -> Node:
        for m in topo(n):
            if m in memo:
                continue
            args = tuple(memo[a] for a in m.args)
            base = m if args == m.args else node(m.op, *args, attr=m.attr)
            memo[m] = base if base in memo and memo[base] == base else settle(base)
            if base is not m:
                memo.setdefault(base, memo[m])
        return memo[n]

    return rebuild(e)
