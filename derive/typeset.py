"""Display equations that fit the page: a width estimate of LaTeX math, and line breaks.

The write-up's equations are LaTeX made by derive's printers and by SymPy's. To keep each
inside the text width, :func:`parse` reads such a string into items (glyphs, ``{...}``
groups, ``\\left( ... \\right)`` pairs, fractions, matrices, each with its scripts),
:func:`width` estimates how wide it typesets, in em (calibrated against pdflatex on the
write-ups: within a few per cent, a little generous), and :func:`rows` breaks an equation
into rows for ``align*`` or ``aligned``, as printed mathematics is broken:

1. at top-level sums, the operator starting the new row;
2. between the factors of a product too wide for a row, the new row starting with ``\\times``;
3. inside the widest parenthesis of a factor too wide itself (``\\left``/``\\right`` cannot
   span rows, so the pair becomes a sized ``\\bigl( ... \\bigr)``);
4. a fraction too wide, a/b, as (1/b) a, breaking a.

Rows align on the relation (``lhs &= ...``); continued rows are indented by a quad per level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

# ----- reading LaTeX into items -----

BINARY = frozenset({"+", "-", "\\odot", "\\otimes", "\\cdot", "\\times", "\\star", "\\circ", "\\oslash", "\\pm"})
RELATIONS = frozenset({"=", "\\leftarrow", "\\to", "\\approx", "\\le", "\\ge", "\\leq", "\\geq", "<", ">", "\\ne"})
SPACES = MappingProxyType({"\\,": 3 / 18, "\\:": 4 / 18, "\\;": 5 / 18, "\\!": -3 / 18, "\\quad": 1.0,
                           "\\qquad": 2.0, "\\ ": 0.33})  # fmt: skip
ONE_ARG = frozenset(
    {"\\mathbf", "\\mathrm", "\\operatorname", "\\text", "\\mathbb", "\\mathcal", "\\boldsymbol", "\\mathit",
     "\\overline", "\\hat", "\\tilde", "\\bar", "\\vec", "\\textrm", "\\mathtt", "\\vphantom", "\\phantom"}
)  # fmt: skip
TWO_ARGS = frozenset({"\\frac", "\\dfrac", "\\tfrac", "\\binom"})
SIZED = MappingProxyType({"big": 0.45, "Big": 0.6, "bigg": 0.75, "Bigg": 0.82})  # a sized delimiter's width
FUNCTION_NAMES = frozenset(
    {"\\sigma", "\\tanh", "\\log", "\\exp", "\\sin", "\\cos", "\\det", "\\max", "\\min", "\\sqrt", "\\ln", "\\delta"}
)

# Widths in em at the body size, measured on Computer Modern at 11 pt.
UPPER = 0.75  # an italic capital
LOWER = 0.52  # an italic lowercase letter or a digit
NARROW = 0.36  # i, j, l, f, t, 1 and punctuation
WIDE = 0.78  # m, w
BOLD = 1.12  # bold over italic
SCRIPT = 0.72  # the size of a sub- or superscript
SCRIPT_WIDTH = 0.8  # a script's glyphs are drawn wider than a scaled body glyph
SLACK = 1.04  # the estimate over what pdflatex measures
DELIMITER = 0.39  # a parenthesis; taller ones are wider
OPERATOR_SPACE = 2 * 4 / 18  # around + - ⊙ ⊗ (medium spaces)
RELATION_SPACE = 2 * 5 / 18  # around = ← (thick spaces)
COMMANDS = MappingProxyType(
    {"\\top": 0.78, "\\partial": 0.57, "\\nabla": 0.83, "\\cdots": 1.34, "\\ldots": 1.2, "\\infty": 1.0,
     "\\prime": 0.28, "\\|": 0.5, "\\{": 0.5, "\\}": 0.5, "\\lVert": 0.5, "\\rVert": 0.5, "\\sum": 1.45,
     "\\prod": 1.3, "\\gamma": 0.55, "\\delta": 0.48, "\\sigma": 0.6, "\\star": 0.5, "\\gets": 1.0, "\\dots": 1.2,
     "\\vdots": 0.3, "\\ddots": 1.2, "\\%": 0.83, "\\xi": 0.5}
)  # fmt: skip
WORDS = frozenset({"\\log", "\\exp", "\\det", "\\max", "\\min", "\\sin", "\\cos", "\\tanh", "\\ln", "\\tr"})


@dataclass
class Item:
    """One piece of a formula, with its sub- and superscript.

    ``kind`` is glyph, bin (binary operator), rel, punct, space, group ``{...}``, delim
    (``\\left ... \\right``), frac, cmd (a command with an argument), env (a matrix) or
    sized (``\\bigl(``); ``src`` is its LaTeX, scripts included.
    """

    kind: str
    src: str
    parts: list[list[Item]] = field(default_factory=list)  # a group's or delim's body; a fraction's two parts
    base: float = 0.0  # the width of a glyph or a space
    head: str = ""  # a delim's "\left(", a command's name, an environment's name
    tail: str = ""  # a delim's "\right)"
    cells: list[list[list[Item]]] = field(default_factory=list)  # a matrix's rows of cells
    sub: list[Item] | None = None
    sup: list[Item] | None = None
    scripts: str = ""  # the LaTeX of the scripts, the end of ``src``


class _Reader:
    """A recursive-descent reader over the LaTeX that derive and SymPy print."""

    def __init__(self, s: str) -> None:
        self.s = s
        self.i = 0

    def peek(self) -> str:
        return self.s[self.i : self.i + 1]

    def skip(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \n\t":
            self.i += 1

    def command(self) -> str:
        """``\\name`` (or ``\\operatorname*``), or a one-character command such as ``\\,``."""
        j = self.i + 1
        if j < len(self.s) and self.s[j].isalpha():
            while j < len(self.s) and self.s[j].isalpha():
                j += 1
            j += self.s[j : j + 1] == "*"
        else:
            j += 1
        out, self.i = self.s[self.i : j], j
        return out

    def delimiter(self) -> str:
        """What follows ``\\left``, ``\\right`` or ``\\bigl``: ``(``, ``.``, ``\\|``."""
        self.skip()
        if self.peek() == "\\":
            return self.command()
        self.i += 1
        return self.s[self.i - 1]

    def raw_group(self) -> str:
        """The text of a ``{...}`` argument, braces included, or of one token."""
        self.skip()
        start = self.i
        if self.peek() != "{":
            if self.peek() == "\\":
                self.command()
            else:
                self.i += 1
            return self.s[start : self.i]
        depth = 0
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\\":
                self.i += 2
                continue
            depth += (c == "{") - (c == "}")
            self.i += 1
            if depth == 0:
                break
        return self.s[start : self.i]

    def sequence(self, stop: str = "") -> list[Item]:
        items: list[Item] = []
        while True:
            self.skip()
            if self.i >= len(self.s) or (stop and self.s.startswith(stop, self.i)):
                return items
            c = self.peek()
            if c == "'" and items:  # a prime belongs to what it follows: sigma'
                self.i += 1
                items[-1].src += c
                items[-1].base += 0.28
                continue
            if c in "^_":
                self.i += 1
                start = self.i
                arg = self.argument()
                if not items:
                    items.append(Item("glyph", ""))
                last = items[-1]
                if c == "_":
                    last.sub = arg
                else:
                    last.sup = arg
                text = c + self.s[start : self.i]
                last.scripts += text
                last.src += text
                continue
            items.append(self.item())

    def argument(self) -> list[Item]:
        """A script's or command's argument: a braced group's items, or one item."""
        self.skip()
        if self.peek() == "{":
            self.i += 1
            out = self.sequence("}")
            self.i += 1
            return out
        return [self.item()]

    def item(self) -> Item:
        start, c = self.i, self.peek()
        if c == "{":
            self.i += 1
            body = self.sequence("}")
            self.i += 1
            return Item("group", self.s[start : self.i], [body])
        if c == "\\":
            return self.after_command(self.command(), start)
        self.i += 1
        if c in "+-":
            return Item("bin", c)
        if c in "=<>":
            return Item("rel", c)
        if c in ",;":
            return Item("punct", c)
        if c == "&":
            return Item("space", c)
        return Item("glyph", c, base=_glyph_width(c))

    def after_command(self, name: str, start: int) -> Item:
        if name == "\\left":
            head = "\\left" + self.delimiter()
            body = self.sequence("\\right")
            self.command()
            tail = "\\right" + self.delimiter()
            return Item("delim", self.s[start : self.i], [body], head=head, tail=tail)
        size = name.strip("\\").rstrip("lr")
        if size in SIZED:
            d = self.delimiter()
            return Item("sized", self.s[start : self.i], base=SIZED[size] if d != "." else 0.0, head=name)
        if name in TWO_ARGS:
            parts = [self.argument(), self.argument()]
            return Item("frac", self.s[start : self.i], parts, head=name)
        if name == "\\sqrt":
            self.skip()
            if self.peek() == "[":
                self.i = self.s.index("]", self.i) + 1
            body = self.argument()
            return Item("cmd", self.s[start : self.i], [body], head=name)
        if name in ONE_ARG or name == "\\operatorname*":
            text = self.raw_group()
            inner = _Reader(text[1:-1] if text.startswith("{") else text).sequence()
            return Item("cmd", self.s[start : self.i], [inner], head=name.rstrip("*"))
        if name == "\\begin":
            env = self.raw_group().strip("{}")
            end = _matching_end(self.s, self.i, env)
            body, self.i = self.s[self.i : end], end + len(f"\\end{{{env}}}")
            cells = [[_Reader(cell).sequence() for cell in _split_top(row, "&")] for row in _rows(body)]
            return Item("env", self.s[start : self.i], head=env, cells=cells)
        if name in SPACES:
            return Item("space", name, base=SPACES[name])
        if name in BINARY:
            return Item("bin", name)
        if name in RELATIONS:
            return Item("rel", name)
        if name == "\\\\":
            return Item("space", name)
        return Item("glyph", name, base=_command_width(name))


def _matching_end(s: str, i: int, env: str) -> int:
    """Where the ``\\end{env}`` closing the environment begun before ``i`` starts."""
    depth = 1
    begin, end = f"\\begin{{{env}}}", f"\\end{{{env}}}"
    while True:
        b, e = s.find(begin, i), s.find(end, i)
        if e < 0:
            raise ValueError(f"no \\end{{{env}}}")
        if 0 <= b < e:
            depth, i = depth + 1, b + len(begin)
            continue
        depth -= 1
        if depth == 0:
            return e
        i = e + len(end)


def _split_top(s: str, sep: str) -> list[str]:
    """``s`` split at ``sep`` outside braces and nested environments."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(s):
        if s.startswith("\\begin", i):
            depth += 1
        elif s.startswith("\\end", i):
            depth -= 1
        if s.startswith(sep, i) and depth == 0:
            out.append(s[start:i])
            i += len(sep)
            start = i
            continue
        if s[i] == "\\":
            i += 2
            continue
        depth += (s[i] == "{") - (s[i] == "}")
        i += 1
    out.append(s[start:])
    return out


def _rows(body: str) -> list[str]:
    """A matrix body's rows, without the extra space of ``\\\\[4pt]``."""
    out = []
    for r in _split_top(body, "\\\\"):
        r = r.strip()
        if r.startswith("["):
            r = r[r.index("]") + 1 :]
        if r.strip():
            out.append(r)
    return out


def parse(s: str) -> list[Item]:
    """The items of a LaTeX formula, in order."""
    return _Reader(s).sequence()


# ----- widths -----


def _glyph_width(c: str) -> float:
    if c in "mwMW":
        return WIDE + 0.2 * c.isupper()
    if c.isupper():
        return UPPER
    if c in "ijlft1()[],.;:!|'/":
        return NARROW
    return LOWER


def _command_width(name: str) -> float:
    if name in COMMANDS:
        return COMMANDS[name]
    if name in WORDS:
        return 0.5 * (len(name) - 1) + 0.17  # upright letters and the thin space after an operator name
    return 0.62  # a Greek letter or a symbol


def width(items: Sequence[Item] | str, scale: float = 1.0) -> float:
    """The estimated typeset width in em of a formula, in display style (``scale`` 1)."""
    if isinstance(items, str):
        items = parse(items)
    return _widths(items, scale) * SLACK


def _widths(items: Sequence[Item], scale: float) -> float:
    total, prev = 0.0, None
    for it in items:
        total += _item_width(it, scale, prev)
        prev = it
    return total


def _spacing(it: Item, prev: Item | None, scale: float) -> float:
    """The space around a binary operator or relation: none for a sign, or in scripts."""
    if scale < 1:
        return 0.0
    if it.kind == "bin":
        sign = prev is None or prev.kind in ("bin", "rel", "punct", "sized") or prev.src in ("(", "&")
        return 0.0 if sign else OPERATOR_SPACE
    if it.kind == "rel":
        return RELATION_SPACE
    return 3 / 18 if it.kind == "punct" else 0.0


def _item_width(it: Item, scale: float, prev: Item | None) -> float:
    k = it.kind
    if k in ("bin", "rel"):
        w = (1.0 if it.src.startswith("\\") and k == "rel" else 0.78) * scale
    elif k == "punct":
        w = 0.28 * scale
    elif k == "group":
        w = _widths(it.parts[0], scale)
    elif k == "delim":
        tall = max(_height(it.parts[0]), any(x.sup is not None for x in it.parts[0]))
        d = DELIMITER + 0.12 * tall
        w = _widths(it.parts[0], scale) + scale * d * ((it.head != "\\left.") + (it.tail != "\\right."))
    elif k == "frac":
        small = it.head == "\\tfrac" or (it.head == "\\frac" and scale < 1)
        w = max(_widths(p, scale * (SCRIPT if small else 1.0)) for p in it.parts) + 0.24 * scale
    elif k == "cmd":
        w = _cmd_width(it, scale)
    elif k == "env":
        w = _env_width(it, scale)
    else:
        w = it.base * scale
    w += _spacing(it, prev, scale)
    scripts = [s for s in (it.sub, it.sup) if s is not None]
    if scripts:
        factor = SCRIPT_WIDTH if scale >= 0.9 else 0.8
        w += max(_widths(s, scale * factor) for s in scripts) + 0.05 * scale
    return w


def _cmd_width(it: Item, scale: float) -> float:
    inner = it.parts[0]
    if it.head in ("\\vphantom", "\\phantom"):
        return 0.0 if it.head == "\\vphantom" else _widths(inner, scale)
    if it.head in ("\\operatorname", "\\mathrm", "\\text", "\\textrm"):
        w = sum(0.45 if c.islower() else 0.72 if c.isupper() else 0.5 for c in _plain(inner)) * scale
        return w + 0.17 * scale * (it.head == "\\operatorname")
    if it.head == "\\mathbf":
        return _widths(inner, scale) * BOLD
    if it.head == "\\sqrt":
        return _widths(inner, scale) + 0.85 * scale
    return _widths(inner, scale)


def _plain(items: Sequence[Item]) -> str:
    """The letters of upright text (an operator's name)."""
    return "".join(_plain(it.parts[0]) if it.kind == "group" else it.src.lstrip("\\") for it in items)


def _env_width(it: Item, scale: float) -> float:
    """A matrix: the widest cell of each column, the gaps between columns (\\arraycolsep twice), the brackets."""
    cols: list[float] = []
    for row in it.cells:
        for j, cell in enumerate(row):
            w = _widths(cell, min(scale, 1.0))
            cols += [0.0] * (j + 1 - len(cols))
            cols[j] = max(cols[j], w)
    brackets = 0.9 if it.head.endswith("matrix") and it.head != "matrix" else 0.0
    return sum(cols) + 10 / 11 * max(len(cols) - 1, 0) + brackets * scale


def _height(items: Sequence[Item]) -> int:
    """How tall a formula is: 0 plain, 1 scripts on scripts, 2 a fraction, 3 a display fraction or a matrix."""
    h = 0
    for it in items:
        if it.kind == "env":
            return 3
        if it.kind == "frac":
            h = max(h, 2 + (it.head == "\\dfrac"))
        elif it.parts and it.kind in ("delim", "group", "cmd"):
            h = max(h, *(_height(p) for p in it.parts))
            if it.kind == "delim" and h == 0 and any(x.kind == "delim" for x in it.parts[0]):
                h = 1
        for s in (it.sub, it.sup):
            if s is not None and any(x.sub is not None or x.sup is not None or x.kind == "frac" for x in s):
                h = max(h, 1)
    return min(h, 3)


# ----- breaking into rows -----

OPEN = ("\\bigl", "\\Bigl", "\\biggl", "\\Biggl")  # by the height of what they enclose
CLOSE = ("\\bigr", "\\Bigr", "\\biggr", "\\Biggr")
INDENT = 1.0  # em, a \quad for each level of continuation
TIMES = (0.78 + OPERATOR_SPACE) * SLACK  # a \times starting a row, with its spaces
OPERATORS = ("+", "-", "\\odot", "\\otimes", "\\times", "\\cdot")


class TooWide(Exception):
    """No break keeps the formula inside the width."""


def terms(items: Sequence[Item]) -> list[list[Item]]:
    """The items split before each top-level binary operator that is not a sign."""
    out: list[list[Item]] = []
    prev: Item | None = None
    for it in items:
        sign = prev is None or prev.kind in ("bin", "rel", "punct")
        if not out or (it.kind == "bin" and not sign):
            out.append([it])
        else:
            out[-1].append(it)
        prev = it
    return out


def _binds(prev: Item, it: Item) -> bool:
    """Whether ``it`` is ``prev``'s argument (a function and its parentheses), so no break between them."""
    if it.kind != "delim":
        return False
    if prev.kind == "cmd" and prev.head in ("\\operatorname", "\\mathrm"):
        return True
    name = prev.src[: len(prev.src) - len(prev.scripts)].rstrip("'")
    return prev.kind == "glyph" and name in FUNCTION_NAMES


def factors(items: Sequence[Item]) -> list[list[Item]]:
    """A product's factors: a function stays with its argument, a sign with what follows it."""
    out: list[list[Item]] = []
    for it in items:
        joined = out and (it.kind in ("bin", "rel", "punct") or out[-1][-1].kind in ("bin", "rel", "punct"))
        if joined or (out and _binds(out[-1][-1], it)):
            out[-1].append(it)
        else:
            out.append([it])
    return out


def source(items: Sequence[Item]) -> str:
    """The items' LaTeX, a space between two (none between a function's name and its argument)."""
    out = ""
    for k, it in enumerate(items):
        close = k == 0 or (it.kind == "delim" and _binds(items[k - 1], it))
        out += ("" if close else " ") + it.src
    return out


@dataclass
class _Rows:
    """Rows being filled: each (its indent in quads, its pieces of LaTeX, the width used)."""

    first: float  # the room on the first row, after the left side and the relation
    rest: float  # the room on a continued row before its indent
    rows: list[tuple[int, list[str], float]] = field(default_factory=list)

    def room(self) -> float:
        if not self.rows:
            return self.first
        indent, _, used = self.rows[-1]
        return (self.first if len(self.rows) == 1 else self.cap(indent)) - used

    def cap(self, indent: int) -> float:
        return self.rest - INDENT * indent

    def put(self, text: str, w: float) -> None:
        if not self.rows:
            self.rows.append((0, [], 0.0))
        indent, pieces, used = self.rows[-1]
        self.rows[-1] = (indent, [*pieces, text], used + w)

    def new(self, indent: int) -> None:
        self.rows.append((indent, [], 0.0))

    def fresh(self) -> bool:
        return not self.rows or not self.rows[-1][1]


def _w(items: Sequence[Item]) -> float:
    """The width of a piece of a row: an operator it starts with gets its spaces (it follows something)."""
    return width(items) + (OPERATOR_SPACE * SLACK if items and items[0].kind == "bin" else 0.0)


def _fill(items: Sequence[Item], out: _Rows, depth: int, closing: float) -> None:
    """Put ``items`` into ``out``: whole if they fit, else term by term, breaking a term too wide.

    ``closing`` is the width that must still fit after the items on their last row.
    """
    w = _w(items)
    if w + closing <= out.room():
        out.put(source(items), w)
        return
    ts = terms(items)
    broken = False  # after a term broken across rows, the next term starts a row of its own
    for k, t in enumerate(ts):
        tail = closing if k == len(ts) - 1 else 0.0
        tw = _w(t)
        if tw + tail <= out.room() and not broken:
            out.put(source(t), tw)
        elif not out.fresh() and tw + tail <= out.cap(depth + 1):
            out.new(depth + 1)
            out.put(source(t), tw)
            broken = False
        else:
            before = len(out.rows)
            _product(t, out, depth, tail)
            broken = len(out.rows) > before


def _product(items: Sequence[Item], out: _Rows, depth: int, closing: float) -> None:
    """A term too wide for a row: factor by factor, opening a factor too wide itself."""
    fs = factors(items)
    for k, f in enumerate(fs):
        tail = closing if k == len(fs) - 1 else 0.0
        fw = _w(f)
        times = k > 0 and f[0].kind != "bin"
        tw = TIMES if times else 0.0
        if fw + tail <= out.room():
            out.put(source(f), fw)
        elif not out.fresh() and fw + tw + tail <= out.cap(depth + 1):
            out.new(depth + 1)
            out.put("\\times " + source(f) if times else source(f), fw + tw)
        else:
            if times and not out.fresh() and out.room() < 0.4 * out.cap(depth + 1):
                out.new(depth + 1)  # the factor starts a row of its own, marked as a continued product
                out.put("\\times", TIMES)
            _open(f, out, depth, tail)


def _openable(it: Item) -> bool:
    if it.kind == "delim":
        return it.head != "\\left."
    return it.kind == "frac" and it.head in ("\\frac", "\\dfrac") and not it.scripts


def _open(f: Sequence[Item], out: _Rows, depth: int, closing: float) -> None:
    """One factor too wide for any row: split inside its widest parenthesis, or write a wide
    fraction a/b as (1/b) a and break a; else give up (:class:`TooWide`)."""
    ks = [i for i, it in enumerate(f) if _openable(it)]
    if not ks or depth > 6:
        raise TooWide(source(f))
    k = max(ks, key=lambda i: width([f[i]]))
    before, d, after = list(f[:k]), f[k], list(f[k + 1 :])
    if d.kind == "frac":
        num, den = d.parts
        if num and num[0].src == "-" and len(terms(num)) == 1:
            before, num = [*before, num[0]], num[1:]
        one = parse(f"\\frac{{1}}{{{source(den)}}}")
        body = num if len(terms(num)) == 1 else parse(f"\\left({source(num)}\\right)")
        if width(one) > out.cap(depth + 1):
            raise TooWide(source(f))
        _product([*before, *one, *body, *after], out, depth, closing)
        return
    size = _height(d.parts[0])
    opener = OPEN[size] + d.head[len("\\left") :]
    closer = CLOSE[size] + d.tail[len("\\right") :] + d.scripts
    pw = width(before) + SIZED[OPEN[size].strip("\\").rstrip("l")]
    if pw + 0.3 * out.cap(depth + 1) > out.room() and not out.fresh():
        out.new(depth + 1)  # no opening parenthesis alone at the end of a row
    out.put(source([*before, Item("sized", opener)]), pw)
    cw = pw - width(before) + width([Item("glyph", "", sub=d.sub, sup=d.sup)]) + width(after)
    _fill(d.parts[0], out, depth + 1, cw + closing)
    out.put(source([Item("sized", closer), *after]), cw)


def rows(lhs: str, rhs: str, room: float, rel: str = "=", lhs_room: float | None = None) -> list[str]:
    """``lhs rel rhs`` as rows for ``align*``: ``lhs &= ...``, then ``&\\quad {} + ...``.

    ``room`` is the text width in em; ``lhs_room`` the width the alignment column gives the
    left side (default: this ``lhs``). Raises :class:`TooWide` if no break fits.
    """
    left = width(lhs) if lhs_room is None else lhs_room
    out = _Rows(room - left - width(rel) - RELATION_SPACE, room - left)
    _fill(parse(rhs), out, 0, 0.0)
    lines = []
    for n, (indent, pieces, _) in enumerate(out.rows):
        body = " ".join(p for p in pieces if p)
        if n == 0:
            lines.append(f"{lhs} &{rel} {body}".strip())
        else:
            lead = "{} " if body.startswith(OPERATORS) else ""  # a binary operator, not a sign
            lines.append("&" + "\\quad " * max(indent, 1) + lead + body)
    return lines
