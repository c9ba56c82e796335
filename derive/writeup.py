"""The derivation as a person writes it up: sections of text and equations.

:func:`sections` turns a :class:`~derive.derivation.Derivation` into a list of
sections (a title, sentences, LaTeX equations), the way the article presents
its examples: the problem and its shapes, the element-wise expansion at a
small size (2 x 2 as in the article, whatever sizes were declared), the
partial derivatives and the assembled Jacobian, the chain rule step by step,
the matrix form in both layouts, the update step for a scalar loss, and what
was proven.

Everything a reader needs is decided here, so the LaTeX, fragment and
Markdown templates only lay out prepared strings:

- every equation is broken into rows that fit the page (:mod:`derive.typeset`),
  aligned on ``=``; entries too long even at 2 x 2 get named intermediate
  results (u = W x + b, then F in terms of u), as the article does;
- every named quantity gets its own letter, none a variable's (:class:`Symbols`);
- notation (sigma', step, the Kronecker product, ...) is defined where it is
  first used (:class:`Notation`);
- ∂F/∂x is in numerator layout throughout, the gradient is ∇F.
"""

from __future__ import annotations

import itertools
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

import numpy as np
import sympy as sp

from . import explicit
from . import sizes as sizing
from .calculus import gradient, jacobian, normalize
from .codegen import pretty_dim, shared
from .context import Budget, OutOfTime
from .derivation import Derivation
from .errors import DeriveError
from .ir import Node, Shape, depends, topo
from .layout import Kind, Layout, arrange
from .ops import OPS, NoRule
from .ops.algebra import split_coef
from .ops.build import node, var
from .ops.functions import FUNCTIONS
from .prec import MUL
from .printing import EntryLatexPrinter, LatexPrinter, latex_dim, latex_name
from .render import GENERATED_MARK, render
from .simplify import simplify
from .typeset import TooWide, parse, rows, terms, width

ROOM = 39.5  # em: the text is 16.5 cm wide, 42.7 em at 11 pt; the rest is the width estimate's margin
NAME_AT = (13.0, 6.0, 0.0)  # em: an entry wider than this is named before a product or a function takes it
# in; the next when the partial derivatives would still take more than PARTIAL_ROWS rows each
NAME_FANOUT_AT = 4.0  # em: ... before softmax, det or inv, which use every entry many times
MAX_ROWS = 9  # an entry that needs more rows than this is too long to print
PARTIAL_ROWS = 3
TITLE_SCALE = 14.4 / 11  # \\section* type (\\Large) over the body's
LARGEST_SIZE = 4  # the element-wise steps write every entry out: sizes above this are refused
# Extra depth for the rows of a matrix of fractions, so they do not touch: an array row's depth is
# its strut's (4 pt) plus this, or the cell's if deeper (a display fraction's is about 9 pt).
ROW_SPACE = MappingProxyType({"\\dfrac": "[10pt]", "\\frac": "[4pt]"})

TRANSPARENT = frozenset({"add", "T", "broadcast", "flatten", "unflatten", "vec", "unvec", "sum", "row", "col"})
FANOUT = frozenset({"softmax", "logsoftmax", "logsumexp", "det", "inv", "logdet"})


# ----- sections, blocks, equations -----


@dataclass(frozen=True)
class Eq:
    """``lhs rel rhs``, one displayed equation (LaTeX); ``rows`` breaks it to fit."""

    lhs: str
    rhs: str
    rel: str = "="


@dataclass
class Block:
    """A paragraph (``math`` False: sentences with $inline$ math) or display equations.

    For a display, ``lines`` holds one standalone LaTeX equation per line (a long one as an
    ``aligned`` environment, for the web page), and ``rows`` the rows of one ``align*``
    display, aligned on the relation (``&=``), for the documents.
    """

    math: bool
    lines: list[str]
    rows: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Paragraph:
    """A lead-in sentence and the display it introduces, kept together on one page."""

    text: str
    rows: str  # the display's rows joined by LaTeX row breaks; empty for text alone


@dataclass
class Section:
    """One part of the write-up: a title and its blocks, in reading order."""

    title: str
    blocks: list[Block] = field(default_factory=list)
    notation: Notation | None = field(default=None, repr=False)

    def say(self, text: str) -> None:
        """A sentence; notation it uses for the first time is defined just before it, in its paragraph."""
        extra = self.notation.define(text) if self.notation else ""
        self.blocks.append(Block(False, [extra, text] if extra else [text]))

    def show(self, *equations: Eq) -> None:
        """A display of ``equations`` aligned on their relations; notation new in them is defined at the
        start of the paragraph that leads into it."""
        if not equations:
            return
        block = typeset(equations)
        extra = self.notation.define(" ".join(block.rows)) if self.notation else ""
        if extra and self.blocks and not self.blocks[-1].math:
            self.blocks[-1].lines.insert(0, extra)
        elif extra:
            self.blocks.append(Block(False, [extra]))
        self.blocks.append(block)

    @property
    def paragraphs(self) -> list[Paragraph]:
        """The blocks as paragraphs: each sentence with the display after it (no page break between)."""
        out: list[Paragraph] = []
        text = ""
        for b in self.blocks:
            if b.math:
                out.append(Paragraph(text, " \\\\\n".join(b.rows)))
                text = ""
            else:
                if text:
                    out.append(Paragraph(text, ""))
                text = " ".join(b.lines)
        if text:
            out.append(Paragraph(text, ""))
        return out


def typeset(equations: Sequence[Eq], room: float = ROOM) -> Block:
    """The display of ``equations``: rows aligned on the relation, each within ``room`` em.

    An equation no break can fit, or one that would take more than ``MAX_ROWS`` rows,
    keeps its left side and says that it is too long to print.
    """
    left = max(width(e.lhs) for e in equations)
    groups: list[list[str]] = []  # an equation and the "= ..." rows that continue it
    for e in equations:
        try:
            r = rows(e.lhs, e.rhs, room, e.rel, lhs_room=left)
        except TooWide:
            r = []
        except (ValueError, IndexError):  # LaTeX the width estimate cannot read: shown as it is
            r = [f"{e.lhs} &{e.rel} {e.rhs}"]
        if not r or len(r) > MAX_ROWS:
            r = [f"{e.lhs} &{e.rel} {too_long(e.rhs)}"]
        if e.lhs or not groups:
            groups.append(r)
        else:
            groups[-1].extend(r)
    lines = [g[0].replace("&", "", 1) if len(g) == 1 else "\\begin{aligned}\n" + " \\\\\n".join(g) + "\n\\end{aligned}"
             for g in groups]  # fmt: skip
    return Block(True, lines, [r for g in groups for r in g])


def too_long(rhs: str) -> str:
    """What stands for an entry too long to print, with its number of terms."""
    n = len(terms(parse(rhs)))
    what = f"{n} terms" if n > 1 else "one long term"
    return f"\\cdots \\quad \\text{{(too long to print: {what})}}"


def fits(eq: Eq, rows_at_most: int = 1, room: float = ROOM) -> bool:
    """Whether ``eq`` typesets in at most ``rows_at_most`` rows."""
    try:
        return len(rows(eq.lhs, eq.rhs, room, eq.rel)) <= rows_at_most
    except (TooWide, ValueError, IndexError):
        return False


# ----- names and notation -----

POOL = ("u", "v", "h", "z", "s", "r", "q", "g", "p", "t", "c", "a", "o", "w", "y", "l", "b")
RESERVED = frozenset({"e", "d", "i", "j", "I", "K", "H", "T", "O"})  # Euler's e, indices, I, K, H, ᵀ
IDENTITY_LETTERS = ("a", "b", "p", "q", "c", "r", "s", "t")  # for a general identity, vec(A dX B), in that order
VALUE_LETTERS = ("f", "g", "l", "e")  # the value's name: F (bold f for a vector), unless a variable is called so


class Symbols:
    """Letters for the value (F) and the named intermediate results: one per quantity, the same
    in every section, never a letter of a variable (in either case), of a dimension, or a reserved one."""

    def __init__(self, d: Derivation) -> None:
        taken = set(RESERVED)
        for n in d.shapes:
            base = n.partition("_")[0].rstrip("0123456789") or n
            taken |= {base, base.lower(), base.upper()}
        for s in sizing.symbols_of(d.shapes):
            taken |= {str(s), str(s).lower(), str(s).upper()}
        value = next(c for c in VALUE_LETTERS if c not in taken)
        self.value = f"\\mathbf{{{value}}}" if d.problem.expr.ndim == 1 else value.upper()  # F, or bold f
        self.pool = [c for c in POOL if c not in taken and c != value]
        self.of: dict[Node, str] = {}

    def ident(self, n: Node) -> str:
        """The name as an identifier: ``u`` (prints bold for a vector), ``U`` for a matrix or tensor."""
        if n not in self.of:
            k = len(self.of)
            base = self.pool[0] if self.pool else "u"
            self.of[n] = self.pool[k] if k < len(self.pool) else f"{base}{k - len(self.pool) + 2}"
        letter = self.of[n]
        return letter.upper() if n.ndim >= 2 else letter

    def spare(self, k: int) -> list[str]:
        """``k`` capitals no variable, dimension or named result uses, for a general identity (vec(A dX B))."""
        used = {self.ident(n).lower() for n in self.of}
        free = [c for c in self.pool if c not in used]
        prefer = [c for c in IDENTITY_LETTERS if c in free] + [c for c in free if c not in IDENTITY_LETTERS]
        picked = (prefer + ["p", "q"])[:k]
        self.pool = [c for c in self.pool if c not in picked]
        return [c.upper() for c in picked]

    def var(self, n: Node) -> Node:
        return var(self.ident(n), n.shape)

    def latex(self, n: Node) -> str:
        return latex_name(self.ident(n), vector=n.ndim == 1)

    def entry(self, n: Node, idx: tuple[int, ...]) -> str:
        """The LaTeX of entry ``idx`` (0-based) of the named ``n``: u_{1}, u_{12}, (u_{2})_{1}."""
        letter = self.ident(n).lower()
        if not idx:
            return self.latex(n)
        return _entry_latex(letter, letter, tuple(i + 1 for i in idx))


class Notation:
    """What the write-up has defined so far; :meth:`define` gives the sentence for anything new.

    Primes (sigma', tanh'', ...) are defined by their written-out forms, the other marks by a
    sentence each, the first time they appear in the document.
    """

    def __init__(self, p: LatexPrinter, ops: frozenset[str] = frozenset()) -> None:
        self.marks: tuple[tuple[str, str], ...] = tuple(
            (mark, sentence) for mark, sentence, op in _notation(p) if op is None or op in ops
        )
        self.done: set[str] = set()

    def define(self, latex: str) -> str:
        """The definitions of the notation first used in ``latex``, as one sentence (or '')."""
        found = []
        latex = latex.replace(" ", "")
        for mark, sentence in self.marks:
            if mark.replace(" ", "") in latex and mark not in self.done and sentence not in found:
                self.done.add(mark)
                found.append(sentence)
        if not found:
            return ""
        return "Notation: " + _join(found) + "."


def _join(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return "; ".join(parts[:-1]) + "; and " + parts[-1]


def _notation(p: LatexPrinter) -> tuple[tuple[str, str, str | None], ...]:
    """(mark in the LaTeX, the sentence defining it, the op it needs in the expression or form, if any).

    The sentences name no letters the document could use for something else: a function's
    argument is $\\xi$, and the rest is said in words.
    """
    xi = var("\\xi", ())
    out: list[tuple[str, str, str | None]] = []
    for name, f in FUNCTIONS.items():
        if not f.primes:
            continue
        for order in (3, 2, 1):
            primed = p.fname(name, order)
            written = f.written(xi, order)
            if written is not None:
                rhs = p.doprint(written)
            else:
                t = sp.Symbol("xi")
                rhs = EntryLatexPrinter().doprint(sp.diff(f.display(t), t, order))
            which = {1: "the derivative", 2: "the second derivative", 3: "the third derivative"}[order]
            out.append((f"{primed}\\left(", f"${primed}(\\xi) = {rhs}$, {which} of ${f.latex}$", None))
    step, heaviside = FUNCTIONS["step"].latex, FUNCTIONS["heaviside"].latex
    out += [
        (f"{step}\\left(", f"${step}(\\xi)$ is $1$ for $\\xi > 0$ and $0$ otherwise (the derivative of relu)",
         None),
        (f"{heaviside}\\left(", f"${heaviside}(\\xi)$ is $1$ for $\\xi > 0$, $0$ for $\\xi < 0$ and "
         "$\\frac{1}{2}$ at $0$", None),
        ("\\delta_{", "$\\delta_{1,3}$ is $1$ if the third entry of pooling window 1 is the window's largest (the "
         "first of them, on a tie) and $0$ otherwise, and so on", "maxpool"),
        ("\\operatorname{unpool}", "$\\operatorname{unpool}$ puts each entry of a gradient where the maximum of its "
         "pooling window is, and zeros elsewhere", None),
        ("\\operatorname{maxpool}", "$\\operatorname{maxpool}$ keeps the largest entry of each window (its size "
         "is the subscript)", None),
        (p.STAR.strip(), f"${p.STAR.strip()}$ is the valid cross-correlation of conv2d: each output entry sums a "
         "kernel times the window of the input under it", None),
        ("\\operatorname{pad}", "$\\operatorname{pad}$ surrounds each channel with zeros, one fewer than the kernel "
         "size on each side", None),
        ("\\operatorname{rot180}", "$\\operatorname{rot180}$ turns each kernel by half a turn", None),
        (p.HADAMARD.strip(), f"${p.HADAMARD.strip()}$ multiplies entry by entry", None),
        ("\\oslash", "$\\oslash$ divides entry by entry", None),
        ("^{\\circ", "a power marked $\\circ$ is taken entry by entry", None),
        (p.KRON.strip(), f"${p.KRON.strip()}$ is the Kronecker product", None),
        (p.ONES, f"${p.ONES}$ is a vector of ones", None),
        ("K_{", "$K$ with two sizes as subscripts is the commutation matrix, which turns "
         "$\\operatorname{vec}$ of a matrix of those sizes into $\\operatorname{vec}$ of its transpose",
         "commutation"),
    ]  # fmt: skip
    return tuple(out)


def _ops(d: Derivation) -> frozenset[str]:
    """Every op in the expression and in its derivative's forms."""
    roots = [r for r in (d.problem.expr, d.form, d.display, d.first) if r is not None]
    return frozenset(n.op for r in roots for n in topo(r))


# ----- the document -----


class _Doc:
    """What every section shares: the derivation, the printer, the names and the notation so far."""

    def __init__(self, d: Derivation, transpose: str, budget: Budget | None = None) -> None:
        self.d = d
        self.budget = budget
        self.p = LatexPrinter(transpose=transpose)
        self.symbols = Symbols(d)
        self.notation = Notation(self.p, _ops(d))
        self.f = self.symbols.value

    def section(self, title: str) -> Section:
        return Section(title, notation=self.notation)

    def x(self, i: int = 0) -> str:
        """The variable ``wrt[i]`` in LaTeX."""
        n = self.d.wrt[i]
        return self.p.doprint(var(n, self.d.shapes[n]))

    def printer(self, names: Mapping[Node, str] | None = None) -> LatexPrinter:
        return LatexPrinter(names=names, transpose=self.p.transpose)


def _entry_letter(f: str) -> str:
    """The italic letter for the entries of the value named ``f``: f_{1} for bold f, f_{12} for F."""
    return f.replace("\\mathbf{", "").replace("}", "").lower()


TYPESET_AT_MOST = 20_000  # characters of the matrix form's LaTeX: a longer form is refused, not typeset
WRITE_OUT = 50_000  # the largest entry (SymPy tree size, bounded before SymPy builds it) written out
WRITE_OUT_DEPTH = 60  # and the deepest (SymPy's printers recurse on depth)


def sections(d: Derivation, sizes: Mapping[str, int] | None = None, transpose: str = "top",
             budget: Budget | None = None) -> list[Section]:  # fmt: skip
    """The write-up of ``d``; ``sizes`` (dimension name -> int, at most 4) for the expansion, small by default.

    The element-wise sections are written only when their entries are small enough (bounds computed
    before SymPy builds anything) and ``budget`` (CPU time) lasts, and the chain rule only when it
    lasts; else a sentence says why they are left out. The other sections take time linear in the form.
    """
    doc = _Doc(d, transpose, budget)
    if d.display is not None:
        long = len(doc.p.doprint(d.display))
        if long > TYPESET_AT_MOST:
            raise DeriveError(f"the matrix form is too long to typeset ({long} characters of LaTeX; at most"
                              f" {TYPESET_AT_MOST}): ask for the code alone, --format py")  # fmt: skip
    concrete = _writeup_sizes(d, sizes)
    out = [_problem(doc)]
    try:
        big = explicit.sympy_size(d.problem.expr, d.shapes, concrete, d.wrt, d.structure, budget)
        if big.n > WRITE_OUT or big.d > WRITE_OUT_DEPTH:
            out.append(_left_out(doc, f"their entries are too large to write out (up to about {big.n} terms, nested"
                                      f" {big.d} deep, at {_sizes_text(concrete)})"))  # fmt: skip
        else:
            ent = _expanded(d, concrete, doc.symbols, budget)
            out += [_expansion(doc, ent), _partials(doc, ent)]
    except OutOfTime:
        out = [out[0], _left_out(doc, "writing them out did not finish within the time budget")]
    try:
        chain = _chain(doc)
    except OutOfTime:
        chain = None
    if chain is not None:
        out.append(chain)
    try:
        form, p = _matrix_form(doc)
    except OutOfTime:
        raise DeriveError("typesetting the matrix form did not finish within the time budget (raise it with"
                          " --max-seconds, or ask for the code alone, --format py)") from None  # fmt: skip
    out.append(form)
    if d.kind == Kind.GRADIENT and d.display is not None:
        out.append(_update(doc, p))
    out.append(_proof(d, doc))
    return out


def _left_out(doc: _Doc, why: str) -> Section:
    s = doc.section("Element by element")
    s.say(f"The entries and partial derivatives are not written out here: {why}. What the proof compared,"
          " and how, is below.")  # fmt: skip
    return s


def _sizes_text(sizes: Mapping) -> str:
    return ", ".join(f"${latex_dim(k)} = {v}$" for k, v in sorted(sizes.items(), key=lambda kv: str(kv[0])))


def _writeup_sizes(d: Derivation, given: Mapping[str, int] | None) -> dict:
    """Small sizes for the element-wise steps: ``given`` (dimension name -> size), else 2 as in the article.

    The declared sizes never enter here unless they are small: they belong to the problem
    statement and the numeric check.
    """
    symbols = list(dict.fromkeys(x for s in d.shapes.values() for x in s if isinstance(x, sp.Symbol)))
    dims = sizing.dimensions(d.problem.expr)
    if given:
        unknown = [k for k in given if k not in {str(x) for x in symbols}]
        if unknown:
            known = ", ".join(map(str, symbols)) or "none (every size is fixed)"
            raise DeriveError(f"--size {unknown[0]}: not a dimension of the expression (they are {known})")
        big = [k for k, v in given.items() if int(v) > LARGEST_SIZE]
        if big:
            raise DeriveError(
                f"--size {big[0]}={given[big[0]]}: the write-up writes every entry out, so sizes are at most "
                f"{LARGEST_SIZE} (the declared sizes are used by the numeric check)"
            )
        fixed = {x: int(given[str(x)]) for x in symbols if str(x) in given}
        return sizing.choose(symbols, dims, fixed, groups=d.shapes.values())
    return sizing.small(symbols, dims, d.problem.sizes, groups=d.shapes.values())


def _shape_latex(shape: Shape) -> str:
    if not shape:
        return "\\mathbb{R}"
    return "\\mathbb{R}^{" + " \\times ".join(latex_dim(pretty_dim(d)) for d in shape) + "}"


def _entry_latex(name: str, letter: str, idx: tuple[int, ...]) -> str:
    """a_{11}, x_{2}, (W_{1})_{12}, x_{1,10}; indices are 1-based."""
    sep = "," if any(i > 9 for i in idx) else ""
    sub = sep.join(str(i) for i in idx)
    if letter[-1].isdigit() or len(letter) > 1:
        return f"({latex_name(name, vector=False)})_{{{sub}}}"
    return f"{letter}_{{{sub}}}"


def _d(num: str, den: str, second: str = "") -> str:
    """∂num/∂den, or ∂²num/∂den ∂second."""
    if second:
        return f"\\frac{{\\partial^2 {num}}}{{\\partial {den} \\, \\partial {second}}}"
    return f"\\frac{{\\partial {num}}}{{\\partial {den}}}"


def _lhs(doc: _Doc) -> str:
    """∂F/∂x (numerator layout), with bold vectors."""
    return _d(doc.f, *(doc.x(i) for i in range(len(doc.d.wrt))))


def _gradient(doc: _Doc) -> str:
    return f"\\nabla_{{{doc.x()}}} {doc.f}"


# ----- the problem -----


def _problem(doc: _Doc) -> Section:
    d, p = doc.d, doc.p
    s = doc.section("The problem")
    args = ", ".join(p.doprint(var(n, sh)) for n, sh in d.shapes.items())
    shapes = ", ".join(
        f"${p.doprint(var(n, sh))} \\in {_shape_latex(d.problem.at_declared(sh))}$" for n, sh in d.shapes.items()
    )
    s.say(f"Given {shapes}, let")
    s.show(Eq(f"{doc.f}({args})", p.doprint(d.problem.expr)))
    s.say(_orientation(doc))
    return s


def _orientation(doc: _Doc) -> str:
    """What we want, and the one orientation ∂F/∂x has throughout."""
    d = doc.d
    x, shape = doc.x(), d.shapes[d.wrt[0]]
    lhs = _lhs(doc)
    if d.kind == Kind.GRADIENT:
        if not shape:
            return f"We want ${lhs}$."
        if len(shape) == 1:
            return (
                f"We want the gradient ${_gradient(doc)}$, a column shaped like ${x}$. Throughout, ${lhs}$ is in "
                f"numerator layout: a row, one entry per entry of ${x}$, so ${_gradient(doc)} = "
                f"\\left({lhs}\\right)^{{\\top}}$."
            )
        if len(shape) == 2:
            return (
                f"We want the gradient ${_gradient(doc)}$, shaped like ${x}$. Throughout, ${lhs}$ is in numerator "
                f"layout, shaped like ${x}^{{\\top}}$, so ${_gradient(doc)} = \\left({lhs}\\right)^{{\\top}}$."
            )
        return (
            f"We want the gradient ${_gradient(doc)}$, shaped like ${x}$: the partial derivatives of ${doc.f}$ by "
            f"the entries of ${x}$."
        )
    if d.kind == Kind.HESSIAN:
        y = doc.x(1)
        return (
            f"We want the Hessian ${lhs}$: row $i$ holds the derivatives of "
            f"$\\partial {doc.f} / \\partial {_entry_of(doc, 0)}$ by each entry of ${y}$."
        )
    cols = f"$\\operatorname{{vec}} {x}$ (columns stacked)" if len(shape) > 1 else f"${x}$"
    rows_of = f"$\\operatorname{{vec}} {doc.f}$" if d.problem.expr.ndim > 1 else f"${doc.f}$"
    return (
        f"We want the Jacobian ${lhs}$, in numerator layout throughout: one row per entry of {rows_of}, one column "
        f"per entry of {cols}."
    )


def _entry_of(doc: _Doc, i: int) -> str:
    """A generic entry of variable ``wrt[i]``: x_{i}, (W_{1})_{i}."""
    n = doc.d.wrt[i]
    letter = explicit.entry_names(doc.d.shapes)[n]
    return f"{letter}_{{i}}" if len(letter) == 1 else f"({latex_name(n, False)})_{{i}}"


# ----- element by element -----


def expansion(d: Derivation, sizes: Mapping[str, int] | None = None) -> Expansion:
    """The element-wise steps of ``d``'s write-up: entries at small sizes, named results, partials."""
    return _expanded(d, _writeup_sizes(d, sizes), Symbols(d))


def _expanded(d: Derivation, sizes: dict, symbols: Symbols, budget: Budget | None = None) -> Expansion:
    """The element-wise steps with as few names as keep the partial derivatives short.

    Each threshold of ``NAME_AT`` in turn (fewer names first): the first whose partial
    derivatives each fit in ``PARTIAL_ROWS`` rows, else, once more names stop helping,
    the one that needs the fewest rows.
    """
    tried = []
    for limit in NAME_AT:
        before = dict(symbols.of)
        ent = Expansion(d, sizes, symbols, limit, budget)
        need = _rows_needed(ent)
        tried.append((need, len(tried), ent, dict(symbols.of)))
        if need <= PARTIAL_ROWS:
            return ent
        symbols.of = before
        if len(tried) > 1 and need >= tried[-2][0]:  # more names made it no shorter
            break
    need, _, ent, names = min(tried, key=lambda t: t[:2])
    symbols.of = names
    return ent


def _rows_needed(ent: Expansion) -> float:
    """The most rows any partial derivative takes (infinite if one does not fit at all)."""
    most = 1
    for v in ent.full.ravel():
        ent.kit.tick()
        if v == 0:
            continue
        try:
            most = max(most, len(rows("\\frac{\\partial F}{\\partial x_{11}}", ent.latex(v), ROOM)))
        except TooWide:
            return math.inf
    return most


class Expansion:
    """The entries at concrete sizes, with the article's entry names (and their LaTeX).

    ``steps`` holds each named intermediate result (node, its entries, their symbols) in the
    order they are defined; ``value`` the value's entries and ``full`` every partial
    derivative, both in terms of those names; :meth:`written_out` puts the names back.
    """

    def __init__(self, d: Derivation, sizes: dict, symbols: Symbols, name_at: float = 13.0,
                 budget: Budget | None = None) -> None:  # fmt: skip
        self.d = d
        self.name_at = name_at
        self.sizes = sizes
        self.budget = budget
        self.ents, self.kit = explicit.display_entries(d.shapes, sizes, d.structure)
        self.kit.budget = budget
        self.env = self.ents.symbols()
        self.symbols = symbols
        letters = explicit.entry_names(d.shapes)
        self.names: dict[sp.Symbol, str] = {}
        for n, a in self.env.items():
            arr = np.asarray(a, dtype=object)
            for idx in np.ndindex(*arr.shape):
                if isinstance(arr[idx], sp.Symbol):
                    canon = tuple(sorted(idx)) if d.structure.get(n) == "symmetric" else idx
                    self.names[arr[idx]] = _entry_latex(n, letters[n], tuple(i + 1 for i in canon))
        self.printer = EntryLatexPrinter({"symbol_names": self.names})
        self.printed: dict[sp.Basic, str] = {}
        self.steps: list[tuple[Node, np.ndarray, np.ndarray]] = []  # (node, its entries, their symbols)
        self.value = self._evaluate()

    def latex(self, e: object) -> str:
        e = sp.S(e)
        for s in e.free_symbols:
            if s not in self.names and s.name.startswith("delta_"):
                k, r = s.name.split("_")[1:]
                self.names[s] = f"\\delta_{{{k},{r}}}"
        if e not in self.printed:  # an entry is measured, then shown: print it once
            self.printed[e] = self.printer.doprint(e)
        return self.printed[e]

    def _evaluate(self) -> object:
        """The value entry by entry, naming intermediate results whose entries would grow too long."""
        memo: dict[Node, object] = {}
        for n in topo(self.d.problem.expr):
            if n.op not in TRANSPARENT and not (n.op == "mul" and any(a.op == "const" for a in n.args)):
                limit = min(NAME_FANOUT_AT, self.name_at) if n.op in FANOUT else self.name_at
                for c in dict.fromkeys(n.args):
                    if n.op == "pow" and c.op == "norm":  # ||r||^2: SymPy squares the root away; r is named instead
                        continue
                    if c.op not in ("var", "const") and not _atomic(memo[c]) and self._widest(memo[c]) > limit:
                        memo[c] = self._name(c, memo[c])
            memo[n] = OPS[n.op].eval(self.kit, n, *(memo[a] for a in n.args))
        return memo[self.d.problem.expr]

    def _widest(self, a: object) -> float:
        return max(width(self.latex(v)) for v in np.asarray(a, dtype=object).ravel())

    def _name(self, n: Node, value: object) -> object:
        arr = np.asarray(value, dtype=object)
        ident = self.symbols.ident(n)
        syms = np.empty(arr.shape, dtype=object)
        for idx in np.ndindex(*arr.shape):
            s = sp.Symbol(f"{ident}__{'_'.join(map(str, idx))}")
            syms[idx] = s
            self.names[s] = self.symbols.entry(n, idx)
        self.steps.append((n, arr, syms))
        return syms if arr.ndim else syms[()]

    def matrix(self, a: object) -> str:
        """A bmatrix (a vector is a column); a scalar as it is."""
        a = np.asarray(a, dtype=object)
        if a.ndim == 0:
            return self.latex(a[()])
        return bmatrix([[self.latex(v) for v in row] for row in _rows_of(a)])

    def written_out(self, e: object) -> sp.Expr:
        """``e`` with every named result replaced by its definition, down to the variables' entries."""
        e = sp.S(e)
        for _, arr, syms in reversed(self.steps):
            e = e.xreplace({s: v for s, v in zip(syms.ravel(), arr.ravel(), strict=True)})
        return e

    @cached_property
    def full(self) -> np.ndarray:
        """Every partial derivative, shape value + variable(s), in terms of the named results.

        Without names, SymPy differentiates the written-out entries. With names, by the
        chain rule through them (d u / d w for each named u, innermost first), and each
        named result is then put back for its definition wherever it appears.
        """
        d = self.d
        if not self.steps:
            return explicit.sympy_jacobian(d.problem.expr, d.shapes, self.sizes, d.wrt, d.structure, self.budget)[1]
        pairs = [(s, sp.S(v)) for _, arr, syms in self.steps for s, v in zip(syms.ravel(), arr.ravel(), strict=True)]
        back = {v: s for s, v in pairs if not v.is_Atom}
        out = np.asarray(self.value, dtype=object)
        for name in d.wrt:
            w = np.asarray(self.env[name], dtype=object)
            res = np.empty(out.shape + w.shape, dtype=object)
            for i in np.ndindex(*w.shape):
                s = w[i]
                if s == 0:
                    for o in np.ndindex(*out.shape):
                        res[o + i] = sp.S.Zero
                    continue
                inner = _through(pairs, s)
                for o in np.ndindex(*out.shape):
                    self.kit.tick()
                    part = _total(sp.S(out[o]), s, inner)
                    if d.structure.get(name) == "symmetric" and i[0] != i[1]:
                        part = part / 2
                    res[o + i] = _tidy(part.xreplace(back))
            out = res
        return out


def _through(pairs: Sequence[tuple[sp.Symbol, sp.Expr]], s: sp.Symbol) -> dict[sp.Symbol, sp.Expr]:
    """d u / d s for every named u, innermost first (the chain rule through earlier names)."""
    inner: dict[sp.Symbol, sp.Expr] = {}
    for u, e in pairs:
        inner[u] = _total(e, s, inner)
    return inner


def _total(e: sp.Expr, s: sp.Symbol, inner: Mapping[sp.Symbol, sp.Expr]) -> sp.Expr:
    """The total derivative of ``e`` by ``s``: directly, and through each named result in it."""
    out = sp.diff(e, s) if s in e.free_symbols else sp.S.Zero
    for u in e.free_symbols:
        du = inner.get(u)
        if du is not None and du != 0:
            out += sp.diff(e, u) * du
    return out


def _tidy(e: sp.Expr) -> sp.Expr:
    """The shortest of ``e``, its powers merged, and its terms over one denominator (when small).

    No cancelling: a polynomial gcd can take minutes on entries with exponentials.
    """
    if sp.count_ops(e) > 200:
        return e
    forms = [e, sp.powsimp(e)]
    forms.append(sp.together(forms[-1]))
    return min(forms, key=lambda f: (len(sp.latex(f)), forms.index(f)))


def _atomic(a: object) -> bool:
    return all(isinstance(v, sp.Symbol | sp.Number) for v in np.asarray(a, dtype=object).ravel())


def _rows_of(a: np.ndarray) -> np.ndarray:
    """A vector as a column, a matrix as it is, a tensor by its last axis."""
    return a.reshape(-1, 1) if a.ndim == 1 else a.reshape(-1, a.shape[-1]) if a.ndim > 2 else a


def bmatrix(cells: Sequence[Sequence[str]]) -> str:
    """A bmatrix; rows of fractions get extra space so they do not touch."""
    text = " ".join(c for row in cells for c in row)
    space = next((v for k, v in ROW_SPACE.items() if k in text), "")
    sep = " \\\\" + space + " "
    body = sep.join(" & ".join(row) for row in cells)
    return f"\\begin{{bmatrix}} {body} \\end{{bmatrix}}"


def _slices(lhs: str, a: np.ndarray, cell) -> list[Eq]:
    """A vector or matrix as one equation; a tensor as one matrix per leading index (X_{1,:,:})."""
    a = np.asarray(a, dtype=object)
    if a.ndim <= 2:
        return [Eq(lhs, bmatrix([[cell(v) for v in row] for row in _rows_of(a)]) if a.ndim else cell(a[()]))]
    out = []
    for lead in np.ndindex(*a.shape[:-2]):
        sub = ",".join(str(i + 1) for i in lead) + ",:,:"
        out.append(Eq(f"{_base(lhs)}_{{{sub}}}", bmatrix([[cell(v) for v in row] for row in a[lead]])))
    return out


def _base(lhs: str) -> str:
    """A name with a subscript ready for another: X, (W_{1})."""
    return f"\\left({lhs}\\right)" if "_" in lhs else lhs


def _value_eqs(lhs: str, letter: str, a: object, ent: Expansion) -> list[Eq]:
    """A value shown as one matrix if it fits on a row, else entry by entry (f_{1} = ..., ...)."""
    a = np.asarray(a, dtype=object)
    if a.ndim == 0:
        return [Eq(lhs, ent.latex(a[()]))]
    whole = _slices(lhs, a, ent.latex)
    if all(fits(e) for e in whole):
        return whole
    return [
        Eq(_entry_latex(letter, letter, tuple(i + 1 for i in idx)), ent.latex(a[idx])) for idx in np.ndindex(*a.shape)
    ]


def _derivation(lhs: str, formula: str, values: list[Eq]) -> list[Eq]:
    """lhs = formula = [its entries], aligned on "=", when the entries come as one matrix; else
    lhs = formula followed by the entries one by one."""
    if formula == values[0].rhs:
        return values
    if len(values) == 1 and values[0].lhs == lhs:
        return [Eq(lhs, formula), Eq("", values[0].rhs)]
    return [Eq(lhs, formula), *values]


def name_letter(doc: _Doc, n: Node) -> str:
    """The italic letter of a named result's entries."""
    return doc.symbols.ident(n).lower()


def _expansion(doc: _Doc, ent: Expansion) -> Section:
    d, p = doc.d, doc.p
    s = doc.section("Element by element")
    sizes = _sizes_text(ent.sizes)
    declared = all(d.problem.sizes.get(k) == v for k, v in ent.sizes.items())
    at = "at the declared sizes" if declared or not sizes else f"at a small size ({sizes})"
    s.say(f"Write every entry out {at}, as one does on paper:")
    eqs = []
    for n, sh in d.shapes.items():
        if sh:
            eqs += _slices(p.doprint(var(n, sh)), ent.env[n], ent.latex)
    if not ent.steps:
        s.show(*eqs, *_value_eqs(doc.f, _entry_letter(doc.f), ent.value, ent))
        return s
    s.show(*eqs)
    s.say(
        "The entries grow long, so name the intermediate results and write each out in terms of the ones "
        "before, innermost first:"
    )
    named: dict[Node, str] = {}
    eqs = []
    for n, arr, _ in ent.steps:
        name = doc.symbols.latex(n)
        eqs += _derivation(name, doc.printer(named).doprint(n), _value_eqs(name, name_letter(doc, n), arr, ent))
        named[n] = name
    s.show(*eqs)
    s.say(f"and then ${doc.f}$ in terms of them:")
    formula = doc.printer(named).doprint(d.problem.expr)
    s.show(*_derivation(doc.f, formula, _value_eqs(doc.f, _entry_letter(doc.f), ent.value, ent)))
    return s


# ----- partial derivatives -----


def _partials(doc: _Doc, ent: Expansion) -> Section:
    d = doc.d
    s = doc.section("Partial derivatives")
    full = ent.full
    out = np.asarray(ent.value, dtype=object)
    wrt = [np.asarray(ent.env[n], dtype=object) for n in d.wrt]
    how = " (by the chain rule through the named results)" if ent.steps else ""
    s.say(f"Differentiate every entry by every entry of the variable{how}:")
    letter = _entry_letter(doc.f)
    partials = np.empty(full.shape, dtype=object)
    eqs, zeros = [], []
    for idx in np.ndindex(*full.shape):
        o, rest = idx[: out.ndim], idx[out.ndim :]
        num = _entry_latex(letter, letter, tuple(i + 1 for i in o)) if o else doc.f
        dens, k = [], 0
        for w in wrt:
            dens.append(ent.latex(w[rest[k : k + w.ndim]] if w.ndim else w[()]))
            k += w.ndim
        frac = _d(num, *dens)
        partials[idx] = frac.replace("\\frac", "\\dfrac", 1)
        if full[idx] == 0:
            zeros.append(frac)
        eqs.append(Eq(frac, ent.latex(full[idx])))
    if len(eqs) > 6 and zeros and len(zeros) < len(eqs):
        s.show(*(e for e in eqs if e.lhs not in zeros))
        s.say(f"The other {len(zeros)} partial derivatives are $0$.")
    else:
        s.show(*eqs)
    if full.ndim == 0:
        return s  # one partial derivative: nothing to assemble
    assembled = _assemble(full, d.kind, out.ndim if d.kind == Kind.JACOBIAN else wrt[0].ndim)
    names = _assemble(partials, d.kind, out.ndim if d.kind == Kind.JACOBIAN else wrt[0].ndim)
    lhs, what = _assembled_lhs(doc)
    s.say(f"Assembled {what}:")
    short = max(width(ent.latex(v)) for v in assembled.ravel()) <= 6.0
    eq = _slices(lhs, assembled, ent.latex)
    if not short or not all(fits(e) for e in eq):
        eq = _slices(lhs, names, str)
    s.show(*eq)
    return s


def _assembled_lhs(doc: _Doc) -> tuple[str, str]:
    """The assembled derivative's name and what it is: ∂F/∂x (a row), ∇_X F (X's shape) or the Jacobian."""
    d = doc.d
    shape = d.shapes[d.wrt[0]]
    if d.kind == Kind.GRADIENT and len(shape) == 1:
        return _lhs(doc), "in numerator layout, a row"
    if d.kind == Kind.GRADIENT:
        return _gradient(doc), f"in the shape of ${doc.x()}$, they form the gradient"
    if d.kind == Kind.HESSIAN:
        return _lhs(doc), "(row $i$ for the $i$-th entry of the first variable)"
    return _lhs(doc), "in numerator layout, one row per entry of the output"


def _assemble(full: np.ndarray, kind: str, row_axes: int) -> np.ndarray:
    """The element-wise derivative as a matrix: a row (gradient by a vector), the variable's shape
    (by a matrix or tensor), or (rows x columns) in vec order."""
    if kind == Kind.GRADIENT:
        return full.reshape(1, -1) if full.ndim == 1 else full
    rows_ = int(np.prod(full.shape[:row_axes]))
    return full.reshape(rows_, -1, order="F")


# ----- the chain rule -----


def _chain(doc: _Doc) -> Section | None:
    """The chain rule, one named intermediate at a time, in numerator layout."""
    d, p = doc.d, doc.p
    if len(d.wrt) != 1 or d.display is None:
        return None
    name = d.wrt[0]
    x = var(name, d.shapes[name])
    steps: list[tuple[Node, Node, str]] = []  # (the named node, the one before it, d (the one before) / d it)
    anchor = current = normalize(d.problem.expr)
    while True:
        deps = list(dict.fromkeys(a for a in current.args if depends(a, name)))  # x @ x: one inner
        if len(deps) != 1 or deps[0].op == "var" or current.op == "var":
            break
        inner = deps[0]
        u = doc.symbols.var(inner)
        local = _local(_replace(anchor, inner, u), u, doc)
        if local is None:
            break
        current = inner
        if local == "I" and steps:  # r = A x - b, then A x: an identity step, nothing to name
            continue
        steps.append((inner, anchor, local))
        anchor = inner
    if not steps:
        return None
    s = doc.section("The chain rule")
    names = [doc.symbols.latex(n) for n, _, _ in steps]
    s.say("Name the intermediate results, innermost first, each in terms of the one before:")
    defs = [Eq(names[-1], p.doprint(anchor))]
    for k, (n, outer, _) in reversed(list(enumerate(steps))):
        defs.append(Eq(doc.f if k == 0 else names[k - 1], doc.printer({n: names[k]}).doprint(outer)))
    s.show(*defs)
    s.say(
        "Differentiate one step at a time. In numerator layout each derivative has one row per entry of the "
        "quantity on top and one column per entry of the one below, so the factors multiply outermost first:"
    )
    seq = [doc.f, *names]
    eqs = [Eq(_d(a, b), local) for (a, b), (_, _, local) in zip(itertools.pairwise(seq), steps, strict=True)]
    last = _local(anchor, x, doc)
    if last is not None:
        eqs.append(Eq(_d(names[-1], doc.x()), last))
    s.show(*eqs)
    chain = " ".join(_d(a, b) for a, b in itertools.pairwise([*seq, doc.x()]))
    if last is None:
        s.say(
            f"The last factor, ${_d(names[-1], doc.x())}$, has no matrix form as a product here; reverse mode "
            "applies each step's transpose to the gradient instead (below). In all:"
        )
    else:
        s.say("and multiply:")
    s.show(Eq(_lhs(doc), chain))
    return s


def _replace(e: Node, old: Node, new: Node) -> Node:
    """``e`` with every ``old`` replaced by ``new`` (iterative: any depth)."""
    memo: dict[Node, Node] = {}
    for n in topo(e):
        if n == old:
            memo[n] = new
        else:
            args = tuple(memo[a] for a in n.args)
            memo[n] = n if args == n.args else node(n.op, *args, attr=n.attr)
    return memo[e]


def _local(e: Node, u: Node, doc: _Doc) -> str | None:
    """d e / d u in numerator layout, as LaTeX; None if no rule applies."""
    p = doc.printer()
    name, budget = u.attr[0], doc.budget
    try:
        if e.shape == ():
            g = gradient(e, name, budget)
            if g is None:
                return None
            g = simplify(g, budget)
            if u.ndim == 2:
                return p.doprint(simplify(node("T", g), budget))
            return p.row(g) if u.ndim == 1 else p.doprint(g)
        j = jacobian(e, name, u.shape, budget)
        return None if j is None else p.doprint(simplify(j, budget))
    except NoRule:
        return None


# ----- the matrix form -----


NAMED_OPS = frozenset({"fn", "softmax", "logsoftmax", "conv2d", "maxpool", "flatten", "matmul", "add", "inv"})
BIG_OPS = frozenset({"softmax", "logsoftmax", "maxpool", "flatten", "fn"})  # named in a long form even when used once


def _matrix_form(doc: _Doc) -> tuple[Section, LatexPrinter]:
    """The matrix form in both layouts, and the printer with the names it gave (for the update step)."""
    d = doc.d
    s = doc.section("Matrix form")
    if d.display is None:
        s.say(f"No rule gives a matrix form here ({d.note}); the element-wise form above is the answer.")
        return s, doc.p
    var_shape = d.shapes[d.wrt[0]]
    num = arrange(d.form, d.kind, Layout.NUMERATOR, var_shape)
    den = arrange(d.form, d.kind, Layout.DENOMINATOR, var_shape)
    p = _named(doc, num, den)
    _where(doc, s, p)
    lhs = _lhs(doc)
    x = doc.x()
    if d.kind == Kind.GRADIENT and var_shape:
        if len(var_shape) <= 2:
            shape = "is a row" if len(var_shape) == 1 else f"has the shape of ${x}^{{\\top}}$"
            s.say(f"Recognise the matrix form. In numerator layout ${lhs}$ {shape}:")
            s.show(Eq(lhs, p.row(num) if num.ndim == 1 else p.doprint(num)))
            s.say(f"The gradient is its transpose, shaped like ${x}$:")
        else:
            s.say(f"Recognise the matrix form: the gradient, shaped like ${x}$:")
        s.show(Eq(_gradient(doc), p.doprint(den)))
    elif d.kind == Kind.GRADIENT:
        s.say("Recognise the matrix form:")
        s.show(Eq(lhs, p.doprint(num)))
    else:
        s.say(f"Recognise the matrix form. In numerator layout, one row per entry of the output{_vec_note(doc)}:")
        s.show(Eq(lhs, p.doprint(num)))
        s.say("In denominator layout, one row per entry of the variable, it is the transpose:")
        s.show(Eq(f"\\left({lhs}\\right)^{{\\top}}", p.doprint(den)))
    for note in d.notes:
        s.say(tex_escape(note))
    return s, p


def _named(doc: _Doc, *roots: Node) -> LatexPrinter:
    """A printer that calls parts of ``roots`` by the document's names, innermost first.

    A part is named when it is used more than once, or when the whole form is too long for
    two rows and the part was named earlier in the write-up or is a function application
    (softmax, maxpool, relu, ...); then more parts, widest first, until every form fits.
    """
    q = doc.printer()
    repeated = {n for r in roots for n in shared([r])}  # within one form: both layouts hold every part
    chosen: list[Node] = []
    for n in (m for r in roots for m in topo(r)):
        if n in chosen or n.op not in NAMED_OPS or n.ndim < 1 or any(n is r for r in roots):
            continue
        if n in repeated and width(q.doprint(n)) > 6:
            chosen.append(n)
    long = not all(fits(Eq("F", q.doprint(r)), rows_at_most=2) for r in roots)
    if long:  # the parts named earlier in the write-up, and function applications
        for n in (m for r in roots for m in topo(r)):
            if n in chosen or any(n is r for r in roots) or not n.args or width(q.doprint(n)) <= 5:
                continue
            if n in doc.symbols.of or (n.op in BIG_OPS and n.ndim >= 1):
                chosen.append(n)
    names = {n: doc.symbols.latex(n) for n in _inner_first(chosen, roots)}
    p = doc.printer(names)
    candidates = [m for r in roots for m in topo(r) if m.args and m.ndim >= 1 and m not in names and m not in roots]
    while not all(fits(Eq("F", p.doprint(r)), rows_at_most=3) for r in roots) and candidates:
        if doc.budget is not None:
            doc.budget.check()
        widest = max(candidates, key=lambda m: width(p.doprint(m)))
        candidates.remove(widest)
        names[widest] = doc.symbols.latex(widest)
        p = doc.printer(names)
    return doc.printer({n: names[n] for n in _inner_first(list(names), roots)})


def _inner_first(chosen: list[Node], roots: Sequence[Node]) -> list[Node]:
    order = {n: k for k, n in enumerate(m for r in roots for m in topo(r))}
    return sorted(chosen, key=lambda n: order[n])


def _where(doc: _Doc, s: Section, p: LatexPrinter) -> None:
    """The definitions of the names a printer uses, before the form that uses them."""
    if not p.names:
        return
    order = {n: k for k, n in enumerate(p.names)}
    s.say("Name the parts that repeat or make the form long, innermost first:")
    eqs = []
    for n, name in sorted(p.names.items(), key=lambda kv: order[kv[0]]):
        others = {m: other for m, other in p.names.items() if m != n}
        eqs.append(Eq(name, doc.printer(others).doprint(n)))
    s.show(*eqs)


def _vec_note(doc: _Doc) -> str:
    """The vec convention, where a matrix is differentiated or differentiated by, in letters left free."""
    d = doc.d
    shapes = [d.problem.expr.shape] + [d.shapes[n] for n in d.wrt]
    if not any(len(s) > 1 for s in shapes):
        return ""
    a, b = doc.symbols.spare(2)
    x = latex_name(d.wrt[-1], vector=False)
    return (
        f"; $\\operatorname{{vec}}$ stacks columns, so $\\operatorname{{vec}}({a} \\, d{x} \\, {b}) = "
        f"({b}^{{\\top}} \\otimes {a}) \\operatorname{{vec}}(d{x})$"
    )


# ----- gradient descent -----


def _update(doc: _Doc, p: LatexPrinter) -> Section:
    """x <- x - gamma grad F, the step written as a person writes it (x - 2 gamma A^T (A x - b))."""
    d = doc.d
    s = doc.section("Gradient descent")
    x = doc.x()
    den = arrange(d.form, d.kind, Layout.DENOMINATOR, d.shapes[d.wrt[0]])
    c, rest = split_coef(den)
    sign = "-" if c > 0 else "+"
    c = abs(sp.S(c))
    coef = "\\gamma" if c == 1 else f"{p.number(c)[0]} \\gamma"
    body = p.wrap(rest, MUL) if rest.shape != () or rest.op != "const" else ""
    step = f"{x} {sign} {coef} {body}".rstrip()
    with_names = " (with the names above)" if p.names else ""
    s.say(f"With a learning rate $\\gamma$, each step moves against the gradient{with_names}:")
    s.show(Eq(f"{x} \\leftarrow {x} - \\gamma \\, {_gradient(doc)}", step))
    return s


# ----- what was proven -----


def _at(shapes: Mapping[str, tuple[int, ...]], d: Derivation) -> str:
    p = LatexPrinter()
    parts = []
    for n, s in shapes.items():
        size = " \\times ".join(map(str, s)) if s else "1"
        parts.append(f"${p.doprint(var(n, d.shapes[n]))}$ of size ${size}$")
    return ", ".join(parts)


def _proof(d: Derivation, doc: _Doc) -> Section:
    s = doc.section("What was proven")
    pr = d.proof
    at = _at(pr.shapes, d)
    p = doc.printer()
    for v, kind in d.structure.items():
        x = p.doprint(var(v, d.shapes[v]))
        e = v.lower()
        if kind == "symmetric":
            s.say(
                f"${x}$ is written out with ${e}_{{ij}} = {e}_{{ji}}$, one symbol per pair: a partial derivative"
                f" by an off-diagonal ${e}_{{ij}}$ counts both entries, so the gradient's $(i, j)$ entry is half of it."
            )
        else:
            s.say(
                f"${x}$ is written out with zeros off its diagonal, so only diagonal entries have partial derivatives."
            )
    if pr.status == "proven" and pr.exact:
        s.say(
            f"The matrix form, written out entry by entry with {at}, equals the element-wise derivative "
            f"(every partial derivative by the scalar chain rule), exactly: all {pr.entries} entries agree as "
            "rational functions of the entries."
        )
    elif pr.status == "proven":
        s.say(
            f"The matrix form, written out entry by entry with {at}, equals the element-wise derivative at "
            f"independent random points modulo the prime $2^{{61}} - 1$: all {pr.entries} entries agree, so the "
            f"two differ with probability at most $2^{{-{pr.bits}}}$ (Schwartz-Zippel)."
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
_TEX_ESCAPES = MappingProxyType(
    {
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
)
_BREAK_AFTER = frozenset("(,@+*")
LONG_WORD = 24  # characters of source without a space, past which \texttt may break it


#: the Unicode derive's plain-text notes use, as LaTeX math (which the Markdown's KaTeX renders too)
_TEX_UNICODE = MappingProxyType({
    "∘": r"$\circ$", "′": "'", "″": "''", "σ": r"$\sigma$", "‖": r"$\|$", "⊗": r"$\otimes$", "−": "-",
    "≥": r"$\geq$", "≤": r"$\leq$", "𝟏": r"$\mathbf{1}$", "∑": r"$\sum$", "Σ": r"$\Sigma$", "⋆": r"$\star$",
})  # fmt: skip
_SUPERSCRIPTS = MappingProxyType({"ᵀ": r"\top ", "²": "2", "⁻": "-", "¹": "1"})


def _tex_char(c: str) -> str:
    if c in _TEX_ESCAPES:
        return _TEX_ESCAPES[c]
    if c in _TEX_UNICODE:
        return _TEX_UNICODE[c]
    if c.isascii():
        return c
    plain = unicodedata.normalize("NFKC", c)  # a full-width letter as the letter Python reads
    return plain if plain.isascii() else f"[U+{ord(c):04X}]"


def tex_escape(text: str) -> str:
    """Plain text safe inside LaTeX: specials escaped, derive's own Unicode as LaTeX math (a run of
    superscripts as one, ⁻¹ as ^{-1}; neighbouring pieces of math as one, never ``$$``), other characters in
    their compatibility form (a full-width letter as the letter Python reads), else as a code point."""
    pieces: list[str] = []
    for run_is_super, run in itertools.groupby(text, lambda c: c in _SUPERSCRIPTS):
        if run_is_super:
            pieces.append("$^{" + "".join(_SUPERSCRIPTS[c] for c in run) + "}$")
        else:
            pieces.extend(map(_tex_char, run))
    out = ""
    for piece in pieces:
        math = piece.startswith("$") and piece.endswith("$") and len(piece) > 1
        if math and out.endswith("$") and not out.endswith("\\$") and len(out) > 1:
            out = out[:-1] + piece[1:]  # x$\|$$^{2}$ -> x$\|^{2}$
        else:
            out += piece
    return out


def tex_source(text: str) -> str:
    """The expression's source for ``\\texttt``: escaped; a long run without spaces may break after ( , @ + *."""
    words = []
    for w in text.split(" "):
        long = len(w) > LONG_WORD
        words.append("".join(_tex_char(c) + ("\\allowbreak{}" if long and c in _BREAK_AFTER else "")
                             for c in w))  # fmt: skip
    return " ".join(words)


def _title(d: Derivation, p: LatexPrinter) -> str:
    """The title, with the expression when it fits on the line (in the title's larger type)."""
    expr = p.doprint(d.problem.expr)
    if (width(expr) + 8.5) * TITLE_SCALE <= ROOM + 2:
        return f"The {d.kind.title} of ${expr}$"
    by = " and ".join(f"${p.doprint(var(n, d.shapes[n]))}$" for n in dict.fromkeys(d.wrt))
    return f"The {d.kind.title} by {by}"


def documents(
    d: Derivation,
    name: str,
    formats: tuple[str, ...] = FORMATS,
    sizes: Mapping[str, int] | None = None,
    transpose: str = "top",
    vec_form: bool = False,
    budget: Budget | None = None,
) -> dict[str, str]:
    """File name -> contents for the requested formats (tex gives a document and a fragment).

    ``budget`` (CPU time) bounds the element-wise sections and the chain rule (see :func:`sections`).
    """
    out: dict[str, str] = {}
    if {"tex", "md"} & set(formats):
        secs = sections(d, sizes, transpose, budget)
        p = LatexPrinter(transpose=transpose)
        by = " and ".join(f"${p.doprint(var(n, d.shapes[n]))}$" for n in dict.fromkeys(d.wrt))
        context = {"mark": GENERATED_MARK, "title": _title(d, p), "sections": secs, "by": by}
        if "tex" in formats:
            out[f"{name}.tex"] = render("writeup.tex.j2", source=tex_source(d.expr), **context)
            out[f"{name}.fragment.tex"] = render("fragment.tex.j2", **context)
        if "md" in formats:
            out[f"{name}.md"] = render("writeup.md.j2", source_md=d.expr, by_md=by, **context)
    if "py" in formats:
        out[f"{name}.py"] = d.numpy_source(name, vec_form=vec_form)
    return out
