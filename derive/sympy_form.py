"""The matrix form as SymPy matrix expressions (``Derivation.matrix``).

Vectors become n x 1 ``MatrixSymbol``s, so ``x @ A`` is ``x.T * A`` and a
scalar ``x @ y`` is the trace of the 1 x 1 ``x.T * y``. SymPy has no vec
or commutation matrix; the two small classes below supply them, with
entries, so ``as_explicit()`` works. Each op's conversion is part of its
definition in :mod:`derive.ops`.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp
from sympy.matrices.expressions import MatrixExpr, OneMatrix, Trace

from .ir import Node, Shape, fold


class Vec(MatrixExpr):
    """vec(X): the columns of X stacked into one column."""

    def __new__(cls, arg: MatrixExpr) -> Vec:
        return super().__new__(cls, arg)

    @property
    def shape(self) -> tuple:
        m, n = self.args[0].shape
        return (m * n, sp.Integer(1))

    def _entry(self, i: object, j: object, **kwargs: object) -> sp.Expr:
        m = self.args[0].shape[0]
        return self.args[0][i % m, i // m]

    def _latex(self, printer: object) -> str:
        return rf"\operatorname{{vec}}\left({printer._print(self.args[0])}\right)"


class Commutation(MatrixExpr):
    """K(m, n): K vec(A) = vec(A^T) for A of shape (m, n)."""

    def __new__(cls, m: object, n: object) -> Commutation:
        return super().__new__(cls, sp.S(m), sp.S(n))

    @property
    def shape(self) -> tuple:
        m, n = self.args
        return (m * n, m * n)

    def _entry(self, i: object, j: object, **kwargs: object) -> sp.Expr:
        m, n = self.args
        return sp.Integer(int(i == (j % m) * n + j // m))

    def _latex(self, printer: object) -> str:
        m, n = self.args
        return f"K_{{{printer._print(m)}{printer._print(n)}}}"


def as_column_shape(shape: Shape) -> tuple:
    """A vector (n,) as the n x 1 matrix SymPy uses."""
    return (tuple(shape) + (sp.Integer(1),))[:2]


def elementwise(f: Callable[[sp.Expr], sp.Expr], x: sp.Basic) -> sp.Basic:
    """f applied to every entry of a matrix expression, or to a scalar."""
    if isinstance(x, MatrixExpr):
        t = sp.Dummy("t")
        return x.applyfunc(sp.Lambda(t, f(t)))
    return f(x)


def total(x: sp.Basic) -> sp.Basic:
    """The sum of all entries: 1^T X 1."""
    if not isinstance(x, MatrixExpr):
        return x
    m, n = x.shape
    return Trace(OneMatrix(1, m) * x * OneMatrix(n, 1))


def to_sympy(e: Node) -> sp.Basic:
    """``e`` as a SymPy (matrix) expression; dimensions stay symbolic.

    Raises :class:`derive.ops.MissingPiece` for an op that has no SymPy form.
    """
    from .ops import OPS

    return fold(e, lambda n, args: OPS[n.op].piece("sympy")(n, *args))
