"""Element-wise steps written into the array they consume, as careful numpy does.

In ``-(X.T @ (sigmoid(-(y * (X @ w))) * y))`` every element-wise step makes a
new m-vector while the one it read is dropped. Generated code instead
computes ``X @ w`` once into a buffer and updates that buffer in place:
``t1 *= y``, ``np.negative(t1, out=t1)``, ``_sigmoid(t1, out=t1)``. A step
is written in place only into an operand that

- has the step's shape (numpy never broadcasts into it) and at least one axis, and
  prints at that shape (no part of it left for numpy to broadcast later),
- is read by that step alone (no shared subexpression, nothing read later),
- prints as a new array (an arithmetic result or a call listed in
  :data:`FRESH_CALLS`), never an argument, a view of one or a boolean mask.

A buffer is a float array: where its first value could be an integer array
(``X @ w`` of integer arguments), the function first converts the arguments
it reads from integers and booleans to floats.
"""

from __future__ import annotations

import ast
import inspect
from collections import Counter

import sympy as sp

from . import numpy_helpers
from .ir import Node, topo
from .ops.algebra import split_coef
from .ops.build import const, node
from .ops.functions import FUNCTIONS

#: numpy calls that return a new float array (never a view of an argument)
NUMPY_FRESH = frozenset(
    {"outer", "square", "sqrt", "exp", "log", "log1p", "expm1", "tanh", "sin", "cos", "abs", "sign",
     "maximum", "minimum", "heaviside", "zeros", "negative", "reciprocal"}
)  # fmt: skip
#: every call a buffer may start from: those numpy calls and the helpers that return a new float array
FRESH_CALLS = frozenset({f"np.{f}" for f in NUMPY_FRESH} | set(numpy_helpers.FRESH))

#: the calls that build a dense identity, diagonal, Kronecker or convolution matrix
DENSE = frozenset({"np.eye", "np.diag", "np.kron", "_commutation", "_im2col", "_toeplitz", "_kron_diag"})

_OPS = frozenset({"mul", "add", "fn", "pow"})
_ELEMENTWISE = _OPS | {"maximum", "minimum"}


def uses(roots: list[Node]) -> Counter[Node]:
    """How often each node is read: once per root, and once per occurrence as an operand of a distinct node
    (x @ x reads x twice)."""
    count: Counter[Node] = Counter(roots)
    seen: set[Node] = set()
    for r in roots:
        stack = [r]
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            for a in n.args:
                count[a] += 1
                stack.append(a)
    return count


def plan(order: list[Node], uses: Counter[Node], shared: set[Node]) -> dict[Node, tuple[Node, bool]]:
    """For each node of ``order`` that can be computed in place: the operand whose buffer it takes, and whether
    the step subtracts that operand from the other one (``y - a`` as ``np.subtract(y, buf, out=buf)``)."""

    thin: dict[Node, bool] = {}  # may print smaller than its shape: numpy broadcasts a part later
    for n in order:
        thin[n] = n.op == "broadcast" or (n.op in _ELEMENTWISE and any(thin[a] for a in n.args))

    def usable(n: Node, a: Node) -> bool:
        return (
            a.shape == n.shape
            and uses[a] == 1
            and a not in shared
            and a.op not in ("var", "const")
            and not thin[a]  # t2[:, None] - s[:, None] is (m, 1) where its shape is (m, p)
        )

    parent = {a: n for n in order for a in n.args}
    out: dict[Node, tuple[Node, bool]] = {}
    for n in order:
        if n.op not in _OPS or n.ndim == 0 or not _writable(n):
            continue
        if _negation(n) and uses[n] == 1 and parent.get(n, n).op == "add" and n not in shared:
            continue  # folded into the subtraction
        for a in n.args:
            if n.op == "add" and _negation(a) and uses[a] == 1 and a not in shared and usable(n, a.args[1]):
                out[n] = (a.args[1], True)
                break
            if usable(n, a):
                if n.op == "mul" and a.op == "outer" and all(b.op == "const" for b in n.args if b is not a):
                    break  # np.outer(c * u, v) scales the shorter vector: better than a pass over the matrix
                out[n] = (a, False)
                break
    return out


def _negation(n: Node) -> bool:
    return n.op == "mul" and n.args[0].op == "const" and n.args[0].attr == -1


def _writable(n: Node) -> bool:
    """Whether ``n``'s step has an in-place form: a function by a ufunc or a helper taking ``out``."""
    if n.op != "fn":
        return n.op != "pow" or sp.S(n.attr).is_real is True
    name, order = n.attr
    f = FUNCTIONS[name]
    if f.mask and order == 0:
        return False  # printed as a boolean mask inside a product: cheaper than any float pass
    form = f.numpy[order] if order < len(f.numpy) else None
    if form is None:
        return False
    if form.startswith("np."):
        return True
    return "out" in inspect.signature(getattr(numpy_helpers, form)).parameters


def floating(e: Node, floats: set[str]) -> bool:
    """Whether numpy computes ``e`` in floating point whatever the dtypes of the arguments not in ``floats``."""
    memo: dict[Node, bool] = {}
    for n in topo(e):
        if n.op == "var":
            memo[n] = n.attr[0] in floats
        elif n.op == "const":
            memo[n] = sp.S(n.attr).is_integer is not True
        elif n.op == "fn" and FUNCTIONS[n.attr[0]].mask and n.attr[1] == 0:
            memo[n] = False  # printed as a boolean mask beside a float factor: (t > 0) * y is y's dtype
        elif n.op in ("fn", "ones", "eye"):
            memo[n] = True
        elif n.op == "pow" and not (sp.S(n.attr).is_integer and sp.S(n.attr) >= 0):
            memo[n] = True  # 1 / a, np.sqrt(a)
        else:
            memo[n] = any(memo[a] for a in n.args)
    return memo[e]


def arrays(e: Node) -> set[str]:
    """The names of the array arguments (not scalars) ``e`` reads."""
    return {n.attr[0] for n in topo(e) if n.op == "var" and n.ndim}


def fresh(text: str) -> bool:
    """Whether code ``text`` makes a new array: arithmetic, or a call in :data:`FRESH_CALLS`; and builds no
    dense structured matrix (generated code builds one only as the value it returns)."""
    e = ast.parse(text, mode="eval").body
    if not isinstance(e, ast.BinOp | ast.UnaryOp | ast.Call):
        return False
    if isinstance(e, ast.Call) and ast.unparse(e.func) in FRESH_CALLS:
        return dense_free(text)
    return not isinstance(e, ast.Call) and dense_free(text)


def dense_free(text: str) -> bool:
    """Whether code ``text`` calls none of the constructors of dense structured matrices (``DENSE``)."""
    return not any(isinstance(c, ast.Call) and ast.unparse(c.func) in DENSE for c in ast.walk(ast.parse(text)))


def steps(p, n: Node, a: Node, buf: str, negated: bool = False) -> list[str] | None:
    """Statements turning ``buf`` (holding ``a``) into ``n``, operands printed as they would be under ``n``;
    None where an operand is a dense structured matrix (built only where it is returned)."""
    others = [b for b in n.args if b is not a and not (negated and b.op == "mul" and b.args[1] is a)]
    if n.op == "fn":
        name, order = n.attr
        form = FUNCTIONS[name].numpy[order]
        if "{}" in form:  # np.maximum({}, 0.0)
            return [form.format(buf)[:-1] + f", out={buf})"]
        if not form.startswith("np."):
            p.use(form)
        return [f"{form}({buf}, out={buf})"]
    if n.op == "pow":
        k = sp.S(n.attr)
        simple = {2: "np.square", -1: "np.reciprocal", sp.Rational(1, 2): "np.sqrt"}
        if k in simple:
            return [f"{simple[k]}({buf}, out={buf})"]
        return [f"{buf} **= {p.number_code(k)[0]}"]
    out: list[str] = []
    for b in others:
        c, rest = split_coef(b)
        if n.op == "mul" and b.op == "const":
            out.append(f"np.negative({buf}, out={buf})" if c == -1 else f"{buf} *= {p.number_code(c)[0]}")
        elif n.op == "mul":
            out.append(f"{buf} *= {_under(p, n, b)}")
        elif negated:
            out.append(f"np.subtract({_under(p, n, b)}, {buf}, out={buf})")
        elif c.is_negative is True:
            out.append(f"{buf} -= {_under(p, n, rest if c == -1 else node('mul', const(-c), rest))}")
        else:
            out.append(f"{buf} += {_under(p, n, b)}")
    return out if all(dense_free(line) for line in out) else None


def _under(p, parent: Node, e: Node) -> str:
    """``e`` printed as an operand of ``parent`` (a broadcast stays implicit, a step function a mask)."""
    p.stack.append(parent)
    try:
        return p.doprint(e)
    finally:
        p.stack.pop()
