"""The exact check: the matrix form equals the element-wise derivative.

Both sides are written out at the same concrete sizes; each entry of the
difference must vanish. An entry is tested by ``expand``, then by
``cancel`` for rational functions (inverses, softmax); if neither settles
it, a numeric probe at a random point tells a real mismatch (refuted,
with the entry) from an identity SymPy could not close (unproven, said
so). Nothing is ever reported proven that was not.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from .explicit import Evidence, NotPolynomial
from .functions import sigmoid, softplus


@dataclass(frozen=True)
class Mismatch:
    """One entry where two sides differ, with 1-based indices."""

    index: tuple[int, ...]
    expected: sp.Expr
    got: sp.Expr


@dataclass(frozen=True)
class Proof:
    """What was proven, how, and at which sizes.

    ``status`` is ``"proven"`` (every entry equal, exactly), ``"refuted"``
    (``mismatches`` lists entries that differ), ``"unproven"`` (SymPy
    could not decide some entries, although a numeric probe agreed) or
    ``"no matrix form"`` (no rule applied; only the element-wise form exists).
    """

    status: str
    method: str
    shapes: dict[str, tuple[int, ...]]  # each variable's concrete shape in the proof
    entries: int
    seconds: float
    mismatches: tuple[Mismatch, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.status == "proven"

    def __str__(self) -> str:
        at = shapes_text(self.shapes)
        return f"{self.status}: {self.method} ({self.entries} entries at {at}, {self.seconds:.2f} s)"


def zero_status(d: sp.Expr, rng: random.Random) -> bool | None:
    """True if ``d`` is exactly zero, False if it is not, None if undecided."""
    d = sp.S(d)
    if d == 0:
        return True
    if sp.expand(d) == 0:
        return True
    if sp.cancel(sp.together(d)) == 0:
        return True
    if d.has(sigmoid, softplus) and sp.simplify(d.rewrite(sp.exp)) == 0:
        return True  # sigma(-z) = 1 - sigma(z) needs exp to see
    return _probe(d, rng)


def _probe(d: sp.Expr, rng: random.Random) -> bool | None:
    """Evaluate at random points: a clear non-zero value refutes."""
    syms = sorted(d.free_symbols, key=str)
    for _ in range(3):
        point = {s: sp.Rational(rng.randint(3, 17), rng.randint(5, 11)) for s in syms}
        try:
            v = complex(d.xreplace(point).evalf(30))
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if abs(v) > 1e-12:
            return False
    return None


def compare(expected: np.ndarray, got: np.ndarray, seed: int = 0) -> tuple[str, list[Mismatch]]:
    """Entry by entry; the status as in :class:`Proof` and the entries that differ."""
    rng = random.Random(seed)
    expected = np.asarray(expected, dtype=object)
    got = np.asarray(got, dtype=object)
    if expected.shape != got.shape:
        raise ValueError(f"shapes differ: {expected.shape} and {got.shape}")
    bad: list[Mismatch] = []
    undecided = False
    for idx in np.ndindex(*expected.shape):
        status = zero_status(sp.S(expected[idx]) - sp.S(got[idx]), rng)
        if status is False:
            bad.append(Mismatch(tuple(i + 1 for i in idx), sp.S(expected[idx]), sp.S(got[idx])))
        elif status is None:
            undecided = True
    return ("refuted" if bad else "unproven" if undecided else "proven"), bad


def shapes_text(shapes: dict[str, tuple[int, ...]]) -> str:
    """A 2×3, x 3, c scalar."""
    return ", ".join(f"{n} {'×'.join(map(str, s)) or 'scalar'}" for n, s in shapes.items())


def prove(evidence: Evidence, got: np.ndarray, shapes: dict[str, tuple[int, ...]], what: str) -> Proof:
    """Compare ``got`` (the matrix form written out, SymPy entries) with the evidence, exactly."""
    t = time.perf_counter()
    expected = evidence.values
    try:
        converted = evidence.same_domain(got) if evidence.poly is not None else None
    except NotPolynomial:  # inv(inv(B)): a polynomial, written with inverses
        converted, expected = None, evidence.sympy()
    if converted is None:
        status, bad = compare(expected, got)
    else:  # exact polynomials: equal exactly when their dicts are equal
        wrong = [idx for idx in np.ndindex(*expected.shape) if expected[idx] != converted[idx]]
        full = evidence.sympy() if wrong else None
        status = "refuted" if wrong else "proven"
        bad = [Mismatch(tuple(i + 1 for i in idx), full[idx], sp.S(got[idx])) for idx in wrong]
    method = f"{what} equals the element-wise derivative ({evidence.method})"
    return Proof(status, method, shapes, int(expected.size), time.perf_counter() - t, tuple(bad))
