"""Rewrite expressions into the form a person writes.

:func:`simplify` rebuilds a tree bottom-up; each op has one rewrite in
:data:`REWRITES`, applied after its operands are already simple. The
rewrites only ever use identities that hold for all values (no assumed
symmetry, no cancellation that needs a non-zero guard beyond the one the
expression itself already carries), so the result equals the input; the
proof checks this independently anyway.

What they do: pull numbers and scalars out of products (2 A^T r, never
(2 A^T) r), collect like terms, factor a common matrix out of a sum
((A + A^T) x), fold away identities, ones and Kronecker products with I
(I (x) D -> D, D (x^T (x) I) -> x^T (x) D), and push transposes inward.
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp

from . import ir
from .ir import Node, node

Rewrite = Callable[[Node], Node]


def simplify(e: Node) -> Node:
    """An equal expression, in readable form; shapes are unchanged."""
    memo: dict[Node, Node] = {}

    def go(n: Node) -> Node:
        if n in memo:
            return memo[n]
        args = tuple(go(a) for a in n.args)
        m = n if args == n.args else node(n.op, *args, attr=n.attr)
        rewrite = REWRITES.get(m.op)
        out = rewrite(m) if rewrite else m
        if out != m:
            out = go(out) if out.op != m.op or out.args != args else out
        if out.shape == () and n.shape != ():  # a rewrite dropped a broadcast (b - b + c -> c): put it back
            out = node("mul", out, ir.ones(n.shape))
        memo[n] = out
        return out

    return go(e)


# ----- building blocks (all take simplified operands) -----


def zeros(shape: ir.Shape) -> Node:
    return ir.const(0) if shape == () else node("mul", ir.const(0), ir.ones(shape))


def is_zero(e: Node) -> bool:
    return ir.is_const(e, 0) or (e.op == "mul" and ir.is_const(e.args[0], 0))


def split_coef(e: Node) -> tuple[sp.Expr, Node]:
    """``e`` as (number, rest): 2 A -> (2, A); 3 -> (3, 1)."""
    if e.op == "const":
        return e.attr, ir.ONE
    if e.op == "mul" and ir.is_const(e.args[0]):
        return e.args[0].attr, e.args[1]
    return sp.Integer(1), e


def scale(c: sp.Expr, e: Node) -> Node:
    """The number ``c`` times ``e``, merged with any number ``e`` has."""
    c0, rest = split_coef(e)
    c = sp.S(c) * c0
    if c == 0:
        return zeros(e.shape)
    if rest == ir.ONE:
        return ir.const(c)
    if c == 1:
        return rest
    return node("mul", ir.const(c), rest)


def split_scalars(e: Node) -> tuple[list[Node], Node]:
    """Scalar factors of a product, and the non-scalar rest (for pulling out)."""
    if e.op != "mul" or e.shape == ():
        return [], e
    factors = flatten_mul(e)
    scalars = [f for f in factors if f.shape == ()]
    tensors = [f for f in factors if f.shape != ()]
    if not scalars or not tensors:
        return [], e
    return scalars, product(tensors)


def flatten_mul(e: Node) -> list[Node]:
    if e.op == "mul":
        return flatten_mul(e.args[0]) + flatten_mul(e.args[1])
    return [e]


def flatten_add(e: Node) -> list[Node]:
    if e.op == "add":
        return flatten_add(e.args[0]) + flatten_add(e.args[1])
    return [e]


def product(factors: list[Node]) -> Node:
    out = factors[0]
    for f in factors[1:]:
        out = node("mul", out, f)
    return out


def total(terms: list[Node]) -> Node:
    out = terms[0]
    for t in terms[1:]:
        out = node("add", out, t)
    return out


def with_scalars(scalars: list[Node], e: Node) -> Node:
    """Scalar factors (numbers first) times ``e``."""
    return product(scalars + [e]) if scalars else e


# ----- element-wise -----


def _add(e: Node) -> Node:
    terms: dict[Node, sp.Expr] = {}
    for t in flatten_add(e):
        c, rest = split_coef(t)
        if c != 0:
            terms[rest] = terms.get(rest, sp.Integer(0)) + c
    kept = [(c, t) for t, c in terms.items() if c != 0]
    if not kept:
        return zeros(e.shape)
    kept.sort(key=lambda ct: ct[0].is_negative is True)  # positive terms first, else stable
    common = _common_factor([c for c, _ in kept])
    parts = [scale(c / common, t) for c, t in kept]
    factored = _factor_matmul(parts)
    body = factored if factored is not None else total(parts)
    return scale(common, body)


def _common_factor(coefs: list[sp.Expr]) -> sp.Expr:
    """A number shared by all coefficients: 2a + 2b -> 2(a + b), -a - b -> -(a + b)."""
    if len(coefs) < 2 or not all(c.is_Rational for c in coefs):
        return sp.Integer(1)
    g = coefs[0]
    for c in coefs[1:]:
        g = sp.gcd(g, c)
    sign = -1 if all(c.is_negative for c in coefs) else 1
    return sign * abs(g) if g != 0 else sp.Integer(1)


def _factor_matmul(parts: list[Node]) -> Node | None:
    """A L + B L -> (A + B) L and L A + L B -> L (A + B), when every term shares L."""
    if len(parts) < 2:
        return None
    cores = [split_coef(p) for p in parts]
    if not all(t.op == "matmul" for _, t in cores):
        return None
    for side in (1, 0):
        shared = cores[0][1].args[side]
        if all(t.args[side] == shared for _, t in cores):
            others = [scale(c, t.args[1 - side]) for c, t in cores]
            if len({o.shape for o in others}) != 1:
                return None
            inner = total(others)
            return node("matmul", inner, shared) if side == 1 else node("matmul", shared, inner)
    return None


def _mul(e: Node) -> Node:
    factors = flatten_mul(e)
    c = sp.Integer(1)
    powers: dict[Node, sp.Expr] = {}
    for f in factors:
        fc, rest = split_coef(f)
        c *= fc
        if rest.op == "ones":
            continue
        if rest == ir.ONE:
            continue
        base, p = (rest.args[0], rest.attr) if rest.op == "pow" else (rest, sp.Integer(1))
        powers[base] = powers.get(base, sp.Integer(0)) + p
    if c == 0:
        return zeros(e.shape)
    kept = [b if p == 1 else node("pow", b, attr=p) for b, p in powers.items() if p != 0]
    kept.sort(key=lambda f: f.shape != ())  # scalars in front of tensors
    if e.shape != () and all(f.shape == () for f in kept):
        kept.append(ir.ones(e.shape))  # keep the shape: 2 * ones, not 2
    if not kept:
        return ir.const(c)
    return scale(c, product(kept))


def _pow(e: Node) -> Node:
    a, p = e.args[0], e.attr
    if p == 1:
        return a
    if p == 0:
        return ir.ONE if e.shape == () else ir.ones(e.shape)
    if ir.is_const(a):
        return ir.const(a.attr**p)
    if a.op == "pow" and p.is_integer:
        return node("pow", a.args[0], attr=a.attr * p)
    c, rest = split_coef(a)
    if c != 1 and p.is_integer:
        return scale(c**p, node("pow", rest, attr=p))
    if a.op == "mul" and p.is_integer:
        return product([node("pow", f, attr=p) for f in flatten_mul(a)])
    return e


# ----- linear algebra -----


def _matmul(e: Node) -> Node:
    pulled = _bilinear(e)  # 2 A^T r, never (2 A^T) r
    if pulled != e:
        return pulled
    a, b = e.args
    if is_zero(a) or is_zero(b):
        return zeros(e.shape)
    if a.op == "eye":
        return b
    if b.op == "eye":
        return a
    if _inverse_pair(a, b) or _inverse_pair(b, a):  # X X^-1 = X^-1 X = I
        return ir.eye(a.shape[0])
    if a.ndim == 1 and b.ndim == 2:  # x @ A is A^T x for a 1-D x
        return node("matmul", node("T", b), a)
    if a.op == "diag" and b.op == "diag" and a.args[0].ndim == 1 and b.args[0].ndim == 1:
        return node("diag", node("mul", a.args[0], b.args[0]))
    if a.op == "kron" and b.op == "kron":
        return _mixed_product(a, b) or e
    if b.op == "kron" and _is_row(b.args[0]) and b.args[1].ndim == 2 and a.ndim == 2:
        r, m = b.args  # M (r (x) B) = r (x) (M B) when r is a single row
        if a.shape[1] == m.shape[0]:
            return node("kron", r, node("matmul", a, m))
    if a.op == "matmul" and b.ndim == 2 and a.args[1].op == "kron":
        return node("matmul", a.args[0], node("matmul", a.args[1], b))
    return e


def _inverse_pair(a: Node, b: Node) -> bool:
    """b is a's inverse: inv(X) after X, or X^-T after X^T."""
    if b.op == "inv" and b.args[0] == a:
        return True
    return a.op == "T" and b.op == "T" and b.args[0].op == "inv" and b.args[0].args[0] == a.args[0]


def _is_row(x: Node) -> bool:
    """A 1-D operand of kron, or a 1 x n matrix: numpy's kron treats both as a row."""
    return x.ndim == 1 or (x.ndim == 2 and x.shape[0] == 1)


def _mixed_product(a: Node, b: Node) -> Node | None:
    """(A (x) B)(C (x) D) = AC (x) BD when the factors conform (Cookbook 520)."""
    (p, q), (r, s) = a.args, b.args
    if all(x.ndim == 2 for x in (p, q, r, s)) and p.shape[1] == r.shape[0] and q.shape[1] == s.shape[0]:
        return node("kron", node("matmul", p, r), node("matmul", q, s))
    return None


def _transpose(e: Node) -> Node:
    (a,) = e.args
    if a.ndim < 2:
        return a
    if a.op == "T":
        return a.args[0]
    if a.op == "eye":
        return a
    if a.op == "commutation":
        return ir.commutation(a.attr[1], a.attr[0])
    if a.op == "diag" and a.args[0].ndim == 1:
        return a
    if a.op == "ones":
        return ir.ones(tuple(reversed(a.shape)))
    if a.op == "add":
        return total([node("T", t) for t in flatten_add(a)])
    if a.op == "mul":
        return product([node("T", f) if f.ndim == 2 else f for f in flatten_mul(a)])
    if a.op == "matmul":
        x, y = a.args
        return node("matmul", node("T", y), node("T", x))
    if a.op == "outer":
        return node("outer", a.args[1], a.args[0])
    if a.op == "kron":
        return node("kron", *(_t2(x) for x in a.args))
    if a.op == "row":
        return node("col", a.args[0])
    if a.op == "col":
        return node("row", a.args[0])
    if a.op in ("fn", "pow"):
        return node(a.op, node("T", a.args[0]), attr=a.attr)
    return e


def _t2(x: Node) -> Node:
    """Transpose inside kron, where numpy treats a 1-D operand as a row."""
    return node("col", x) if x.ndim == 1 else node("T", x)


def _inv(e: Node) -> Node:
    (a,) = e.args
    if a.op == "inv":
        return a.args[0]
    if a.op == "eye":
        return a
    return e


def _sum(e: Node) -> Node:
    (a,) = e.args
    c, rest = split_coef(a)
    scalars, rest = split_scalars(rest)
    if c != 1 or scalars:
        return scale(c, with_scalars(scalars, node("sum", rest)))
    if a.op == "ones":
        return ir.const(a.size)
    if a.shape == ():
        return a
    return e


def _diag(e: Node) -> Node:
    (a,) = e.args
    if a.op == "ones" and a.ndim == 1:
        return ir.eye(a.shape[0])
    c, rest = split_coef(a)
    if c != 1:
        return scale(c, node("diag", rest))
    return e


def _kron(e: Node) -> Node:
    pulled = _bilinear(e)
    if pulled != e:
        return pulled
    a, b = e.args
    if a.op == "eye" and b.op == "eye":
        return ir.eye(a.attr[0] * b.attr[0])
    if a.op == "eye" and a.attr[0] == 1:
        return b
    if b.op == "eye" and b.attr[0] == 1:
        return a
    if a.op == "row" and a.args[0].ndim == 1 and b.ndim == 2:
        return node("kron", a.args[0], b)  # numpy's kron reads a 1-D operand as a row
    return e


def _bilinear(e: Node) -> Node:
    """Numbers and scalars out of both operands: outer(2 a, b) -> 2 outer(a, b)."""
    a, b = e.args
    ca, a = split_coef(a)
    cb, b = split_coef(b)
    sa, a = split_scalars(a)
    sb, b = split_scalars(b)
    if ca != 1 or cb != 1 or sa or sb:
        return scale(ca * cb, with_scalars(sa + sb, node(e.op, a, b)))
    return e


def _linear1(op: str) -> Rewrite:
    """Pull a number out of a one-argument linear op: vec(2 X) -> 2 vec(X)."""

    def rewrite(e: Node) -> Node:
        c, rest = split_coef(e.args[0])
        if c != 1 and rest != ir.ONE:
            return scale(c, node(op, rest))
        if op == "vec" and rest.ndim < 2:
            return rest
        return e

    return rewrite


def _trace(e: Node) -> Node:
    (a,) = e.args
    c, rest = split_coef(a)
    if c != 1:
        return scale(c, node("trace", rest))
    if a.op == "eye":
        return ir.const(a.attr[0])
    return e


def _linear_in(position: int) -> Rewrite:
    """Pull numbers and scalars out of the operand an op is linear in (the upstream gradient)."""

    def rewrite(e: Node) -> Node:
        c, rest = split_coef(e.args[position])
        scalars, rest = split_scalars(rest)
        if c == 1 and not scalars:
            return e
        args = list(e.args)
        args[position] = rest
        return scale(c, with_scalars(scalars, node(e.op, *args, attr=e.attr)))

    return rewrite


REWRITES: dict[str, Rewrite] = {
    "add": _add,
    "mul": _mul,
    "pow": _pow,
    "matmul": _matmul,
    "T": _transpose,
    "inv": _inv,
    "sum": _sum,
    "diag": _diag,
    "kron": _kron,
    "outer": _bilinear,
    "trace": _trace,
    "row": _linear1("row"),
    "col": _linear1("col"),
    "vec": _linear1("vec"),
    "conv2d_kernel_grad": _linear_in(1),
    "conv2d_input_grad": _linear_in(0),
    "maxpool_grad": _linear_in(1),
    "spatial_sum": _linear_in(0),
    "unflatten": _linear_in(0),
}
