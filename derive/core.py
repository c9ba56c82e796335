"""The pipeline: parse, matrix form by rule, proof at small sizes, numeric check at real ones.

>>> d = derive("norm(A @ x - b)**2", "x")
>>> print(d.text)
2 Aᵀ(A x - b)
>>> d.proof.status
'proven'
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import sympy as sp

from . import sizes as sizing
from .calculus import gradient, jacobian, normalize
from .codegen import module
from .context import Budget, Context, Limits, OutOfTime, Progress, seconds_text
from .derivation import DIAGONAL_NOTE, SYMMETRIC_NOTE, Derivation, spec_of
from .errors import DeriveError, TimeBudgetSpent
from .explicit import concrete, entries
from .ir import Node, Shape, size_of, topo
from .layout import Kind, Layout, arrange, as_tensor, convention, kind_of, layout_name, layout_of
from .numeric import NumericCheck, fits, load
from .numeric import check as numeric_check
from .ops import NoRule
from .ops.build import commutation, const, eye, mm, node
from .ops.functions import FUNCTIONS, written_out
from .parse import Problem, parse, parse_structure
from .printing import PrintError
from .prove import Proof, Sides, prove, shapes_text
from .simplify import simplify, zeros
from .tidy import tidy

__all__ = ["Derivation", "derive", "load", "matrix_form", "numpy_module"]


# ----- the pipeline -----


def numpy_module(expr: str, wrt: str | Sequence[str], shapes: Mapping[str, Sequence[int | str]] | None = None,
                 name: str = "f", *, symmetric: Sequence[str] = (), diagonal: Sequence[str] = (),
                 vec_form: bool = False) -> str:  # fmt: skip
    """The numpy module :func:`derive` generates for ``expr`` by ``wrt``, by the rules alone: no element-wise
    proof and no numeric check. For tools that need only the code, at sizes too large to prove (benchmarks,
    tests of the code itself); ``derive(...).numpy_source(name)`` is the same module, proven and checked.
    Raises :class:`DeriveError` as :func:`derive` does, and when no rule gives a matrix form.
    """
    problem = parse(expr, shapes, structure=parse_structure(symmetric, diagonal))
    names = _wrt(wrt, problem)
    kind = kind_of(problem.expr.shape, names)
    form, _, note = matrix_form(problem, names, kind)
    if form is None:
        raise DeriveError(f"no numpy code without a matrix form: {note}")
    conv = convention(kind, None, problem.expr.shape, problem.shapes, names)
    return module(spec_of(problem, names, kind, form, conv, _notes(problem, names), vec_form), name)


PROOF_SHARE = 0.8  # of the budget left when the proof starts; the numeric check has the rest


def derive(
    expr: str,
    wrt: str | Sequence[str],
    shapes: Mapping[str, Sequence[int | str]] | None = None,
    layout: str | None = None,
    primes: bool = True,
    numeric: bool = True,
    *,
    symmetric: Sequence[str] = (),
    diagonal: Sequence[str] = (),
    proof_sizes: Mapping[str, int] | None = None,
    max_seconds: float | None = None,
    limits: Limits | None = None,
    progress: Progress | None = None,
) -> Derivation:
    """Differentiate ``expr`` (numpy syntax) by ``wrt`` and prove the result.

    ``wrt`` is a variable name, or a pair of names for a second derivative.
    ``layout`` is None (a scalar's gradient in the variable's shape, a
    Jacobian in numerator layout), ``"numerator"`` or ``"denominator"``.
    ``primes`` writes sigma' and tanh' (else sigma (1 - sigma), 1 - tanh^2).
    ``symmetric`` and ``diagonal`` name structured matrices. The proof runs at
    small sizes (``proof_sizes``, dimension name -> size, to choose them) within
    ``max_seconds`` CPU seconds; the numeric check at the declared sizes.
    Raises :class:`DeriveError` for bad input; never returns an unproven
    result without saying so in ``proof.status``.
    """
    ctx = _context(limits, max_seconds, progress)
    stage = "reading the expression"
    try:
        problem = parse(expr, shapes, structure=parse_structure(symmetric, diagonal), limits=ctx.limits,
                        budget=ctx.budget)  # fmt: skip
        names = _wrt(wrt, problem)
        kind, lay = kind_of(problem.expr.shape, names), layout_of(layout)
        stage = "finding the matrix form"
        with ctx.progress.stage(stage):
            form, first, note = matrix_form(problem, names, kind, primes, budget=ctx.budget)
            display = None if form is None else arrange(form, kind, lay, problem.shapes[names[0]])
        stage = "choosing the proof's sizes"
        at = _proof_sizes(problem, form, proof_sizes)
        with ctx.progress.stage(f"proving the matrix form entry by entry at {_at(problem, at)}"):
            proof, at = _prove(problem, names, kind, lay, display, at, ctx)
        d = Derivation(problem, names, kind, layout_name(kind, lay), form, display, proof, None,
                       convention(kind, lay, problem.expr.shape, problem.shapes, names), note, at, first,
                       _notes(problem, names))  # fmt: skip
        if numeric and form is not None:
            with ctx.progress.stage("checking the generated code against central differences"):
                # at least its share of the budget, even when the proof ran past its own
                numeric_budget = Budget(max(ctx.budget.left(), (1 - PROOF_SHARE) * ctx.limits.seconds))
                d = replace(d, numeric=_numeric(d, numeric_budget))
        return d
    except RecursionError:
        raise DeriveError(f"the expression is nested too deeply ({ctx.limits.how_to_raise('depth')})") from None
    except OutOfTime:
        raise TimeBudgetSpent(f"{stage} did not finish within the time budget of {ctx.limits.seconds:g} CPU seconds"
                              f" ({ctx.limits.how_to_raise('seconds')})") from None  # fmt: skip


def _context(limits: Limits | None, max_seconds: float | None, progress: Progress | None) -> Context:
    limits = limits or Limits()
    if max_seconds is not None:
        if not isinstance(max_seconds, int | float) or not max_seconds > 0:
            raise DeriveError(f"max_seconds must be a positive number, got {max_seconds!r}")
        limits = replace(limits, seconds=float(max_seconds))
    return Context(limits, progress or Progress())


def _wrt(wrt: str | Sequence[str], problem: Problem) -> tuple[str, ...]:
    names = (wrt,) if isinstance(wrt, str) else tuple(wrt)
    if not 1 <= len(names) <= 2 or not all(isinstance(n, str) for n in names):
        raise DeriveError("wrt must be a variable name or a pair of names (a second derivative)")
    names = tuple(unicodedata.normalize("NFKC", n) for n in names)  # as Python reads a name: ｘ is x
    for n in names:
        if n not in problem.shapes:
            known = ", ".join(problem.shapes)
            raise DeriveError(f"variable '{n}' is not in the expression (its variables are {known})")
    return names


def matrix_form(problem: Problem, names: tuple[str, ...], kind: Kind, primes: bool = True,
                budget: Budget | None = None) -> tuple[Node | None, Node | None, str]:  # fmt: skip
    """(the derivative by rule, a Hessian's gradient, a note): reverse mode for a scalar, then forward mode.

    The form is None (with the note saying why) when no rule applies. Past ``budget``
    (CPU time), :class:`~derive.context.OutOfTime` is raised.
    """
    e = normalize(problem.expr, budget)
    shapes, structure = problem.shapes, problem.structure
    first = None
    try:
        if kind is Kind.JACOBIAN:
            v = names[0]
            out = jacobian(e, v, shapes[v], budget)
            out = _structured_jac(out, shapes[v], structure.get(v, "")) if out is not None else None
            out = out if out is not None else zeros((e.size, size_of(shapes[v])))
        else:
            g = gradient(e, names[0], budget)
            g = simplify(_structured_grad(g, structure.get(names[0], "")), budget) if g is not None else None
            out = g if g is not None else zeros(shapes[names[0]])
            if kind is Kind.HESSIAN:
                first = out
                w = names[1]
                h = jacobian(out, w, shapes[w], budget) if g is not None else None
                h = _structured_jac(h, shapes[w], structure.get(w, "")) if h is not None else None
                out = h if h is not None else zeros((size_of(shapes[names[0]]), size_of(shapes[w])))
    except NoRule as err:
        return None, None, f"{err}; the derivative is given element-wise"
    out = simplify(tidy(simplify(out, budget)), budget)
    if not primes:
        out = simplify(_write_out_primes(out), budget)
    return out, first, ""


def _structured_grad(g: Node, structure: str) -> Node:
    """The gradient by a symmetric variable, sym(G) = (G + G^T)/2; by a diagonal one, diag(diag(G))."""
    if structure == "symmetric":
        return node("mul", const(sp.Rational(1, 2)), node("add", g, node("T", g)))
    if structure == "diagonal":
        return node("diag", node("diag", g))
    return g


def _structured_jac(j: Node, shape: Shape, structure: str) -> Node:
    """J (I + K)/2 by a symmetric variable (vec(sym(E)) = (I + K) vec(E)/2); J diag(vec(I)) by a diagonal one."""
    if structure == "symmetric":
        n = shape[0]
        return node("mul", const(sp.Rational(1, 2)), mm(j, node("add", eye(n * n), commutation(n, n))))
    if structure == "diagonal":
        return mm(j, node("diag", node("vec", eye(shape[0]))))
    return j


def _write_out_primes(e: Node) -> Node:
    memo: dict[Node, Node] = {}
    for n in topo(e):
        args = tuple(memo[a] for a in n.args)
        m = n if args == n.args else node(n.op, *args, attr=n.attr)
        memo[n] = written_out(*m.attr, m.args[0]) if m.op == "fn" and m.attr[1] > 0 else m
    return memo[e]


def _notes(problem: Problem, names: tuple[str, ...]) -> tuple[str, ...]:
    """The conventions this derivative rests on: structured variables, subgradients."""
    out = []
    for v in dict.fromkeys(names):
        s = problem.structure.get(v)
        if s == "symmetric":
            out.append(SYMMETRIC_NOTE.format(v=v))
        elif s == "diagonal":
            out.append(DIAGONAL_NOTE.format(v=v))
    ops = {n.op for n in topo(problem.expr)}
    fns = {n.attr[0] for n in topo(problem.expr) if n.op == "fn"}
    out += [FUNCTIONS[f].note for f in sorted(fns) if FUNCTIONS[f].note]
    if ops & {"maximum", "minimum"}:
        out.append("maximum and minimum: at a tie the gradient is split equally between the two operands.")
    if "maxpool" in ops:
        out.append("max pooling: each window's gradient goes to its maximum; on a tie, to the first (numpy's argmax).")
    return tuple(out)


# ----- the proof -----


def _proof_sizes(problem: Problem, form: Node | None, given: Mapping[str, int] | None) -> dict[sp.Symbol, int]:
    symbols = sizing.symbols_of(problem.shapes)
    fixed = {}
    for k, v in (given or {}).items():
        match = [s for s in symbols if str(s) == str(k)]
        if not match:
            known = ", ".join(map(str, symbols)) or "none"
            raise DeriveError(f"proof size for '{k}', which is not a dimension of the expression (they are {known})")
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 1000:
            raise DeriveError(f"proof size {k}={v!r} must be a whole number from 1 to 1000")
        fixed[match[0]] = v
    roots = [problem.expr] + ([form] if form is not None else [])
    return sizing.choose(symbols, sizing.dimensions(*roots), fixed, groups=problem.shapes.values())


def _at(problem: Problem, sizes: Mapping) -> str:
    return shapes_text({n: concrete(s, sizes) for n, s in problem.shapes.items()})


def _prove(problem: Problem, names: tuple[str, ...], kind: Kind, layout: Layout | None, display: Node | None,
           sizes: Mapping, ctx: Context) -> tuple[Proof, dict]:  # fmt: skip
    """(the proof, the sizes it used): at ``sizes``, or where the expression has no value there (X^T X is
    singular when X is wide), at the same sizes in the other order, then all equal."""
    proof, used = None, dict(sizes)
    dims = sizing.dimensions(problem.expr, *([display] if display is not None else []))
    for at in [s for s in _alternatives(sizes) if sizing.fits(dims, s)]:
        proof, used = _prove_at(problem, names, kind, layout, display, at, ctx), at
        if not proof.undefined:
            break
    return proof, used


def _alternatives(sizes: Mapping) -> list[dict]:
    keys = list(sizes)
    values = [sizes[k] for k in keys]
    out = [dict(sizes), dict(zip(keys, reversed(values), strict=True)), dict.fromkeys(keys, max(values, default=2))]
    return [s for i, s in enumerate(out) if s not in out[:i]]


def _prove_at(problem: Problem, names: tuple[str, ...], kind: Kind, layout: Layout | None, display: Node | None,
              sizes: Mapping, ctx: Context) -> Proof:  # fmt: skip
    total = sum(int(np.prod(concrete(s, sizes))) for s in problem.shapes.values())
    if total > ctx.limits.entries:
        raise DeriveError(
            f"the element-wise proof would write out {total} entries; the limit is {ctx.limits.entries}"
            f" ({ctx.limits.how_to_raise('entries')}), or prove at smaller sizes"
        )
    ents = entries(problem.shapes, sizes, problem.structure)
    if display is None:
        return Proof("no matrix form", "no rule applies; the element-wise derivative is the answer", dict(ents.shapes),
                     0, 0.0)  # fmt: skip
    first = concrete(problem.shapes[names[0]], sizes)
    last = concrete(problem.shapes[names[-1]], sizes)
    out = first if kind is Kind.HESSIAN else concrete(problem.expr.shape, sizes)
    # the element-wise side writes the expression out with its fused parts (||r||^2 as r . r, log det as logdet):
    # each fused op's entries are its plain definition, and a square root is not taken only to be squared
    sides = Sides(normalize(problem.expr), display, names, problem.shapes, sizes, problem.structure,
                  lambda m: as_tensor(m, kind, layout, out, last))  # fmt: skip
    proof = prove(sides, ents, ctx.budget.part(PROOF_SHARE))  # the rest is for the numeric check
    for v, kind in problem.structure.items():
        how = ("with s_ij = s_ji (one symbol per pair; a partial by an off-diagonal s_ij is halved for the gradient)"
               if kind == "symmetric" else "with zeros off the diagonal")  # fmt: skip
        proof = replace(proof, method=f"{proof.method}; {v} written out {how}")
    nodes = topo(problem.expr)
    regions = {n.op for n in nodes} & {"maxpool", "maximum", "minimum"} or any(
        n.op == "fn" and n.attr[0] in ("relu", "abs") for n in nodes
    )
    if proof.status == "proven" and regions:
        proof = replace(proof, method=proof.method + "; max pooling, relu, abs and maximum hold on each region where"
                        " every window's maximum and every sign is fixed: those choices are symbols in the proof,"
                        " so it covers every region at once")  # fmt: skip
    return proof


# ----- the numeric side -----


def _numeric(d: Derivation, budget: Budget | None = None) -> NumericCheck:
    """The generated derivative against central differences, at the declared sizes or near them,
    within what is left of ``budget`` (else a check that says it did not run)."""
    try:
        check = _numeric_check(d, budget)
    except OutOfTime:
        shapes = {n: concrete(s, d.sizes) for n, s in d.shapes.items()}
        why = f"the time budget ({seconds_text(budget.seconds)} s) ran out"
        return NumericCheck(float("nan"), 0, shapes, 0, reason=why)
    if check.failed and d.proof.undefined:  # det(x x^T) is 0 everywhere; in floating point, rounding noise
        why = (f"inconclusive: central differences disagree (largest relative error {check.error:.1e}), but the proof"
               " found the expression undefined at every random point (a zero denominator or a singular matrix"
               " everywhere), so its values in floating point may be rounding noise")  # fmt: skip
        return replace(check, error=float("nan"), reason=why)
    return check


def _numeric_check(d: Derivation, budget: Budget | None) -> NumericCheck:
    try:
        mod = load(d.numpy_source("f", budget=budget))
        grad = load(module(replace(d.spec(), form=d.first, kind=Kind.GRADIENT, wrt=d.wrt[:1]), "g", budget)).grad_g \
            if d.kind is Kind.HESSIAN else None  # fmt: skip
    except PrintError as e:
        raise DeriveError(f"cannot generate numpy code for this derivative: {e}") from None
    symbols = sizing.symbols_of(d.shapes)
    dims = sizing.dimensions(d.problem.expr)
    out_shape = d.problem.expr.shape if d.kind is not Kind.HESSIAN else d.shapes[d.wrt[0]]

    def ok(sizes: Mapping) -> bool:
        shapes = {n: concrete(s, sizes) for n, s in d.shapes.items()}
        return fits(shapes, concrete(out_shape, sizes), d.wrt[-1:])

    sizes, declared = sizing.near(symbols, dims, d.problem.sizes, d.sizes, ok)
    shapes = {n: concrete(s, sizes) for n, s in d.shapes.items()}
    names = list(d.shapes)
    f, df = (grad, mod.hess_f) if d.kind is Kind.HESSIAN else (mod.f, getattr(mod, f"{d.kind.code}_f"))
    return numeric_check(f, df, names, d.wrt[-1], shapes, d.structure, declared, budget=budget)
