"""Expressions written out entry by entry, as the article does at 2x2.

At concrete sizes every variable becomes an array of SymPy symbols
(A -> a11, a12, ...; x -> x1, x2, ...) and an expression becomes a numpy
object array of SymPy expressions, computed with numpy's own semantics.
:func:`elementwise_derivative` then takes every partial derivative with
SymPy: the independent side of the proof.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy as sp

from .errors import DeriveError
from .functions import sympy_value
from .ir import Node, Shape
from .limits import LIMITS, how_to_raise

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
    if total > LIMITS.entries:
        raise DeriveError(
            f"the element-wise proof would write out {total} entries; the limit is {LIMITS.entries}"
            f" ({how_to_raise('entries')}), or declare smaller sizes"
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


def _inverse(a: object) -> np.ndarray:
    m = _matrix(a)
    if m.det() == 0:
        raise DeriveError("the matrix form needs the inverse of a matrix that is singular for every value")
    return _obj(m.inv().tolist())


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


# ----- convolution and pooling, entry by entry -----


def _conv2d(x: object, k: object, c: object = None) -> np.ndarray:
    """Valid cross-correlation: Y[f, i, j] = sum_{c, a, b} X[c, i + a, j + b] K[f, c, a, b] (+ c[f])."""
    x, k = _obj(x), _obj(k)
    x3 = x[None] if x.ndim == 2 else x
    k4 = k[None, None] if k.ndim == 2 else k
    nf, nc, kh, kw = k4.shape
    h, w = x3.shape[1] - kh + 1, x3.shape[2] - kw + 1
    out = np.empty((nf, h, w), dtype=object)
    for f, i, j in np.ndindex(nf, h, w):
        terms = [x3[ch, i + a, j + b] * k4[f, ch, a, b] for ch, a, b in np.ndindex(nc, kh, kw)]
        if c is not None:
            terms.append(_obj(c)[f])
        out[f, i, j] = sp.Add(*terms)
    return out[0] if x.ndim == 2 else out


def _conv2d_kernel_grad(x: object, g: object, kshape: tuple) -> np.ndarray:
    """dK[f, c, a, b] = sum_{i, j} G[f, i, j] X[c, i + a, j + b]: X cross-correlated with G."""
    x, g = _obj(x), _obj(g)
    x3, g3 = (x[None], g[None]) if x.ndim == 2 else (x, g)
    nf, h, w = g3.shape
    nc = x3.shape[0]
    kh, kw = x3.shape[1] - h + 1, x3.shape[2] - w + 1
    out = np.empty((nf, nc, kh, kw), dtype=object)
    for f, ch, a, b in np.ndindex(nf, nc, kh, kw):
        out[f, ch, a, b] = sp.Add(*[g3[f, i, j] * x3[ch, i + a, j + b] for i, j in np.ndindex(h, w)])
    return out.reshape(kshape)


def _conv2d_input_grad(g: object, k: object, xshape: tuple) -> np.ndarray:
    """dX[c, p, q] = sum_{f, a, b} G[f, p - a, q - b] K[f, c, a, b]: full convolution with the kernel."""
    g, k = _obj(g), _obj(k)
    g3, k4 = (g[None], k[None, None]) if k.ndim == 2 else (g, k)
    nf, nc, kh, kw = k4.shape
    h, w = g3.shape[1] + kh - 1, g3.shape[2] + kw - 1
    out = np.empty((nc, h, w), dtype=object)
    for ch, p, q in np.ndindex(nc, h, w):
        terms = [
            g3[f, p - a, q - b] * k4[f, ch, a, b]
            for f, a, b in np.ndindex(nf, kh, kw)
            if 0 <= p - a < g3.shape[1] and 0 <= q - b < g3.shape[2]
        ]
        out[ch, p, q] = sp.Add(*terms)
    return out.reshape(xshape)


def _conv_jacobian(x: object, k: object, by_kernel: bool) -> np.ndarray:
    """d vec(X ⋆ K) / d vec(K) (im2col(X)) or / d vec(X) (toeplitz(K)), column-major vec."""
    x, k = _obj(x), _obj(k)
    x3 = x[None] if x.ndim == 2 else x
    k4 = k[None, None] if k.ndim == 2 else k
    nf, nc, kh, kw = k4.shape
    h, w = x3.shape[1] - kh + 1, x3.shape[2] - kw + 1
    yshape = (h, w) if x.ndim == 2 else (nf, h, w)
    out = np.zeros((nf * h * w, k.size if by_kernel else x.size), dtype=int).astype(object) * sp.Integer(1)
    for f, i, j in np.ndindex(nf, h, w):
        row = np.ravel_multi_index((i, j) if x.ndim == 2 else (f, i, j), yshape, order="F")
        for ch, a, b in np.ndindex(nc, kh, kw):
            kidx = (a, b) if k.ndim == 2 else (f, ch, a, b)
            xidx = (i + a, j + b) if x.ndim == 2 else (ch, i + a, j + b)
            if by_kernel:
                out[row, np.ravel_multi_index(kidx, k.shape, order="F")] = x[xidx]
            else:
                out[row, np.ravel_multi_index(xidx, x.shape, order="F")] = k[kidx]
    return out


#: Indicator symbols for each max-pooling in a proof: mask[..., i, j, r] is 1 where entry r of
#: window (i, j) is the window's maximum. On each region where those choices are fixed, the
#: pooled value is sum_r mask * X; with the indicators left symbolic, one proof covers every region.
_MASKS: dict[tuple[Node, tuple[int, ...], int], np.ndarray] = {}


def reset_masks() -> None:
    """Start numbering max-pooling indicators afresh (one proof, one numbering)."""
    _MASKS.clear()


def _mask(n: Node, x: np.ndarray, k: int) -> np.ndarray:
    key = (n, x.shape, k)
    if key not in _MASKS:
        tag = "" if not _MASKS else str(len(_MASKS) + 1)
        shape = x.shape[:-2] + (x.shape[-2] // k, x.shape[-1] // k, k * k)
        m = np.empty(shape, dtype=object)
        for idx in np.ndindex(*shape):
            m[idx] = sp.Symbol(f"delta{tag}_" + "_".join(str(i + 1) for i in idx))
        _MASKS[key] = m
    return _MASKS[key]


def _windows(x: np.ndarray, k: int) -> np.ndarray:
    """(..., H, W) -> (..., H/k, W/k, k*k): each k x k window's entries, row by row."""
    lead = x.shape[:-2]
    h, w = x.shape[-2] // k, x.shape[-1] // k
    return x.reshape(*lead, h, k, w, k).swapaxes(-3, -2).reshape(*lead, h, w, k * k)


def _maxpool(n: Node, x: object, k: int) -> np.ndarray:
    x = _obj(x)
    mask = _mask(n.args[0], x, k)
    win = _windows(x, k)
    out = np.empty(win.shape[:-1], dtype=object)
    for idx in np.ndindex(*out.shape):
        out[idx] = sp.Add(*[mask[idx + (r,)] * win[idx + (r,)] for r in range(k * k)])
    return out


def _maxpool_grad(n: Node, x: object, g: object, k: int) -> np.ndarray:
    """Each window's upstream gradient, routed to the window's maximum."""
    x, g = _obj(x), _obj(g)
    mask = _mask(n.args[0], x, k)
    routed = mask * g[..., None]
    lead = x.shape[:-2]
    h, w = x.shape[-2] // k, x.shape[-1] // k
    return routed.reshape(*lead, h, w, k, k).swapaxes(-3, -2).reshape(x.shape)


EVAL: dict[str, Callable[..., np.ndarray]] = {
    "add": lambda e, s, a, b: a + b,
    "mul": lambda e, s, a, b: a * b,
    "pow": lambda e, s, a: _pow(a, e.attr),
    "fn": lambda e, s, a: _map(lambda v: sympy_value(e.attr[0], e.attr[1], v), a),
    "matmul": lambda e, s, a, b: _matmul(a, b),
    "T": lambda e, s, a: _obj(a).T,
    "inv": lambda e, s, a: _inverse(a),
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
    "conv2d": lambda e, s, *a: _conv2d(*a),
    "conv2d_kernel_grad": lambda e, s, x, g: _conv2d_kernel_grad(x, g, concrete(e.shape, s)),
    "conv2d_input_grad": lambda e, s, g, k: _conv2d_input_grad(g, k, concrete(e.shape, s)),
    "im2col": lambda e, s, x: _conv_jacobian(x, np.empty(concrete(e.attr, s)), by_kernel=True),
    "toeplitz": lambda e, s, k: _conv_jacobian(np.empty(concrete(e.attr, s)), k, by_kernel=False),
    "spatial_sum": lambda e, s, g: _obj([sp.Add(*_obj(g)[f].ravel()) for f in range(_obj(g).shape[0])]),
    "maxpool": lambda e, s, x: _maxpool(e, x, e.attr),
    "maxpool_grad": lambda e, s, x, g: _maxpool_grad(e, x, g, e.attr),
    "flatten": lambda e, s, x: _obj(x).reshape(-1),
    "unflatten": lambda e, s, g: _obj(g).reshape(concrete(e.shape, s)),
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


def _partials(d: sp.Expr, keep: Callable[[sp.Symbol], bool]) -> dict[sp.Symbol, sp.Expr]:
    """d d / d c for each kept symbol c, with SymPy; a sum is differentiated term by term."""
    out: dict[sp.Symbol, list[sp.Expr]] = {}
    for term in d.args if d.is_Add else (d,):
        for c in term.free_symbols:
            if keep(c):
                out.setdefault(c, []).append(sp.diff(term, c))
    return {c: sp.Add(*parts) for c, parts in out.items()}


# ----- the polynomial fast path -----


class NotPolynomial(Exception):
    """An entry is not a polynomial in the entry symbols (a function, a division)."""


class Polynomials:
    """Exact sparse polynomials in the entry symbols, for comparing large proofs fast.

    A polynomial is a dict from monomials to rational coefficients; a monomial
    is the sorted tuple of its symbols' numbers, repeated for powers
    (a11^2 x1 -> (0, 0, 5)). SymPy's own sparse rings store a dense exponent
    vector per monomial, which costs the number of symbols (thousands here)
    on every product; this costs the degree. Equal polynomials are equal
    dicts. Converting memoises shared subexpressions and sums in place.
    """

    def __init__(self, env: Env) -> None:
        symbols = [s for a in env.values() for s in np.asarray(a, dtype=object).ravel().tolist()]
        self.number = {s: i for i, s in enumerate(symbols)}
        self.memo: dict[sp.Basic, dict] = {}
        self.one: dict = {(): 1}
        self.zero: dict = {}

    @staticmethod
    def total(parts: list[dict]) -> dict:
        acc: dict = {}
        get = acc.get
        for p in parts:
            for m, c in p.items():
                acc[m] = get(m, 0) + c
        return {m: c for m, c in acc.items() if c}

    @staticmethod
    def product(p: dict, q: dict) -> dict:
        if len(p) > len(q):
            p, q = q, p
        acc: dict = {}
        get = acc.get
        for m1, c1 in p.items():
            for m2, c2 in q.items():
                m = tuple(sorted(m1 + m2)) if m1 and m2 else m1 or m2
                acc[m] = get(m, 0) + c1 * c2
        return {m: c for m, c in acc.items() if c}

    def __call__(self, e: object, bound: Mapping | None = None) -> dict:
        """``e`` as a polynomial; ``bound`` maps intermediate symbols to their polynomials."""
        e = sp.S(e)
        if bound is not None and e in bound:
            return bound[e]
        if e in self.memo:
            return self.memo[e]
        if e.is_Symbol:
            if e not in self.number:
                raise NotPolynomial(str(e))
            out = {(self.number[e],): 1}
        elif e.is_Rational:
            out = {(): int(e.p) if e.q == 1 else Fraction(int(e.p), int(e.q))} if e != 0 else {}
        elif e.is_Add:
            out = self.total([self(a, bound) for a in e.args])
        elif e.is_Mul:
            out = self.one
            for a in e.args:
                out = self.product(out, self(a, bound))
        elif e.is_Pow and e.exp.is_Integer and e.exp >= 0:
            base, out = self(e.base, bound), self.one
            for _ in range(int(e.exp)):
                out = self.product(out, base)
        else:
            raise NotPolynomial(type(e).__name__)
        if bound is None or not (e.free_symbols & bound.keys()):
            self.memo[e] = out
        return out

    def array(self, a: object) -> np.ndarray:
        a = _obj(a)
        out = np.empty(a.shape, dtype=object)
        for idx in np.ndindex(*a.shape):
            out[idx] = self(a[idx])
        return out

    def expr(self, p: dict, symbols: list[sp.Symbol]) -> sp.Expr:
        """Back to a SymPy expression (for showing an entry)."""
        return sp.Add(*[sp.Rational(c) * sp.Mul(*[symbols[i] for i in m]) for m, c in p.items()])


def polynomial_derivative(e: Node, env: Env, sizes: Sizes, name: str, poly: Polynomials) -> np.ndarray:
    """Every partial derivative of ``e`` by ``name``, one operation at a time, as exact polynomials.

    Each intermediate entry gets a symbol and its definition in terms of its
    operands' entries; SymPy differentiates each small definition, and the
    partials are multiplied along every path back to ``name``'s entries (the
    scalar chain rule, as the article does by hand). Nothing here uses the
    matrix rules. Raises NotPolynomial when an entry is not a polynomial.
    Shape: value shape + variable shape.
    """
    from .ir import depends, topo

    memo: dict = {}
    wrt = _obj(env[name])
    wanted = set(wrt.ravel().tolist())
    entries: dict[Node, object] = {}
    definition: dict[sp.Symbol, sp.Expr] = {}
    value: dict[sp.Symbol, object] = {}
    layers: list[list[sp.Symbol]] = []
    for n in topo(e):
        if n.op == "var":
            entries[n] = env[n.attr[0]]
            continue
        local = EVAL[n.op](n, sizes, *(entries[a] for a in n.args))
        if not n.args or not depends(n, name, memo):
            entries[n] = local
            continue
        local = _obj(local)
        try:
            values = [poly(sp.S(local[idx]), value) for idx in np.ndindex(*local.shape)]
        except NotPolynomial:  # sqrt(s) in ||r||^2: leave it inline, so the square cancels it
            entries[n] = local if local.shape else local[()]
            continue
        named = np.empty(local.shape, dtype=object)
        layer = []
        for idx, v in zip(np.ndindex(*local.shape), values, strict=True):
            t = sp.Dummy("t")
            definition[t], value[t], named[idx] = sp.S(local[idx]), v, t
            layer.append(t)
        layers.append(layer)
        entries[n] = named if named.shape else named[()]
    root = _obj(entries[e])
    if any(s not in definition and s not in wanted and not sp.S(s).is_Symbol for s in root.ravel()):
        raise NotPolynomial("the value itself")
    out = np.empty(root.shape + wrt.shape, dtype=object)
    partials: dict[sp.Symbol, dict[sp.Symbol, object]] = {}
    position = {s: i for i, s in zip(np.ndindex(*wrt.shape), wrt.ravel().tolist(), strict=True)}
    for o in np.ndindex(*root.shape):
        adjoint: dict[sp.Symbol, list] = {root[o]: [poly.one]} if root[o] in definition else {}
        grads: dict[sp.Symbol, list] = {root[o]: [poly.one]} if root[o] in wanted else {}
        for layer in reversed(layers):
            for t in layer:
                parts = adjoint.pop(t, None)
                if not parts:
                    continue
                g = poly.total(parts)
                if t not in partials:
                    local = _partials(definition[t], lambda c: c in definition or c in wanted)
                    partials[t] = {c: poly(d, value) for c, d in local.items()}
                for c, dc in partials[t].items():
                    (adjoint if c in definition else grads).setdefault(c, []).append(poly.product(g, dc))
        for i in np.ndindex(*wrt.shape):
            out[o + i] = poly.zero
        for s, parts in grads.items():
            out[o + position[s]] = poly.total(parts)
    return out


@dataclass(frozen=True)
class Evidence:
    """The element-wise derivative at concrete sizes: the independent side of a proof.

    ``values`` has shape value shape + variable shape(s); its entries are SymPy
    expressions, or exact sparse polynomials of ``poly`` when the fast path applied.
    """

    values: np.ndarray
    method: str
    poly: Polynomials | None = None
    symbols: tuple[sp.Symbol, ...] = ()

    def sympy(self) -> np.ndarray:
        """The entries as SymPy expressions."""
        if self.poly is None:
            return self.values
        out = np.empty(self.values.shape, dtype=object)
        for idx in np.ndindex(*self.values.shape):
            out[idx] = self.poly.expr(self.values[idx], list(self.symbols))
        return out

    def same_domain(self, got: np.ndarray) -> np.ndarray:
        """``got`` (SymPy entries) in the domain of ``values``, ready to compare."""
        return self.poly.array(got) if self.poly is not None else np.asarray(got, dtype=object)


def evidence(e: Node, env: Env, sizes: Sizes, names: tuple[str, ...]) -> Evidence:
    """Every partial derivative of ``e`` by ``names``, entry by entry.

    A first derivative of a polynomial goes through the scalar chain rule in
    exact sparse polynomials (fast at 64 x 64); anything else is SymPy's
    ``diff`` of every entry.
    """
    if len(names) == 1:
        poly = Polynomials(env)
        try:
            values = polynomial_derivative(e, env, sizes, names[0], poly)
        except NotPolynomial:
            pass
        else:
            symbols = tuple(s for a in env.values() for s in np.asarray(a, dtype=object).ravel().tolist())
            method = (
                "the scalar chain rule entry by entry, each partial derivative by SymPy, compared as exact polynomials"
            )
            return Evidence(values, method, poly, symbols)
    return Evidence(differentiate(e, env, sizes, names), "SymPy's derivative of every entry")


def differentiate(e: Node, env: Env, sizes: Sizes, names: tuple[str, ...]) -> np.ndarray:
    """``e`` written out, differentiated by each of ``names`` in turn with SymPy's diff of every entry."""
    value = evaluate(e, env, sizes)
    for name in names:
        value = elementwise_derivative(value, env[name])
    return value
