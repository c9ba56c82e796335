"""Expressions written out entry by entry, as the article does at 2x2.

At concrete sizes every variable becomes an array of scalars (A -> a11,
a12, ...; x -> x1, x2, ...) and an expression becomes an array computed
with numpy's own semantics, each op by its ``eval`` piece (see
:mod:`derive.ops`), over a scalar domain (see :mod:`derive.domains`).
Seeding a variable's entries with :class:`~derive.domains.Dual` numbers
gives every partial derivative by the scalar chain rule: the element-wise
Jacobian, the independent side of the proof.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
import sympy as sp

from .context import Budget
from .domains import Dual, Primitives, Size, SizeDomain, SympyDomain
from .ir import Node, Shape, topo
from .ops import OPS
from .ops.functions import FUNCTIONS, display_value

Sizes = dict[sp.Symbol, int]


def concrete(shape: Shape, sizes: Mapping) -> tuple[int, ...]:
    """A shape at concrete sizes; every dimension must come out a positive whole number."""
    out = []
    for d in shape:
        v = sp.S(sp.S(d).xreplace(dict(sizes)))
        if not v.is_Integer:
            raise ValueError(f"dimension {d} is not a whole number at these sizes")
        out.append(int(v))
    return tuple(out)


def entry_names(shapes: Mapping[str, Shape]) -> dict[str, str]:
    """The letter each variable's entries are named with: A -> a, W1 -> w1, x -> x."""
    lower = [n.lower() for n in shapes]
    return {n: n.lower() if lower.count(n.lower()) == 1 else n for n in shapes}


def entry_label(letter: str, idx: tuple[int, ...], big: bool) -> str:
    """a11, x2; a_10_2 past 9 (indices 1-based, as on paper)."""
    ones = [str(i + 1) for i in idx]
    if not idx:
        return letter
    return letter + ("_" + "_".join(ones) if big else "".join(ones))


@dataclass(frozen=True)
class Entries:
    """Each variable's entries at concrete sizes: labels, and which entries are the same free entry.

    ``free[name][idx]`` is the index of the free entry at ``idx`` (a symmetric matrix's
    s_ij and s_ji share one; a diagonal matrix's off-diagonal entries are None: zero).
    """

    shapes: dict[str, tuple[int, ...]]
    labels: dict[str, np.ndarray]
    free: dict[str, np.ndarray]

    def fill(self, value: Callable[[str], Any], zero: Any) -> dict[str, np.ndarray]:
        """Each variable as an array of ``value(label)`` (one value per label: a symmetric pair shares
        it), with ``zero`` where a diagonal matrix is zero."""
        made: dict[str, Any] = {}
        out = {}
        for n, labels in self.labels.items():
            a = np.empty(labels.shape, dtype=object)
            for idx in np.ndindex(*labels.shape):
                if self.free[n][idx] is None:
                    a[idx] = zero
                    continue
                if labels[idx] not in made:
                    made[labels[idx]] = value(labels[idx])
                a[idx] = made[labels[idx]]
            out[n] = a
        return out

    def symbols(self) -> dict[str, np.ndarray]:
        """SymPy symbols for the entries (zeros where a diagonal matrix is zero)."""
        return self.fill(sp.Symbol, sp.Integer(0))


def entries(shapes: Mapping[str, Shape], sizes: Mapping, structure: Mapping[str, str] | None = None) -> Entries:
    """Label every entry; a symmetric variable's (i, j) and (j, i) are one free entry."""
    structure = structure or {}
    letters = entry_names(shapes)
    conc = {n: concrete(s, sizes) for n, s in shapes.items()}
    labels, free = {}, {}
    for n, shape in conc.items():
        big = any(s > 9 for s in shape) or letters[n][-1].isdigit()
        lab = np.empty(shape, dtype=object)
        fr = np.empty(shape, dtype=object)
        kind = structure.get(n, "")
        for idx in np.ndindex(*shape):
            canon = tuple(sorted(idx)) if kind == "symmetric" else idx
            lab[idx] = entry_label(letters[n], canon, big)
            fr[idx] = None if kind == "diagonal" and idx[0] != idx[1] else np.ravel_multi_index(canon, shape)
        labels[n], free[n] = lab, fr
    return Entries(conc, labels, free)


class Kit:
    """Array operations at concrete ``sizes`` over one scalar domain ``dom``; ``env`` holds the variables."""

    def __init__(self, dom: Primitives, sizes: Mapping, env: Mapping[str, np.ndarray],
                 claims: Mapping[sp.Symbol, Any] | None = None, budget: Budget | None = None) -> None:  # fmt: skip
        self.dom = dom
        self.sizes = dict(sizes)
        self.env = env
        self.claims = dict(claims or {})
        self.display = isinstance(dom, SympyDomain)
        self.budget = budget

    def tick(self) -> None:
        """Check the CPU-time budget (raises OutOfTime past it): every step of a loop here is
        costly enough (Duals carry a tangent per entry) that the check is cheap beside it."""
        if self.budget is not None:
            self.budget.check()

    # ----- shapes and leaves -----

    def dim(self, d: sp.Expr) -> int:
        return concrete((d,), self.sizes)[0]

    def shape(self, e: Node) -> tuple[int, ...]:
        return concrete(e.shape, self.sizes)

    def shape_of(self, shape: Shape) -> tuple[int, ...]:
        return concrete(shape, self.sizes)

    def variable(self, e: Node) -> Any:
        return self.env[e.attr[0]]

    def entry(self, sym: sp.Symbol) -> Any:
        return self.claims[sym]

    def const(self, v: Any) -> Any:
        v = sp.S(sp.S(v).xreplace(self.sizes))
        return self.dom.const(v)

    def array(self, shape: tuple[int, ...], fill: Any) -> np.ndarray:
        out = np.empty(shape, dtype=object)
        for idx in np.ndindex(*shape):
            out[idx] = fill
        return out

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.array(shape, self.dom.const(0))

    def ones(self, shape: tuple[int, ...]) -> Any:
        return self.array(shape, self.dom.const(1)) if shape else self.dom.const(1)

    def eye(self, n: int) -> np.ndarray:
        out = self.zeros((n, n))
        for i in range(n):
            out[i, i] = self.dom.const(1)
        return out

    def commutation(self, m: int, n: int) -> np.ndarray:
        out = self.zeros((m * n, m * n))
        for i, j in product(range(m), range(n)):
            out[i * n + j, j * m + i] = self.dom.const(1)
        return out

    def stack(self, rows: Sequence[Any]) -> np.ndarray:
        out = np.empty((len(rows),) + np.shape(rows[0]), dtype=object)
        for i, r in enumerate(rows):
            out[i] = r
        return out

    # ----- sums and products -----

    def add_all(self, terms: Sequence[Any]) -> Any:
        self.tick()
        return self.dom.add_all(terms)

    def add(self, a: Any, b: Any) -> Any:
        return self._zip(lambda x, y: x + y, a, b)

    def mul(self, a: Any, b: Any) -> Any:
        return self._zip(lambda x, y: x * y, a, b)

    def _zip(self, f, a: Any, b: Any) -> Any:
        """``f`` entry by entry with numpy broadcasting, checking the budget as it goes."""
        if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
            return f(a, b)
        a, b = np.broadcast_arrays(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
        out = np.empty(a.shape, dtype=object)
        for idx in np.ndindex(*a.shape):
            self.tick()
            out[idx] = f(a[idx], b[idx])
        return out

    def total(self, a: Any, axis: int | None = None) -> Any:
        a = np.asarray(a, dtype=object)
        if axis is None:
            return self.add_all(list(a.ravel()))
        moved = np.moveaxis(a, axis, -1)
        out = np.empty(moved.shape[:-1], dtype=object)
        for idx in np.ndindex(*out.shape):
            out[idx] = self.add_all(list(moved[idx]))
        return out

    def matmul(self, a: Any, b: Any) -> Any:
        a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        out = np.empty((a2.shape[0], b2.shape[1]), dtype=object)
        for i in range(a2.shape[0]):
            for j in range(b2.shape[1]):
                out[i, j] = self.add_all([x * y for x, y in zip(a2[i], b2[:, j], strict=True)])  # add_all ticks
        if a.ndim == 1:
            out = out[0]
        if b.ndim == 1:
            out = out[..., 0]
        return out if out.ndim else out[()]

    def transpose(self, a: Any) -> Any:
        return np.asarray(a, dtype=object).T

    def outer(self, a: Any, b: Any) -> np.ndarray:
        a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
        out = np.empty(a.shape + b.shape, dtype=object)
        for idx in np.ndindex(*a.shape):
            self.tick()
            out[idx] = a[idx] * b
        return out

    def kron(self, a: Any, b: Any) -> np.ndarray:
        a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
        a2 = a[None, :] if a.ndim < b.ndim else a
        b2 = b[None, :] if b.ndim < a.ndim else b
        blocks = self.outer(a2, b2)  # (a rows, a cols, b rows, b cols), one block per entry of a
        out = blocks.transpose(*(i for k in range(a2.ndim) for i in (k, a2.ndim + k)))
        return np.ascontiguousarray(out).reshape(tuple(x * y for x, y in zip(a2.shape, b2.shape, strict=True)))

    def diag(self, a: Any) -> np.ndarray:
        a = np.asarray(a, dtype=object)
        if a.ndim == 1:
            out = self.zeros((a.size, a.size))
            for i, v in enumerate(a):
                out[i, i] = v
            return out
        return np.diagonal(a).copy()

    def trace(self, a: Any) -> Any:
        a = np.asarray(a, dtype=object)
        return self.add_all([a[i, i] for i in range(a.shape[0])])

    def broadcast(self, a: Any, shape: tuple[int, ...]) -> np.ndarray:
        return np.array(np.broadcast_to(np.asarray(a, dtype=object), shape), dtype=object)

    def reshape_f(self, a: Any, shape: tuple[int, ...]) -> np.ndarray:
        return np.asarray(a, dtype=object).reshape(shape, order="F")

    def reshape_c(self, a: Any, shape: tuple[int, ...]) -> np.ndarray:
        return np.asarray(a, dtype=object).reshape(shape)

    # ----- determinants and inverses -----

    def det(self, a: Any) -> Any:
        a = np.asarray(a, dtype=object)
        n = a.shape[0]
        if n <= 6:
            return _laplace(a, list(range(n)), list(range(n)), self.dom, {}, self.tick)
        return _gauss_det(a, self.dom, self.tick)

    def inv(self, a: Any) -> np.ndarray:
        """The inverse by the adjugate (division-free minors) for small sizes, else by elimination."""
        a = np.asarray(a, dtype=object)
        n = a.shape[0]
        if n > 6:
            return _gauss_inv(a, self.dom, self.tick)
        memo: dict = {}
        det = _laplace(a, list(range(n)), list(range(n)), self.dom, memo, self.tick)
        r = 1 / det
        out = np.empty((n, n), dtype=object)
        for i, j in product(range(n), range(n)):
            rows = [k for k in range(n) if k != j]
            cols = [k for k in range(n) if k != i]
            minor = _laplace(a, rows, cols, self.dom, memo, self.tick) if n > 1 else self.dom.const(1)
            out[i, j] = minor * r if (i + j) % 2 == 0 else -(minor * r)
        return out

    # ----- element-wise functions -----

    def pow(self, a: Any, p: sp.Expr) -> Any:
        p = sp.S(p)
        return self._map(lambda v: _power(self.dom, v, p), a)

    def fn(self, name: str, order: int, a: Any) -> Any:
        if self.display:
            return self._map(lambda v: display_value(name, order, v), a)
        meaning = FUNCTIONS[name].meaning
        return self._map(lambda v: _derivative(meaning, self.dom, v, order), a)

    def scalar_fn(self, name: str, x: Any) -> Any:
        return self.fn(name, 0, x)

    def softmax(self, a: Any, axis: int | None) -> Any:
        e = self._map(self.dom.exp, a)
        s = self.total(e, axis)
        return e / s if axis is None else e / np.expand_dims(s, axis)

    def logsumexp(self, a: Any, axis: int | None) -> Any:
        return self._map(self.dom.log, self.total(self._map(self.dom.exp, a), axis))

    def argmax(self, xs: list[Any]) -> list[Any]:
        return self.dom.choice(xs)

    def _map(self, f, a: Any) -> Any:
        if not isinstance(a, np.ndarray):
            return f(a)
        out = np.empty(a.shape, dtype=object)
        for idx in np.ndindex(*a.shape):
            self.tick()
            out[idx] = f(a[idx])
        return out


def _power(dom: Primitives, v: Any, p: sp.Expr) -> Any:
    if p.is_Integer:
        k = int(p)
        return v**k if k >= 0 else 1 / (v ** (-k))
    if p.q == 2:
        r = dom.sqrt(v)
        return _power(dom, r, sp.Integer(p.p))
    return dom.exp(dom.log(v) * dom.const(p))


def _derivative(meaning, dom: Primitives, x: Any, order: int) -> Any:
    """The ``order``-th derivative of a function's meaning at ``x`` (nested duals)."""
    if order == 0:
        return meaning(dom, x)
    one = dom.const(1)
    seed = x
    for level in range(order):
        seed = Dual(seed, {("d", level): one})
        one = Dual(one, {}) if level < order - 1 else one
    out = meaning(dom, seed)
    for level in reversed(range(order)):
        out = out.t.get(("d", level), 0) if isinstance(out, Dual) else dom.const(0)
    return out


def _laplace(a: np.ndarray, rows: list[int], cols: list[int], dom: Primitives, memo: dict, tick) -> Any:
    """The determinant of a[rows][:, cols] by cofactor expansion, memoised on the column set (n <= 6)."""
    key = (tuple(rows), tuple(cols))
    if key in memo:
        return memo[key]
    tick()
    if len(rows) == 1:
        out = a[rows[0], cols[0]]
    else:
        terms = []
        for k, c in enumerate(cols):
            sub = _laplace(a, rows[1:], cols[:k] + cols[k + 1 :], dom, memo, tick)
            t = a[rows[0], c] * sub
            terms.append(t if k % 2 == 0 else -t)
        out = dom.add_all(terms)
    memo[key] = out
    return out


def _gauss_det(a: np.ndarray, dom: Primitives, tick) -> Any:
    m = [list(r) for r in a]
    n = len(m)
    det = dom.const(1)
    for c in range(n):
        tick()
        pivot = next((r for r in range(c, n) if not _is_zero(m[r][c])), None)
        if pivot is None:
            return dom.const(0)
        if pivot != c:
            m[c], m[pivot] = m[pivot], m[c]
            det = -det
        det = det * m[c][c]
        inv = 1 / m[c][c]
        for r in range(c + 1, n):
            tick()
            f = m[r][c] * inv
            m[r] = [x - f * y for x, y in zip(m[r], m[c], strict=True)]
    return det


def _gauss_inv(a: np.ndarray, dom: Primitives, tick) -> np.ndarray:
    n = a.shape[0]
    m = [list(a[i]) + [dom.const(int(i == j)) for j in range(n)] for i in range(n)]
    for c in range(n):
        tick()
        pivot = next((r for r in range(c, n) if not _is_zero(m[r][c])), None)
        if pivot is None:
            from .domains import DomainError

            raise DomainError("the matrix is singular")
        m[c], m[pivot] = m[pivot], m[c]
        inv = 1 / m[c][c]
        m[c] = [x * inv for x in m[c]]
        for r in range(n):
            if r != c:
                tick()
                f = m[r][c]
                m[r] = [x - f * y for x, y in zip(m[r], m[c], strict=True)]
    out = np.empty((n, n), dtype=object)
    for i in range(n):
        for j in range(n):
            out[i, j] = m[i][n + j]
    return out


def _is_zero(x: Any) -> bool:
    while isinstance(x, Dual):
        x = x.v
    if hasattr(x, "is_zero") and callable(x.is_zero):
        return x.is_zero()
    if hasattr(x, "v"):
        return x.v == 0
    return x == 0


def step(e: Node, kit: Kit, operands: Sequence[Any]) -> Any:
    """The value of ``e`` from its operands' values (one step of :func:`evaluate`)."""
    return OPS[e.op].eval(kit, e, *operands)


def evaluate(e: Node, kit: Kit, fixed: Mapping[Node, Any] | None = None) -> Any:
    """``e`` written out: an object array of the kit's scalars (or one scalar), iteratively.

    A subexpression in ``fixed`` takes the value given there (what is only inside it is not
    evaluated). The kit's budget is checked as it goes (:class:`~derive.context.OutOfTime` past it).
    """
    fixed = fixed or {}
    if e in fixed:
        return fixed[e]
    memo: dict[Node, Any] = dict(fixed)
    for n in topo(e, fixed):
        if kit.budget is not None:
            kit.budget.tick()
        memo[n] = OPS[n.op].eval(kit, n, *(memo[a] for a in n.args))
    return memo[e]


def seeded(values: Mapping[str, np.ndarray], ents: Entries, wrt: Sequence[str], one: Any) -> dict[str, np.ndarray]:
    """The variables with Dual entries: level i carries d/d(free entry) of ``wrt[i]``.

    Every variable is wrapped at every level (with no tangent where it is not the
    variable of that level), so Duals of different levels never meet at one depth.
    For a second derivative the first name's level is the outer one.
    """
    out = {n: np.array(v, dtype=object, copy=True) for n, v in values.items()}
    for level in reversed(range(len(wrt))):
        for name, arr in out.items():
            free = ents.free[name]
            for idx in np.ndindex(*arr.shape):
                seed = name == wrt[level] and free[idx] is not None
                arr[idx] = Dual(arr[idx], {(level, free[idx]): one} if seed else {})
    return out


def jacobian_array(value: Any, ents: Entries, wrt: Sequence[str], structure: Mapping[str, str],
                   zero: Any) -> np.ndarray:  # fmt: skip
    """Every partial derivative of ``value`` (evaluated from :func:`seeded` variables), shape out + wrt shapes.

    By a symmetric matrix the entry (i, j) is the gradient in the trace inner product,
    sym(G): half the partial by the free entry s_ij off the diagonal. By a diagonal
    matrix, off-diagonal entries are zero.
    """
    v = np.asarray(value, dtype=object)
    shapes = [ents.shapes[n] for n in wrt]
    out = np.empty(v.shape + sum(shapes, ()), dtype=object)
    for o in np.ndindex(*v.shape):
        for idxs in product(*(list(np.ndindex(*s)) for s in shapes)):
            x = v[o]
            for level, (name, idx) in enumerate(zip(wrt, idxs, strict=True)):
                f = ents.free[name][idx]
                if f is None or not isinstance(x, Dual):
                    x = zero
                    break
                x = x.t.get((level, f), zero)
                if structure.get(name) == "symmetric" and idx[0] != idx[1]:
                    x = x * _half(zero)
            while isinstance(x, Dual):
                x = x.v
            out[o + tuple(i for idx in idxs for i in idx)] = x
    return out


def _half(zero: Any) -> Any:
    return (zero + 1) / 2


def sympy_size(e: Node, shapes: Mapping[str, Shape], sizes: Mapping, wrt: Sequence[str],
               structure: Mapping[str, str] | None = None, budget: Budget | None = None) -> Size:  # fmt: skip
    """Bounds on the largest entry (tree size ``n``, depth ``d``) of ``e`` and of its partial derivatives
    by ``wrt`` as :func:`sympy_jacobian` would build them, computed cheaply without SymPy."""
    ents = entries(shapes, sizes, structure)
    values = {n: np.vectorize(lambda _: Size(), otypes=[object])(lab) if lab.ndim else np.asarray(Size(), dtype=object)
              for n, lab in ents.labels.items()}  # fmt: skip
    duals = {n: (v[()] if v.ndim == 0 else v) for n, v in seeded(values, ents, wrt, Size()).items()}
    value = np.asarray(evaluate(e, Kit(SizeDomain(), sizes, duals, budget=budget)), dtype=object)
    n, d = 1, 1
    stack = list(value.ravel())
    while stack:
        x = stack.pop()
        if isinstance(x, Dual):
            stack.append(x.v)
            stack.extend(x.t.values())
        elif isinstance(x, Size):
            n, d = max(n, x.n), max(d, x.d)
    return Size(n, d)


def display_entries(shapes: Mapping[str, Shape], sizes: Mapping, structure: Mapping[str, str] | None = None):
    """A Kit over SymPy with the entries named as on paper (for write-ups and check())."""
    ents = entries(shapes, sizes, structure)
    return ents, Kit(SympyDomain(), sizes, ents.symbols())


def sympy_jacobian(e: Node, shapes: Mapping[str, Shape], sizes: Mapping, wrt: Sequence[str],
                   structure: Mapping[str, str] | None = None,
                   budget: Budget | None = None) -> tuple[Any, np.ndarray]:  # fmt: skip
    """(value, every partial derivative) of ``e`` with SymPy entries, shape out + wrt shapes.

    SymPy's work is not bounded here: check :func:`sympy_size` first. ``budget`` is checked per entry.
    """
    structure = structure or {}
    ents, kit = display_entries(shapes, sizes, structure)
    kit.budget = budget
    value = evaluate(e, kit)
    syms = ents.symbols()
    d = np.asarray(value, dtype=object)
    for name in wrt:
        w = syms[name]
        out = np.empty(d.shape + w.shape, dtype=object)
        for o in np.ndindex(*d.shape):
            entry = sp.S(d[o])
            for i in np.ndindex(*w.shape):
                kit.tick()
                s = w[i]
                if s == 0:
                    out[o + i] = sp.S.Zero
                    continue
                part = sp.diff(entry, s) if s in entry.free_symbols else sp.S.Zero
                if structure.get(name) == "symmetric" and i[0] != i[1]:
                    part = part / 2
                out[o + i] = part
        d = out
    return value, d
