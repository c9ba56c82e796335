"""The derivation as a person writes it up: sections of text and equations.

:func:`sections` turns a :class:`~derive.core.Derivation` into a list of
sections (a title, sentences, LaTeX equation lines), the way the article
presents its examples: the problem and its shapes, the element-wise
expansion at a small size, the partial derivatives and the assembled
Jacobian, the chain rule step by step, the matrix form in both layouts,
the update step for a scalar loss, and what was proven. The LaTeX,
fragment and Markdown templates only lay these out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from . import explicit
from .codegen import shared
from .core import KIND_NAMES, Derivation, arrange
from .ir import Node, Shape, depends, node, topo, var
from .printing import EntryLatexPrinter, LatexPrinter, latex_name
from .render import GENERATED_MARK, render
from .rules import NoRule, gradient, jacobian, normalize
from .simplify import simplify

LONG_ENTRY = 48  # characters of LaTeX beyond which a matrix lists its entries by name
LONG_EQUATION = 1200  # characters of LaTeX beyond which an equation is too long to typeset


@dataclass
class Block:
    """A paragraph (``math`` False: sentences with $inline$ math) or display equations, one per line."""

    math: bool
    lines: list[str]


@dataclass
class Section:
    """One part of the write-up: a title and its blocks, in reading order."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    def say(self, text: str) -> None:
        self.blocks.append(Block(False, [text]))

    def show(self, *equations: str) -> None:
        """Display equations; one too long to typeset keeps its left side and says so."""
        shown = []
        for eq in equations:
            if len(eq) > LONG_EQUATION:
                lhs = eq.split(" = ", 1)[0]
                eq = f"{lhs} = \\cdots \\quad \\text{{({len(eq)} characters: see Derivation.elementwise)}}"
            shown.append(eq)
        if self.blocks and self.blocks[-1].math:
            self.blocks[-1].lines.extend(shown)
        else:
            self.blocks.append(Block(True, shown))


def _shape_latex(shape: Shape) -> str:
    if not shape:
        return "\\mathbb{R}"
    return "\\mathbb{R}^{" + " \\times ".join(sp.latex(d) for d in shape) + "}"


def _entry_latex(name: str, letter: str, idx: tuple[int, ...]) -> str:
    """a_{11}, x_{2}, (W_{1})_{12}; indices are 1-based."""
    sep = "," if any(i > 9 for i in idx) else ""
    sub = sep.join(str(i) for i in idx)
    if letter[-1].isdigit() or len(letter) > 1:
        return f"({latex_name(name, vector=False)})_{{{sub}}}"
    return f"{letter}_{{{sub}}}"


class _Entries:
    """Element-wise LaTeX at concrete sizes, with the article's entry names."""

    def __init__(self, d: Derivation, sizes: explicit.Sizes) -> None:
        self.sizes = sizes
        self.env = explicit.environment(d.shapes, sizes)
        letters = explicit.entry_names(d.shapes)
        self.names: dict[sp.Symbol, str] = {}
        for n, a in self.env.items():
            arr = np.asarray(a, dtype=object)
            for idx in np.ndindex(*arr.shape):
                self.names[arr[idx]] = _entry_latex(n, letters[n], tuple(i + 1 for i in idx))
        self.printer = EntryLatexPrinter({"symbol_names": self.names})
        self.printed: dict[sp.Basic, str] = {}  # an entry is measured, then shown: print it once

    def latex(self, e: object) -> str:
        e = sp.S(e)
        if e not in self.printed:
            self.printed[e] = self.printer.doprint(e)
        return self.printed[e]

    def matrix(self, a: object) -> str:
        """A bmatrix (a vector is a column); a scalar as it is."""
        a = np.asarray(a, dtype=object)
        if a.ndim == 0:
            return self.latex(a[()])
        rows = a.reshape(-1, 1) if a.ndim == 1 else a.reshape(a.shape[0], -1)
        body = " \\\\ ".join(" & ".join(self.latex(v) for v in row) for row in rows)
        return f"\\begin{{bmatrix}} {body} \\end{{bmatrix}}"


def sections(d: Derivation, sizes: Mapping[str, int] | None = None, transpose: str = "top") -> list[Section]:
    """The write-up of ``d``; ``sizes`` (dimension name -> int) for the expansion, 2 by default."""
    p = LatexPrinter(transpose=transpose)
    explicit.reset_masks()  # max-pooling indicators numbered afresh, so the text is the same every run
    concrete = _writeup_sizes(d, sizes)
    ent = _Entries(d, concrete)
    out = [_problem(d, p), _expansion(d, p, ent), _partials(d, p, ent)]
    chain = _chain(d, p)
    if chain is not None:
        out.append(chain)
    out.append(_matrix_form(d, p))
    if d.kind == "gradient" and d.display is not None:
        out.append(_update(d, p))
    out.append(_proof(d))
    return out


def _writeup_sizes(d: Derivation, given: Mapping[str, int] | None) -> explicit.Sizes:
    dims = {x for s in d.shapes.values() for x in s if isinstance(x, sp.Symbol)}
    given = dict(given or {})
    return {x: int(given.get(str(x), 2)) for x in dims}


def _lhs(d: Derivation, p: LatexPrinter) -> str:
    """d f / d x, with bold vectors."""
    by = [p.doprint(var(n, d.shapes[n])) for n in d.wrt]
    f = "F" if d.problem.expr.shape == () else _value_name(d)
    if len(by) == 2:
        return f"\\frac{{\\partial^2 {f}}}{{\\partial {by[0]} \\, \\partial {by[1]}}}"
    return f"\\frac{{\\partial {f}}}{{\\partial {by[0]}}}"


def _value_name(d: Derivation) -> str:
    return "\\mathbf{f}" if d.problem.expr.ndim == 1 else "F"


def _problem(d: Derivation, p: LatexPrinter) -> Section:
    s = Section("The problem")
    f = "F" if d.problem.expr.shape == () else _value_name(d)
    args = ", ".join(p.doprint(var(n, sh)) for n, sh in d.shapes.items())
    s.show(f"{f}({args}) = {p.doprint(d.problem.expr)}")
    shapes = ", ".join(f"${p.doprint(var(n, sh))} \\in {_shape_latex(sh)}$" for n, sh in d.shapes.items())
    s.say(f"with {shapes}. We want ${_lhs(d, p)}$.")
    return s


def _expansion(d: Derivation, p: LatexPrinter, ent: _Entries) -> Section:
    s = Section("Element by element")
    sizes = ", ".join(f"${sp.latex(k)} = {v}$" for k, v in sorted(ent.sizes.items(), key=lambda kv: str(kv[0])))
    at = f"at a small size ({sizes})" if sizes else "at the declared sizes"
    s.say(f"Write every entry out {at}, as one does on paper:")
    for n, sh in d.shapes.items():
        if sh:
            s.show(f"{p.doprint(var(n, sh))} = {ent.matrix(ent.env[n])}")
    value = explicit.evaluate(d.problem.expr, ent.env, ent.sizes)
    f = "F" if d.problem.expr.shape == () else _value_name(d)
    s.show(f"{f} = {ent.matrix(value)}")
    return s


def _partials(d: Derivation, p: LatexPrinter, ent: _Entries) -> Section:
    s = Section("Partial derivatives")
    value = explicit.evaluate(d.problem.expr, ent.env, ent.sizes)
    first = explicit.elementwise_derivative(value, ent.env[d.wrt[0]])
    full = first if len(d.wrt) == 1 else explicit.elementwise_derivative(first, ent.env[d.wrt[1]])
    f = "F" if d.problem.expr.shape == () else _value_name(d)
    out = np.asarray(value, dtype=object)
    wrt = [np.asarray(ent.env[n], dtype=object) for n in d.wrt]
    s.say("Differentiate every entry by every entry of the variable:")
    partials = np.empty(full.shape, dtype=object)
    for idx in np.ndindex(*full.shape):
        o = idx[: out.ndim]
        rest = idx[out.ndim :]
        num = f"{f}_{{{''.join(str(i + 1) for i in o)}}}" if o else f
        dens = []
        k = 0
        for w in wrt:
            dens.append(ent.latex(w[rest[k : k + w.ndim]] if w.ndim else w[()]))
            k += w.ndim
        frac = f"\\frac{{\\partial^2 {num}}}{{\\partial {dens[0]} \\, \\partial {dens[1]}}}" if len(dens) == 2 else (
            f"\\frac{{\\partial {num}}}{{\\partial {dens[0]}}}"
        )  # fmt: skip
        s.show(f"{frac} = {ent.latex(full[idx])}")
        partials[idx] = frac.replace("\\frac", "\\dfrac", 1)
    layout = "numerator layout: one row per output entry" if d.kind != "gradient" else "the shape of the variable"
    s.say(f"Assembled ({layout}):")
    if full.ndim == 0:
        return s  # one partial derivative: nothing to assemble
    assembled = _assemble(full, d.kind, out.ndim if d.kind == "jacobian" else wrt[0].ndim)
    if max(len(ent.latex(v)) for v in assembled.ravel()) <= LONG_ENTRY:
        s.show(f"{_lhs(d, p)} = {ent.matrix(assembled)}")
    else:
        names = _assemble(np.asarray(partials, dtype=object), d.kind, out.ndim if d.kind == "jacobian" else wrt[0].ndim)
        body = " \\\\ ".join(" & ".join(row) for row in np.atleast_2d(names.reshape(names.shape[0], -1)))
        s.show(f"{_lhs(d, p)} = \\begin{{bmatrix}} {body} \\end{{bmatrix}}")
    return s


def _assemble(full: np.ndarray, kind: str, row_axes: int) -> np.ndarray:
    """The element-wise derivative as a matrix: the gradient's shape, or (rows x columns), vec order."""
    if kind == "gradient":
        return full
    rows = int(np.prod(full.shape[:row_axes]))
    return full.reshape(rows, -1, order="F")


def _chain(d: Derivation, p: LatexPrinter) -> Section | None:
    """The chain rule, one intermediate at a time, in numerator layout."""
    if len(d.wrt) != 1 or d.display is None:
        return None
    name = d.wrt[0]
    steps: list[tuple[str, Node, Node]] = []  # (name, definition, local derivative)
    e = normalize(d.problem.expr)
    pool = [c for c in ("y", "z", "u", "v", "h", "s", "q") if c not in d.shapes]
    outer = "F" if e.shape == () else _value_name(d)
    current = e
    while pool:
        deps = list(dict.fromkeys(a for a in current.args if depends(a, name)))  # x @ x: one inner
        if len(deps) != 1 or deps[0].op == "var" or current.op == "var":
            break
        inner = deps[0]
        u = var(pool[0], inner.shape)
        local = _local(_replace(current, inner, u), u)
        if local is None:
            break
        if local != "I" or not steps:
            pool.pop(0)
            steps.append((p.doprint(u), inner, local))
        current = inner
    if not steps:
        return None
    s = Section("The chain rule")
    s.say("Name the intermediate results and differentiate one step at a time (numerator layout):")
    prev = outer
    for u, definition, local in steps:
        s.show(f"{u} = {p.doprint(definition)}")
        s.show(f"\\frac{{\\partial {prev}}}{{\\partial {u}}} = {local}")
        prev = u
    last = _local(current, var(name, d.shapes[name]))
    x = p.doprint(var(name, d.shapes[name]))
    if last is not None:
        s.show(f"\\frac{{\\partial {prev}}}{{\\partial {x}}} = {last}")
    chain = " ".join(f"\\frac{{\\partial {a}}}{{\\partial {b}}}" for a, b in _pairs(outer, [u for u, _, _ in steps], x))
    s.say(f"and multiply, outermost first: $\\frac{{\\partial {outer}}}{{\\partial {x}}} = {chain}$.")
    return s


def _pairs(outer: str, names: list[str], x: str) -> list[tuple[str, str]]:
    seq = [outer, *names, x]
    return list(itertools.pairwise(seq))


def _replace(e: Node, old: Node, new: Node) -> Node:
    if e == old:
        return new
    if not e.args:
        return e
    return node(e.op, *(_replace(a, old, new) for a in e.args), attr=e.attr)


def _local(e: Node, u: Node) -> str | None:
    """d e / d u in numerator layout, as LaTeX; None if no rule applies."""
    p = LatexPrinter()
    name = u.attr[0]
    try:
        if e.shape == ():
            g = gradient(e, name)
            if g is None:
                return None
            g = simplify(g)
            return p.row(g) if u.ndim == 1 else p.doprint(simplify(node("T", g))) if u.ndim == 2 else p.doprint(g)
        j = jacobian(e, name, u.shape)
        return None if j is None else p.doprint(simplify(j))
    except NoRule:
        return None


def _matrix_form(d: Derivation, p: LatexPrinter) -> Section:
    s = Section("Matrix form")
    if d.display is None:
        s.say(f"No rule gives a matrix form here ({d.note}); the element-wise form above is the answer.")
        return s
    var_shape = d.shapes[d.wrt[0]]
    num = arrange(d.form, d.kind, "numerator", var_shape)
    den = arrange(d.form, d.kind, "denominator", var_shape)
    p = _named(p, num, den)
    lhs = _lhs(d, p)
    if d.kind == "gradient" and var_shape:
        x = p.doprint(var(d.wrt[0], var_shape))
        if len(var_shape) <= 2:
            shape = "a row" if len(var_shape) == 1 else "the transpose of the gradient"
            s.say(f"Recognise the matrix form. In numerator layout the derivative is {shape}:")
            s.show(f"{lhs} = {p.row(num) if num.ndim == 1 else p.doprint(num)}")
            s.say(f"In denominator layout it is the gradient, shaped like ${x}$:")
        else:
            s.say(f"Recognise the matrix form: the gradient, shaped like ${x}$:")
        s.show(f"\\nabla_{{{x}}} F = {p.doprint(den)}")
    else:
        s.say(f"Recognise the matrix form. In numerator layout, one row per entry of the output{_vec_note(d)}:")
        s.show(f"{lhs} = {p.doprint(num)}")
        s.say("In denominator layout, one row per entry of the variable, it is the transpose:")
        s.show(f"\\left({lhs}\\right)^{{\\top}} = {p.doprint(den)}")
    _where(s, p)
    return s


NAMED_OPS = {"fn", "softmax", "logsoftmax", "conv2d", "maxpool", "flatten", "matmul", "add"}
BIG_OPS = {"softmax", "logsoftmax", "maxpool", "flatten", "fn"}  # named in a long form even when used once
LONG_FORM = 250  # characters of LaTeX beyond which a matrix form gets names for its parts


def _named(p: LatexPrinter, *roots: Node) -> LatexPrinter:
    """A printer that calls long parts of ``roots`` by short names (Z_1, z_1), innermost first.

    A part is named when it is used more than once, or when the whole form is too long
    to read and the part is a function application (softmax, maxpool, relu, ...).
    """
    q = LatexPrinter(transpose=_transpose_of(p))
    long = max(len(q.doprint(r)) for r in roots) > LONG_FORM
    repeated = set(shared(list(roots)))
    names: dict[Node, str] = {}
    for n in (m for r in roots for m in topo(r)):
        if n in names or n.op not in NAMED_OPS or n.ndim < 1:
            continue
        size = len(q.doprint(n))
        if (n in repeated and size > 40) or (long and n.op in BIG_OPS and size > 30):
            k = len(names) + 1
            names[n] = f"\\mathbf{{z}}_{{{k}}}" if n.ndim == 1 else f"Z_{{{k}}}"
    return LatexPrinter(names=names, transpose=_transpose_of(p))


def _transpose_of(p: LatexPrinter) -> str:
    return "top" if "top" in p.T else "T"


def _where(s: Section, p: LatexPrinter) -> None:
    """The definitions of the names a printer uses, in the order they were given."""
    if not p.names:
        return
    s.say("where")
    for n, name in p.names.items():
        others = {m: other for m, other in p.names.items() if m != n}
        s.show(f"{name} = {LatexPrinter(names=others, transpose=_transpose_of(p)).doprint(n)}")


def _vec_note(d: Derivation) -> str:
    """The vec convention, where a matrix is differentiated or differentiated by."""
    shapes = [d.problem.expr.shape] + [d.shapes[n] for n in d.wrt]
    if not any(len(s) > 1 for s in shapes):
        return ""
    return (
        "; $\\operatorname{vec}$ stacks columns, so "
        "$\\operatorname{vec}(A \\, dX \\, B) = (B^{\\top} \\otimes A) \\operatorname{vec}(dX)$"
    )


def _update(d: Derivation, p: LatexPrinter) -> Section:
    s = Section("Gradient descent")
    x = p.doprint(var(d.wrt[0], d.shapes[d.wrt[0]]))
    den = arrange(d.form, d.kind, "denominator", d.shapes[d.wrt[0]])
    q = _named(p, den)
    s.say("With a learning rate $\\gamma$, each step moves against the gradient:")
    s.show(f"{x} \\leftarrow {x} - \\gamma \\, \\nabla_{{{x}}} F = {x} - \\gamma \\left({q.doprint(den)}\\right)")
    _where(s, q)
    return s


def _at(shapes: Mapping[str, tuple[int, ...]], d: Derivation) -> str:
    p = LatexPrinter()
    parts = []
    for n, s in shapes.items():
        size = " \\times ".join(map(str, s)) if s else "1"
        parts.append(f"${p.doprint(var(n, d.shapes[n]))}$ of size ${size}$")
    return ", ".join(parts)


def _proof(d: Derivation) -> Section:
    s = Section("What was proven")
    pr = d.proof
    at = _at(pr.shapes, d)
    if pr.status == "proven":
        s.say(
            f"The matrix form, written out entry by entry with {at}, equals the element-wise derivative "
            f"taken with SymPy, exactly: all {pr.entries} entries agree (their difference expands to zero)."
        )
    else:
        s.say(f"Proof status: {pr.status}, with {at} ({pr.method}).")
    if d.numeric is not None and not d.numeric.ran:
        s.say("The numeric check did not run: no sample point gave a finite value and derivative.")
    elif d.numeric is not None:
        # A power of ten above the error, no finer than 1e-8: the last bits vary between BLAS builds.
        bound = 10 ** math.ceil(math.log10(max(d.numeric.error, 1e-8)))
        s.say(
            f"The generated numpy code agrees with central differences along {d.numeric.directions} random "
            f"directions, with {_at(d.numeric.shapes, d)}: the largest relative error is below "
            f"$10^{{{round(math.log10(bound))}}}$."
        )
    return s


# ----- files -----

FORMATS = ("tex", "md", "py")
_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "_": r"\_",
    "^": r"\^{}",
    "~": r"\~{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "{": r"\{",
    "}": r"\}",
}


def tex_escape(text: str) -> str:
    """Plain text safe inside LaTeX (for the expression's source)."""
    return "".join(_TEX_ESCAPES.get(c, c) for c in text)


def documents(
    d: Derivation,
    name: str,
    formats: tuple[str, ...] = FORMATS,
    sizes: Mapping[str, int] | None = None,
    transpose: str = "top",
    vec_form: bool = False,
) -> dict[str, str]:
    """File name -> contents for the requested formats (tex gives a document and a fragment)."""
    out: dict[str, str] = {}
    if {"tex", "md"} & set(formats):
        secs = sections(d, sizes, transpose)
        p = LatexPrinter(transpose=transpose)
        by = " and ".join(f"${p.doprint(var(n, d.shapes[n]))}$" for n in dict.fromkeys(d.wrt))
        title = f"The {KIND_NAMES[d.kind]} of ${p.doprint(d.problem.expr)}$"
        context = {"mark": GENERATED_MARK, "title": title, "sections": secs, "by": by}
        if "tex" in formats:
            out[f"{name}.tex"] = render("writeup.tex.j2", source=tex_escape(d.expr), **context)
            out[f"{name}.fragment.tex"] = render("fragment.tex.j2", **context)
        if "md" in formats:
            out[f"{name}.md"] = render("writeup.md.j2", source_md=d.expr, by_md=by, **context)
    if "py" in formats:
        out[f"{name}.py"] = d.numpy_source(name, vec_form=vec_form)
    return out
