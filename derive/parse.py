"""Numpy-syntax text to an expression tree, without evaluating anything.

The text is parsed by Python's ``ast`` and walked against a whitelist:
numbers, names, ``+ - * / ** @``, unary minus, ``.T``, and the calls and
methods the ops define (``sum(E, axis=1)``, ``E.mean()``, ``np.maximum``...).
Anything else is refused with a :class:`DeriveError` naming the column.

Shapes are declared or inferred. An undeclared upper-case name is a
matrix; a lower-case one is a vector, unless every use of it meets only
scalars (``reg * norm(w)**2``), when it is a scalar. Dimensions are
unified from use (``A @ x`` ties A's columns to x's length), and numpy's
broadcasting rules apply to element-wise operators (a bias ``X @ W + b``
is repeated along the rows). Every dimension stays a symbol, so a form
holds at every size; declared numbers are recorded as the problem's sizes.
"""

from __future__ import annotations

import ast
import itertools
import keyword
import math
import re
import unicodedata
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import sympy as sp

from .context import Budget, Limits
from .domains import FloatDomain
from .errors import DeriveError, ShapeConflict
from .explicit import Kit, step
from .ir import Dims, Node, Shape, ShapeError, dim, topo
from .ops import OPS, Call
from .ops.build import DIMS, const, make, node, var
from .ops.shaping import broadcast_axes

MAX_NUMBER = 10**9  # largest literal
MAX_CONSTANT_BITS = 4096  # largest exact value of a constant part (3 ** 1000000000 is refused)
MAX_DIM = 10**6  # largest declared dimension
DIM_NAMES = ("m", "n", "p", "q", "k", "l", "r", "s", "t", "u", "v", "w", "h", "j")
STRUCTURES = ("symmetric", "diagonal")

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,30}\Z")
MODULES = ("np", "numpy", "scipy", "special")
#: module names whose functions are never calls derive knows (reported as unknown functions, not methods)
OTHER_MODULES = frozenset({"os", "sys", "subprocess", "shutil", "builtins", "pathlib", "math", "torch", "jax",
                           "jnp", "tf", "importlib", "io", "socket", "pickle", "random", "time"})  # fmt: skip


@dataclass(frozen=True)
class Problem:
    """A parsed expression with every variable's shape resolved.

    ``sizes`` maps dimension symbols to the numbers the user declared; ``structure``
    names symmetric and diagonal variables; ``notes`` say what was chosen for the
    user (a shape the expression left open).
    """

    source: str
    expr: Node
    shapes: dict[str, Shape]
    sizes: dict[sp.Symbol, int] = field(default_factory=dict)
    structure: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    inferred: tuple[str, ...] = ()

    def at_declared(self, shape: Shape) -> tuple:
        """``shape`` with the declared sizes put in (numbers where known, symbols elsewhere)."""
        out = []
        for d in shape:
            v = sp.S(sp.S(d).xreplace(self.sizes))
            out.append(int(v) if v.is_Integer else v)
        return tuple(out)

    @property
    def value_shape(self) -> tuple:
        """The expression's shape at the declared sizes."""
        return self.at_declared(self.expr.shape)


def _calls() -> tuple[Mapping[str, tuple[Call, ...]], Mapping[str, tuple[Call, ...]]]:
    """Every op's syntax, by function name and by method name."""
    functions: dict[str, list[Call]] = {}
    methods: dict[str, list[Call]] = {}
    for op in OPS.values():
        for c in op.syntax:
            functions.setdefault(c.name, []).append(c)
            if c.method:
                methods.setdefault(c.name, []).append(c)
    freeze = lambda d: MappingProxyType({k: tuple(v) for k, v in d.items()})  # noqa: E731
    return freeze(functions), freeze(methods)


FUNCTIONS, METHODS = _calls()

#: numpy functions people reach for that derive spells differently (or does not have)
SUGGESTIONS = MappingProxyType({
    "transpose": "use .T", "multiply": "use *", "add": "use +", "subtract": "use -", "divide": "use /",
    "power": "use **", "einsum": "write the products with @ and *", "where": "use maximum or relu",
    "clip": "use maximum and minimum", "amax": "max over entries is not differentiable here; use logsumexp",
    "max": "use maximum(a, b) or logsumexp", "min": "use minimum(a, b)", "dot": "use @",
    "matrix_power": "write the product with @", "pinv": "use inv on a square matrix", "solve": "use inv(A) @ b",
    "linalg": "derive has norm, inv and det from np.linalg", "log2": "use log(x) / log(2)",
    "log10": "use log(x) / log(10)", "exp2": "use exp(x * log(2))", "reshape": "use flatten",
    "var": "write it as mean((x - mean(x))**2)", "std": "write it as sqrt(mean((x - mean(x))**2))",
    "prod": "write the product with *", "cosh": "use (exp(x) + exp(-x)) / 2",
    "sinh": "use (exp(x) - exp(-x)) / 2", "arctan": "it has no rule yet", "tan": "use sin(x) / cos(x)",
    "cross_entropy": "write -sum(y * log(p))",
})  # fmt: skip


def _column(text: str, n: ast.AST) -> tuple[int, int]:
    """1-based (line, column) of a node, counting characters, not bytes."""
    line = text.splitlines()[n.lineno - 1] if text else ""
    return n.lineno, len(line.encode()[: n.col_offset].decode(errors="ignore")) + 1


class _Unifier(Dims):
    """Dimensions while shapes are inferred: placeholders are unified; declared numbers are kept."""

    def __init__(self) -> None:
        self.parent: dict[sp.Basic, sp.Basic] = {}
        self.values: dict[sp.Basic, int] = {}
        self.owner: dict[sp.Basic, str] = {}  # placeholder -> "A.shape[0]", its name in messages

    def find(self, d: sp.Basic) -> sp.Basic:
        d = sp.S(d)
        while d in self.parent:
            d = self.parent[d]
        if d.free_symbols and not d.is_Symbol:
            d = d.xreplace({s: self.find(s) for s in d.free_symbols if s in self.parent})
        return d

    def value(self, d: sp.Basic) -> int | None:
        d = self.find(d)
        known = {s: self.values[s] for s in d.free_symbols if s in self.values}
        v = sp.S(sp.S(d).xreplace(known))
        return int(v) if v.is_Integer else (None if v.free_symbols else _not_whole(v))

    def __call__(self, x: sp.Basic, y: sp.Basic) -> bool:
        x, y = self.find(x), self.find(y)
        if x == y:
            return True
        vx, vy = self.value(x), self.value(y)
        if vx is not None and vy is not None and vx != vy:
            return False
        for a, b in ((x, y), (y, x)):
            if isinstance(a, sp.Dummy) and a in self.values and not b.is_Symbol and self.solve(b - a):
                return True  # keep the declared number: fix a placeholder inside b instead
        for a, b in ((x, y), (y, x)):
            if isinstance(a, sp.Dummy) and a not in b.free_symbols:
                self.parent[a] = b
                if a in self.values and b.is_Symbol:
                    self.values.setdefault(b, self.values[a])
                return True
        return self.solve(x - y)

    def solve(self, difference: sp.Basic) -> bool:
        """Make ``difference`` zero by fixing one placeholder that appears in it linearly."""
        diff = sp.expand(difference)
        for s in sorted(diff.free_symbols, key=str):
            c = diff.coeff(s)
            if (
                isinstance(s, sp.Dummy)
                and s not in self.values
                and c in (1, -1)
                and s not in (diff - c * s).free_symbols
            ):
                self.parent[s] = sp.expand(s - diff / c)
                return True
        return False


def _bits(e: Node, args: list[int]) -> int:
    """A bound on the bits of the exact value of the constant ``e``, from its operands' bounds."""
    if e.op == "const":
        v = sp.S(e.attr)
        return max(int(v.p).bit_length(), int(v.q).bit_length(), 1) if v.is_Rational else 64
    if e.op == "pow":
        return args[0] * max(1, math.ceil(abs(float(e.attr))))
    return sum(args) + 1


def _not_whole(v: sp.Basic) -> int:
    return -1  # a fraction or a non-positive size: the checks below report it


class _Walker:
    """Turns an ``ast`` tree into a Node while unifying dimensions."""

    def __init__(self, text: str, declared: Mapping[str, Shape], entries: Mapping[str, sp.Symbol] | None,
                 shift: tuple[int, int], structure: Mapping[str, str], scalars: set[str],
                 budget: Budget | None = None) -> None:  # fmt: skip
        self.text = text
        self.budget = budget
        self.shift = shift
        self.declared = declared
        self.entries = entries
        self.structure = structure
        self.scalars = scalars
        self.dims = _Unifier()
        self.var_shapes: dict[str, Shape] = {}
        self.order: list[str] = []
        self.shapes_at: dict[int, Shape] = {}  # id(ast node) -> shape, for scalar inference
        self.numbers: dict[Node, tuple[float, int]] = {}  # constants: float64 value, bound on exact bits
        self.floats = Kit(FloatDomain(), {}, {})
        self.names_at: dict[int, str] = {}

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

    def shown(self, shape: Shape) -> str:
        """A shape in the user's terms: declared sizes and names, '?' where unknown."""
        parts = []
        for d in shape:
            v = self.dims.value(d)
            root = self.dims.find(d)
            if v is not None and v > 0:
                parts.append(str(v))
            elif (
                all(not isinstance(s, sp.Dummy) or s in self.dims.owner for s in root.free_symbols)
                and root.free_symbols
            ):
                named = {s: sp.Symbol(self.dims.owner[s]) for s in root.free_symbols if s in self.dims.owner}
                parts.append(str(root.xreplace(named)).replace(" ", ""))
            else:
                parts.append("?")
        inner = ", ".join(parts)
        return f"({inner},)" if len(parts) == 1 else f"({inner})"

    # ----- the walk -----

    def walk(self, n: ast.AST) -> Node:
        if self.budget is not None:
            self.budget.tick()
        method = getattr(self, f"_{type(n).__name__}", None)
        if method is None:
            raise self.fail(n, f"{_describe(n)} is not allowed in an expression")
        out = method(n)
        self.shapes_at[id(n)] = out.shape
        return out

    def _Expression(self, n: ast.Expression) -> Node:
        return self.walk(n.body)

    def _Constant(self, n: ast.Constant) -> Node:
        v = n.value
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.fail(n, f"{_describe(n)} is not allowed; only numbers are")
        if not math.isfinite(v) or abs(v) > MAX_NUMBER:
            raise self.fail(n, f"the number {self.snippet(n)} is out of range (at most {MAX_NUMBER:g})")
        out = const(sp.Rational(repr(v)) if isinstance(v, float) else sp.Integer(v))
        self.number(n, out)
        return out

    def _Name(self, n: ast.Name) -> Node:
        name = n.id
        if self.entries is not None and name not in self.declared:
            if name in self.entries:
                return node("entry", attr=self.entries[name])
            raise self.fail(n, f"'{name}' is neither a variable of the expression nor one of its entries")
        if name in FUNCTIONS or name in MODULES:
            raise self.fail(n, f"'{name}' is a function; call it, as in {name}(x)")
        if not _NAME.match(name) or keyword.iskeyword(name):
            raise self.fail(n, f"'{self.snippet(n)}' is not a usable variable name (letters, digits and _)")
        if name not in self.var_shapes:
            self.var_shapes[name] = self.new_shape(name)
            self.order.append(name)
        self.names_at[id(n)] = name
        return var(name, self.var_shapes[name], self.structure.get(name, ""))

    def new_shape(self, name: str) -> Shape:
        if name in self.declared:
            out = []
            for i, d in enumerate(self.declared[name]):
                if sp.S(d).is_Integer and d != 1:  # a declared number: a symbol bound to it
                    s = sp.Dummy(f"{name}{i}")
                    self.dims.values[s] = int(d)
                    self.dims.owner[s] = f"{name}.shape[{i}]"
                    out.append(s)
                else:
                    out.append(sp.S(d))
            return tuple(out)
        if name in self.scalars:
            return ()
        if name in self.structure:  # symmetric and diagonal matrices are square
            if name[0].islower():
                raise DeriveError(
                    f"'{name}' is declared {self.structure[name]}, so it must be a square matrix; a"
                    f" lower-case name is a vector unless its shape is declared (--shape {name}=n,n)"
                )
            d = sp.Dummy(f"{name}0")
            self.dims.owner[d] = f"{name}.shape[0]"
            return (d, d)
        rank = 2 if name[0].isupper() else 1
        out = tuple(sp.Dummy(f"{name}{i}") for i in range(rank))
        for i, s in enumerate(out):
            self.dims.owner[s] = f"{name}.shape[{i}]"
        return out

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
            out = const(-a.attr) if a.op == "const" else node("mul", const(-1), a)
            if a in self.numbers:
                self.number(n, out)
            return out
        if isinstance(n.op, ast.UAdd):
            return a
        raise self.fail(n, f"the operator in '{self.snippet(n)}' is not allowed")

    def _BinOp(self, n: ast.BinOp) -> Node:
        """``+ - * / @`` nested in any way (a chain of 500 terms, a balanced tree), without recursion;
        other operands are walked as usual, left to right."""
        if isinstance(n.op, ast.Pow):
            return self.power(n)
        chained = lambda c: isinstance(c, ast.BinOp) and not isinstance(c.op, ast.Pow)  # noqa: E731
        done: dict[int, Node] = {}
        stack: list[tuple[str, ast.AST]] = [("open", n)]
        while stack:
            step, m = stack.pop()
            if step == "open":
                stack.append(("combine", m))
                stack.extend(("open" if chained(c) else "walk", c) for c in (m.right, m.left))
            elif step == "walk":
                done[id(m)] = self.walk(m)
            else:
                out = self.binary(m, done.pop(id(m.left)), done.pop(id(m.right)))
                self.shapes_at[id(m)] = out.shape
                done[id(m)] = out
        return done[id(n)]

    def binary(self, n: ast.BinOp, a: Node, b: Node) -> Node:
        """``a op b`` for the operator of ``n`` (not ``**``), its operands already made."""
        operands = ((n.left, a), (n.right, b))
        if isinstance(n.op, ast.MatMult):
            return self.build(n, lambda: node("matmul", a, b), *operands)
        if isinstance(n.op, ast.Div) and b in self.numbers and self.numbers[b][0] == 0:
            raise self.fail(n, f"division by zero in '{self.snippet(n)}'")
        make_op = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div"}.get(type(n.op))
        if make_op is None:
            raise self.fail(n, f"the operator in '{self.snippet(n)}' is not allowed (use + - * / ** @)")
        return self.build(n, lambda: self.elementwise(make_op, a, b), *operands)

    def elementwise(self, op: str, a: Node, b: Node) -> Node:
        """a op b with numpy broadcasting: each operand repeated to the common shape."""
        a, b = self.broadcast(a, b)
        if op == "sub":
            return node("add", a, node("mul", const(-1), b))
        if op == "div":
            return node("mul", a, node("pow", b, attr=sp.Integer(-1)))
        return node(op, a, b)

    def broadcast(self, a: Node, b: Node) -> tuple[Node, Node]:
        if a.shape == () or b.shape == () or a.shape == b.shape:
            return a, b
        target = _common_shape(a.shape, b.shape, self.dims)
        return tuple(x if len(x.shape) == len(target) and _same(x.shape, target, self.dims)
                     else make("broadcast", (x,), target, self.dims) for x in (a, b))  # fmt: skip

    def power(self, n: ast.BinOp) -> Node:
        base = self.walk(n.left)
        exponent = self.walk(n.right)
        if exponent.op != "const":
            raise self.fail(n.right, "an exponent must be a number")
        if base.op == "const" and base.attr == 0 and exponent.attr < 0:
            raise self.fail(n, f"division by zero in '{self.snippet(n)}'")
        if base.op == "const" and base.attr < 0 and not exponent.attr.is_integer:
            raise self.fail(n, f"'{self.snippet(n)}' is not a real number (numpy gives nan)")
        return self.build(n, lambda: node("pow", base, attr=exponent.attr), (n.left, base))

    def _Attribute(self, n: ast.Attribute) -> Node:
        if n.attr == "T":
            a = self.walk(n.value)
            return node("T", a) if a.ndim == 2 else a
        path = _dotted(n)
        if path is not None and path.split(".")[0] in MODULES:
            raise self.fail(n, f"'{path}' is not a known function or must be called")
        raise self.fail(n, f"the attribute '.{n.attr}' is not allowed; only .T and calls of methods are")

    def _Call(self, n: ast.Call) -> Node:
        func = n.func
        path = _dotted(func)
        is_module = path is not None and path.split(".")[0] in MODULES
        known_method = isinstance(func, ast.Attribute) and func.attr in METHODS
        a_module = path is not None and path.split(".")[0] in OTHER_MODULES
        if (
            isinstance(func, ast.Attribute)
            and not is_module
            and not a_module
            and (known_method or path is None or path.count(".") == 1)
        ):
            return self.method(n, func)  # E.sum(), x.foo(): a method of an expression
        if path is None:
            raise self.fail(n, "only named functions can be called")
        prefix, _, name = path.rpartition(".")
        prefix = prefix + "." if prefix else ""
        options = [c for c in FUNCTIONS.get(name, ()) if prefix in c.prefixes]
        if not options:
            raise self.fail(n, self.unknown(path, name))
        return self.call(n, options, list(n.args))

    def method(self, n: ast.Call, func: ast.Attribute) -> Node:
        options = METHODS.get(func.attr, ())
        if not options:
            known = ", ".join(f".{m}()" for m in sorted(METHODS))
            raise self.fail(n, f"unknown method '.{func.attr}()'; the methods are {known}")
        if isinstance(func.value, ast.Name) and func.value.id in MODULES:
            raise self.fail(n, f"unknown function '{_dotted(func)}'")
        if isinstance(func.value, ast.Constant):
            raise self.fail(n, f"'.{func.attr}()' is called on a constant; methods belong to arrays")
        return self.call(n, list(options), [func.value, *n.args])

    def unknown(self, path: str, name: str) -> str:
        hint = SUGGESTIONS.get(name)
        if hint:
            return f"unknown function '{path}': {hint}"
        close = [f for f in FUNCTIONS if f.lower() == name.lower() or (len(name) > 3 and name[:4] == f[:4])]
        if close:
            return f"unknown function '{path}'; did you mean {close[0]}?"
        return f"unknown function '{path}'; the functions are {', '.join(sorted(FUNCTIONS))}"

    def call(self, n: ast.Call, options: list[Call], arg_nodes: list[ast.AST]) -> Node:
        c = options[0]
        name = c.name
        if any(isinstance(a, ast.Starred) for a in n.args) or any(k.arg is None for k in n.keywords):
            raise self.fail(n, f"{name}() takes no starred arguments")
        if len(arg_nodes) not in c.arity:
            want = " or ".join(map(str, c.arity))
            plural = "" if c.arity == (1,) else "s"
            raise self.fail(n, f"{name}() takes {want} argument{plural}, got {len(arg_nodes)}")
        keywords: dict[str, Any] = {}
        for k in n.keywords:
            if k.arg not in c.keywords:
                allowed = f"only {', '.join(c.keywords)}" if c.keywords else "none"
                raise self.fail(k, f"{name}() takes no keyword argument '{k.arg}' ({allowed})")
            if k.arg in keywords:
                raise self.fail(k, f"{name}(): keyword argument repeated: '{k.arg}'")
            keywords[k.arg] = self.literal(k.value, f"{name}()'s {k.arg}")
        args: list[Any] = []
        for i, a in enumerate(arg_nodes):
            args.append(self.literal(a, f"{name}()'s argument {i + 1}") if i in c.numbers else self.walk(a))
        operands = [(a, x) for a, x in zip(arg_nodes, args, strict=True) if isinstance(x, Node)]
        if name in ("maximum", "minimum", "logaddexp") and len(operands) == 2:  # numpy broadcasts these
            (_, a), (_, b) = operands
            return self.build(n, lambda: c.build(list(self.broadcast(a, b)), keywords), *operands)
        return self.build(n, lambda: c.build(args, keywords), *operands)

    def literal(self, n: ast.AST, what: str) -> int | None:
        """A keyword's value or a numeric argument: a whole number (or None), never evaluated."""
        if isinstance(n, ast.Constant) and (n.value is None or isinstance(n.value, bool)):
            return n.value
        sign = 1
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            sign, n = -1, n.operand
        if isinstance(n, ast.Constant) and isinstance(n.value, int) and not isinstance(n.value, bool):
            if abs(n.value) > 64:
                raise self.fail(n, f"{what} {n.value} is out of range")
            return sign * n.value
        expected = "True or False" if what.endswith("keepdims") else "a whole number written out (or None)"
        raise self.fail(n, f"{what} must be {expected}")

    def build(self, n: ast.AST, make_node: Callable[[], Node], *operands: tuple[ast.AST, Node]) -> Node:
        token = DIMS.set(self.dims)
        try:
            out = make_node()
        except ShapeError as e:
            parts = [f"'{self.snippet(a)}' has shape {self.shown(x.shape)}" for a, x in operands]
            hint = ""
            undeclared = [x.attr[0] for _, x in operands if x.op == "var" and x.attr[0] not in self.declared]
            if undeclared:
                hint = f"; declare the shape of '{undeclared[0]}' if it is not what you meant"
            message = f"shape conflict in '{self.snippet(n)}': {e}; {' and '.join(parts)}{hint}"
            raise self.fail(n, message, ShapeConflict) from None
        except ValueError as e:
            raise self.fail(n, f"'{self.snippet(n)}': {e}") from None
        finally:
            DIMS.reset(token)
        for d in out.shape:
            v = self.dims.value(d)
            if v is not None and v < 1:
                raise self.fail(n, f"'{self.snippet(n)}' has no entries at the declared sizes", ShapeConflict)
        if operands and all(x in self.numbers for _, x in operands):
            self.number(n, out)
        return out

    def number(self, n: ast.AST, e: Node) -> None:
        """Record the constant ``e`` (no variables): its float64 value and a bound on its exact size.

        A constant numpy evaluates to nan or inf is refused here, with where it is, as is one
        whose exact value would be huge (``3 ** 1000000000``): derive computes with exact numbers.
        """
        if e.shape != ():
            return
        stack = [e]
        while stack:
            m = stack[-1]
            todo = [a for a in m.args if a not in self.numbers]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            if m in self.numbers:
                continue
            bits = _bits(m, [self.numbers[a][1] for a in m.args])
            if bits > MAX_CONSTANT_BITS:
                raise self.fail(n, f"the exact value of '{self.snippet(n)}' would need more than {MAX_CONSTANT_BITS}"
                                " bits (derive computes with exact numbers); write a smaller number")  # fmt: skip
            with np.errstate(all="ignore"):
                value = float(step(m, self.floats, [self.numbers[a][0] for a in m.args]))
            if math.isnan(value):
                raise self.fail(n, f"'{self.snippet(n)}' is not a real number (numpy gives nan)")
            if math.isinf(value):
                raise self.fail(n, f"'{self.snippet(n)}' is not finite (numpy gives {value})")
            self.numbers[m] = (value, bits)

    # ----- resolution -----

    def resolve(self, expr: Node) -> tuple[Node, dict[str, Shape], dict[sp.Symbol, int], tuple[str, ...]]:
        """Replace placeholders by declared names or fresh letters; the declared sizes; the inferred names."""
        taken = {str(d) for s in self.declared.values() for d in s if isinstance(d, sp.Symbol)}
        taken |= set(self.var_shapes)
        spare = (f"d{i}" for i in itertools.count(1))  # past the usual letters: d1, d2, ...
        pool = (d for d in itertools.chain(DIM_NAMES, spare) if d not in taken)
        mapping: dict[sp.Basic, sp.Basic] = {}
        sizes: dict[sp.Symbol, int] = {}

        def letter_for(root: sp.Basic) -> sp.Basic:
            if root in mapping:
                return mapping[root]
            if isinstance(root, sp.Dummy):
                mapping[root] = dim(next(pool))
                v = self.dims.value(root)
                if v is not None:
                    sizes[mapping[root]] = v
            else:
                mapping[root] = root
            return mapping[root]

        for name in self.order:
            for d in self.var_shapes[name]:
                root = self.dims.find(d)
                for s in sorted(root.free_symbols, key=str):
                    letter_for(self.dims.find(s))
        full: dict[sp.Basic, sp.Basic] = {}
        for n in topo(expr):
            for d in _dims_in(n):
                for s in sorted(d.free_symbols, key=str):
                    if s not in full:
                        root = self.dims.find(s)
                        inner = sorted(root.free_symbols, key=str)
                        full[s] = root.xreplace({x: letter_for(self.dims.find(x)) for x in inner})
        shapes = {name: tuple(sp.S(d).xreplace(full) for d in self.var_shapes[name]) for name in self.order}
        inferred = tuple(n for n in self.order if n not in self.declared)
        return _substitute(expr, full), shapes, sizes, inferred


def _common_shape(a: Shape, b: Shape, dims: _Unifier) -> Shape:
    """numpy's broadcast shape of a and b (trailing axes align; a literal 1 repeats)."""
    n = max(len(a), len(b))
    a2 = (None,) * (n - len(a)) + tuple(a)
    b2 = (None,) * (n - len(b)) + tuple(b)
    out = []
    vectors = len(a) == len(b) == 1  # a length-1 vector against an unknown length: the same length
    for x, y in zip(a2, b2, strict=True):
        if vectors and dims(x, y):
            out.append(x)
        elif x is None or (sp.S(x) == 1 and y is not None):
            out.append(y)
        elif y is None or sp.S(y) == 1 or dims(x, y):
            out.append(x)
        else:
            raise ShapeError("shapes do not broadcast: each axis must match, or be 1")
    target = tuple(out)
    for s in (a, b):
        broadcast_axes(s, target, dims)
    return target


def _same(a: Shape, b: Shape, dims: Dims) -> bool:
    return all(dims.find(x) == dims.find(y) for x, y in zip(a, b, strict=True)) if hasattr(dims, "find") else a == b


def _dims_in(n: Node) -> list[sp.Basic]:
    """Every dimension a node mentions: its shape and any shapes in its attr."""
    out = [sp.S(d) for d in n.shape]

    def collect(a: Any) -> None:
        if isinstance(a, tuple):
            for x in a:
                collect(x)
        elif isinstance(a, sp.Basic) and a.free_symbols:
            out.append(a)

    if n.op != "const":
        collect(n.attr)
    return out


def _substitute(e: Node, mapping: dict) -> Node:
    """Rebuild ``e`` with dimensions replaced (after shape inference)."""

    def sub_attr(a: Any) -> Any:
        if isinstance(a, tuple):
            return tuple(sub_attr(x) for x in a)
        if isinstance(a, sp.Basic):
            return a.xreplace(mapping)
        return a

    memo: dict[Node, Node] = {}
    for n in topo(e):
        attr = n.attr if n.op in ("const", "entry") else sub_attr(n.attr)
        memo[n] = make(n.op, tuple(memo[a] for a in n.args), attr, Dims())
    return memo[e]


def _dotted(n: ast.AST) -> str | None:
    parts = []
    while isinstance(n, ast.Attribute):
        parts.append(n.attr)
        n = n.value
    if isinstance(n, ast.Name):
        parts.append(n.id)
        return ".".join(reversed(parts))
    return None


_KINDS = MappingProxyType({
    ast.Lambda: "a lambda", ast.Subscript: "a subscript", ast.ListComp: "a comprehension",
    ast.GeneratorExp: "a generator", ast.DictComp: "a comprehension", ast.SetComp: "a comprehension",
    ast.JoinedStr: "an f-string", ast.Compare: "a comparison", ast.BoolOp: "a boolean operator",
    ast.IfExp: "a conditional expression", ast.NamedExpr: "an assignment", ast.Await: "await",
    ast.Yield: "yield", ast.YieldFrom: "yield", ast.List: "a list", ast.Tuple: "a tuple", ast.Dict: "a dict",
    ast.Set: "a set", ast.Starred: "a starred expression", ast.Slice: "a slice",
})  # fmt: skip


def _describe(n: ast.AST) -> str:
    if isinstance(n, ast.Constant):
        kinds = {str: "a string", bytes: "a bytes string", bool: "a boolean", complex: "a complex number"}
        if n.value is None or n.value is Ellipsis:
            return repr(n.value) if n.value is None else "'...'"
        return kinds.get(type(n.value), f"a {type(n.value).__name__} constant")
    return _KINDS.get(type(n), f"'{type(n).__name__}'")


def _depth(tree: ast.AST) -> int:
    """The nesting depth of an ast, flat chains (a + b + c, A @ B @ C) counted once."""
    deepest, stack = 0, [(tree, 0)]
    while stack:
        n, d = stack.pop()
        deepest = max(deepest, d)
        for c in ast.iter_child_nodes(n):
            chained = isinstance(n, ast.BinOp) and isinstance(c, ast.BinOp) and type(c.op) is type(n.op)
            stack.append((c, d if chained or isinstance(c, ast.operator | ast.expr_context) else d + 1))
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
        if isinstance(name, str):
            name = unicodedata.normalize("NFKC", name)  # as Python reads a name: ｘ is x
        if not isinstance(name, str) or not _NAME.match(name) or keyword.iskeyword(name):
            raise DeriveError(f"shape given for {name!r}, which is not a variable name")
        if isinstance(dims, int | str | sp.Basic):
            dims = (dims,)
        if not isinstance(dims, Sequence) or isinstance(dims, bytes) or len(dims) > 4:
            raise DeriveError(f"shape of '{name}' must be a tuple of at most 4 dimensions, got {_show(dims)}")
        shape = []
        for d in dims:
            if isinstance(d, sp.Basic) and not d.is_Integer and not d.is_Symbol:
                if not all(s.is_Symbol and s.is_integer and s.is_positive for s in d.free_symbols):
                    raise DeriveError(f"shape of '{name}': {str(d)[:40]!r} is not a dimension")
                shape.append(d)  # a dimension of another variable's (from a parsed problem)
                continue
            if isinstance(d, sp.Basic):
                d = int(d) if d.is_Integer else str(d)
            if isinstance(d, bool) or not isinstance(d, int | str):
                raise DeriveError(f"shape of '{name}': {_show(d)} is neither a size nor a dimension name")
            if isinstance(d, int) and not 1 <= d <= MAX_DIM:
                raise DeriveError(f"shape of '{name}': size {_show(d)} is out of range (1 to {MAX_DIM})")
            if isinstance(d, str) and not _NAME.match(d):
                raise DeriveError(f"shape of '{name}': {_show(d)} is not a dimension name")
            shape.append(sp.Integer(d) if isinstance(d, int) else dim(d))
        out[name] = tuple(shape)
    return out


def parse_structure(symmetric: Sequence[str], diagonal: Sequence[str]) -> dict[str, str]:
    """{name: "symmetric" | "diagonal"} from the two lists; a name in both is an error."""
    out: dict[str, str] = {}
    for kind, names in (("symmetric", symmetric), ("diagonal", diagonal)):
        if isinstance(names, str):
            names = (names,)
        for n in names or ():
            if not isinstance(n, str) or not _NAME.match(n):
                raise DeriveError(f"{kind}: {n!r} is not a variable name")
            if out.get(n, kind) != kind:
                raise DeriveError(f"'{n}' cannot be both symmetric and diagonal (a diagonal matrix is symmetric)")
            out[n] = kind
    return out


def python_ast(text: str) -> ast.Expression:
    """``text`` parsed as one Python expression, never evaluated. Python's warnings about the text
    (``1if``: invalid decimal literal) are not printed: the text is refused or accepted on its own terms."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return ast.parse(text, mode="eval")


def parse(text: str, shapes: Mapping[str, Sequence[int | str]] | None = None,
          entries: Mapping[str, sp.Symbol] | None = None, structure: Mapping[str, str] | None = None,
          limits: Limits | None = None, budget: Budget | None = None) -> Problem:  # fmt: skip
    """Parse ``text`` (numpy syntax) into a :class:`Problem`; never evaluates it.

    Raises :class:`DeriveError`, one line naming the column, for anything
    outside the grammar and for shapes that conflict or cannot be inferred.
    With ``entries`` (entry names such as ``a11`` mapped to their symbols),
    the text may also use those names and list literals, and may use no
    variable that ``shapes`` does not declare: this is how claims are read.
    """
    limits = limits or Limits()
    if not isinstance(text, str):
        raise DeriveError(f"the expression must be a string, got {type(text).__name__}")
    if len(text) > limits.length:
        raise DeriveError(
            f"the expression is {len(text)} characters long; the limit is {limits.length}"
            f" ({limits.how_to_raise('length')})"
        )
    if not text.strip():
        raise DeriveError("the expression is empty")
    if "\x00" in text:
        raise DeriveError("the expression contains a NUL character", text.index("\x00") + 1)
    declared = parse_shapes(shapes)
    structure = dict(structure or {})
    body = text.strip()
    lead = text[: len(text) - len(text.lstrip())]
    shift = (lead.count("\n"), len(lead) - lead.rfind("\n") - 1)  # where the stripped text starts
    try:
        tree = python_ast(body)
    except SyntaxError as e:
        line, col = (e.lineno or 1), (e.offset or 1)
        col = col + shift[1] if line == 1 else col
        line += shift[0]
        where = f"line {line}, column {col}" if line > 1 else f"column {col}"
        raise DeriveError(f"{where}: syntax error: {e.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise DeriveError("the expression is nested too deeply for Python's parser") from None
    if _depth(tree) > limits.depth:
        raise DeriveError(f"the expression is nested more than {limits.depth} deep ({limits.how_to_raise('depth')})")
    for name, kind in structure.items():
        if name in declared and (len(declared[name]) != 2 or declared[name][0] != declared[name][1]):
            raise DeriveError(f"'{name}' is declared {kind}, so it must be a square matrix, not {declared[name]}")
    walk = lambda scalars: _walk(body, tree, declared, entries, shift, structure, scalars, budget)  # noqa: E731
    try:
        w, expr = walk(set())
        scalars = _scalar_names(tree, w, declared, structure) if entries is None else set()
        if scalars:
            try:
                w, expr = walk(scalars)
            except DeriveError:
                scalars = set()
                w, expr = walk(scalars)
    except RecursionError:
        raise DeriveError(f"the expression is nested too deeply ({limits.how_to_raise('depth')})") from None
    expr, resolved, sizes, inferred = w.resolve(expr)
    for name, kind in structure.items():
        if name not in resolved:
            raise DeriveError(f"'{name}' is declared {kind} but is not in the expression")
        s = resolved[name]
        if len(s) != 2 or s[0] != s[1]:
            raise DeriveError(f"'{name}' is declared {kind}, so it must be a square matrix")
    notes = _choices(tree, w, inferred, scalars)
    return Problem(text.strip(), expr, resolved, sizes, {n: structure[n] for n in structure}, notes, inferred)


def _walk(body, tree, declared, entries, shift, structure, scalars, budget):
    w = _Walker(body, declared, entries, shift, structure, scalars, budget)
    return w, w.walk(tree)


def _uses(tree: ast.AST, w: _Walker) -> dict[str, list[tuple[Shape | str | None, bool]]]:
    """For each undeclared lower-case name: the shape of what each use meets (None: not element-wise),
    and whether it meets it in a product or quotient."""
    parents: dict[int, ast.AST] = {}
    for p in ast.walk(tree):
        for c in ast.iter_child_nodes(p):
            parents[id(c)] = p
    out: dict[str, list[tuple[Shape | str | None, bool]]] = {}
    for n in ast.walk(tree):
        name = w.names_at.get(id(n))
        if name is None or name in w.declared or not name[0].islower():
            continue
        met: Shape | str | None = None
        scaling = False
        cur = n
        while True:
            p = parents.get(id(cur))
            if p is None:
                break
            if isinstance(p, ast.UnaryOp) or (isinstance(p, ast.BinOp) and isinstance(p.op, ast.Pow) and p.left is cur):
                cur = p
                continue
            if isinstance(p, ast.Call) and isinstance(p.func, ast.Name | ast.Attribute) and len(p.args) == 1 \
                    and _dotted(p.func) and _dotted(p.func).rpartition(".")[2] in _ELEMENTWISE:  # fmt: skip
                cur = p
                continue
            if isinstance(p, ast.BinOp) and isinstance(p.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
                other = p.right if p.left is cur else p.left
                met = w.shapes_at.get(id(other))
                if met == () and _plain(other):
                    met = "neutral"  # a number or a bare variable says nothing about this name's shape
                scaling = isinstance(p.op, ast.Mult | ast.Div) and _plain(other)
            break
        out.setdefault(name, []).append((met, scaling))
    return out


def _elementwise_names() -> frozenset[str]:
    from .ops.functions import FUNCTIONS as FNS

    return frozenset(c for f in FNS.values() for c in f.calls)


_ELEMENTWISE = _elementwise_names()


def _plain(n: ast.AST) -> bool:
    """A number or a bare name (possibly negated): no evidence about what it multiplies."""
    while isinstance(n, ast.UnaryOp):
        n = n.operand
    return isinstance(n, ast.Constant | ast.Name)


def _scalar_names(tree: ast.AST, w: _Walker, declared, structure) -> set[str]:
    """Undeclared lower-case names whose every use meets only scalars, at least one of them computed
    (``reg * norm(w)**2``); a number or a bare name met is no evidence either way."""
    out = set()
    for n, uses in _uses(tree, w).items():
        shapes = [m for m, _ in uses]
        if n not in structure and () in shapes and all(m in ((), "neutral") for m in shapes):
            out.add(n)
    return out


def _choices(tree: ast.AST, w: _Walker, inferred: tuple[str, ...], scalars: set[str]) -> tuple[str, ...]:
    """Notes on shapes the expression left open: a lower-case name multiplied element-wise by a vector."""
    out = []
    for name, uses in _uses(tree, w).items():
        if name in inferred and name not in scalars and any(isinstance(m, tuple) and m != () and k for m, k in uses):
            out.append(name)
    if not out:
        return ()
    names = ", ".join(f"'{n}'" for n in out)
    plural = "s" if len(out) > 1 else ""
    return (f"{names} taken as vector{plural} of one length; the expression allows a scalar too (declare"
            f" '{out[0]}' with an empty shape for a scalar: --shape {out[0]}= on the command line)",)  # fmt: skip
