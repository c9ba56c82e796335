"""Small algebra on nodes, shared by the simplifier's rewrites and the printers.

Sums and products are binary nodes; these helpers see them as flat lists,
split off numeric coefficients and put numbers back in front.
"""

from __future__ import annotations

import sympy as sp

from ..ir import Node, Shape
from .build import const, is_const, node, ones

ONE = Node("const", (), sp.Integer(1), ())  # made directly: the op table is not built yet at import


def zeros(shape: Shape) -> Node:
    return const(0) if shape == () else node("mul", const(0), ones(shape))


def is_zero(e: Node) -> bool:
    return is_const(e, 0) or (e.op == "mul" and is_const(e.args[0], 0))


def split_coef(e: Node) -> tuple[sp.Expr, Node]:
    """``e`` as (number, rest): 2 A -> (2, A); 3 -> (3, 1)."""
    if e.op == "const":
        return e.attr, ONE
    if e.op == "mul" and is_const(e.args[0]):
        return e.args[0].attr, e.args[1]
    return sp.Integer(1), e


def scale(c: sp.Expr, e: Node) -> Node:
    """The number ``c`` times ``e``, merged with any number ``e`` has."""
    c0, rest = split_coef(e)
    c = sp.S(c) * c0
    if c == 0:
        return zeros(e.shape)
    if rest == ONE:
        return const(c)
    if c == 1:
        return rest
    return node("mul", const(c), rest)


def flatten(e: Node, op: str) -> list[Node]:
    """The operands of a nested binary ``op`` (add or mul), left to right (iterative)."""
    out: list[Node] = []
    stack = [e]
    while stack:
        n = stack.pop()
        if n.op == op:
            stack.extend(reversed(n.args))
        else:
            out.append(n)
    return out


def flatten_add(e: Node) -> list[Node]:
    return flatten(e, "add")


def flatten_mul(e: Node) -> list[Node]:
    return flatten(e, "mul")


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


def with_scalars(scalars: list[Node], e: Node) -> Node:
    """Scalar factors (numbers first) times ``e``."""
    return product(scalars + [e]) if scalars else e


def pull_numbers(e: Node, positions: tuple[int, ...]) -> Node:
    """Numbers and scalar factors out of the operands at ``positions`` of an op linear in each:
    outer(2 a, b) -> 2 outer(a, b). Returns ``e`` itself when there is nothing to pull."""
    c = sp.Integer(1)
    scalars: list[Node] = []
    args = list(e.args)
    for i in positions:
        ci, rest = split_coef(args[i])
        si, rest = split_scalars(rest)
        if rest == ONE and args[i].shape == ():
            continue  # a bare number operand stays where it is
        c *= ci
        scalars += si
        args[i] = rest
    if c == 1 and not scalars:
        return e
    return scale(c, with_scalars(scalars, node(e.op, *args, attr=e.attr)))


def transposed(e: Node) -> Node:
    """e^T without simplifying (X^T for X; X for X^T); vectors and scalars are their own transpose."""
    if e.ndim < 2:
        return e
    return e.args[0] if e.op == "T" else node("T", e)


def symmetric(e: Node) -> bool:
    """Whether ``e`` is a symmetric matrix by its structure: a declared symmetric or diagonal variable,
    I, diag(v), K(n,n), X^T X and A^T S A, A + A^T, inverses, transposes, sums and products of symmetric ones."""
    if e.ndim != 2 or e.shape[0] != e.shape[1]:
        return False
    op = e.op
    if op == "var":
        return e.attr[2] in ("symmetric", "diagonal")
    if op in ("eye", "ones") or (op == "diag" and e.args[0].ndim == 1):
        return True
    if op == "commutation":  # K(m,n)^T = K(n,m)
        return e.attr[0] == e.attr[1]
    if op in ("T", "inv", "fn", "pow"):  # element-wise functions and powers of a symmetric matrix, too
        return symmetric(e.args[0])
    if op == "mul":
        return all(f.shape == () or symmetric(f) for f in flatten_mul(e))
    if op == "add":
        terms = flatten_add(e)
        return all(symmetric(t) or any(u == transposed(t) or transposed(u) == t for u in terms) for t in terms)
    if op == "outer":
        return e.args[0] == e.args[1]
    if op == "kron":
        return all(a.ndim == 2 and symmetric(a) for a in e.args)
    if op == "matmul":
        chain = flatten(e, "matmul")
        k = len(chain)
        mirrored = all(chain[i] == transposed(chain[k - 1 - i]) for i in range(k // 2))
        return mirrored and (k % 2 == 0 or symmetric(chain[k // 2]))
    return False


def diagonal(e: Node) -> bool:
    """Whether ``e`` is a diagonal matrix by its structure: a declared diagonal variable, I, diag(v),
    and inverses, transposes, sums, products and element-wise products with a diagonal factor."""
    if e.ndim != 2:
        return False
    op = e.op
    if op == "var":
        return e.attr[2] == "diagonal"
    if op == "eye" or (op == "diag" and e.args[0].ndim == 1):
        return True
    if op in ("T", "inv"):
        return diagonal(e.args[0])
    if op == "add":
        return all(diagonal(t) for t in flatten_add(e))
    if op == "mul":
        return any(diagonal(f) for f in flatten_mul(e))
    if op == "matmul":
        return all(diagonal(f) for f in flatten(e, "matmul"))
    return False


def canonical(e: Node) -> Node:
    """``e`` with every chain of matrix products grouped from the left: a key for like terms."""
    memo: dict[Node, Node] = {}

    def go(n: Node) -> Node:
        if n in memo:
            return memo[n]
        if n.op == "matmul":
            chain = [go(f) for f in flatten(n, "matmul")]
            out = chain[0]
            try:
                for f in chain[1:]:
                    out = node("matmul", out, f)
            except Exception:  # a vector in the middle of a chain keeps its grouping
                out = Node(n.op, tuple(go(a) for a in n.args), n.attr, n.shape)
        else:
            args = tuple(go(a) for a in n.args)
            out = n if args == n.args else Node(n.op, args, n.attr, n.shape)
        memo[n] = out
        return out

    return go(e)
