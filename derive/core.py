"""The pipeline: parse, matrix form by rule, element-wise form, proof, numeric check.

>>> d = derive("norm(A @ x - b)**2", "x")
>>> print(d.text)
2 Aᵀ(A x - b)
>>> d.proof.status
'proven'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import ModuleType

import numpy as np
import sympy as sp

from . import explicit, ir
from .codegen import KIND_NAMES, Spec, module, shape_text
from .errors import DeriveError
from .functions import expand_primes
from .gradcheck import check_grad
from .ir import Node, Shape, node
from .parse import Problem, parse
from .printing import LatexPrinter, PrintError, TextPrinter
from .progress import stage
from .prove import Proof, prove, shapes_text
from .rules import NoRule, gradient, jacobian, normalize
from .simplify import simplify, zeros

LAYOUTS = ("numerator", "denominator")
NUMERIC_TOLERANCE = 1e-6

VEC_CONVENTION = "vec stacks columns (column-major), so vec(A dX B) = (Bᵀ ⊗ A) vec(dX)."


@dataclass(frozen=True)
class NumericCheck:
    """The generated derivative against central differences of the generated value."""

    error: float  # nan when no sample point had a finite value and derivative
    directions: int
    shapes: dict[str, tuple[int, ...]]  # each variable's shape in the check
    seed: int

    @property
    def ran(self) -> bool:
        return not np.isnan(self.error)

    @property
    def ok(self) -> bool:
        return self.ran and self.error < NUMERIC_TOLERANCE

    @property
    def failed(self) -> bool:
        return self.ran and not self.ok

    def __str__(self) -> str:
        at = shapes_text(self.shapes)
        if not self.ran:
            return f"not run: no sample point ({at}) where the value and derivative are finite"
        return (
            f"central differences along {self.directions} random directions (seed {self.seed}, {at}): "
            f"largest relative error {self.error:.1e}"
        )


@dataclass(frozen=True)
class Derivation:
    """A derivative in matrix form, with its proof.

    ``form`` is the canonical matrix form (a gradient in the variable's
    shape; a Jacobian in numerator layout, vec form); ``display`` is the
    same in the requested ``layout``. Both are None when no rule applies,
    and then ``elementwise`` is the answer. ``elementwise`` has shape
    value shape + variable shape(s), at the proof's sizes.
    """

    problem: Problem
    wrt: tuple[str, ...]
    kind: str
    layout: str
    form: Node | None
    display: Node | None
    evidence: explicit.Evidence
    proof: Proof
    numeric: NumericCheck | None
    convention: str
    note: str = ""
    sizes: dict[sp.Symbol, int] = field(default_factory=dict, repr=False)

    @property
    def expr(self) -> str:
        return self.problem.source

    @cached_property
    def elementwise(self) -> np.ndarray:
        """Every partial derivative at the proof's sizes (SymPy expressions), shape value + variable(s)."""
        return self.evidence.sympy()

    @property
    def shapes(self) -> dict[str, Shape]:
        return self.problem.shapes

    @property
    def text(self) -> str:
        """The matrix form in plain text, or a plain statement that there is none."""
        if self.display is None:
            return f"no matrix form: {self.note}"
        return self._show(TextPrinter())

    def latex_form(self, transpose: str = "top") -> str:
        """The matrix form in LaTeX (``transpose``: ``"top"`` or ``"T"``)."""
        if self.display is None:
            raise DeriveError(f"no matrix form to print: {self.note}")
        return self._show(LatexPrinter(transpose=transpose))

    def _show(self, p: TextPrinter | LatexPrinter) -> str:
        """The displayed form; a numerator-layout derivative by a vector is a row."""
        row = self.kind == "gradient" and self.layout == "numerator" and self.display.ndim == 1
        return p.row(self.display) if row else p.doprint(self.display)

    @cached_property
    def matrix(self) -> sp.Basic | None:
        """The matrix form as a SymPy matrix expression (vectors as n x 1)."""
        from .sympy_form import to_sympy

        return None if self.display is None else to_sympy(self.display)

    def numpy_source(self, name: str = "f", vec_form: bool = False) -> str:
        """An importable numpy module: value, derivative, and both (see :mod:`derive.codegen`).

        The derivative has shape value shape + variable shape (as ``jax.jacobian``);
        ``vec_form=True`` returns the Kronecker/vec matrix of the matrix form instead.
        """
        if self.form is None:
            raise DeriveError(f"no numpy code without a matrix form: {self.note}")
        spec = Spec(
            self.expr, self.problem.expr, self.form, self.kind, self.wrt, self.shapes, self.convention, vec_form
        )
        return module(spec, name)

    def __repr__(self) -> str:
        """One line: the expression (cut when long), the variable(s) and the proof's status."""
        e = self.expr if len(self.expr) <= 60 else self.expr[:57] + "..."
        wrt = self.wrt[0] if len(self.wrt) == 1 else self.wrt
        return f"Derivation({e!r}, wrt={wrt!r}, status={self.proof.status!r})"

    def __str__(self) -> str:
        by = " and ".join(self.wrt)
        lines = [f"{KIND_NAMES[self.kind]} of {self.expr} by {by}:", f"  {self.text}", f"  {self.convention}"]
        lines.append(f"  proof: {self.proof}")
        if self.numeric is not None:
            lines.append(f"  numeric: {self.numeric}")
        return "\n".join(lines)

    def _repr_latex_(self) -> str | None:
        """Rendered math in Jupyter."""
        return f"$${self.latex_form()}$$" if self.display is not None else None

    def _repr_markdown_(self) -> str:
        """The result, its convention and its proof, for Jupyter."""
        by = " and ".join(f"`{n}`" for n in self.wrt)
        head = f"**{KIND_NAMES[self.kind]} of** `{self.expr}` **by** {by}"
        body = f"$${self.latex_form()}$$" if self.display is not None else f"No matrix form: {self.note}."
        return f"{head}\n\n{body}\n\n{self.convention} Proof: {self.proof}."


# ----- the pipeline -----


def derive(
    expr: str,
    wrt: str | Sequence[str],
    shapes: Mapping[str, Sequence[int | str]] | None = None,
    layout: str | None = None,
    primes: bool = True,
    numeric: bool = True,
) -> Derivation:
    """Differentiate ``expr`` (numpy syntax) by ``wrt`` and prove the result.

    ``wrt`` is a variable name, or a pair of names for a second derivative.
    ``layout`` is None (a scalar's gradient in the variable's shape, a
    Jacobian in numerator layout), ``"numerator"`` or ``"denominator"``.
    ``primes`` writes sigma' and tanh' (else sigma (1 - sigma), 1 - tanh^2).
    Raises :class:`DeriveError` for bad input; never returns an unproven
    result without saying so in ``proof.status``.
    """
    problem = parse(expr, shapes)
    names = _wrt(wrt, problem)
    explicit.reset_masks()
    if layout is not None and layout not in LAYOUTS:
        raise DeriveError(f"unknown layout {layout!r}; use 'numerator' or 'denominator'")
    kind = _kind(problem, names)
    note = ""
    try:
        with stage("finding the matrix form"):
            form = matrix_form(problem, names, kind, primes)
    except NoRule as e:
        form, note = None, f"{e}; the derivative is given element-wise"
    display = None if form is None else arrange(form, kind, layout, problem.shapes[names[0]])
    sizes = explicit.choose_sizes(problem.shapes)
    env = explicit.environment(problem.shapes, sizes)
    at = shapes_text({n: explicit.concrete(s, sizes) for n, s in problem.shapes.items()})
    with stage(f"taking every partial derivative at {at}"):
        evidence = explicit.evidence(problem.expr, env, sizes, names)
    with stage(f"proving the matrix form entry by entry at {at}"):
        proof = _prove(display, evidence, kind, layout, problem, names, sizes, env)
    d = Derivation(
        problem=problem,
        wrt=names,
        kind=kind,
        layout=_layout_name(kind, layout),
        form=form,
        display=display,
        evidence=evidence,
        proof=proof,
        numeric=None,
        convention=convention(kind, layout, problem, names),
        note=note,
        sizes=sizes,
    )
    if numeric and form is not None:
        with stage("checking the generated code against central differences"):
            d = _replace(d, numeric=numeric_check(d))
    return d


def _replace(d: Derivation | Proof, **changes: object) -> Derivation | Proof:
    return replace(d, **changes)


def _wrt(wrt: str | Sequence[str], problem: Problem) -> tuple[str, ...]:
    names = (wrt,) if isinstance(wrt, str) else tuple(wrt)
    if not 1 <= len(names) <= 2 or not all(isinstance(n, str) for n in names):
        raise DeriveError("wrt must be a variable name or a pair of names (a second derivative)")
    for n in names:
        if n not in problem.shapes:
            known = ", ".join(problem.shapes)
            raise DeriveError(f"variable '{n}' is not in the expression (its variables are {known})")
    return names


def _kind(problem: Problem, names: tuple[str, ...]) -> str:
    scalar = problem.expr.shape == ()
    if len(names) == 2:
        if not scalar:
            raise DeriveError("second derivatives are for scalar expressions; this one has shape "
                              + shape_text(problem.expr.shape))  # fmt: skip
        return "hessian"
    return "gradient" if scalar else "jacobian"


def matrix_form(problem: Problem, names: tuple[str, ...], kind: str, primes: bool = True) -> Node:
    """The derivative by rule: reverse mode for a scalar, then forward (vec) mode."""
    e = normalize(problem.expr)
    first = names[0]
    if kind == "jacobian":
        out = jacobian(e, first, problem.shapes[first])
        out = out if out is not None else zeros((e.size, _size(problem.shapes[first])))
    else:
        g = gradient(e, first)
        out = simplify(g) if g is not None else zeros(problem.shapes[first])
        if kind == "hessian":
            h = jacobian(out, names[1], problem.shapes[names[1]])
            out = h if h is not None else zeros((_size(problem.shapes[first]), _size(problem.shapes[names[1]])))
    out = simplify(out)
    if not primes:
        out = simplify(_expand_primes(out))
    return out


def _size(shape: Shape) -> sp.Expr:
    return sp.Mul(*shape) if shape else sp.Integer(1)


def _expand_primes(e: Node) -> Node:
    memo: dict[Node, Node] = {}

    def go(n: Node) -> Node:
        if n not in memo:
            args = tuple(go(a) for a in n.args)
            m = node(n.op, *args, attr=n.attr) if args != n.args else n
            memo[n] = expand_primes(*m.attr, m.args[0]) if m.op == "fn" and m.attr[1] > 0 else m
        return memo[n]

    return go(e)


def arrange(form: Node, kind: str, layout: str | None, var_shape: Shape) -> Node:
    """The canonical form in the requested layout (a transpose, simplified)."""
    transpose = (kind == "gradient" and layout == "numerator" and len(var_shape) == 2) or (
        kind != "gradient" and layout == "denominator"
    )
    return simplify(node("T", form)) if transpose else form


def _layout_name(kind: str, layout: str | None) -> str:
    if layout is None:
        return "gradient" if kind == "gradient" else "numerator"
    return layout


def convention(kind: str, layout: str | None, problem: Problem, names: tuple[str, ...]) -> str:
    """One sentence stating the layout, and the vec convention where it matters."""
    v, shapes = names[0], problem.shapes
    if kind == "gradient":
        if layout == "numerator":
            t = shape_text(tuple(reversed(shapes[v])))
            return f"Numerator layout: the transpose of the gradient, shape {t}."
        return f"Gradient: the shape of {v}, {shape_text(shapes[v])} (denominator layout)."
    rows = "variable" if layout == "denominator" else "output"
    text = f"{(layout or 'numerator').capitalize()} layout: one row per entry of the {rows}"
    value = shapes[v] if kind == "hessian" else problem.expr.shape
    if len(value) > 1 or any(len(shapes[n]) > 1 for n in names):
        return f"{text}; {VEC_CONVENTION}"
    return text + "."


# ----- the element-wise side and the proof -----


def as_tensor(m: object, kind: str, layout: str | None, out: tuple[int, ...], var: tuple[int, ...]) -> np.ndarray:
    """The displayed form, written out, rearranged to shape ``out + var``."""
    m = np.asarray(m, dtype=object)
    if kind == "gradient":
        return m.T if layout == "numerator" and m.ndim == 2 else m
    if layout == "denominator":
        m = m.T
    return m.reshape(out + var, order="F")


def _prove(
    display: Node | None,
    evidence: explicit.Evidence,
    kind: str,
    layout: str | None,
    problem: Problem,
    names: tuple[str, ...],
    sizes: explicit.Sizes,
    env: explicit.Env,
) -> Proof:
    shown = {n: explicit.concrete(s, sizes) for n, s in problem.shapes.items()}
    if display is None:
        return Proof("no matrix form", "no rule applies; the element-wise derivative is the answer", shown,
                     int(evidence.values.size), 0.0)  # fmt: skip
    got = explicit.evaluate(display, env, sizes)
    first = explicit.concrete(problem.shapes[names[0]], sizes)
    last = explicit.concrete(problem.shapes[names[-1]], sizes)
    out = first if kind == "hessian" else explicit.concrete(problem.expr.shape, sizes)
    got = as_tensor(got, kind, layout, out, last)
    proof = prove(evidence, got, shown, "the matrix form")
    ops = {n.op for n in ir.topo(problem.expr)} | {n.attr[0] for n in ir.topo(problem.expr) if n.op == "fn"}
    if ops & {"maxpool", "relu"}:
        region = (
            "; max pooling and relu hold on each region where every window's maximum (and every sign) is fixed:"
            " those choices are symbols in the proof, so it covers every region at once"
        )
        proof = _replace(proof, method=proof.method + region)
    return proof


# ----- the numeric side -----


SAMPLES: tuple[tuple[float, float] | None, ...] = (None, (0.5, 1.5), (1.5, 3.0), (-1.5, -0.5))


def sample(
    shapes: Mapping[str, Shape], sizes: explicit.Sizes, seed: int, spread: tuple[float, float] | None
) -> dict[str, np.ndarray]:
    """Random inputs, standard normal or uniform in ``spread``; square matrices get a diagonal shift."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes.items():
        s = explicit.concrete(shape, sizes)
        a = rng.uniform(*spread, s) if spread else rng.standard_normal(s)
        if len(s) == 2 and s[0] == s[1]:
            a = a + s[0] * np.eye(s[0])
        out[name] = a
    return out


def load(source: str, name: str = "derive_generated") -> ModuleType:
    """Import generated source (derive's own output, never user text) as a module."""
    mod = ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), mod.__dict__)
    return mod


def numeric_check(d: Derivation, seed: int = 0, directions: int = 3) -> NumericCheck:
    """The generated derivative against central differences, at sizes one larger than the proof's."""
    try:
        mod = load(d.numpy_source("f"))
    except PrintError as e:
        raise DeriveError(f"cannot generate numpy code for this derivative: {e}") from None
    sizes = {k: v + 1 for k, v in d.sizes.items()}
    kind = {"gradient": "grad", "jacobian": "jac", "hessian": "hess"}[d.kind]
    names = list(d.shapes)
    error = np.nan
    for spread in SAMPLES:  # normal first; then positive ranges, for log, sqrt and log(log)
        args = sample(d.shapes, sizes, seed, spread)
        vals = [args[n] for n in names]
        with np.errstate(all="ignore"):
            try:
                if not np.all(np.isfinite(mod.f(*vals))):
                    continue
                if d.kind == "hessian":
                    f, df, wrt = _grad_fn(d, mod), mod.hess_f, names.index(d.wrt[1])
                else:
                    f, df, wrt = mod.f, getattr(mod, f"{kind}_f"), names.index(d.wrt[0])
                if not np.all(np.isfinite(df(*vals))):
                    continue
                error = check_grad(f, df, vals, wrt=wrt, directions=directions, seed=seed)
            except np.linalg.LinAlgError:  # a singular matrix at this sample point: like a non-finite value
                continue
        if np.isfinite(error):
            break
    shapes = {n: explicit.concrete(s, sizes) for n, s in d.shapes.items()}
    return NumericCheck(float(error), directions, shapes, seed)


def _grad_fn(d: Derivation, mod: ModuleType) -> object:
    """The first derivative, for checking a Hessian: generated and checked on its own."""
    first = derive(d.expr, d.wrt[0], _declared(d), numeric=False)
    return load(first.numpy_source("f")).grad_f


def _declared(d: Derivation) -> dict[str, tuple]:
    return {n: tuple(int(x) if x.is_Integer else str(x) for x in s) for n, s in d.shapes.items()}
