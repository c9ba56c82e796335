"""The result of a derivation: the matrix form, its proof, its numeric check, and how it prints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import sympy as sp

from .codegen import Spec, module
from .context import Budget
from .errors import DeriveError
from .explicit import sympy_jacobian
from .ir import Node, Shape
from .layout import Kind, shape_text
from .numeric import NumericCheck
from .parse import Problem
from .printing import LatexPrinter, TextPrinter, repeated_parts
from .prove import Proof

SYMMETRIC_NOTE = (
    "By a symmetric {v}: the gradient is sym(G) = (G + Gᵀ)/2, which satisfies df = tr(Gᵀ dS) for every symmetric dS;"
    " the Matrix Cookbook's G + Gᵀ - G∘I is the derivative by the n(n+1)/2 free entries, not this gradient."
)
DIAGONAL_NOTE = "By a diagonal {v}: the gradient is diag(diag(G)), the part of G on the diagonal."


@dataclass(frozen=True)
class Derivation:
    """A derivative in matrix form, with its proof and numeric check.

    ``form`` is the canonical matrix form (a gradient in the variable's shape;
    a Jacobian in numerator layout, vec form); ``display`` is the same in the
    requested ``layout``. Both are None when no rule applies, and then
    ``elementwise`` is the answer. ``elementwise`` has shape value shape +
    variable shape(s), at the proof's sizes.
    """

    problem: Problem
    wrt: tuple[str, ...]
    kind: Kind
    layout: str
    form: Node | None
    display: Node | None
    proof: Proof
    numeric: NumericCheck | None
    convention: str
    note: str = ""
    sizes: dict[sp.Symbol, int] = field(default_factory=dict, repr=False)
    first: Node | None = field(default=None, repr=False)  # a Hessian's gradient, for its numeric check
    notes: tuple[str, ...] = ()

    @property
    def expr(self) -> str:
        return self.problem.source

    @property
    def shapes(self) -> dict[str, Shape]:
        return self.problem.shapes

    @property
    def structure(self) -> dict[str, str]:
        return self.problem.structure

    @cached_property
    def elementwise(self) -> np.ndarray:
        """Every partial derivative at the proof's sizes (SymPy expressions), shape value + variable(s)."""
        return sympy_jacobian(self.problem.expr, self.shapes, self.sizes, self.wrt, self.structure)[1]

    @property
    def text(self) -> str:
        """The matrix form in plain text (repeated parts named: ..., where p = softmax(W x)),
        or a plain statement that there is none."""
        if self.display is None:
            return f"no matrix form: {self.note}"
        return self._show(TextPrinter())

    def latex_form(self, transpose: str = "top") -> str:
        """The matrix form in LaTeX (``transpose``: ``"top"`` or ``"T"``), repeated parts named."""
        if self.display is None:
            raise DeriveError(f"no matrix form to print: {self.note}")
        return self._show(LatexPrinter(transpose=transpose))

    def _show(self, p: TextPrinter | LatexPrinter) -> str:
        """The displayed form; a numerator-layout derivative by a vector is a row."""
        names = repeated_parts([self.display], set(self.shapes), p)
        shown = type(p)(names=_named(p, names), **({"transpose": p.transpose} if isinstance(p, LatexPrinter) else {}))
        row = self.kind is Kind.GRADIENT and self.layout == "numerator" and self.display.ndim == 1
        main = shown.row(self.display) if row else shown.doprint(self.display)
        if not names:
            return main
        parts = []
        for n in names:
            others = {m: t for m, t in shown.names.items() if m != n}
            inner = type(p)(names=others, **({"transpose": p.transpose} if isinstance(p, LatexPrinter) else {}))
            parts.append(f"{shown.names[n]} = {inner.doprint(n)}")
        where = ", where " if isinstance(p, TextPrinter) else r", \quad \text{where } "
        return main + where + ", ".join(parts)

    @cached_property
    def matrix(self) -> sp.Basic | None:
        """The matrix form as a SymPy matrix expression (vectors as n x 1)."""
        from .sympy_form import to_sympy

        return None if self.display is None else to_sympy(self.display)

    def spec(self, vec_form: bool = False) -> Spec:
        if self.form is None:
            raise DeriveError(f"no numpy code without a matrix form: {self.note}")
        return spec_of(self.problem, self.wrt, self.kind, self.form, self.convention, self.notes, vec_form)

    def numpy_source(self, name: str = "f", vec_form: bool = False, budget: Budget | None = None) -> str:
        """An importable numpy module: value, derivative, and both (see :mod:`derive.codegen`).

        The derivative has shape value shape + variable shape (as ``jax.jacobian``);
        ``vec_form=True`` returns the Kronecker/vec matrix of the matrix form instead. Past ``budget``
        (CPU time), :class:`~derive.context.OutOfTime` is raised.
        """
        return module(self.spec(vec_form), name, budget)

    def __str__(self) -> str:
        by = " and ".join(self.wrt)
        lines = [f"{self.kind.title} of {self.expr} by {by}:"]
        lines += [f"  note: {n}" for n in self.problem.notes]
        lines += [f"  {self.text}", f"  {self.convention}"]
        lines += [f"  {n}" for n in self.notes]
        lines.append(f"  proof: {self.proof}")
        if self.numeric is not None:
            lines.append(f"  numeric: {self.numeric}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        """One line: the expression (cut when long), the variable(s) and the proof's status."""
        e = self.expr if len(self.expr) <= 60 else self.expr[:57] + "..."
        wrt = self.wrt[0] if len(self.wrt) == 1 else self.wrt
        return f"Derivation({e!r}, wrt={wrt!r}, status={self.proof.status!r})"

    def _repr_latex_(self) -> str | None:
        """Rendered math in Jupyter."""
        return f"$${self.latex_form()}$$" if self.display is not None else None

    def _repr_markdown_(self) -> str:
        """The result, its convention and its proof, for Jupyter."""
        by = " and ".join(f"`{n}`" for n in self.wrt)
        head = f"**{self.kind.title} of** `{self.expr}` **by** {by}"
        body = f"$${self.latex_form()}$$" if self.display is not None else f"No matrix form: {self.note}."
        return f"{head}\n\n{body}\n\n{self.convention} Proof: {self.proof}."


def _named(p: TextPrinter | LatexPrinter, names: Mapping[Node, str]) -> dict[Node, str]:
    """The names as the printer writes them: bold vectors in LaTeX."""
    if isinstance(p, LatexPrinter):
        return {n: (f"\\mathbf{{{t}}}" if n.ndim == 1 else t) for n, t in names.items()}
    return dict(names)


def spec_of(problem: Problem, wrt: tuple[str, ...], kind: Kind, form: Node, conv: str, notes: tuple[str, ...],
            vec_form: bool = False) -> Spec:  # fmt: skip
    """What the code generator needs for ``form``, the derivative of ``problem`` by ``wrt``."""
    declared = ""
    if problem.sizes:
        declared = ", ".join(f"{n} {shape_text(problem.at_declared(s))}" for n, s in problem.shapes.items())
    return Spec(problem.source, problem.expr, form, kind, wrt, problem.shapes, conv, vec_form, notes, declared)
