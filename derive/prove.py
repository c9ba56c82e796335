"""The proof: the matrix form equals the element-wise derivative, entry by entry, at concrete sizes.

Both sides are written out at the proof's sizes (see :mod:`derive.explicit`):
the expression with Dual entries gives every partial derivative by the
scalar chain rule, and the matrix form is evaluated on the same entries.

1. At a random point modulo p = 2^61 - 1: equal values at independent random
   points prove equality with probability at least 1 - 2^-k, k stated
   (Schwartz-Zippel). This is fast at any size and finds a wrong form at once.
2. Exactly, as rational functions in the entries and in one symbol per
   distinct exp(u), log(u), sqrt(u), ... (python-flint, or SymPy's
   polynomials): equal rational functions are equal for every value.
   This runs within the time budget; if it finishes, the proof is exact.
   Subexpressions both sides compute are first kept as symbols (one per
   entry, with their true partial derivatives), which keeps ||A x - b||^2
   at n x n to n^2 terms instead of n^3; if the sides differ that way, the
   entries are multiplied out.

A mismatch found modulo p is confirmed at a random rational point with
SymPy at 30 digits before anything is called refuted. Nothing is reported
proven that was not, and the method always says which check ran.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from . import explicit as ex
from .context import Budget, OutOfTime, seconds_text
from .domains import DomainError, Dual, ExactDomain, Fp, ModularDomain, MpDomain, P, TooBig
from .explicit import Entries, Kit, entries, evaluate, jacobian_array, seeded
from .ir import Node, topo

TARGET_BITS = 60  # a probabilistic proof is reported once its error bound is below 2^-60
EXACT_SHARE = 0.75  # of the time left after the modular rounds, for the exact check (the rest: the numeric one)
RAISE = "raise it with --max-seconds, or derive(..., max_seconds=...)"


@dataclass(frozen=True)
class Mismatch:
    """One entry where two sides differ, with 1-based indices."""

    index: tuple[int, ...]
    expected: sp.Expr
    got: sp.Expr


@dataclass(frozen=True)
class Proof:
    """What was proven, how, and at which sizes.

    ``status``: ``"proven"`` (every entry equal: exactly if ``exact``, else with
    probability at least 1 - 2^-``bits``), ``"refuted"`` (``mismatches`` lists
    entries that differ), ``"unproven"`` (the checks could not settle it),
    ``"not finished"`` (the time budget ran out) or ``"no matrix form"``.
    """

    status: str
    method: str
    shapes: dict[str, tuple[int, ...]]  # each variable's concrete shape in the proof
    entries: int
    seconds: float
    mismatches: tuple[Mismatch, ...] = field(default=())
    exact: bool = False
    bits: int | None = None  # a probabilistic proof's error bound, 2^-bits
    undefined: bool = False  # the expression has no value at these sizes (a singular matrix, say)

    @property
    def ok(self) -> bool:
        return self.status == "proven"

    @property
    def sizes(self) -> dict[str, tuple[int, ...]]:
        """The variables' shapes the proof wrote out (the same as ``shapes``)."""
        return self.shapes

    def __str__(self) -> str:
        at = shapes_text(self.shapes)
        return f"{self.status}: {self.method} ({self.entries} entries at {at}, {self.seconds:.2f} s)"


def shapes_text(shapes: Mapping[str, tuple[int, ...]]) -> str:
    """A 2×3, x 3, c scalar."""
    return ", ".join(f"{n} {'×'.join(map(str, s)) or 'scalar'}" for n, s in shapes.items())


@dataclass(frozen=True)
class Sides:
    """What to compare: the expression and its derivative's matrix form, at concrete sizes.

    ``arrange(m)`` turns the written-out matrix form into the element-wise
    derivative's shape (value shape + variable shapes).
    """

    expr: Node
    form: Node
    wrt: tuple[str, ...]
    shapes: Mapping[str, tuple]
    sizes: Mapping[sp.Symbol, int]
    structure: Mapping[str, str]
    arrange: Callable[[np.ndarray], np.ndarray]


def _labels(ents: Entries) -> list[str]:
    """The distinct free entries' names (a symmetric matrix's s_ij once)."""
    out: dict[str, None] = {}
    for name, lab in ents.labels.items():
        for idx in np.ndindex(*lab.shape):
            if ents.free[name][idx] is not None:
                out[lab[idx]] = None
    return list(out)


def _sides(s: Sides, ents: Entries, values: Mapping[str, np.ndarray], dom: Any, one: Any, zero: Any,
           budget: Budget | None = None, kept: Mapping[Node, Any] | None = None):  # fmt: skip
    """(element-wise derivative, arranged matrix form), both arrays of ``dom`` scalars.

    ``kept`` maps subexpressions of both sides (children first) to symbols standing for their
    entries: each side reads the symbols, and the derivative side carries each one's true
    partial derivatives (see :func:`_exact`)."""
    plain = {n: (v[()] if v.ndim == 0 else v) for n, v in values.items()}
    duals = {n: (v[()] if v.ndim == 0 else v) for n, v in seeded(values, ents, s.wrt, one).items()}
    dual_kit, kit = Kit(dom, s.sizes, duals, budget=budget), Kit(dom, s.sizes, plain, budget=budget)
    fixed_duals: dict[Node, Any] = {}
    for n, symbols in (kept or {}).items():
        v = evaluate(n, dual_kit, fixed_duals)
        fixed_duals[n] = np.frompyfunc(lambda x, r: Dual(r, x.t) if isinstance(x, Dual) else r, 2, 1)(v, symbols)
    value = evaluate(s.expr, dual_kit, fixed_duals)
    want = jacobian_array(value, ents, s.wrt, s.structure, zero)
    got = np.asarray(evaluate(s.form, kit, kept), dtype=object)
    got = s.arrange(got if got.ndim else np.asarray(got[()], dtype=object))
    if got.shape != want.shape:
        raise ValueError(f"the matrix form has {got.shape} entries where {want.shape} are expected")
    return want, got


def _modular_round(s: Sides, ents: Entries, seed: int,
                   budget: Budget | None = None) -> tuple[list[tuple[int, ...]], int, ModularDomain]:  # fmt: skip
    """(indices that differ, log2 of the error bound, the domain) at one random point mod p."""
    dom = ModularDomain(seed)
    values = ents.fill(lambda label: dom.point(), Fp(0))
    want, got = _sides(s, ents, values, dom, Fp(1), Fp(0), budget)
    bad, degree = [], 1
    for idx in np.ndindex(*want.shape):
        if budget is not None:
            budget.tick()
        a, b = Fp.of(want[idx]), Fp.of(got[idx])
        if a.v != b.v:
            bad.append(idx)
        d = a - b
        degree = max(degree, d.dn)
    bits = math.log2(degree) + len(dom.roots) + math.log2(max(want.size, 1)) + math.log2(max(dom.atoms, 1) + 1)
    return bad, math.ceil(bits - math.log2(P)), dom


#: ops that only move entries or make constants: kept as symbols, they would hide how entries relate
_MOVES = frozenset({"var", "const", "eye", "ones", "commutation", "T", "vec", "flatten", "unflatten", "broadcast",
                    "diag", "windows"})  # fmt: skip


def _shared(s: Sides) -> list[Node]:
    """The subexpressions both sides compute (A x - b in ||A x - b||^2 and 2 A^T (A x - b)), children
    first; none for a second derivative or an expansion."""
    if len(s.wrt) != 1:
        return []
    in_form = set(topo(s.form))
    return [n for n in topo(s.expr) if n in in_form and n.args and n.op not in _MOVES]


def _exact(s: Sides, ents: Entries, atoms: int, budget: Budget,
           shared: Sequence[Node] = ()) -> tuple[list[tuple[int, ...]], str]:  # fmt: skip
    """(indices whose difference is not zero as a rational function, the library that did the algebra).

    With ``shared``, each of those subexpressions is one symbol per entry on both sides, with its
    true partial derivatives on the derivative side: equal as rational functions in the entries and
    these symbols, the sides are equal once each symbol is replaced by what it stands for (and
    a difference found this way proves nothing: the caller then compares without them).
    """
    labels = _labels(ents)
    shapes = [ex.concrete(n.shape, s.sizes) for n in shared]
    names = [f"_s{k}_{i}" for k, shape in enumerate(shapes) for i in range(int(np.prod(shape, dtype=int)))]
    dom = ExactDomain(labels + names, atoms, budget)
    values = ents.fill(dom.variable, dom.const(0))
    kept, start = {}, 0
    for n, shape in zip(shared, shapes, strict=True):
        size = int(np.prod(shape, dtype=int))
        symbols = np.array([dom.variable(x) for x in names[start : start + size]], dtype=object)
        kept[n] = symbols.reshape(shape) if shape else symbols[0]
        start += size
    want, got = _sides(s, ents, values, dom, dom.const(1), dom.const(0), budget, kept)
    wrong = [idx for idx in np.ndindex(*want.shape) if not dom.is_zero(dom.const(want[idx]) - dom.const(got[idx]))]
    return wrong, dom.ring.name


SHOWN = 2000  # the largest entry (SymPy tree size) a refutation shows symbolically


def _confirm(s: Sides, ents: Entries, bad: Sequence[tuple[int, ...]], seed: int,
             budget: Budget) -> tuple[list[Mismatch], bool]:  # fmt: skip
    """Whether the sides differ at a random rational point (mpmath, 30 digits), and the first
    mismatching entries: in SymPy when they are small enough to show, else their values there."""
    rng = random.Random(seed)
    real, shown = False, None
    for _ in range(3):
        dom = MpDomain(30)
        values = ents.fill(lambda label, d=dom: d.const(Fraction(rng.randint(3, 17), rng.randint(5, 11))), dom.const(0))
        try:
            want, got = _sides(s, ents, values, dom, dom.const(1), dom.const(0), budget)
        except (DomainError, ZeroDivisionError, OverflowError, ValueError):
            continue
        shown = shown or (want, got)
        if any(abs(want[i] - got[i]) > 1e-12 * max(1, abs(want[i])) for i in bad):
            real = True
            break
    size = max(ex.sympy_size(s.expr, s.shapes, s.sizes, s.wrt, s.structure, budget).n,
               ex.sympy_size(s.form, s.shapes, s.sizes, (), s.structure, budget).n)  # fmt: skip
    if size <= SHOWN:
        _, want_sym = ex.sympy_jacobian(s.expr, s.shapes, s.sizes, s.wrt, s.structure)
        _, kit = ex.display_entries(s.shapes, s.sizes, s.structure)
        got_sym = s.arrange(np.asarray(evaluate(s.form, kit), dtype=object))
        pairs = [(sp.S(want_sym[i]), sp.S(got_sym[i])) for i in bad[:3]]
    elif shown is not None:
        pairs = [(sp.Float(str(shown[0][i]), 15), sp.Float(str(shown[1][i]), 15)) for i in bad[:3]]
    else:
        pairs = []
    return [Mismatch(tuple(k + 1 for k in i), e, g) for i, (e, g) in zip(bad, pairs, strict=False)], real


def prove(s: Sides, ents: Entries, budget: Budget, seed: int = 0) -> Proof:
    """Compare the two sides of ``s``; the Proof says how, at which sizes, with what certainty."""
    t = time.thread_time()
    shapes = dict(ents.shapes)
    count = int(np.prod([int(np.prod(ents.shapes[n])) for n in s.wrt]) * max(1, _value_size(s)))

    def done(status: str, method: str, **kw: Any) -> Proof:
        return Proof(status, method, shapes, count, time.thread_time() - t, **kw)

    try:
        bits, rounds, dom, bad = 0, 0, None, []
        for attempt in range(12):
            if rounds >= 4 or bits <= -TARGET_BITS:
                break
            budget.check()
            try:
                bad, b, dom = _modular_round(s, ents, seed + attempt, budget)
            except DomainError:
                continue
            rounds += 1
            if bad:
                break
            bits += b
    except OutOfTime:
        spent = seconds_text(budget.seconds)
        return done("not finished", f"not finished in {spent} s of CPU time: the time budget ran out before the"
                    f" first check finished ({RAISE})")  # fmt: skip
    if dom is None:
        return done("unproven", "no random point avoided a zero denominator or a non-square (the expression may be"
                    " undefined everywhere)", undefined=True)  # fmt: skip
    if bad:
        try:
            mismatches, real = _confirm(s, ents, bad, seed, budget)
        except OutOfTime:
            return done("unproven", "the two sides differ at a random point modulo p, and the check at rational points"
                        f" did not finish within the time budget ({seconds_text(budget.seconds)} s)")  # fmt: skip
        if real:
            return done("refuted", "the matrix form differs from the element-wise derivative", exact=True,
                        mismatches=tuple(mismatches))  # fmt: skip
        return done("unproven", "the two sides differ at a random point modulo p but agree numerically: an"
                    " identity between exp, log or square-root terms that the algebra does not see")  # fmt: skip
    # a bound past 1 (a degree past p) says nothing: without the exact check it is not a proof
    sure = "proven" if bits <= -TARGET_BITS else "unproven"
    modular = (
        f"the matrix form equals the element-wise derivative (the scalar chain rule entry by entry) at {rounds}"
        f" random point{'s' if rounds > 1 else ''} modulo 2^61 - 1: probability of error at most 2^{bits}"
        " (Schwartz-Zippel)"
    )
    exact_budget = budget.part(EXACT_SHARE)
    try:
        shared, wrong = _shared(s), [()]
        if shared:
            with contextlib.suppress(TooBig, DomainError):
                wrong, backend = _exact(s, ents, dom.atoms + 8, exact_budget, shared)
            shared = shared if not wrong else []
        if wrong:
            wrong, backend = _exact(s, ents, dom.atoms + 8, exact_budget)
    except OutOfTime:
        return done(sure, modular + f"; the exact check did not finish in {seconds_text(budget.seconds)} s ({RAISE})",
                    bits=-bits)  # fmt: skip
    except (TooBig, DomainError) as e:
        return done(sure, modular + f"; the exact check stopped: {e}", bits=-bits)
    if not wrong:
        kept = f", with {_count(len(shared), 'subexpression')} both sides share as symbols" if shared else ""
        return done("proven", "the matrix form equals the element-wise derivative (the scalar chain rule entry by"
                    f" entry), exactly: equal as rational functions ({backend}{kept})", exact=True)  # fmt: skip
    return done(sure, modular + "; exactly, some entries need an identity between exp, log or root terms",
                bits=-bits)  # fmt: skip


def _count(k: int, noun: str) -> str:
    return f"{k} {noun}" + ("s" if k != 1 else "")


def _value_size(s: Sides) -> int:
    from .explicit import concrete

    shape = concrete(s.expr.shape, s.sizes) if s.wrt else ()
    return int(np.prod(shape)) if shape else 1


__all__ = ["Mismatch", "Proof", "Sides", "entries", "prove", "shapes_text"]
