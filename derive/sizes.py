"""Concrete sizes: small ones for the proof, real ones (or near them) for the numeric check.

A form is symbolic in its dimensions, so it is proven at small, distinct
sizes (2, 3, 4, ...) that satisfy the expression's own constraints: every
dimension a node has (a convolution's H - kh + 1, a pooled H / 2) must be a
positive whole number, and at least 2 where it can be, so a transposition
cannot hide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sympy as sp

from .errors import DeriveError
from .ir import Node, topo

Sizes = dict[sp.Symbol, int]


def dimensions(*roots: Node) -> list[sp.Expr]:
    """Every distinct dimension expression the nodes' shapes use."""
    out: dict[sp.Expr, None] = {}
    for r in roots:
        for n in topo(r):
            for d in n.shape:
                d = sp.S(d)
                if d.free_symbols:
                    out[d] = None
    return list(out)


def _ok(dims: Iterable[sp.Expr], sizes: Mapping, least: int) -> bool:
    for d in dims:
        if not d.free_symbols <= sizes.keys():
            continue
        v = sp.S(d.xreplace(dict(sizes)))
        if not v.is_Integer or v < least:
            return False
    return True


def choose(symbols: list[sp.Symbol], dims: list[sp.Expr], given: Mapping | None = None, high: int = 9,
           groups: Iterable[tuple[sp.Expr, ...]] = ()) -> Sizes:  # fmt: skip
    """Small sizes for ``symbols`` under which every dimension in ``dims`` is a whole number >= 1.

    Each size is at least 2 (1 only where nothing else fits), a matrix's rows and columns (the last
    two axes of each of ``groups``) differ where they can, so no matrix is square by accident, and
    the total size of ``groups`` is as small as possible. ``given`` fixes some symbols.
    """
    fixed = {s: int(v) for s, v in (given or {}).items()}
    free = [s for s in symbols if s not in fixed]
    groups = [tuple(sp.S(d) for d in g) for g in groups]
    for distinct, least in ((True, 2), (False, 2), (True, 1), (False, 1)):
        for top in range(3, high + 1):  # the smallest largest size first, then the smallest total
            found = _best(free, fixed, dims, groups, distinct, least, top)
            if found is not None:
                return found
    if not _ok(dims, fixed, 1):
        raise DeriveError("the given sizes do not fit the expression (a dimension comes out fractional or empty)")
    raise DeriveError("no small sizes satisfy the expression's constraints; give the proof sizes (--prove-at)")


def _compile(d: sp.Expr, order: list[sp.Symbol]):
    """(the highest position in ``order`` of d's symbols, an exact evaluator of d on a list of sizes
    giving (numerator, denominator) in integers)."""
    d = sp.expand(sp.S(d))
    syms = sorted(d.free_symbols, key=str)
    if not syms:
        return -1, lambda xs, v=(int(d.p), int(d.q)): v
    idx = [order.index(s) for s in syms]
    poly = sp.Poly(d, *syms)
    den = int(sp.ilcm(1, 1, *[c.q for c in poly.coeffs()]))
    terms = [(int(c * den), [(i, e) for i, e in zip(idx, m, strict=True) if e]) for m, c in poly.terms()]

    def value(xs: list[int]) -> tuple[int, int]:
        total = 0
        for c, powers in terms:
            for i, e in powers:
                c *= xs[i] ** e
            total += c
        return total, den

    return max(idx), value


def _whole(v: tuple[int, int], least: int) -> bool:
    num, den = v
    return num % den == 0 and num // den >= least


def _best(free, fixed, dims, groups, distinct: bool, least: int, high: int) -> Sizes | None:
    """The assignment of ``free`` of smallest total size of ``groups`` (branch and bound), or None."""
    order = list(fixed) + list(free)
    base = len(fixed)
    xs = [int(fixed[s]) for s in fixed] + [0] * len(free)
    last = [[] for _ in order]
    for d in dims:
        top, f = _compile(d, order)
        if top >= 0:
            last[top].append(f)
    bad = [f for fs in last[:base] for f in fs if not _whole(f(xs), 1)]
    if bad:
        return None
    sized = []
    for g in groups:
        parts = [_compile(d, order) for d in g]
        sized.append((max((t for t, _ in parts), default=-1), [f for _, f in parts]))
    matrix_axes = []  # pairs of positions that must differ (a matrix's rows and columns)
    for g in groups:
        syms = [order.index(d) for d in g[-2:] if d.is_Symbol and d in order] if len(g) >= 2 else []
        if len(syms) == 2:
            matrix_axes.append((min(syms), max(syms)))
    best: list = [None, float("inf")]
    steps = [20000]

    def cost(i: int) -> float:
        total = 0.0
        for top, fs in sized:
            if top < i:
                n = 1
                for f in fs:
                    num, den = f(xs)
                    n *= num // den
                total += n
        return total

    def go(i: int) -> None:
        steps[0] -= 1
        if steps[0] < 0:
            return
        if i > base:
            for f in last[i - 1]:
                if not _whole(f(xs), least):
                    return
            if distinct and any(b == i - 1 and xs[a] == xs[b] for a, b in matrix_axes):
                return
        if cost(i) >= best[1]:
            return
        if i == len(order):
            best[0], best[1] = dict(zip(order, xs, strict=True)), cost(i + 1)
            return
        for v in range(max(least, 1), high + 1):
            xs[i] = v
            go(i + 1)
        xs[i] = 0

    go(base)
    return best[0]


def near(symbols: list[sp.Symbol], dims: list[sp.Expr], declared: Mapping, proof: Mapping,
         fits) -> tuple[Sizes, bool]:  # fmt: skip
    """Sizes for the numeric check: the declared ones (others one above the proof's), halved while
    ``fits(sizes)`` is False. Returns (sizes, whether they are the declared ones)."""
    sizes = {s: int(declared.get(s, proof.get(s, 2) + 1)) for s in symbols}
    if not _ok(dims, sizes, 1):
        sizes = {s: proof.get(s, 2) + 1 for s in symbols}
        if not _ok(dims, sizes, 1):
            sizes = dict(proof)
    exact = all(sizes.get(s) == v for s, v in declared.items())
    for _ in range(64):
        if fits(sizes):
            return sizes, exact
        big = max(sizes, key=lambda s: sizes[s])
        if sizes[big] <= 3:
            break
        trial = dict(sizes)
        trial[big] = max(3, sizes[big] // 2)
        for k in range(trial[big], sizes[big]):  # keep the constraints (pooling divides evenly)
            trial[big] = k
            if _ok(dims, trial, 1):
                break
        if not _ok(dims, trial, 1):
            break
        sizes, exact = trial, False
    return sizes, exact


def small(symbols: list[sp.Symbol], dims: list[sp.Expr], declared: Mapping | None = None,
          groups: Iterable[tuple] = ()) -> Sizes:  # fmt: skip
    """Sizes for writing entries out by hand: the declared ones if all are at most 3, else the
    smallest that fit (2 as in the article, more where a convolution or pooling needs it)."""
    declared = dict(declared or {})
    if declared and set(declared) >= set(symbols) and all(v <= 3 for v in declared.values()) \
            and _ok(dims, declared, 1):  # fmt: skip
        return {s: declared[s] for s in symbols}
    for least in (2, 1):
        for top in (2, 3, 4):
            found = _best(symbols, {}, dims, [tuple(sp.S(d) for d in g) for g in groups], False, least, top)
            if found is not None:
                return found
    return choose(symbols, dims, groups=groups)


def fits(dims: Iterable[sp.Expr], sizes: Mapping) -> bool:
    """Whether every dimension comes out a positive whole number at ``sizes``."""
    return _ok(dims, sizes, 1)


def symbols_of(shapes: Mapping[str, tuple]) -> list[sp.Symbol]:
    """The dimension symbols of the shapes, in order of appearance (ties by name: the same every run)."""
    out: dict[sp.Symbol, None] = {}
    for shape in shapes.values():
        for d in shape:
            for s in sorted(sp.S(d).free_symbols, key=str):
                out[s] = None
    return list(out)
