"""The matrix form as SymPy matrix expressions (``Derivation.matrix``).

Vectors become n x 1 ``MatrixSymbol``s, so ``x @ A`` is ``x.T * A`` and a
scalar ``x @ y`` is the trace of the 1 x 1 ``x.T * y``. SymPy has no vec
or commutation matrix; the two small classes below supply them, with
entries, so ``as_explicit()`` works.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp
from sympy.matrices.expressions import (
    Determinant,
    DiagMatrix,
    DiagonalOf,
    HadamardPower,
    HadamardProduct,
    Identity,
    Inverse,
    KroneckerProduct,
    MatrixExpr,
    MatrixSymbol,
    OneMatrix,
    Trace,
)

from .functions import sympy_value
from .ir import Node


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


def _elementwise(f: Callable[[sp.Expr], sp.Expr], x: sp.Basic) -> sp.Basic:
    if isinstance(x, MatrixExpr):
        t = sp.Dummy("t")
        return x.applyfunc(sp.Lambda(t, f(t)))
    return f(x)


def _ones_row(n: object) -> MatrixExpr:
    return OneMatrix(1, n)


def _sum(x: sp.Basic, e: Node) -> sp.Basic:
    if not isinstance(x, MatrixExpr):
        return x
    m, n = x.shape
    return Trace(OneMatrix(1, m) * x * OneMatrix(n, 1))


def _mul(a: sp.Basic, b: sp.Basic) -> sp.Basic:
    if isinstance(a, MatrixExpr) and isinstance(b, MatrixExpr):
        return HadamardProduct(a, b)
    return a * b


def _matmul(a: sp.Basic, b: sp.Basic, e: Node) -> sp.Basic:
    left, right = e.args
    if left.ndim == 1 and right.ndim == 1:
        return Trace(a.T * b)
    if left.ndim == 1:
        return (a.T * b).T
    return a * b


def _pow(a: sp.Basic, e: Node) -> sp.Basic:
    return HadamardPower(a, e.attr) if isinstance(a, MatrixExpr) else a**e.attr


def _softmax(z: sp.Basic) -> sp.Basic:
    ez = _elementwise(sp.exp, z)
    return ez * (1 / Trace(_ones_row(z.shape[0]) * ez))


def _logsumexp(z: sp.Basic) -> sp.Basic:
    return sp.log(Trace(_ones_row(z.shape[0]) * _elementwise(sp.exp, z)))


def _diag(a: sp.Basic, e: Node) -> sp.Basic:
    return DiagMatrix(a) if e.args[0].ndim == 1 else DiagonalOf(a)


def _kron(a: sp.Basic, b: sp.Basic, e: Node) -> sp.Basic:
    left, right = e.args
    return KroneckerProduct(a.T if left.ndim == 1 else a, b.T if right.ndim == 1 else b)


def _add(a: sp.Basic, b: sp.Basic, e: Node) -> sp.Basic:
    (x, y) = e.args
    if x.shape == () and y.shape != ():
        a = a * OneMatrix(*b.shape)
    if y.shape == () and x.shape != ():
        b = b * OneMatrix(*a.shape)
    return a + b


CONVERT: dict[str, Callable[..., sp.Basic]] = {
    "const": lambda e: e.attr,
    "eye": lambda e: Identity(e.attr[0]),
    "ones": lambda e: OneMatrix(*(tuple(e.shape) + (1,))[:2]),
    "commutation": lambda e: Commutation(*e.attr),
    "add": lambda e, a, b: _add(a, b, e),
    "mul": lambda e, a, b: _mul(a, b),
    "pow": lambda e, a: _pow(a, e),
    "fn": lambda e, a: _elementwise(lambda t: sympy_value(e.attr[0], e.attr[1], t), a),
    "matmul": lambda e, a, b: _matmul(a, b, e),
    "T": lambda e, a: a.T,
    "inv": lambda e, a: Inverse(a),
    "det": lambda e, a: Determinant(a),
    "logdet": lambda e, a: sp.log(Determinant(a)),
    "trace": lambda e, a: Trace(a),
    "sum": lambda e, a: _sum(a, e),
    "norm": lambda e, a: sp.sqrt(Trace(a.T * a)),
    "softmax": lambda e, a: _softmax(a),
    "logsoftmax": lambda e, a: a - _logsumexp(a) * OneMatrix(a.shape[0], 1),
    "logsumexp": lambda e, a: _logsumexp(a),
    "diag": lambda e, a: _diag(a, e),
    "outer": lambda e, a, b: a * b.T,
    "kron": lambda e, a, b: _kron(a, b, e),
    "row": lambda e, a: (Vec(a) if e.args[0].ndim == 2 else a).T,
    "col": lambda e, a: Vec(a) if e.args[0].ndim == 2 else a,
    "vec": lambda e, a: Vec(a) if e.args[0].ndim == 2 else a,
}


def to_sympy(e: Node) -> sp.Basic:
    """``e`` as a SymPy (matrix) expression; dimensions stay symbolic."""
    memo: dict[Node, sp.Basic] = {}

    def go(n: Node) -> sp.Basic:
        if n not in memo:
            if n.op == "var":
                name, shape = n.attr
                memo[n] = sp.Symbol(name) if not shape else MatrixSymbol(name, *(tuple(shape) + (1,))[:2])
            else:
                memo[n] = CONVERT[n.op](n, *(go(a) for a in n.args))
        return memo[n]

    return go(e)
