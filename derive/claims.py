"""Checking a hand derivation against the element-wise truth.

A claim is written in the same numpy syntax as the expression, or entry by
entry as on paper (``[a11*x1 + a12*x2 - b1, ...]``). It is compared exactly
at the smallest sizes first; on failure the report gives the sizes, the
entry, both values, and the usual mistake it looks like.

>>> check("norm(A @ x - b)**2", "x", "2 * A.T @ (A @ x - b)").ok
True
>>> print(check("norm(A @ x - b)**2", "x", "A.T @ (A @ x - b)").mistake)
a missing factor of 2
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp

from . import explicit
from . import sizes as sizing
from .context import Limits
from .core import _wrt
from .errors import DeriveError, ShapeConflict
from .explicit import display_entries, evaluate, sympy_jacobian
from .layout import Kind, kind_of, layout_of
from .ops.functions import sigmoid, softplus
from .parse import Problem, parse, parse_structure
from .prove import Mismatch


@dataclass(frozen=True)
class Check:
    """The verdict on a claim. ``ok`` only when it was proven at every size tried."""

    ok: bool
    claim: str
    sizes: dict[str, int]
    mismatch: Mismatch | None
    mistake: str | None
    message: str

    def __str__(self) -> str:
        return self.message

    def __bool__(self) -> bool:
        return self.ok

    def _repr_markdown_(self) -> str:
        """The verdict for Jupyter: the claim, and the counterexample as math."""
        head = f"**The claim {'holds' if self.ok else 'fails'}**: `{self.claim.replace('`', '')}`"
        m = self.mismatch
        if m is None:
            return f"{head}\n\n{_markdown_text(self.message)}"
        at = ", ".join(f"${sp.latex(sp.Symbol(k))} = {v}$" for k, v in self.sizes.items())
        where = f"entry {m.index}" if m.index else "the value"
        text = f"{head}\n\nAt {at}, {where}: claimed ${sp.latex(m.got)}$, correct ${sp.latex(m.expected)}$."
        return text + (f" It looks like {self.mistake}." if self.mistake else "")

    def _repr_latex_(self) -> str:
        """The verdict as LaTeX for Jupyter: the counterexample as math, the rest as text."""
        m = self.mismatch
        if m is None:
            return f"$$\\text{{{_latex_text(self.message)}}}$$"
        at = ", ".join(f"{sp.latex(sp.Symbol(k))} = {v}" for k, v in self.sizes.items())
        where = f"\\text{{entry }} {_latex_text(str(m.index))}" if m.index else "\\text{the value}"
        body = (
            f"\\text{{the claim fails at }} {at},\\ {where}:\\quad \\text{{claimed }} {sp.latex(m.got)},"
            f"\\ \\text{{correct }} {sp.latex(m.expected)}"
        )
        return f"$${body}$$"


def check(
    expr: str,
    wrt: str | Sequence[str] | None,
    claim: str,
    shapes: Mapping[str, Sequence[int | str]] | None = None,
    layout: str | None = None,
    *,
    symmetric: Sequence[str] = (),
    diagonal: Sequence[str] = (),
    limits: Limits | None = None,
) -> Check:
    """Is ``claim`` the derivative of ``expr`` by ``wrt`` (its value, if ``wrt`` is None)?

    The claim may have the variable's shape (a gradient), numerator or
    vec/Kronecker layout (a Jacobian), or be a list of entries at one size.
    ``layout`` is read as in :func:`derive.derive`: None (a gradient shaped
    like the variable, a Jacobian in numerator layout), ``"numerator"``
    (a scalar's derivative by a matrix is the transpose of its gradient) or
    ``"denominator"`` (a Jacobian is transposed: one row per entry of the
    variable).

    >>> check("x @ A @ y", "A", "outer(y, x)", layout="numerator").ok
    True
    """
    limits = limits or Limits()
    structure = parse_structure(symmetric, diagonal)
    problem = parse(expr, shapes, structure=structure, limits=limits)
    names = () if wrt is None else _wrt(wrt, problem)
    kind = "value" if not names else kind_of(problem.expr.shape, names).value
    lay = layout_of(layout)
    declared = {n: s for n, s in problem.shapes.items()}
    used = _entry_names(claim, problem)
    if used:
        candidates = [_sizes_from_entries(problem, used)]
    else:
        try:
            parse(claim, declared, entries={})  # refuse unknown names before any work
        except ShapeConflict as e:
            text = f"the claim cannot be right: its shapes do not fit ({e})"
            return Check(False, claim, {}, None, "shapes that do not fit (a transpose or the wrong order?)", text)
        candidates = _candidates(problem)
    for sizes in candidates:
        ents, kit = display_entries(problem.shapes, sizes, structure)
        entries = _entry_symbols(problem, ents.symbols())
        c = parse(claim, declared, entries=entries, limits=limits)
        kit.claims = {s: s for s in entries.values()}
        got = np.asarray(evaluate(c.expr, kit), dtype=object)
        if lay is not None and got.ndim == 2 and _transposes(kind, lay):
            got = got.T
        if names:
            want = np.asarray(sympy_jacobian(problem.expr, problem.shapes, sizes, names, structure)[1], dtype=object)
        else:
            want = np.asarray(evaluate(problem.expr, kit), dtype=object)
        verdict = _judge(want, got, kind, problem, names, sizes, claim)
        if verdict is not None:
            return verdict
    sizes = {str(k): v for k, v in candidates[-1].items()}
    return Check(True, claim, sizes, None, None, f"the claim holds (proven exactly at {_at(sizes)})")


def _transposes(kind: str, layout: object) -> bool:
    """Whether a claim in ``layout`` is the transpose of the form compared (the gradient's shape, numerator)."""
    return (kind == Kind.GRADIENT and layout == "numerator") or (kind != Kind.GRADIENT and layout == "denominator")


def _markdown_text(text: str) -> str:
    """Plain text safe in Markdown: its special characters escaped."""
    return re.sub(r"([\\`*_{}\[\]<>#|$])", r"\\\1", text)


def _latex_text(text: str) -> str:
    """Plain text safe inside \\text{...} (as MathJax reads it): no braces, backslashes or dollars."""
    return text.translate(str.maketrans({"{": "(", "}": ")", "\\": "/", "$": None}))


def _at(sizes: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sizes.items()) or "the given sizes"


def _candidates(problem: Problem) -> list[dict]:
    """Sizes to try, smallest first: all 1, then distinct, then distinct reversed, then the declared ones;
    each only where every dimension of the expression comes out a whole number."""
    free = sizing.symbols_of(problem.shapes)
    if not free:
        return [{}]
    dims = sizing.dimensions(problem.expr)
    out: list[dict] = []
    try:
        distinct = sizing.choose(free, dims, groups=problem.shapes.values())
    except DeriveError:
        distinct = {d: 2 + i for i, d in enumerate(free)}
    flipped = dict(zip(free, reversed([distinct[d] for d in free]), strict=True))
    declared = dict(problem.sizes) if set(problem.sizes) >= set(free) else None
    for sizes in (dict.fromkeys(free, 1), distinct, flipped, declared):
        if sizes is not None and sizes not in out and sizing.fits(dims, sizes) and _small(problem, sizes):
            out.append(sizes)
    return out or [distinct]


def _small(problem: Problem, sizes: Mapping) -> bool:
    return sum(int(np.prod(explicit.concrete(s, sizes))) for s in problem.shapes.values()) <= 400


def _entry_symbols(problem: Problem, env: Mapping[str, np.ndarray]) -> dict[str, sp.Symbol]:
    out = {}
    for name in problem.shapes:
        for s in np.asarray(env[name], dtype=object).ravel():
            if isinstance(s, sp.Symbol):
                out[str(s)] = s
    return out


def _entry_names(claim: str, problem: Problem) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Names in the claim that denote entries (a11 -> ("A", (1, 1)))."""
    letters = explicit.entry_names(problem.shapes)
    found = {}
    for word in set(re.findall(r"[A-Za-z][A-Za-z0-9_]*", claim)):
        if word in problem.shapes:
            continue
        for name, letter in letters.items():
            rank = len(problem.shapes[name])
            rest = word[len(letter) :] if word.startswith(letter) and rank else ""
            parts = rest.lstrip("_").split("_") if "_" in rest else list(rest)
            if rest and len(parts) == rank and all(p.isdigit() and int(p) >= 1 for p in parts):
                found[word] = (name, tuple(int(p) for p in parts))
    return found


def _sizes_from_entries(problem: Problem, used: Mapping[str, tuple[str, tuple[int, ...]]]) -> dict:
    """Sizes for a claim written entry by entry: the largest index seen (else 2, as on paper)."""
    sizes: dict = {}
    for name, index in used.values():
        for d, i in zip(problem.shapes[name], index, strict=True):
            if isinstance(d, sp.Symbol):
                sizes[d] = max(sizes.get(d, 1), i)
    dims = dict.fromkeys(d for s in problem.shapes.values() for d in s if isinstance(d, sp.Symbol))
    return {d: sizes.get(d, 2) for d in dims}


def zero_status(d: sp.Expr, rng: random.Random) -> bool | None:
    """True if ``d`` is exactly zero, False if it is not, None if undecided."""
    d = sp.S(d)
    if d == 0 or sp.expand(d) == 0 or sp.cancel(sp.together(d)) == 0:
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
    """Entry by entry: "proven", "refuted" or "unproven", and the entries that differ."""
    rng = random.Random(seed)
    expected = np.asarray(expected, dtype=object)
    got = np.asarray(got, dtype=object)
    bad: list[Mismatch] = []
    undecided = False
    for idx in np.ndindex(*expected.shape):
        status = zero_status(sp.S(expected[idx]) - sp.S(got[idx]), rng)
        if status is False:
            bad.append(Mismatch(tuple(i + 1 for i in idx), sp.S(expected[idx]), sp.S(got[idx])))
        elif status is None:
            undecided = True
    return ("refuted" if bad else "unproven" if undecided else "proven"), bad


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and compare(a, b)[0] == "proven"


def _judge(
    want: np.ndarray,
    got: np.ndarray,
    kind: str,
    problem: Problem,
    names: tuple[str, ...],
    sizes: dict,
    claim: str,
) -> Check | None:
    """None if the claim holds at these sizes; else the failing Check."""
    at = {str(k): v for k, v in sizes.items()}
    arranged = _arrange(got, want)
    if arranged is not None:
        status, bad = compare(want, arranged)
        if status == "proven":
            return None
        if status == "unproven":
            return Check(False, claim, at, None, None, f"undecided: SymPy could not settle every entry at {_at(at)}")
        m = bad[0]
        mistake = _structured_mistake(arranged, kind, problem, names, sizes) or diagnose(want, arranged, got)
        return Check(False, claim, at, m, mistake, _report(m, mistake, at))
    mistake = diagnose(want, None, got)
    shape = f"the claim has shape {got.shape}, where {want.shape} (or a vec form) is expected"
    text = f"the claim fails at {_at(at)}: {shape}" + (f"; it looks like {mistake}" if mistake else "")
    return Check(False, claim, at, None, mistake, text)


COOKBOOK = "the Matrix Cookbook's symmetric rule G + Gᵀ - G∘I; the gradient by a symmetric matrix is (G + Gᵀ)/2"
UNSYMMETRISED = "the gradient as if the matrix were not symmetric (G); by a symmetric matrix it is (G + Gᵀ)/2"


def _structured_mistake(claim: np.ndarray, kind: str, problem: Problem, names: tuple[str, ...],
                        sizes: dict) -> str | None:  # fmt: skip
    """The usual mistakes by a symmetric matrix: the Cookbook's G + G^T - G∘I, or G itself."""
    if kind != "gradient" or problem.structure.get(names[0]) != "symmetric":
        return None
    name = names[0]
    general = {k: v for k, v in problem.structure.items() if k != name}
    _, g = sympy_jacobian(problem.expr, problem.shapes, sizes, names, general)
    ents = explicit.entries(problem.shapes, sizes, general)
    sym = explicit.entries(problem.shapes, sizes, problem.structure)
    same = {sp.Symbol(a): sp.Symbol(b) for a, b in zip(ents.labels[name].ravel(), sym.labels[name].ravel(),
                                                        strict=True)}  # fmt: skip
    g = np.vectorize(lambda v: sp.S(v).xreplace(same), otypes=[object])(np.asarray(g, dtype=object))
    cookbook = g + g.T - np.diag(np.diag(g))
    if _same(cookbook, claim):
        return COOKBOOK
    if _same(g, claim):
        return UNSYMMETRISED
    return None


def _arrange(got: np.ndarray, want: np.ndarray) -> np.ndarray | None:
    """The claim in the expected tensor shape: as given, or from vec/Kronecker form."""
    if got.shape == want.shape:
        return got
    return None if got.size != want.size or got.ndim != 2 else _from_vec(got, want)


def _from_vec(got: np.ndarray, want: np.ndarray) -> np.ndarray | None:
    for k in range(1, want.ndim):
        rows = int(np.prod(want.shape[:k]))
        if got.shape == (rows, want.size // rows):
            return got.reshape(want.shape, order="F")
    return None


def diagnose(want: np.ndarray, arranged: np.ndarray | None, got: np.ndarray) -> str | None:
    """The usual mistake a wrong claim looks like, if any."""
    if arranged is not None:
        for factor, text in ((sp.Integer(2), "a missing factor of 2"), (sp.Rational(1, 2), "an extra factor of 2"),
                             (sp.Integer(-1), "a flipped sign")):  # fmt: skip
            if _same(want, arranged * factor):
                return text
    if got.ndim == 2 and got.T.shape == want.shape and _same(want, got.T):
        return "the transpose of the right answer (wrong order of factors or layout)"
    if got.ndim == 2 and _from_vec(got.T, want) is not None and _same(want, _from_vec(got.T, want)):
        return "the right answer in the other layout (transposed)"
    if want.ndim == 0 and got.ndim >= 1 and _same(want, np.asarray(sum(got.ravel()), dtype=object)):
        return "a missing sum: the claim gives the terms, and their sum is the expression"
    return None


def _report(m: Mismatch, mistake: str | None, at: Mapping[str, int]) -> str:
    where = f"entry {m.index}" if m.index else "the value"
    diff = sp.simplify(m.expected - m.got)
    text = f"the claim fails at {_at(at)}, {where}: claimed {m.got}, correct {m.expected} (correct - claimed = {diff})"
    return text + (f"; it looks like {mistake}" if mistake else "")


__all__ = ["Check", "DeriveError", "check"]
