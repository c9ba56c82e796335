"""Expressions written out entry by entry, as the article does at 2x2.

At concrete sizes every variable becomes an array of SymPy symbols
(A -> a11, a12, ...; x -> x1, x2, ...) and an expression becomes a numpy
object array of SymPy expressions, computed with numpy's own semantics.
:func:`elementwise_derivative` then takes every partial derivative with
SymPy: the independent side of the proof.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import sympy as sp

from .errors import DeriveError
from .functions import sympy_value
from .ir import Node, Shape

MAX_ENTRIES = 5000  # symbols in an element-wise proof (derive.explicit.MAX_ENTRIES)

Sizes = dict[sp.Symbol, int]
Env = dict[str, np.ndarray]


def concrete(shape: Shape, sizes: Mapping) -> tuple[int, ...]:
    return tuple(int(sp.S(d).xreplace(dict(sizes))) for d in shape)


def choose_sizes(shapes: Mapping[str, Shape], given: Mapping | None = None) -> Sizes:
    """Small, distinct sizes for the symbolic dimensions: 2, 3, 4, ...

    Distinct sizes make every non-square matrix really non-square, so a
    transposition error cannot hide. ``given`` fixes some of them.
    """
    sizes: Sizes = dict(given or {})
    nxt = 2
    for shape in shapes.values():
        for d in shape:
            if isinstance(d, sp.Symbol) and d not in sizes:
                while nxt in sizes.values():
                    nxt += 1
                sizes[d] = nxt
                nxt += 1
    return sizes


def entry_names(shapes: Mapping[str, Shape]) -> dict[str, str]:
    """The letter each variable's entries are named with: A -> a, W1 -> w1, x -> x."""
    lower = [n.lower() for n in shapes]
    return {n: n.lower() if lower.count(n.lower()) == 1 else n for n in shapes}


def symbols_for(name: str, letter: str, shape: tuple[int, ...]) -> np.ndarray:
    """Entry symbols, 1-based as on paper: a11, a12, ...; a_10_2 past 9."""
    big = any(s > 9 for s in shape) or letter[-1].isdigit()
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        ones = [str(i + 1) for i in idx]
        label = letter + ("_" + "_".join(ones) if big else "".join(ones)) if idx else letter
        out[idx] = sp.Symbol(label)
    return out if shape else out[()]


def environment(shapes: Mapping[str, Shape], sizes: Sizes) -> Env:
    total = sum(int(np.prod(concrete(s, sizes))) for s in shapes.values())
    if total > MAX_ENTRIES:
        raise DeriveError(
            f"the element-wise proof would need {total} symbols; the limit is {MAX_ENTRIES}"
            " (derive.explicit.MAX_ENTRIES); choose smaller sizes"
        )
    letters = entry_names(shapes)
    return {n: symbols_for(n, letters[n], concrete(s, sizes)) for n, s in shapes.items()}


def _obj(a: object) -> np.ndarray:
    return np.asarray(a, dtype=object)


def _map(f: Callable[[sp.Expr], sp.Expr], a: np.ndarray) -> np.ndarray:
    a = _obj(a)
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(*a.shape):
        out[idx] = f(a[idx])
    return out if a.shape else out[()]


def _matrix(a: np.ndarray) -> sp.Matrix:
    return sp.Matrix(_obj(a).tolist())


def _eye(n: int) -> np.ndarray:
    return _obj([[sp.Integer(int(i == j)) for j in range(n)] for i in range(n)])


def _commutation(m: int, n: int) -> np.ndarray:
    """K with K vec(A) = vec(A^T), column-major vec, A of shape (m, n)."""
    k = np.zeros((m * n, m * n), dtype=int)
    for i in range(m):
        for j in range(n):
            k[i * n + j, j * m + i] = 1
    return _obj(k).astype(object) * sp.Integer(1)


def _total(a: object) -> sp.Expr:
    """The sum of all entries, built at once (numpy's pairwise sum is quadratic here)."""
    return sp.Add(*_obj(a).ravel())


def _matmul(a: object, b: object) -> np.ndarray:
    """numpy's @ on object arrays, but each entry a single SymPy Add."""
    a, b = _obj(a), _obj(b)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    out = np.empty((a2.shape[0], b2.shape[1]), dtype=object)
    for i in range(a2.shape[0]):
        for j in range(b2.shape[1]):
            out[i, j] = sp.Add(*[x * y for x, y in zip(a2[i], b2[:, j], strict=True)])
    if a.ndim == 1:
        out = out[0]
    if b.ndim == 1:
        out = out[..., 0]
    return out if out.ndim else out[()]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = _map(sp.exp, z)
    return e / _total(e)


def _pow(a: np.ndarray, p: sp.Expr) -> np.ndarray:
    return _map(lambda v: v**p, a)


def _norm(a: np.ndarray) -> sp.Expr:
    return sp.sqrt(sp.Add(*[v**2 for v in _obj(a).ravel()]))


def _diag(a: np.ndarray) -> np.ndarray:
    a = _obj(a)
    if a.ndim == 1:
        out = _obj(np.zeros((a.size, a.size), dtype=int)) * sp.Integer(1)
        for i, v in enumerate(a):
            out[i, i] = v
        return out
    return _obj(np.diagonal(a).copy())


EVAL: dict[str, Callable[..., np.ndarray]] = {
    "add": lambda e, s, a, b: a + b,
    "mul": lambda e, s, a, b: a * b,
    "pow": lambda e, s, a: _pow(a, e.attr),
    "fn": lambda e, s, a: _map(lambda v: sympy_value(e.attr[0], e.attr[1], v), a),
    "matmul": lambda e, s, a, b: _matmul(a, b),
    "T": lambda e, s, a: _obj(a).T,
    "inv": lambda e, s, a: _obj(_matrix(a).inv().tolist()),
    "det": lambda e, s, a: _matrix(a).det(),
    "logdet": lambda e, s, a: sp.log(_matrix(a).det()),
    "trace": lambda e, s, a: np.trace(_obj(a)),
    "sum": lambda e, s, a: _total(a),
    "norm": lambda e, s, a: _norm(a),
    "softmax": lambda e, s, a: _softmax(a),
    "logsoftmax": lambda e, s, a: _map(sp.log, _softmax(a)),
    "logsumexp": lambda e, s, a: sp.log(_total(_map(sp.exp, a))),
    "diag": lambda e, s, a: _diag(a),
    "outer": lambda e, s, a, b: np.outer(_obj(a), _obj(b)),
    "kron": lambda e, s, a, b: np.kron(_obj(a), _obj(b)),
    "row": lambda e, s, a: _obj(a).reshape(1, -1, order="F"),
    "col": lambda e, s, a: _obj(a).reshape(-1, 1, order="F"),
    "vec": lambda e, s, a: _obj(a).reshape(-1, order="F"),
    "eye": lambda e, s: _eye(concrete(e.shape, s)[0]),
    "ones": lambda e, s: _obj(np.ones(concrete(e.shape, s), dtype=int)) * sp.Integer(1),
    "commutation": lambda e, s: _commutation(*concrete(e.attr, s)),
    "const": lambda e, s: e.attr,
    "entry": lambda e, s: e.attr,
    "stack": lambda e, s, *rows: _stack(rows),
}


def _stack(rows: tuple) -> np.ndarray:
    out = np.empty((len(rows),) + np.shape(rows[0]), dtype=object)
    for i, r in enumerate(rows):
        out[i] = r
    return out


def evaluate(e: Node, env: Env, sizes: Sizes) -> np.ndarray:
    """``e`` with every variable replaced by its entries: an object array (or a scalar)."""
    memo: dict[Node, object] = {}

    def go(n: Node) -> object:
        if n not in memo:
            if n.op == "var":
                memo[n] = env[n.attr[0]]
            else:
                memo[n] = EVAL[n.op](n, sizes, *(go(a) for a in n.args))
        return memo[n]

    return go(e)


def elementwise_derivative(value: object, wrt: np.ndarray) -> np.ndarray:
    """Every partial derivative d value[o] / d wrt[i], as an array of shape out + in."""
    v = _obj(value)
    w = _obj(wrt)
    out = np.empty(v.shape + w.shape, dtype=object)
    for o in np.ndindex(*v.shape):
        entry = sp.S(v[o])
        free = entry.free_symbols
        for i in np.ndindex(*w.shape):
            s = w[i]
            out[o + i] = sp.diff(entry, s) if s in free else sp.S.Zero
    return out
