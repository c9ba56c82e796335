"""numpy modules: a value function, a derivative function and both at once.

Derivative arrays follow ``jax.jacobian``: shape = the value's shape + the
variable's shape (a gradient has the variable's shape, a Hessian by an
n-vector is n x n). A vec-form Jacobian is computed as the Kronecker/vec
matrix and reshaped (column-major) to that convention. Arguments are numpy
arrays; vector arguments may be 1-D or columns of shape (n, 1), and a
column's gradient is a column. Subexpressions used more than once are
computed once; no statement goes unused; an element-wise step writes into
the new array it consumes (:mod:`derive.inplace`). No size is written into
the code: every dimension is read from an argument's shape.
"""

from __future__ import annotations

import ast
import inspect
from collections import Counter
from dataclasses import dataclass

import sympy as sp

from . import inplace, numpy_helpers
from .context import Budget
from .ir import Node, Shape, fold, topo
from .layout import Kind, shape_text
from .ops import OPS
from .ops.build import node
from .printing import NumpyPrinter, TextPrinter, topo_all
from .render import GENERATED_MARK, render

_CHEAP = frozenset({"var", "const", "eye", "ones", "size"})


@dataclass(frozen=True)
class Spec:
    """What a module computes: ``value`` (the expression, fused) and ``form`` (its derivative by ``wrt``)."""

    expr: str
    value: Node
    form: Node
    kind: Kind
    wrt: tuple[str, ...]
    shapes: dict[str, Shape]
    convention: str
    vec_form: bool = False  # return the Kronecker/vec matrix itself, not the jax-layout array
    notes: tuple[str, ...] = ()  # conventions to state in the docstring (symmetric gradients, subgradients)
    declared: str = ""  # the sizes it was derived for, if the user gave any


def shared(roots: list[Node]) -> list[Node]:
    """Subexpressions used more than once across ``roots``, inner ones first."""
    uses = inplace.uses(roots)
    order: list[Node] = []
    taken: set[Node] = set()
    for r in roots:
        for n in topo(r):
            if n not in taken and uses[n] > 1 and n.op not in _CHEAP and not _cheap_transpose(n):
                order.append(n)
                taken.add(n)
    return order


def _cheap_transpose(n: Node) -> bool:
    return n.op == "T" and n.args[0].op == "var"


def carriers(shapes: dict[str, Shape]) -> dict[sp.Expr, str]:
    """Each dimension symbol's code: the shape of the first argument that has it."""
    dims: dict[sp.Expr, str] = {}
    for name, shape in shapes.items():
        for i, d in enumerate(shape):
            if isinstance(d, sp.Symbol):
                dims.setdefault(d, f"{name}.shape[{i}]")
    return dims


def _body(
    roots: list[Node], spec: Spec, helpers: list[str], budget: Budget | None = None
) -> tuple[list[str], set[str]]:
    """Lines computing ``roots`` (1-D float vectors as they are) and returning them, and the arguments those
    lines need as float arrays (they update in place an array first computed from them).

    A subexpression used more than once is computed once, as ``t1 = ...``, if the printed code reads
    it more than once: a part that prints away (diag(y) as ``y[:, None] * M``) leaves no statement, and
    one read once is written where it is read. Every statement's name is read.
    """
    roots = lowered(roots, budget)
    temps = shared(roots)
    while True:
        p, names, lines, *_ = _printed(roots, temps, spec, budget)
        reads = Counter(reads_of(lines))
        kept = [t for t in temps if reads[names[t]] > 1]
        if len(kept) == len(temps):
            break
        temps = kept
    refused: set[Node] = set()
    while True:  # a step whose result the code never reads by its name (its parent prints through it) is undone
        p, names, lines, floats, unread = _printed(roots, temps, spec, budget, refused)
        if not unread:
            break
        refused |= unread
    for h in p.helpers:
        if h not in helpers:
            helpers.append(h)
    return lines, floats


def lowered(roots: list[Node], budget: Budget | None = None) -> list[Node]:
    """``roots`` as generated code computes them. Each op's ``lower`` piece applies everywhere (a product
    multiplied out over a diagonal); its ``share`` piece (conv2d by X's window matrix, max pooling by its
    argmax) where a part it introduces is shared (X ⋆ K and X ⋆ G by one window matrix; the pool and its
    gradient by one argmax); elsewhere such an op prints as itself. Past ``budget``, OutOfTime is raised."""

    def lower(n: Node, args: tuple[Node, ...]) -> Node:
        if budget is not None:
            budget.tick(1)  # one node can take milliseconds (a product multiplied out)
        return _lower(n, args)

    roots = [fold(r, lower) for r in roots]
    order: list[Node] = []
    full: dict[Node, Node] = {}  # each node with every op's share piece applied
    parts: dict[Node, set[Node]] = {}  # the parts that introduces (windows(X), an argmax)
    for r in roots:
        for n in topo(r):
            if n in full:
                continue
            if budget is not None:
                budget.tick()
            order.append(n)
            args = tuple(full[a] for a in n.args)
            out = n if args == n.args else node(n.op, *args, attr=n.attr)
            share = OPS[n.op].share
            full[n] = share(out) if share is not None else out
            parts[n] = set(full[n].args) - set(out.args)
    uses = Counter(part for n in order for part in parts[n])
    kept: dict[Node, Node] = {}
    for n in order:
        args = tuple(kept[a] for a in n.args)
        out = n if args == n.args else node(n.op, *args, attr=n.attr)
        kept[n] = OPS[n.op].share(out) if any(uses[part] > 1 for part in parts[n]) else out
    return [kept[r] for r in roots]


def _lower(n: Node, args: tuple[Node, ...]) -> Node:
    out = n if args == n.args else node(n.op, *args, attr=n.attr)
    low = OPS[out.op].lower
    return low(out) if low is not None else out


def _printed(
    roots: list[Node], temps: list[Node], spec: Spec, budget: Budget | None = None, refused: set[Node] | None = None
):
    """(printer, temp names, lines, float arguments, unread steps): ``temps`` (inner ones first) as ``tK = ...``
    statements, then the return. Unless ``refused`` is None, element-wise steps (but those in ``refused``) are
    written into the array they consume (see :mod:`derive.inplace`); a step's operand then has no name, as
    its buffer holds the step's result. ``budget`` is checked per statement (OutOfTime past it)."""
    taken = set(spec.shapes)
    names: dict[Node, str] = {}
    lines: list[str] = []
    p = NumpyPrinter(carriers(spec.shapes), names, spec.shapes)
    k = 1

    def fresh_name(take: bool = True) -> str:
        """The next unused ``tK``; taken only if ``take``."""
        nonlocal k
        while f"t{k}" in taken:
            k += 1
        name = f"t{k}"
        k += take
        return name

    named = set(temps)
    order = topo_all(roots)
    steps = {} if refused is None else inplace.plan(order, inplace.uses(roots), named)
    steps = {n: step for n, step in steps.items() if n not in (refused or ())}
    ends: dict[str, tuple[int, Node]] = {}  # each buffer: the line after its last step, and that step
    owned: set[Node] = set()  # nodes whose name is a buffer only the next step reads
    floats: set[str] = set()  # the arguments that must be float arrays (a buffer's first value reads them)
    for n in order:
        if n not in steps and n not in named:
            continue
        if budget is not None:
            budget.check()
        a, negated = steps.get(n, (None, False))
        update = None
        if a is not None and (a in owned or inplace.fresh(text := p.doprint(a))):
            buf = names[a] if a in owned else fresh_name(take=False)
            update = inplace.steps(p, n, a, buf, negated)
        if update is not None:
            if a not in owned:
                if not inplace.floating(a, floats):
                    floats |= inplace.arrays(a)
                lines.append(f"{fresh_name()} = {text}")
                p.name(a, buf)
            lines += update
            names[n] = buf
            p.names.pop(a)  # the buffer holds n now: a printed again is computed again
            p.name(n, buf)
            owned.add(n)
            ends[buf] = (len(lines), n)
        elif n in named:
            names[n] = fresh_name()
            lines.append(f"{names[n]} = {p.doprint(n)}")
            p.name(n, names[n])
    lines.append("return " + ", ".join(p.doprint(r) for r in roots))
    last = last_reads(lines)
    unread = {n for buf, (i, n) in ends.items() if last.get(buf, 0) <= i}
    return p, names, lines, floats, unread


def last_reads(lines: list[str]) -> dict[str, int]:
    """Each name the code reads: the number (from 1) of the last line that reads it."""
    last: dict[str, int] = {}
    for n in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            last[n.id] = max(last.get(n.id, 0), n.lineno)
    return last


def reads_of(lines: list[str]) -> list[str]:
    """Every name the code reads, once per read."""
    tree = ast.parse("\n".join(lines))  # a return outside a function parses
    return [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]


def derivative(spec: Spec) -> Node:
    """The derivative as code computes it: the jax.jacobian layout, unless ``vec_form``."""
    if spec.kind is Kind.GRADIENT or spec.vec_form:
        return spec.form
    out = spec.shapes[spec.wrt[0]] if spec.kind is Kind.HESSIAN else spec.value.shape
    tail = spec.shapes[spec.wrt[-1]]
    if len(out) == 1 and len(tail) == 1:
        return spec.form  # already (outputs x inputs)
    return node("unvec", spec.form, attr=(tuple(out), tuple(tail)))


def helper_sources(names: list[str]) -> tuple[list[str], list[str]]:
    """The source of each helper and of the helpers it calls, in the module's order; their imports."""
    wanted: list[str] = []
    stack = list(names)
    defined = {n for n, _ in inspect.getmembers(numpy_helpers, inspect.isfunction) if n.startswith("_")}
    while stack:
        h = stack.pop()
        if h in wanted:
            continue
        wanted.append(h)
        src = inspect.getsource(getattr(numpy_helpers, h))
        stack.extend(n.id for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Name) and n.id in defined)
    order = [n for n, _ in inspect.getmembers(numpy_helpers, inspect.isfunction) if n in wanted]
    order.sort(key=lambda n: inspect.getsourcelines(getattr(numpy_helpers, n))[1])
    sources = [inspect.getsource(getattr(numpy_helpers, h)).rstrip() for h in order]
    imports = sorted({line for name, line in numpy_helpers.IMPORTS for s in sources if name in s})
    return sources, imports


def module(spec: Spec, name: str = "f", budget: Budget | None = None) -> str:
    """The complete, importable source of the numpy module for ``spec``; past ``budget`` (CPU time),
    :class:`~derive.context.OutOfTime` is raised."""
    from .calculus import normalize

    params = ", ".join(spec.shapes)
    value = normalize(spec.value)  # the stable, fused forms: log(sigmoid(z)) -> -softplus(-z)
    helpers: list[str] = []
    deriv_name = f"{spec.kind.code}_{name}"
    both_name = f"{name}_and_{spec.kind.code}"
    formula = TextPrinter().doprint(spec.form)
    shapes = ", ".join(f"{n} {shape_text(tuple(pretty_dim(d) for d in s))}" for n, s in spec.shapes.items())
    by = " and ".join(spec.wrt)
    layout = "the Kronecker/vec matrix, numerator layout" if spec.vec_form else "value shape + variable shape"
    if spec.vec_form and spec.kind is not Kind.GRADIENT:
        layout += "; " + spec.convention.split("; ", 1)[-1].rstrip(".")
    note = "".join(f"\n    {line}" for n in spec.notes for line in _wrap(n)) + "\n    " if spec.notes else ""
    column = spec.kind is Kind.GRADIENT and len(spec.shapes[spec.wrt[0]]) == 1  # a column's gradient is a column
    bodies = {
        name: (_body([value], spec, helpers, budget), (False,)),
        deriv_name: (_body([derivative(spec)], spec, helpers, budget), (column,)),
        both_name: (_body([value, derivative(spec)], spec, helpers, budget), (False, column)),
    }
    docs = {
        name: f"{spec.expr}\n\n    Shapes: {shapes}. Returns shape {shape_text(spec.value.shape)}.\n    ",
        deriv_name: f"The {spec.kind.title} of {name} by {by}: {formula}\n\n"
        f"    Shapes: {shapes}. Returns shape {_result_shape(spec)} ({layout}).\n    {note}",
        both_name: f"({name}, {deriv_name}) together, sharing the work.\n    ",
    }
    fns = [
        {"name": fn, "params": params, "doc": docs[fn], "body": _columns(fn, spec, body, floats, shaped)}
        for fn, ((body, floats), shaped) in bodies.items()
    ]
    sources, imports = helper_sources(helpers)
    return render(
        "module.py.j2",
        title=f"The {spec.kind.title} of {spec.expr} by {by}.",
        mark=GENERATED_MARK,
        expr=spec.expr,
        shapes=shapes + (f" (any sizes; derived for {spec.declared})" if spec.declared else ""),
        convention=spec.convention,
        names=", ".join(f'"{f["name"]}"' for f in fns),
        helpers=sources,
        imports=imports,
        functions=fns,
    )


def _columns(fn: str, spec: Spec, body: list[str], floats: set[str], shaped: tuple[bool, ...]) -> list[str]:
    """``body`` (for 1-D vectors and the arguments in ``floats`` as float arrays) behind a test for each:
    called with columns (n, 1), the function calls itself with them raveled (a result marked in ``shaped``
    takes the variable's shape back); called with integer or boolean arrays where ``body`` needs floats,
    with those converted. The usual case costs one attribute test per argument tested."""
    v = spec.wrt[0]
    read = set(reads_of(body))
    vectors = [n for n, s in spec.shapes.items() if len(s) == 1 and (n in read or (n == v and any(shaped)))]
    lines = list(body)
    floats = [n for n in spec.shapes if n in floats]
    if floats:
        test = " or ".join(f'{n}.dtype.kind in "biu"' for n in floats)
        call = f"{fn}({', '.join(f'np.asarray({n}, float)' if n in floats else n for n in spec.shapes)})"
        lines = [f"if {test}:  # integers: the code below works in float arrays", f"    return {call}", *lines]
    if not vectors:
        return lines
    test = "if " + " or ".join(f"{n}.ndim != 1" for n in vectors) + ":  # columns (n, 1)"
    call = f"{fn}({', '.join(f'np.ravel({n})' if n in vectors else n for n in spec.shapes)})"
    if not any(shaped):
        return [test, f"    return {call}", *lines]
    if len(shaped) == 1:
        return [test, f"    return np.reshape({call}, {v}.shape)", *lines]
    outs = [_fresh(base, set(spec.shapes)) for base in ("value", "grad")]
    back = ", ".join(f"np.reshape({o}, {v}.shape)" if s else o for o, s in zip(outs, shaped, strict=True))
    return [test, f"    {', '.join(outs)} = {call}", f"    return {back}", *lines]


def _fresh(base: str, taken: set[str]) -> str:
    while base in taken:
        base += "_"
    return base


def pretty_dim(d: sp.Expr) -> sp.Expr:
    """A dimension as a person writes it: n (k - p + 1)/2, not n (k/2 - p/2 + 1/2)."""
    d = sp.S(d)
    if d.is_Mul:
        return sp.Mul(*[sp.together(f) for f in d.args], evaluate=False)
    return sp.together(d)


def _wrap(text: str, width: int = 100) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)


def _result_shape(spec: Spec) -> str:
    if spec.vec_form and spec.kind is not Kind.GRADIENT:
        return shape_text(spec.form.shape)
    if spec.kind is Kind.GRADIENT:
        return shape_text(spec.shapes[spec.wrt[0]])
    out = spec.shapes[spec.wrt[0]] if spec.kind is Kind.HESSIAN else spec.value.shape
    return shape_text(out + spec.shapes[spec.wrt[-1]])
