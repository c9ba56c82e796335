"""Numpy-syntax text to an expression tree, without evaluating anything.

The text is parsed by Python's ``ast`` and walked against a whitelist:
numbers, names, ``+ - * / ** @``, unary minus, ``.T`` and calls of the
functions in :data:`CALLS`. Anything else is refused with a
:class:`DeriveError` naming the column. Shapes are declared or inferred:
an undeclared upper-case name is a matrix, a lower-case one a vector, and
dimensions are unified from use (``A @ x`` ties A's columns to x's length).
"""

from __future__ import annotations

import ast
import keyword
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sympy as sp

from . import ir
from .errors import DeriveError, ShapeConflict
from .functions import FUNCTIONS, fn
from .ir import Node, Shape, ShapeError, node
from .limits import LIMITS, how_to_raise

MAX_NUMBER = 10**9  # largest literal
MAX_DIM = 10**6  # largest declared dimension
DIM_NAMES = ("m", "n", "p", "q", "k", "l", "r", "s", "t", "u", "v", "w", "h", "j")

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,30}\Z")


@dataclass(frozen=True)
class Problem:
    """A parsed expression with every variable's shape resolved."""

    source: str
    expr: Node
    shapes: dict[str, Shape]


def _binop(op: str) -> Callable[[Node, Node], Node]:
    return lambda a, b: node(op, a, b)


def _sub(a: Node, b: Node) -> Node:
    return node("add", a, node("mul", ir.MINUS_ONE, b))


def _div(a: Node, b: Node) -> Node:
    return node("mul", a, node("pow", b, attr=sp.Integer(-1)))


def _unary(op: str) -> Callable[[Node], Node]:
    return lambda a: node(op, a)


def _fn(name: str, order: int = 0) -> Callable[[Node], Node]:
    return lambda a: fn(name, a, order)


BINOPS: dict[type, Callable[[Node, Node], Node]] = {
    ast.Add: _binop("add"),
    ast.Sub: _sub,
    ast.Mult: _binop("mul"),
    ast.Div: _div,
    ast.MatMult: _binop("matmul"),
}

NUMPY, LINALG = ("", "np.", "numpy."), ("", "np.linalg.", "numpy.linalg.")

#: name -> (builder, number of arguments (or the allowed numbers), accepted prefixes)
CALLS: dict[str, tuple[Callable[..., Node], int, tuple[str, ...]]] = {
    "norm": (_unary("norm"), 1, LINALG),
    "sum": (_unary("sum"), 1, NUMPY),
    "trace": (_unary("trace"), 1, NUMPY),
    "det": (_unary("det"), 1, LINALG),
    "inv": (_unary("inv"), 1, LINALG),
    "diag": (_unary("diag"), 1, NUMPY),
    "outer": (_binop("outer"), 2, NUMPY),
    "kron": (_binop("kron"), 2, NUMPY),
    "softmax": (_unary("softmax"), 1, ("",)),
    "logsumexp": (_unary("logsumexp"), 1, ("",)),
    "conv2d": (lambda *a: node("conv2d", *a), (2, 3), ("",)),
    "maxpool": (None, 2, ("",)),  # built by _Walker.maxpool: its size must be a number
    "flatten": (_unary("flatten"), 1, ("",)),
    "dsigmoid": (_fn("sigmoid", 1), 1, ("",)),
    "dtanh": (_fn("tanh", 1), 1, ("",)),
    **{
        name: (_fn(name), 1, NUMPY if name in {"exp", "log", "sqrt", "sin", "cos", "tanh"} else ("",))
        for name in FUNCTIONS
    },
}


def _column(text: str, n: ast.AST) -> tuple[int, int]:
    """1-based (line, column) of a node, counting characters, not bytes."""
    line = text.splitlines()[n.lineno - 1] if text else ""
    return n.lineno, len(line.encode()[: n.col_offset].decode(errors="ignore")) + 1


class _Walker:
    """Turns an ``ast`` tree into a Node while unifying dimensions."""

    def __init__(
        self,
        text: str,
        declared: Mapping[str, Shape],
        entries: Mapping[str, sp.Symbol] | None,
        shift: tuple[int, int] = (0, 0),
    ) -> None:
        self.text = text
        self.shift = shift
        self.declared = declared
        self.entries = entries
        self.parent: dict[sp.Basic, sp.Basic] = {}
        self.var_shapes: dict[str, Shape] = {}
        self.order: list[str] = []
        self.origin: dict[sp.Dummy, str] = {}  # placeholder -> how the user would name it: A.shape[0]

    # ----- errors -----

    def fail(self, n: ast.AST, message: str, error: type[DeriveError] = DeriveError) -> DeriveError:
        line, col = _column(self.text, n)
        col = col + self.shift[1] if line == 1 else col
        line += self.shift[0]
        where = f"line {line}, " if line > 1 else ""
        return error(f"{where}column {col}: {message}") if where else error(message, col)

    def snippet(self, n: ast.AST) -> str:
        s = ast.get_source_segment(self.text, n) or "?"
        return s if len(s) <= 40 else s[:37] + "..."

    # ----- dimensions -----

    def find(self, d: sp.Basic) -> sp.Basic:
        while d in self.parent:
            d = self.parent[d]
        return d

    def expand(self, d: sp.Basic) -> sp.Basic:
        """``d`` with every placeholder replaced by what it was unified with, all the way down."""
        d = self.find(d)
        dummies = [s for s in sp.S(d).free_symbols if isinstance(s, sp.Dummy) and s != d]
        return d.xreplace({s: self.expand(s) for s in dummies}) if dummies else d

    def unify(self, x: sp.Basic, y: sp.Basic) -> bool:
        x, y = self.expand(x), self.expand(y)
        if x == y:
            return True
        if isinstance(x, sp.Dummy):
            x, y = y, x
        if not isinstance(y, sp.Dummy):
            return False  # two different declared sizes or names, or products of them
        if y in sp.S(x).free_symbols:
            return False  # n = n * m: not a size that can be inferred
        self.parent[y] = x
        return True

    def shown(self, shape: Shape) -> str:
        """A shape in the user's terms: ``?`` for an unknown size, A.shape[0] inside a product."""
        dims = []
        for d in shape:
            d = self.expand(d)
            if isinstance(d, sp.Dummy):
                dims.append("?")
            else:
                names = {s: sp.Symbol(self.origin[s]) for s in d.free_symbols if s in self.origin}
                dims.append(str(d.xreplace(names)))
        inner = ", ".join(dims)
        return f"({inner},)" if len(dims) == 1 else f"({inner})"

    # ----- the walk -----

    def walk(self, n: ast.AST) -> Node:
        method = getattr(self, f"_{type(n).__name__}", None)
        if method is None:
            raise self.fail(n, f"{_describe(n)} is not allowed in an expression")
        return method(n)

    def _Expression(self, n: ast.Expression) -> Node:
        return self.walk(n.body)

    def _Constant(self, n: ast.Constant) -> Node:
        v = n.value
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.fail(n, f"{_describe(n)} is not allowed; only numbers are")
        if not math.isfinite(v) or abs(v) > MAX_NUMBER:
            raise self.fail(n, f"the number {self.snippet(n)} is out of range (at most {MAX_NUMBER:g})")
        return ir.const(sp.Rational(repr(v)) if isinstance(v, float) else sp.Integer(v))

    def _Name(self, n: ast.Name) -> Node:
        name = n.id
        if self.entries is not None and name not in self.declared:
            if name in self.entries:
                return node("entry", attr=self.entries[name])
            raise self.fail(n, f"'{name}' is neither a variable of the expression nor one of its entries")
        if name in CALLS or name in {"np", "numpy"}:
            raise self.fail(n, f"'{name}' is a function; call it, as in {name}(x)")
        if not _NAME.match(name):
            raise self.fail(n, f"'{self.snippet(n)}' is not a usable variable name")
        if name not in self.var_shapes:
            self.var_shapes[name] = self.new_shape(name)
            self.order.append(name)
        return ir.var(name, self.var_shapes[name])

    def new_shape(self, name: str) -> Shape:
        if name in self.declared:
            return self.declared[name]
        rank = 2 if name[0].isupper() else 1
        shape = tuple(sp.Dummy(f"{name}{i}") for i in range(rank))
        self.origin.update((d, f"{name}.shape[{i}]") for i, d in enumerate(shape))
        return shape

    def _List(self, n: ast.List) -> Node:
        if self.entries is None:
            raise self.fail(n, "a list is not allowed in an expression (lists are for element-wise claims)")
        if not n.elts:
            raise self.fail(n, "an empty list")
        items = [self.walk(x) for x in n.elts]
        if len({x.shape for x in items}) != 1:
            raise self.fail(n, "the rows of a list must all have the same shape")
        return node("stack", *items)

    def _UnaryOp(self, n: ast.UnaryOp) -> Node:
        a = self.walk(n.operand)
        if isinstance(n.op, ast.USub):
            return ir.const(-a.attr) if ir.is_const(a) else node("mul", ir.MINUS_ONE, a)
        if isinstance(n.op, ast.UAdd):
            return a
        raise self.fail(n, f"the operator in '{self.snippet(n)}' is not allowed")

    def _BinOp(self, n: ast.BinOp) -> Node:
        if isinstance(n.op, ast.Pow):
            return self.power(n)
        make = BINOPS.get(type(n.op))
        if make is None:
            raise self.fail(n, f"the operator in '{self.snippet(n)}' is not allowed")
        a, b = self.walk(n.left), self.walk(n.right)
        if isinstance(n.op, ast.Div) and ir.is_const(b, 0):
            raise self.fail(n, f"division by zero in '{self.snippet(n)}'")
        return self.build(n, lambda: make(a, b), (n.left, a), (n.right, b))

    def power(self, n: ast.BinOp) -> Node:
        base = self.walk(n.left)
        exponent = self.walk(n.right)
        if not ir.is_const(exponent):
            raise self.fail(n.right, "an exponent must be a number")
        if ir.is_const(base, 0) and exponent.attr < 0:
            raise self.fail(n, f"division by zero in '{self.snippet(n)}'")
        return node("pow", base, attr=exponent.attr)

    def maxpool(self, n: ast.Call) -> Node:
        x = self.walk(n.args[0])
        k = self.walk(n.args[1])
        if not ir.is_const(k) or not k.attr.is_Integer or not 1 <= k.attr <= 64:
            raise self.fail(n.args[1], "maxpool's window size must be a whole number from 1 to 64")
        return self.build(n, lambda: node("maxpool", x, attr=int(k.attr)), (n.args[0], x))

    def _Attribute(self, n: ast.Attribute) -> Node:
        if n.attr == "T":
            a = self.walk(n.value)
            return node("T", a)
        path = _dotted(n)
        if path is not None:
            raise self.fail(n, f"'{path}' is not a known function or must be called")
        raise self.fail(n, f"the attribute '.{n.attr}' is not allowed; only .T is")

    def _Call(self, n: ast.Call) -> Node:
        path = _dotted(n.func)
        if path is None:
            raise self.fail(n, "only named functions can be called")
        prefix, _, name = path.rpartition(".")
        prefix = prefix + "." if prefix else ""
        entry = CALLS.get(name)
        if entry is None or prefix not in entry[2]:
            raise self.fail(n, f"unknown function '{path}'")
        make, arity, _ = entry
        if n.keywords:
            raise self.fail(n, f"{name}() takes no keyword arguments")
        if any(isinstance(a, ast.Starred) for a in n.args):
            raise self.fail(n, f"{name}() takes no starred arguments")
        allowed = arity if isinstance(arity, tuple) else (arity,)
        if len(n.args) not in allowed:
            want = " or ".join(map(str, allowed))
            raise self.fail(n, f"{name}() takes {want} argument{'' if allowed == (1,) else 's'}, got {len(n.args)}")
        if name == "maxpool":
            return self.maxpool(n)
        args = [self.walk(a) for a in n.args]
        if name == "conv2d":
            self.conv_sizes(n, args)
        return self.build(n, lambda: make(*args), *zip(n.args, args, strict=True))

    def conv_sizes(self, n: ast.Call, args: list[Node]) -> None:
        """conv2d's output size is a difference of sizes, so they must be numbers: ask for the missing ones."""
        x, k = args[0], args[1]
        if x.ndim not in (2, 3) or k.ndim not in (2, 4):
            return  # the shape rule says what is wrong
        if all(self.expand(d).is_Integer for a in (x, k) for d in a.shape[-2:]):
            return
        names = list(dict.fromkeys(m.attr[0] for a in (x, k) for m in ir.topo(a) if m.op == "var"))
        missing = [v for v in names if not all(self.expand(d).is_Integer for d in self.var_shapes[v])]
        which = " and ".join(f"'{v}'" for v in missing) or "its operands"
        examples = {x: {2: "4,4", 3: "1,4,4"}[x.ndim], k: {2: "2,2", 4: "1,1,2,2"}[k.ndim]}
        given = [f"{a.attr[0]}={s}" for a, s in examples.items() if a.op == "var" and a.attr[0] in missing]
        eg = f", e.g. {' and '.join(given)}" if given else ""
        plural = "s" if len(missing) != 1 else ""
        raise self.fail(
            n, f"conv2d needs the sizes of its input and kernel as numbers: declare the shape{plural} of {which}{eg}"
        )

    def build(self, n: ast.AST, make: Callable[[], Node], *operands: tuple[ast.AST, Node]) -> Node:
        token = ir.UNIFY.set(self.unify)
        try:
            return make()
        except ShapeError as e:
            parts = [f"'{self.snippet(a)}' has shape {self.shown(x.shape)}" for a, x in operands]
            hint = ""
            undeclared = [x.attr[0] for _, x in operands if x.op == "var" and x.attr[0] not in self.declared]
            if undeclared:
                hint = f"; declare the shape of '{undeclared[0]}' if it is not what you meant"
            message = f"shape conflict in '{self.snippet(n)}': {e}; {' and '.join(parts)}{hint}"
            raise self.fail(n, message, ShapeConflict) from None
        finally:
            ir.UNIFY.reset(token)

    # ----- resolution -----

    def resolve(self, expr: Node) -> tuple[Node, dict[str, Shape]]:
        """Replace placeholders by sizes, declared names or fresh letters (inside products too)."""
        taken = {str(d) for s in self.declared.values() for d in s if isinstance(d, sp.Symbol)}
        taken |= set(self.var_shapes)
        pool = (d for d in DIM_NAMES if d not in taken)
        letters: dict[sp.Basic, sp.Basic] = {}
        mapping: dict[sp.Basic, sp.Basic] = {}
        for name in self.order:
            for d in self.var_shapes[name]:
                full = self.expand(d)
                for s in sorted(sp.S(full).free_symbols, key=lambda s: (s.name, getattr(s, "dummy_index", 0))):
                    if isinstance(s, sp.Dummy) and s not in letters:
                        letter = next(pool, None)
                        if letter is None:
                            raise DeriveError("too many distinct dimensions; declare some shapes")
                        letters[s] = ir.dim(letter)
                mapping[d] = full.xreplace(letters)
        for placeholder in list(self.parent):  # inside operations' shapes too (conv2d's output, kron's size)
            mapping.setdefault(placeholder, self.expand(placeholder).xreplace(letters))
        shapes = {name: tuple(mapping[d] for d in self.var_shapes[name]) for name in self.order}
        return ir.substitute_dims(expr, mapping), shapes


def _dotted(n: ast.AST) -> str | None:
    parts = []
    while isinstance(n, ast.Attribute):
        parts.append(n.attr)
        n = n.value
    if isinstance(n, ast.Name):
        parts.append(n.id)
        return ".".join(reversed(parts))
    return None


def _describe(n: ast.AST) -> str:
    names = {
        ast.Lambda: "a lambda",
        ast.Subscript: "a subscript",
        ast.ListComp: "a comprehension",
        ast.GeneratorExp: "a generator",
        ast.DictComp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.JoinedStr: "an f-string",
        ast.Compare: "a comparison",
        ast.BoolOp: "a boolean operator",
        ast.IfExp: "a conditional expression",
        ast.NamedExpr: "an assignment",
        ast.Await: "await",
        ast.Yield: "yield",
        ast.YieldFrom: "yield",
        ast.List: "a list",
        ast.Tuple: "a tuple",
        ast.Dict: "a dict",
        ast.Set: "a set",
        ast.Starred: "a starred expression",
        ast.Slice: "a slice",
    }
    if isinstance(n, ast.Constant):
        kinds = {str: "a string", bytes: "a bytes string", bool: "a boolean", complex: "a complex number"}
        if n.value is None or n.value is Ellipsis:
            return repr(n.value) if n.value is None else "'...'"
        return kinds.get(type(n.value), f"a {type(n.value).__name__} constant")
    return names.get(type(n), f"'{type(n).__name__}'")


def _depth(tree: ast.AST) -> int:
    deepest, stack = 0, [(tree, 0)]
    while stack:
        n, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((c, d + 1) for c in ast.iter_child_nodes(n))
    return deepest


def _show(value: object, limit: int = 40) -> str:
    """A user's value for a message: its repr, cut when long; a huge integer is not written out."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"a {value.bit_length()}-bit integer"
    try:
        text = repr(value)
    except ValueError:  # an integer too long to convert to text, inside a tuple
        text = f"a {type(value).__name__} with a huge integer"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_shapes(shapes: Mapping[str, Sequence[int | str]] | None) -> dict[str, Shape]:
    """Validate user shapes: names to tuples of positive ints or dimension names."""
    out: dict[str, Shape] = {}
    if shapes is not None and not isinstance(shapes, Mapping):
        raise DeriveError(f"shapes must be a dict of names to tuples, got {type(shapes).__name__}")
    for name, dims in (shapes or {}).items():
        if not isinstance(name, str) or not _NAME.match(name) or keyword.iskeyword(name):
            raise DeriveError(f"shape given for {name!r}, which is not a variable name")
        if isinstance(dims, int | str | sp.Basic):
            dims = (dims,)
        if not isinstance(dims, Sequence) or isinstance(dims, bytes) or len(dims) > 4:
            raise DeriveError(f"shape of '{name}' must be a tuple of at most 4 dimensions, got {_show(dims)}")
        shape = []
        for d in dims:
            if isinstance(d, sp.Basic):
                d = int(d) if d.is_Integer else str(d)
            if isinstance(d, bool) or not isinstance(d, int | str):
                raise DeriveError(f"shape of '{name}': {_show(d)} is neither a size nor a dimension name")
            if isinstance(d, int) and not 1 <= d <= MAX_DIM:
                raise DeriveError(f"shape of '{name}': size {_show(d)} is out of range (1 to {MAX_DIM})")
            if isinstance(d, str) and not _NAME.match(d):
                raise DeriveError(f"shape of '{name}': {_show(d)} is not a dimension name")
            shape.append(sp.Integer(d) if isinstance(d, int) else ir.dim(d))
        out[name] = tuple(shape)
    return out


def parse(
    text: str,
    shapes: Mapping[str, Sequence[int | str]] | None = None,
    entries: Mapping[str, sp.Symbol] | None = None,
) -> Problem:
    """Parse ``text`` (numpy syntax) into a :class:`Problem`; never evaluates it.

    Raises :class:`DeriveError`, one line naming the column, for anything
    outside the grammar and for shapes that conflict or cannot be inferred.
    With ``entries`` (entry names such as ``a11`` mapped to their symbols),
    the text may also use those names and list literals, and may use no
    variable that ``shapes`` does not declare: this is how claims are read.
    """
    if not isinstance(text, str):
        raise DeriveError(f"the expression must be a string, got {type(text).__name__}")
    if len(text) > LIMITS.length:
        raise DeriveError(
            f"the expression is {len(text)} characters long; the limit is {LIMITS.length} ({how_to_raise('length')})"
        )
    if not text.strip():
        raise DeriveError("the expression is empty")
    if "\x00" in text:
        raise DeriveError("the expression contains a NUL character", text.index("\x00") + 1)
    declared = parse_shapes(shapes)
    body = text.strip()
    lead = text[: len(text) - len(text.lstrip())]
    shift = (lead.count("\n"), len(lead) - lead.rfind("\n") - 1)  # where the stripped text starts
    try:
        tree = ast.parse(body, mode="eval")
    except SyntaxError as e:
        line, col = (e.lineno or 1), (e.offset or 1)
        col = col + shift[1] if line == 1 else col
        line += shift[0]
        where = f"line {line}, column {col}" if line > 1 else f"column {col}"
        raise DeriveError(f"{where}: syntax error: {e.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise DeriveError("the expression is nested too deeply for Python's parser") from None
    if _depth(tree) > LIMITS.depth:
        raise DeriveError(f"the expression is nested more than {LIMITS.depth} deep ({how_to_raise('depth')})")
    w = _Walker(body, declared, entries, shift)
    expr = w.walk(tree)
    expr, resolved = w.resolve(expr)
    return Problem(text.strip(), expr, resolved)
