"""Kinds of derivative and layouts, in one place.

A scalar's gradient has the variable's shape (denominator layout);
``numerator`` gives its transpose. A Jacobian is in numerator layout (one
row per entry of the output, vec form for matrices); ``denominator``
transposes it. Hessians are Jacobians of the gradient.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from .errors import DeriveError
from .ir import Node, Shape
from .ops.build import node

VEC_CONVENTION = "vec stacks columns (column-major), so vec(A dX B) = (Bᵀ ⊗ A) vec(dX)."


class Kind(StrEnum):
    GRADIENT = "gradient"
    JACOBIAN = "jacobian"
    HESSIAN = "hessian"

    @property
    def title(self) -> str:
        return {"gradient": "gradient", "jacobian": "Jacobian", "hessian": "Hessian"}[self.value]

    @property
    def code(self) -> str:
        """The generated function's prefix: grad_f, jac_f, hess_f."""
        return {"gradient": "grad", "jacobian": "jac", "hessian": "hess"}[self.value]


class Layout(StrEnum):
    NUMERATOR = "numerator"
    DENOMINATOR = "denominator"


def layout_of(text: str | None) -> Layout | None:
    if text is None:
        return None
    try:
        return Layout(text)
    except ValueError:
        raise DeriveError(f"unknown layout {text!r}; use 'numerator' or 'denominator'") from None


def kind_of(value_shape: Shape, names: tuple[str, ...]) -> Kind:
    scalar = value_shape == ()
    if len(names) == 2:
        if not scalar:
            shown = "(" + ", ".join(map(str, value_shape)) + ("," if len(value_shape) == 1 else "") + ")"
            raise DeriveError(f"second derivatives are for scalar expressions; this one has shape {shown}")
        return Kind.HESSIAN
    return Kind.GRADIENT if scalar else Kind.JACOBIAN


def transposed(kind: Kind, layout: Layout | None, var_shape: Shape) -> bool:
    """Whether the requested layout is the transpose of the canonical form."""
    if kind is Kind.GRADIENT:
        return layout is Layout.NUMERATOR and len(var_shape) == 2
    return layout is Layout.DENOMINATOR


def arrange(form: Node, kind: Kind, layout: Layout | None, var_shape: Shape) -> Node:
    """The canonical form in the requested layout (a transpose, simplified)."""
    from .simplify import simplify

    return simplify(node("T", form)) if transposed(kind, layout, var_shape) and form.ndim == 2 else form


def layout_name(kind: Kind, layout: Layout | None) -> str:
    if layout is None:
        return "gradient" if kind is Kind.GRADIENT else "numerator"
    return layout.value


def convention(kind: Kind, layout: Layout | None, value_shape: Shape, shapes: dict[str, Shape],
               names: tuple[str, ...]) -> str:  # fmt: skip
    """One sentence stating the layout, and the vec convention where it matters."""
    v = names[0]
    if kind is Kind.GRADIENT:
        if layout is Layout.NUMERATOR:
            return f"Numerator layout: the transpose of the gradient, shape {shape_text(tuple(reversed(shapes[v])))}."
        return f"Gradient: the shape of {v}, {shape_text(shapes[v])} (denominator layout)."
    rows = "variable" if layout is Layout.DENOMINATOR else "output"
    text = f"{(layout or Layout.NUMERATOR).value.capitalize()} layout: one row per entry of the {rows}"
    value = shapes[v] if kind is Kind.HESSIAN else value_shape
    if len(value) > 1 or any(len(shapes[n]) > 1 for n in names):
        return f"{text}; {VEC_CONVENTION}"
    return text + "."


def shape_text(shape: Shape) -> str:
    inner = ", ".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def as_tensor(m: np.ndarray, kind: Kind, layout: Layout | None, out: tuple[int, ...],
              var: tuple[int, ...]) -> np.ndarray:  # fmt: skip
    """The displayed form, written out, rearranged to shape ``out + var`` (the element-wise layout)."""
    m = np.asarray(m, dtype=object)
    if kind is Kind.GRADIENT:
        return m.T if layout is Layout.NUMERATOR and m.ndim == 2 else m
    if layout is Layout.DENOMINATOR:
        m = m.T
    return m.reshape(out + var, order="F")
