"""numpy modules: a value function, a derivative function and both at once.

Derivative arrays follow ``jax.jacobian``: shape = the value's shape + the
variable's shape (a gradient has the variable's shape, a Hessian by an
n-vector is n x n). A vec-form Jacobian is computed as the Kronecker/vec
matrix and reshaped (column-major) to that convention. Vector arguments
may be 1-D or columns of shape (n, 1); a column's gradient is a column.
Subexpressions used more than once are computed once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import sympy as sp

from .ir import Node, Shape, node, topo
from .printing import HELPER_IMPORTS, NUMPY_HELPERS, NumpyPrinter, TextPrinter
from .render import GENERATED_MARK, render
from .rules import normalize

_CHEAP = {"var", "const", "eye", "ones"}
KIND_NAMES = {"gradient": "gradient", "jacobian": "Jacobian", "hessian": "Hessian"}


@dataclass(frozen=True)
class Spec:
    """What the module computes; ``form`` is None when there is no matrix form."""

    expr: str
    value: Node
    form: Node
    kind: str  # gradient, jacobian or hessian
    wrt: tuple[str, ...]
    shapes: dict[str, Shape]
    convention: str
    vec_form: bool = False  # return the Kronecker/vec matrix itself, not the jax-layout array


def shared(roots: list[Node]) -> list[Node]:
    """Subexpressions used more than once across ``roots``, inner ones first."""
    uses: Counter[Node] = Counter()
    for r in roots:
        uses[r] += 1
    seen: set[Node] = set()
    for r in roots:
        for n in topo(r):
            if n in seen:
                continue
            seen.add(n)
            for a in n.args:  # x @ x uses x twice
                uses[a] += 1
    order = []
    for r in roots:
        for n in topo(r):
            if n not in order and uses[n] > 1 and n.op not in _CHEAP and not _cheap_transpose(n):
                order.append(n)
    return order


def _cheap_transpose(n: Node) -> bool:
    return n.op == "T" and n.args[0].op == "var"


def shape_text(shape: Shape) -> str:
    inner = ", ".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _dims(shapes: dict[str, Shape]) -> dict[sp.Expr, str]:
    dims: dict[sp.Expr, str] = {}
    for name, shape in shapes.items():
        for i, d in enumerate(shape):
            if isinstance(d, sp.Symbol):
                dims.setdefault(d, f"{name}.shape[{i}]")
    return dims


def _body(roots: list[Node], spec: Spec, printer_helpers: list[str], finish: list[str]) -> list[str]:
    """Lines computing ``roots``; ``finish[i]`` formats root i (``{}`` is its text)."""
    temps = shared(roots)
    taken = set(spec.shapes)
    names: dict[Node, str] = {}
    lines: list[str] = []
    p = NumpyPrinter(_dims(spec.shapes), names)
    k = 1
    for t in temps:
        while f"t{k}" in taken:
            k += 1
        lines.append(f"t{k} = {p.doprint(t)}")
        names[t] = f"t{k}"
        p.names[t] = f"t{k}"
        k += 1
    outs = [fmt.format(p.doprint(r)) for r, fmt in zip(roots, finish, strict=True)]
    lines.append("return " + ", ".join(outs))
    for h in p.helpers:
        if h not in printer_helpers:
            printer_helpers.append(h)
    return lines


def _finish(spec: Spec) -> str:
    """How the derivative's text becomes the returned array: a column keeps its orientation."""
    v = spec.wrt[0]
    if spec.kind == "gradient" and len(spec.shapes[v]) == 1:
        return "np.reshape({}, " + f"{v}_shape)"
    return "{}"


def derivative(spec: Spec) -> Node:
    """The derivative as code computes it: the jax.jacobian layout, unless ``vec_form``."""
    if spec.kind == "gradient" or spec.vec_form:
        return spec.form
    out = spec.shapes[spec.wrt[0]] if spec.kind == "hessian" else spec.value.shape
    tail = spec.shapes[spec.wrt[-1]]
    if len(out) == 1 and len(tail) == 1:
        return spec.form  # already (outputs x inputs)
    return node("unvec", spec.form, attr=(tuple(out), tuple(tail)))


def module(spec: Spec, name: str = "f") -> str:
    """The complete, importable source of the numpy module for ``spec``."""
    params = ", ".join(spec.shapes)
    value = normalize(spec.value)  # the stable, fused forms: log(sigmoid(z)) -> -softplus(-z)
    vectors = [v for v, s in spec.shapes.items() if len(s) == 1]
    prelude = []
    if spec.kind == "gradient" and len(spec.shapes[spec.wrt[0]]) == 1:
        prelude.append(f"{spec.wrt[0]}_shape = np.shape({spec.wrt[0]})")
    prelude += [f"{v} = np.ravel({v})" for v in vectors]
    helpers: list[str] = []
    kind = {"gradient": "grad", "jacobian": "jac", "hessian": "hess"}[spec.kind]
    deriv_name = f"{kind}_{name}"
    both_name = f"{name}_and_{kind}"
    text = TextPrinter()
    formula = text.doprint(spec.form)
    shapes = ", ".join(f"{n} {shape_text(s)}" for n, s in spec.shapes.items())
    by = " and ".join(spec.wrt)
    out_shape = _result_shape(spec)
    layout = "the Kronecker/vec matrix, numerator layout" if spec.vec_form else "value shape + variable shape"
    if spec.vec_form and spec.kind != "gradient":
        layout += "; " + spec.convention.split("; ", 1)[-1].rstrip(".")
    fns = [
        {
            "name": name,
            "params": params,
            "doc": f"{spec.expr}\n\n    Shapes: {shapes}. Returns shape {shape_text(spec.value.shape)}.\n    ",
            "body": prelude[len(prelude) - len(vectors) :] + _body([value], spec, helpers, ["{}"]),
        },
        {
            "name": deriv_name,
            "params": params,
            "doc": f"The {KIND_NAMES[spec.kind]} of {name} by {by}: {formula}\n\n"
            f"    Shapes: {shapes}. Returns shape {out_shape} ({layout}).\n    ",
            "body": prelude + _body([derivative(spec)], spec, helpers, [_finish(spec)]),
        },
        {
            "name": both_name,
            "params": params,
            "doc": f"({name}, {deriv_name}) together, sharing the work.\n    ",
            "body": prelude + _body([value, derivative(spec)], spec, helpers, ["{}", _finish(spec)]),
        },
    ]
    ordered = [h for h in NUMPY_HELPERS if h in helpers]
    return render(
        "module.py.j2",
        title=f"The {KIND_NAMES[spec.kind]} of {spec.expr} by {by}.",
        mark=GENERATED_MARK,
        expr=spec.expr,
        shapes=shapes,
        convention=spec.convention,
        names=", ".join(f'"{f["name"]}"' for f in fns),
        helpers=[NUMPY_HELPERS[h] for h in ordered],
        imports=sorted({line for h in ordered for line in HELPER_IMPORTS.get(h, [])}),
        functions=fns,
    )


def _result_shape(spec: Spec) -> str:
    if spec.vec_form and spec.kind != "gradient":
        return shape_text(spec.form.shape)
    if spec.kind == "gradient":
        return shape_text(spec.shapes[spec.wrt[0]])
    out = spec.shapes[spec.wrt[0]] if spec.kind == "hessian" else spec.value.shape
    return shape_text(out + spec.shapes[spec.wrt[-1]])
