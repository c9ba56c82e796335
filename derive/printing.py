"""Printers: numpy code, LaTeX and plain text.

Every printer walks a tree with :meth:`Printer.doprint`; how each op
prints is part of the op's definition in :mod:`derive.ops` (its ``numpy``
and ``math`` pieces), and the printer classes supply only notation: how a
transpose, a product or a function application looks. An op a printer has
no form for raises :class:`PrintError` naming it, never a silent fallback.
Each op's printer returns the text and its precedence, so parentheses
appear only where they are needed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import ClassVar

import sympy as sp
from sympy.printing.latex import LatexPrinter as SympyLatexPrinter

from .ir import Node
from .ops import OPS
from .ops.base import MissingPiece
from .ops.functions import FUNCTIONS
from .prec import ADD, ATOM, MUL, POSTFIX, UNARY


class PrintError(MissingPiece):
    """A printer met an op (or a case of one) it cannot print."""


class Printer:
    """Dispatch on the op's ``facet`` piece; ``names`` maps subexpressions to short names.

    Each op's piece prints its operands by calling back into the printer, but the printer
    never recurses on the depth of a tree: :meth:`prec` first prints every operand below,
    innermost first, and keeps the results, so a piece's calls find its operands done. Ops in
    ``contextual`` print differently under different parents; they are printed when their
    parent asks (their own operands are done by then).
    """

    facet = ""
    contextual: frozenset[str] = frozenset()

    def __init__(self, names: Mapping[Node, str] | None = None) -> None:
        self.names = dict(names or {})
        self.stack: list[Node] = []
        self.done: dict[Node, tuple[str, int]] = {}

    def name(self, e: Node, text: str) -> None:
        """Call ``e`` by ``text`` from now on. Name inner parts before outer ones (as code is written): then
        nothing printed so far contains ``e``, and only ``e``'s own text is forgotten."""
        self.names[e] = text
        self.done.pop(e, None)

    def doprint(self, e: Node) -> str:
        return self.prec(e)[0]

    def prec(self, e: Node) -> tuple[str, int]:
        if e in self.names:
            return self.names[e], ATOM
        if e in self.done:
            return self.done[e]
        for n in self._below(e):
            self.done[n] = self._show(n)
        out = self._show(e)
        if not self.is_contextual(e):
            self.done[e] = out
        return out

    def is_contextual(self, e: Node) -> bool:
        """Whether ``e`` prints differently under different parents (then it is printed when its parent asks)."""
        return e.op in self.contextual

    def _below(self, e: Node) -> list[Node]:
        """The operands under ``e`` not printed yet, innermost first (iterative: any depth)."""
        out: list[Node] = []
        seen: set[Node] = set()
        stack: list[tuple[Node, bool]] = [(a, False) for a in reversed(e.args)]
        while stack:
            n, ready = stack.pop()
            if ready:
                if not self.is_contextual(n):
                    out.append(n)
                continue
            if n in seen or n in self.done or n in self.names:
                continue
            seen.add(n)
            stack.append((n, True))
            stack.extend((a, False) for a in reversed(n.args))
        return out

    def _show(self, e: Node) -> tuple[str, int]:
        try:
            show = OPS[e.op].piece(self.facet)
        except MissingPiece as m:
            raise PrintError(str(m)) from None
        self.stack.append(e)
        try:
            return show(self, e)
        finally:
            self.stack.pop()

    @property
    def parent(self) -> Node | None:
        """The node being printed around the current one."""
        return self.stack[-2] if len(self.stack) > 1 else None

    def wrap(self, e: Node, above: int, strict: bool = False) -> str:
        """``e`` printed, in parentheses if it binds looser than ``above``."""
        s, p = self.prec(e)
        return self.paren(s) if p < above or (strict and p == above) else s

    def paren(self, s: str) -> str:
        return f"({s})"


# ----- numpy -----


def number(c: sp.Expr) -> str:
    """A number as Python source: 2, 0.5, 1 / 3."""
    c = sp.S(c)
    if c.is_Integer:
        return str(int(c))
    if c.is_Rational:
        f = float(c)
        return repr(f) if sp.Rational(repr(f)) == c else f"{c.p} / {c.q}"
    return repr(float(c))


class NumpyPrinter(Printer):
    """numpy source for an expression; ``dims`` maps dimension symbols to code (``A.shape[0]``) and
    ``shapes`` gives each argument's shape (so a shape that is an argument's prints as ``A.shape``)."""

    facet = "numpy"
    contextual = frozenset({"broadcast"})  # numpy broadcasts an operand of + * maximum minimum by itself

    def is_contextual(self, e: Node) -> bool:
        """Also a function with a mask form (relu' as ``t > 0``): a boolean factor inside a product only."""
        return super().is_contextual(e) or (e.op == "fn" and e.attr[1] == 0 and bool(FUNCTIONS[e.attr[0]].mask))

    def __init__(self, dims: Mapping[sp.Expr, str], names: Mapping[Node, str] | None = None,
                 shapes: Mapping[str, tuple] | None = None) -> None:  # fmt: skip
        super().__init__(names)
        self.dims = dict(dims)
        self.shapes = dict(shapes or {})
        self.helpers: list[str] = []

    def use(self, helper: str) -> str:
        """Record that the module needs ``helper`` (see :mod:`derive.numpy_helpers`)."""
        if helper not in self.helpers:
            self.helpers.append(helper)
        return helper

    def number_code(self, c: sp.Expr) -> tuple[str, int]:
        """A coefficient as code: a number, or a dimension read from a shape (the m of 1 - m softmax(y))."""
        c = sp.S(c)
        if c.free_symbols:
            negative = c.could_extract_minus_sign()
            num, den = sp.fraction(sp.together(-c if negative else c))  # 3m/2 is 1.5 m: true division, not //
            text = self.dim(num) if den == 1 else f"{self._factor(num)} / {self._factor(den)}"
            if not re.fullmatch(r"[\w.\[\]]+", text):
                text = f"({text})"
            return ("-" + text, UNARY) if negative else (text, ATOM)
        s = number(c)
        return s, (UNARY if s.startswith("-") else MUL if "/" in s else ATOM)

    def dim(self, d: sp.Expr) -> str:
        """A dimension as code: ``A.shape[0]``, ``X.shape[1] - K.shape[2] + 1``, ``(...) // 2``."""
        d = sp.S(d)
        if d.is_Integer:
            return str(int(d))
        if d in self.dims:
            return self.dims[d]
        num, den = sp.fraction(sp.together(d))
        if den != 1:
            return f"({self.dim(num)}) // {self.dim(den)}"
        if d.is_Pow and d.exp.is_Integer and d.exp > 0:
            return " * ".join([self._factor(d.base)] * int(d.exp))
        if d.is_Mul:
            return " * ".join(self._factor(f) for f in d.as_ordered_factors())
        if d.is_Add:
            terms = []
            for t in d.as_ordered_terms():
                c, rest = t.as_coeff_Mul()
                text = self.dim(rest) if rest != 1 else str(abs(int(c)))
                if rest != 1 and abs(c) != 1:
                    text = f"{abs(int(c))} * {text}"
                sign = "-" if c < 0 else "+"
                terms.append((sign, text))
            out = ("-" if terms[0][0] == "-" else "") + terms[0][1]
            return out + "".join(f" {s} {t}" for s, t in terms[1:])
        raise PrintError(f"no variable carries the dimension {d}")

    def _factor(self, d: sp.Expr) -> str:
        text = self.dim(d)
        return f"({text})" if sp.S(d).is_Add else text

    def shape(self, shape: tuple) -> str:
        """A shape as code: ``A.shape`` or ``K.shape[2:]`` where it is (the end of) an argument's, ``t1.shape``
        where it is a named part's, else a tuple of dimensions."""
        shape = tuple(sp.S(d) for d in shape)
        for code, whole in self.shapes.items():
            for i in range(len(whole)):
                if len(whole) - i == len(shape) and all(sp.S(a) == b for a, b in zip(whole[i:], shape, strict=True)):
                    return f"{code}.shape" + (f"[{i}:]" if i else "")
        for n, code in self.names.items():
            if (
                len(shape) > 1
                and n.ndim == len(shape)
                and all(sp.S(a) == b for a, b in zip(n.shape, shape, strict=True))
            ):
                return f"{code}.shape"
        inner = ", ".join(self.dim(d) for d in shape)
        return f"({inner},)" if len(shape) == 1 else f"({inner})"

    def call(self, f: str, *args: Node) -> tuple[str, int]:
        return f"{f}({', '.join(self.doprint(a) for a in args)})", ATOM

    def size_hint(self, d: sp.Expr) -> int:
        """A dimension's size for ordering products: its value, or 1000 when symbolic."""
        d = sp.S(d)
        return int(d) if d.is_Integer else 1000

    @property
    def implicit_broadcast(self) -> bool:
        """Whether the broadcast being printed is an operand numpy broadcasts by itself."""
        p = self.parent
        if p is None or p.op not in ("add", "mul", "maximum", "minimum"):
            return False
        return any(a.shape == p.shape and a.op != "broadcast" for a in p.args)


# ----- mathematics: LaTeX and plain text -----


class MathPrinter(Printer):
    """Formulas as a person writes them; subclasses supply the notation.

    Vectors are columns: ``x @ A`` prints as x^T A, ``x @ y`` as x^T y.
    """

    facet = "math"
    T = "ᵀ"
    INV = "⁻¹"
    INV_T = "⁻ᵀ"
    HADAMARD = " ∘ "
    OSLASH = " ⊘ "
    KRON = " ⊗ "
    TIMES = " "
    ONES = "𝟏"
    EYE = "I"
    SQUARED = "²"
    STAR = " ⋆ "
    SPATIAL_SUM = "Σᵢⱼ"

    # ----- notation hooks -----
    def name(self, e: Node) -> str:
        return e.attr[0]

    def fname(self, name: str, order: int) -> str:
        return name + "′" * order

    def op(self, name: str) -> str:
        return name

    def apply(self, f: str, inner: str) -> str:
        return f"{f}({inner})"

    def subscript(self, label: str) -> str:
        return f"_{label}"

    def power(self, base: str, p: str, hadamard: bool) -> str:
        return f"{base}^{'∘' if hadamard else ''}{p}"

    def norm_text(self, inner: str) -> str:
        return f"‖{inner}‖"

    def frac(self, num: str, den: str) -> str:
        return f"{num}/({den})" if " " in den and not den.startswith("(") else f"{num}/{den}"

    def num(self, c: sp.Expr) -> str:
        return str(c)

    def commutation(self, m: str, n: str) -> str:
        return f"K({m},{n})"

    def dimtext(self, d: sp.Expr) -> str:
        return str(d)

    FRAC_PAREN = True  # 2/n before a factor needs parentheses in plain text: (2/n) x

    def join(self, *parts: str) -> str:
        """Juxtaposition: a product written without a sign."""
        out = parts[0]
        for right in parts[1:]:
            out = self._join(out, right)
        return out

    def _join(self, left: str, right: str) -> str:
        return left + self.TIMES + right

    def number(self, c: sp.Expr) -> tuple[str, int]:
        c = sp.S(c)
        if c.is_Rational and not c.is_Integer:
            s = self.frac(self.num(abs(c.p)), self.num(c.q))
            return ("-" + s, UNARY) if c < 0 else (s, MUL)
        s = self.num(c)
        return s, (UNARY if s.startswith("-") else ATOM)

    def row(self, v: Node) -> str:
        """A 1-D vector written as a row: x -> x^T, A y -> y^T A^T, 2 A y -> 2 y^T A^T (iterative)."""
        from .ops.algebra import split_coef

        steps: list[tuple[str, object]] = []  # outermost first: ("coef", c) or ("right", A^T's text)
        while True:
            c, rest = split_coef(v)
            if c != 1 and rest.ndim == 1:
                steps.append(("coef", c))
                v = rest
            elif v.op == "matmul" and v.args[0].ndim == 2 and v.args[1].ndim == 1 and v not in self.names:
                steps.append(("right", self.wrap(_transposed(v.args[0]), MUL)))
                v = v.args[1]
            else:
                break
        out = self.wrap(v, POSTFIX, strict=True) + self.T
        for kind, x in reversed(steps):
            if kind == "right":
                out = self.join(out, x)
            elif x == -1:
                out = "-" + out
            else:
                out = self.join(self.number(x)[0], out)
        return out


def _transposed(a: Node) -> Node:
    from .simplify import simplify

    return simplify(Node("T", (a,), None, tuple(reversed(a.shape))))


_SUBSCRIPT_DIGITS = MappingProxyType(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


class TextPrinter(MathPrinter):
    """Plain Unicode for a terminal: 2 Aᵀ(A x - b)."""

    PRIMES: ClassVar[tuple[str, ...]] = ("", "′", "″", "‴")

    def fname(self, name: str, order: int) -> str:
        return FUNCTIONS[name].text + (self.PRIMES[order] if order < 4 else f"^({order})")

    def subscript(self, label: str) -> str:
        return label.translate(_SUBSCRIPT_DIGITS) if label.isdigit() else f"_{label}"

    def _join(self, left: str, right: str) -> str:
        return left + ("" if right.startswith("(") else self.TIMES) + right


class LatexPrinter(MathPrinter):
    """LaTeX with amsmath: bold vectors, \\odot, \\otimes, \\operatorname{diag}.

    ``transpose`` is ``"top"`` (A^{\\top}, the default) or ``"T"`` (A^T).
    """

    FRAC_PAREN = False
    HADAMARD = " \\odot "
    OSLASH = " \\oslash "
    KRON = " \\otimes "
    TIMES = " "
    ONES = "\\mathbf{1}"
    EYE = "I"
    INV = "^{-1}"
    SQUARED = "^{2}"
    STAR = " \\star "
    SPATIAL_SUM = "\\sum_{i,j}"
    KNOWN: ClassVar[Mapping[str, str]] = MappingProxyType(
        {"det": "\\det", "log": "\\log", "sqrt": "\\sqrt", "tr": "\\operatorname{tr}", "max": "\\max", "min": "\\min"}
    )

    def __init__(self, names: Mapping[Node, str] | None = None, transpose: str = "top") -> None:
        super().__init__(names)
        if transpose not in ("top", "T"):
            raise ValueError(f"transpose must be 'top' or 'T', got {transpose!r}")
        mark = "\\top" if transpose == "top" else "T"
        self.transpose = transpose
        self.T = f"^{{{mark}}}"
        self.INV_T = f"^{{-{mark}}}"

    def name(self, e: Node) -> str:
        return latex_name(e.attr[0], vector=len(e.attr[1]) == 1)

    def fname(self, name: str, order: int) -> str:
        base = FUNCTIONS[name].latex
        return base + "'" * order if order < 3 else f"{base}^{{({order})}}"

    def op(self, name: str) -> str:
        return self.KNOWN.get(name, f"\\operatorname{{{name}}}")

    def subscript(self, label: str) -> str:
        return f"_{{{label}}}" if label.isdigit() else f"_{{\\mathrm{{{label}}}}}"

    def apply(self, f: str, inner: str) -> str:
        if f == "\\sqrt":
            return f"\\sqrt{{{inner}}}"
        return f"{f}\\left({inner}\\right)"

    def power(self, base: str, p: str, hadamard: bool) -> str:
        mark = "\\circ " if hadamard else ""
        return f"{base}^{{{mark}{p}}}"

    def norm_text(self, inner: str) -> str:
        return f"\\left\\| {inner} \\right\\|_2"

    def frac(self, num: str, den: str) -> str:
        return f"\\frac{{{num}}}{{{den}}}"

    def paren(self, s: str) -> str:
        return f"\\left({s}\\right)"

    def commutation(self, m: str, n: str) -> str:
        return f"K_{{{m}{n}}}"

    def dimtext(self, d: sp.Expr) -> str:
        return latex_dim(d)


def latex_name(name: str, vector: bool) -> str:
    """W1 -> W_{1}, x -> \\mathbf{x}, b_out -> \\mathbf{b}_{\\mathrm{out}}; any other name the parser
    accepts (x__, x_1_2, W1_b, x_) literally, its underscores escaped: \\mathit{x\\_1\\_2}.

    Names are ASCII letters, digits and underscores (the parser refuses others), so nothing here
    is a LaTeX command: ``frac`` is the letters f r a c. The write-up's own letters for named
    results may be Greek, given as their commands (``\\xi``, ``\\xi2``), never from the input.
    """
    if not re.fullmatch(r"\\?[A-Za-z][A-Za-z0-9_]*", name):
        raise PrintError(f"no LaTeX form for the name {name!r}")
    base, _, sub = name.partition("_")
    digits = ""
    while len(base) > 1 and base[-1].isdigit():
        digits = base[-1] + digits
        base = base[:-1]
    if "_" in sub or (digits and sub) or name.endswith("_"):  # W1_b, x_1_2, x__, x_: the name as written
        text = name.replace("_", "\\_")
        return f"\\mathbf{{{text}}}" if vector else f"\\mathit{{{text}}}"
    sub = sub or digits
    core = f"\\mathbf{{{base}}}" if vector else base
    if sub:
        sub = sub if sub.isdigit() else f"\\mathrm{{{sub}}}"
        return f"{core}_{{{sub}}}"
    return core


def latex_dim(d: sp.Expr) -> str:
    """A dimension in LaTeX, its symbols named as :func:`latex_name` names them (SymPy would read
    ``n__2`` as n squared)."""
    d = sp.S(d)
    return sp.latex(d, symbol_names={s: latex_name(str(s), vector=False) for s in d.free_symbols})


class EntryLatexPrinter(SympyLatexPrinter):
    """SymPy's LaTeX for scalar entries, except that an unknown object is an error.

    SymPy's own printer writes an object it does not know as
    ``\\mathtt{\\text{...}}``, which would put an internal dump in a paper.
    """

    def emptyPrinter(self, expr: object) -> str:
        raise PrintError(f"no LaTeX form for {type(expr).__name__}")


__all__ = ["ADD", "Callable", "EntryLatexPrinter", "LatexPrinter", "NumpyPrinter", "PrintError", "TextPrinter"]


# ----- names for repeated parts -----

NAMEABLE = frozenset({"fn", "softmax", "logsoftmax", "logsumexp", "conv2d", "maxpool", "add", "matmul", "inv"})
_LETTERS = MappingProxyType({"softmax": "p", "logsoftmax": "q", "sigmoid": "s", "tanh": "h", "relu": "h",
                             "conv2d": "z", "maxpool": "z"})  # fmt: skip
_SPARE = ("u", "v", "r", "q", "g", "t", "a", "c", "d", "e")


def repeated_parts(roots: list[Node], taken: set[str], printer: MathPrinter) -> dict[Node, str]:
    """Short names for the parts of ``roots`` written more than once: (diag(p) - p pᵀ) W, where p = softmax(W x).

    A part is named when it occurs at least twice (as written out, not merely shared), is a function
    application or a compound product or sum, and is long (10 characters) or occurs three times. Names avoid
    ``taken`` (the expression's variables); vectors are lower-case, matrices upper-case.
    """
    # occurrences as written out, parents before children (each occurrence of a parent writes its
    # operands once more), capped at 3: linear in the DAG, however much of it is shared
    nodes = topo_all(roots)
    count: dict[Node, int] = dict.fromkeys(nodes, 0)
    for r in roots:
        count[r] = min(count[r] + 1, 3)
    for n in reversed(nodes):
        for a in n.args:
            count[a] = min(count[a] + count[n], 3)
    names: dict[Node, str] = {}
    used = {t.lower() for t in taken}
    order = [n for n in reversed(nodes) if count[n] > 1]
    for n in order:
        size = len(printer.doprint(n))
        if n.op not in NAMEABLE or n.ndim == 0 or size < 7 or (count[n] < 3 and size < 10):
            continue  # short parts written twice read best inline: (S x - y) xᵀ + x(S x - y)ᵀ
        if any(n in _subtree_once(m) for m in names):  # already inside a named part
            continue
        kind = n.attr[0] if n.op == "fn" else n.op
        for letter in (_LETTERS.get(kind, "u"), *_SPARE):
            if letter not in used:
                used.add(letter)
                names[n] = letter.upper() if n.ndim == 2 else letter
                break
    return names


def _subtree_once(n: Node) -> list[Node]:
    from .ir import topo

    return topo(n)[:-1]


def topo_all(roots: list[Node]) -> list[Node]:
    from .ir import topo

    out: dict[Node, None] = {}
    for r in roots:
        for n in topo(r):
            out[n] = None
    return list(out)
