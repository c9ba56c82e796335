"""Linear algebra: products, transposes, inverses, determinants, traces, diagonals, Kronecker products."""

from __future__ import annotations

import functools

import sympy as sp
from sympy.matrices.expressions import (
    Determinant,
    DiagMatrix,
    DiagonalOf,
    Inverse,
    KroneckerProduct,
    Trace,
)

import derive.ops as _ops

from ..ir import Node, ShapeError
from ..prec import ATOM, HAD, MUL, POSTFIX
from .algebra import (
    diagonal,
    flatten,
    is_zero,
    nonnegative,
    product,
    pull_numbers,
    scale,
    split_coef,
    split_scalars,
    symmetric,
    total,
    transposed,
    with_scalars,
    zeros,
)
from .base import LINALG, NUMPY, Call, Gap, Op
from .build import T, col, commutation, const, eye, hadamard, lin, mm, node, plus, row, vec
from .elementwise import unbroadcast

# ----- shapes -----


def _matmul_shape(args, attr, eq):
    a, b = args
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError("@ needs vectors or matrices, not scalars (use * to scale)")
    if a.ndim > 2 or b.ndim > 2:
        raise ShapeError("@ is defined here for vectors and matrices only")
    if not eq(a.shape[-1], b.shape[0]):
        raise ShapeError("@ needs the inner dimensions to agree")
    return a.shape[:-1] + b.shape[1:]


def _square(args, attr, eq):
    (a,) = args
    if a.ndim != 2:
        raise ShapeError("needs a square matrix, not a vector or scalar")
    if not eq(a.shape[0], a.shape[1]):
        raise ShapeError("needs a square matrix")
    return a.shape


def _scalar_of_square(args, attr, eq):
    _square(args, attr, eq)
    return ()


def _diag_shape(args, attr, eq):
    (a,) = args
    if a.ndim == 1:
        return (a.shape[0], a.shape[0])
    if a.ndim == 2 and eq(a.shape[0], a.shape[1]):
        return (a.shape[0],)
    raise ShapeError("diag needs a vector or a square matrix")


def _outer_shape(args, attr, eq):
    a, b = args
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError("outer needs two vectors")
    return (a.shape[0], b.shape[0])


def _kron_shape(args, attr, eq):
    a, b = args
    if a.ndim not in (1, 2) or b.ndim not in (1, 2):
        raise ShapeError("kron needs vectors or matrices")
    sa, sb = a.shape, b.shape
    if len(sa) < len(sb):
        sa = (sp.Integer(1),) + sa
    if len(sb) < len(sa):
        sb = (sp.Integer(1),) + sb
    return tuple(x * y for x, y in zip(sa, sb, strict=True))


# ----- rules -----


def _matmul_vjp(e: Node, g: Node, i: int) -> Node:
    a, b = e.args
    if a.ndim == 1 and b.ndim == 1:  # x @ y, a scalar
        return hadamard(g, b if i == 0 else a)
    if b.ndim == 1:  # A @ x
        return node("outer", g, b) if i == 0 else mm(T(a), g)
    if a.ndim == 1:  # x @ A, that is A^T x
        return mm(b, g) if i == 0 else node("outer", a, g)
    return mm(g, T(b)) if i == 0 else mm(T(a), g)


def _matmul_jac(e: Node, js: list[Node | None]) -> Node | None:
    (a, b), (ja, jb) = e.args, js
    if a.ndim == 1 and b.ndim == 1:
        return plus(lin(row(b), ja), lin(row(a), jb))
    if b.ndim == 1:  # vec(dA x) = (x^T (x) I) vec(dA)
        return plus(lin(node("kron", row(b), eye(a.shape[0])), ja), lin(a, jb))
    if a.ndim == 1:  # vec(x^T dA) = (I (x) x^T) vec(dA)
        return plus(lin(T(b), ja), lin(node("kron", eye(b.shape[1]), row(a)), jb))
    m, n = a.shape[0], b.shape[1]
    return plus(lin(node("kron", T(b), eye(m)), ja), lin(node("kron", eye(n), a), jb))


def _outer_jac(e: Node, js: list[Node | None]) -> Node | None:
    (a, b), (ja, jb) = e.args, js
    m, n = e.shape
    return plus(lin(node("kron", col(b), eye(m)), ja), lin(node("kron", eye(n), col(a)), jb))


def _transpose_jac(e: Node, js: list[Node | None]) -> Node | None:
    (a,) = e.args
    return js[0] if a.ndim < 2 else lin(commutation(*a.shape), js[0])


def _scalar_jac(grad):
    """Jacobian of a scalar of one argument X with gradient ``grad(e)``: vec(G)^T J."""
    return lambda e, js: lin(row(vec(grad(e))), js[0])


def inv_T(x: Node) -> Node:
    return T(node("inv", x))


def _eye_like(e: Node) -> Node:
    return eye(e.args[0].shape[0])


# ----- simplification -----


def _simplify_matmul(e: Node) -> Node:
    pulled = pull_numbers(e, (0, 1))  # 2 A^T r, never (2 A^T) r
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
        return eye(a.shape[0])
    if a.ndim == 1 and b.ndim == 2:  # x @ A is A^T x for a 1-D x
        return mm(T(b), a)
    if a.op == "col" and b.op == "row" and a.args[0].ndim == 1 and b.args[0].ndim == 1:
        return node("outer", a.args[0], b.args[0])  # a column times a row: a b^T
    if a.op == "diag" and b.op == "diag" and a.args[0].ndim == 1 and b.args[0].ndim == 1:
        return node("diag", node("mul", a.args[0], b.args[0]))
    if a.op == "kron" and b.op == "kron":
        return _mixed_product(a, b) or e
    if b.op == "kron" and _is_row(b.args[0]) and b.args[1].ndim == 2 and a.ndim == 2:
        r, m = b.args  # M (r (x) B) = r (x) (M B) when r is a single row
        if a.shape[1] == m.shape[0]:
            return node("kron", r, mm(a, m))
    if a.op == "matmul" and b.ndim == 2 and a.args[1].op == "kron":
        return mm(a.args[0], mm(a.args[1], b))
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
    if not all(x.ndim == 2 for x in (q, r, s)) or q.shape[1] != s.shape[0]:
        return None
    if p.ndim == 2 and p.shape[1] == r.shape[0]:
        return node("kron", mm(p, r), mm(q, s))
    if p.ndim == 1 and p.shape[0] == r.shape[0]:  # a 1-D operand of kron is a row: c^T B^T = (B c)^T
        return node("kron", mm(p, r), mm(q, s))
    return None


def _simplify_T(e: Node) -> Node:
    (a,) = e.args
    if a.ndim < 2 or symmetric(a):  # S^T = S, S^-T = S^-1 when S is symmetric
        return a
    push = _ops.OPS[a.op].transpose
    return push(a) if push is not None else e


def _t2(x: Node) -> Node:
    """Transpose inside kron, where numpy treats a 1-D operand as a row."""
    return col(x) if x.ndim == 1 else T(x)


def _simplify_inv(e: Node) -> Node:
    (a,) = e.args
    if a.op == "inv":
        return a.args[0]
    if a.op == "eye":
        return a
    return e


def _simplify_trace(e: Node) -> Node:
    (a,) = e.args
    c, rest = split_coef(a)
    if c != 1:
        return scale(c, node("trace", rest))
    if a.op == "eye":
        return const(a.attr[0])
    return e


def _simplify_diag(e: Node) -> Node:
    (a,) = e.args
    if a.op == "ones" and a.ndim == 1:
        return eye(a.shape[0])
    c, rest = split_coef(a)
    if c != 1:
        return scale(c, node("diag", rest))
    scalars, rest = split_scalars(a)
    if scalars and a.ndim == 1:  # diag(s x) = s diag(x)
        return with_scalars(scalars, node("diag", rest))
    if a.op == "diag" and a.args[0].ndim == 2 and diagonal(a.args[0]):
        return a.args[0]  # diag(diag(D)) = D for a diagonal D
    if a.op == "outer":
        return node("mul", *a.args)  # the diagonal of a b^T is a ∘ b
    return e


def _simplify_outer(e: Node) -> Node:
    """Numbers out; 1 b^T and c 1^T are the vector repeated (a broadcast, as numpy would write it)."""
    pulled = pull_numbers(e, (0, 1))
    if pulled != e:
        return pulled
    a, b = e.args
    if a.op == "ones":
        return node("broadcast", b, attr=e.shape)
    if b.op == "ones":
        return node("broadcast", col(a), attr=e.shape)
    return e


def _simplify_kron(e: Node) -> Node:
    pulled = pull_numbers(e, (0, 1))
    if pulled != e:
        return pulled
    a, b = e.args
    if a.op == "eye" and b.op == "eye":
        return eye(a.attr[0] * b.attr[0])
    if a.op == "eye" and a.attr[0] == 1:
        return b
    if b.op == "eye" and b.attr[0] == 1:
        return a
    if a.op == "row" and a.args[0].ndim == 1 and b.ndim == 2:
        return node("kron", a.args[0], b)  # numpy's kron reads a 1-D operand as a row
    return e


# ----- printing: numpy -----


CHAIN_ORDER_AT = 24  # the longest product regrouped for the fewest multiplications


def _np_matmul(p, e: Node) -> tuple[str, int]:
    """A chain of products in the cheapest order; diagonal factors as scalings of the rows or columns of a
    neighbour (adjacent ones merged into one vector); Aᵀ diag(s) A with s ≥ 0 as SᵀS, S = diag(√s) A."""
    chain = _chain(e)
    inner_vector = any(f.ndim < 2 for f in chain[1:-1])  # x @ A @ x is not associative in shape
    if len(chain) > 2 and not inner_vector and not any(f in p.names for f in _inner_products(e)):
        chain = _merge_scalings(chain)
        gram = _gram(p, chain)
        if gram is not None:
            return gram
        if 2 < len(chain) <= CHAIN_ORDER_AT:  # matrix-chain order is cubic in the chain's length
            return _pair(p, _cheapest(chain, p.size_hint))
        if len(chain) == 1:  # diagonal factors only, merged into one diagonal
            return p.prec(chain[0])
        return _pair(p, functools.reduce(lambda a, b: node("matmul", a, b), chain))  # a long chain, as written
    return _pair(p, e)


def _lower_matmul(e: Node) -> Node:
    """The product multiplied out where an operand is a sum with a diagonal, I or outer term (or a product
    with one), and an outer product taken apart: Aᵀ(diag(p) - p pᵀ)A = Aᵀ diag(p) A - (Aᵀp)(Aᵀp)ᵀ, so
    that generated code builds neither a dense diagonal nor an outer product it only multiplies."""
    a, b = e.args
    if b.op == "ones" and b.ndim == 1:  # diag(v) 1 = v; vᵀ 1 = sum(v)
        if _is_scaling(a):
            return a.args[0]
        if a.ndim == 1:
            return node("sum", a)
    for i, f in enumerate(e.args):
        terms = flatten(f, "add") if f.op == "add" else []
        if terms and all(t.shape == f.shape for t in terms) and any(_structured(t) for t in terms):
            out = []
            for t in terms:
                c, core = split_coef(t)
                if core.op == "eye":
                    out.append(scale(c, e.args[1 - i]))
                else:
                    out.append(scale(c, _lower_matmul(node("matmul", *((core, b) if i == 0 else (a, core))))))
            return total(out)
    if a.op == "outer":  # a1 a2ᵀ B = a1 (Bᵀ a2)ᵀ; a1 a2ᵀ v = (a2ᵀ v) a1
        right = _lower_matmul(node("matmul", a.args[1], b))
        return node("mul", right, a.args[0]) if right.ndim == 0 else node("outer", a.args[0], right)
    if b.op == "outer":  # A b1 b2ᵀ = (A b1) b2ᵀ; vᵀ b1 b2ᵀ = (vᵀ b1) b2ᵀ
        left = _lower_matmul(node("matmul", a, b.args[0]))
        return node("mul", left, b.args[1]) if left.ndim == 0 else node("outer", left, b.args[1])
    return e


def _structured(t: Node) -> bool:
    """A diagonal, I or outer term, or a product with such a factor."""
    core = split_coef(t)[1]
    if core.op == "matmul":
        return any(_structured(f) for f in flatten(core, "matmul"))
    return core.op in ("eye", "outer") or _is_scaling(core)


def _is_scaling(f: Node) -> bool:
    return f.op == "diag" and f.args[0].ndim == 1


def _merge_scalings(chain: list[Node]) -> list[Node]:
    """diag(u) diag(v) -> diag(u ∘ v): one vector, one scaling pass."""
    out: list[Node] = []
    for f in chain:
        if out and _is_scaling(f) and _is_scaling(out[-1]):
            out[-1] = node("diag", node("mul", out[-1].args[0], f.args[0]))
        else:
            out.append(f)
    return out


def _gram(p, chain: list[Node]) -> tuple[str, int] | None:
    """Bᵀ diag(s) B as ``_gram(h[:, None] * B)`` with h ∘ h = s (B = A or Aᵀ): a symmetric rank-k product,
    half the work of a general one. None unless s is known ≥ 0 (see ``half``)."""
    if len(chain) != 3 or not _is_scaling(chain[1]) or chain[2].ndim != 2:
        return None
    left, d, right = chain
    h = half(d.args[0])
    if h is None:
        return None
    if left != transposed(right):  # Bᵀ D B, with B = A or B = Aᵀ (A D Aᵀ)
        return None
    return f"{p.use('_gram')}({p.wrap(h, POSTFIX)}[:, None] * {p.wrap(right, MUL, strict=True)})", ATOM


def half(s: Node) -> Node | None:
    """A vector h with h ∘ h = s, when s is known ≥ 0: a factor that appears twice gives one copy
    (y ∘ σ′ ∘ y -> y ∘ √σ′), an even power half its power; None when s may be negative."""
    c, rest = split_coef(s)
    root = sp.sqrt(c)
    if c.is_nonnegative is not True or not root.is_Rational:
        return None
    factors = [] if rest.op == "const" else flatten(rest, "mul")
    out = [const(root)] if root != 1 else []
    for f in dict.fromkeys(factors):
        k = factors.count(f)
        out += [f] * (k // 2)
        if k % 2:
            if f.op == "pow" and sp.S(f.attr).is_integer and sp.S(f.attr).is_even:
                out.append(f.args[0] if f.attr == 2 else node("pow", f.args[0], attr=f.attr / 2))
            elif nonnegative(f):
                out.append(node("pow", f, attr=sp.Rational(1, 2)))
            else:
                return None
    if not out or all(f.shape == () for f in out):
        return None
    return product(out)


def _pair(p, e: Node) -> tuple[str, int]:
    """One product of the chain, its operands printed with it as their parent (a regrouped chain's
    products are not the tree's own nodes)."""
    if e.op != "matmul" or e in p.names:
        return p.prec(e)
    p.stack.append(e)
    try:
        return _pair_text(p, e)
    finally:
        p.stack.pop()


def _pair_text(p, e: Node) -> tuple[str, int]:
    a, b = e.args
    if a.op == "diag" and a.args[0].ndim == 1:  # diag(v) @ M: scale rows, build no diagonal
        v = p.wrap(a.args[0], POSTFIX)
        rows = f"{v}[:, None]" if b.ndim == 2 else v
        return f"{rows} * {p.wrap(b, MUL, strict=True)}", MUL
    if b.op == "diag" and b.args[0].ndim == 1 and a.ndim >= 1:  # M @ diag(v) (or vᵀ diag(u)): scale columns
        return f"{p.wrap(a, MUL)} * {p.wrap(b.args[0], MUL, strict=True)}", MUL
    return f"{_sub(p, a, MUL)} @ {_sub(p, b, MUL, strict=True)}", MUL


def _sub(p, e: Node, above: int, strict: bool = False) -> str:
    """An operand of a product, keeping the order chosen for the chain."""
    if e.op != "matmul" or e in p.names:
        return p.wrap(e, above, strict)
    s, q = _pair(p, e)
    return p.paren(s) if q < above or (strict and q == above) else s


def _chain(e: Node) -> list[Node]:
    """The factors of a product of products: A @ (B @ x) -> [A, B, x]."""
    out, stack = [], [e]
    while stack:
        n = stack.pop()
        if n.op == "matmul":
            stack.extend(reversed(n.args))
        else:
            out.append(n)
    return out


def _inner_products(e: Node) -> list[Node]:
    """The sub-products inside a chain (shared ones must keep their grouping)."""
    out, stack = [], list(e.args) if e.op == "matmul" else []
    while stack:
        n = stack.pop()
        if n.op == "matmul":
            out.append(n)
            stack.extend(n.args)
    return out


def _cheapest(factors: list[Node], size) -> Node:
    """The product of ``factors`` grouped for the fewest multiplications (matrix-chain order); a diagonal
    factor costs one scaling of its neighbour's entries."""
    scalings = {i for i, f in enumerate(factors) if _is_scaling(f)}
    dims = []
    for i, f in enumerate(factors):
        if f.ndim == 1:
            dims.append((1, f.shape[0]) if i == 0 else (f.shape[0], 1))
        else:
            dims.append(f.shape)
    n = len(factors)
    q = [size(dims[0][0])] + [size(d[1]) for d in dims]

    def step(i: int, k: int, j: int) -> int:
        """The cost of multiplying the products of factors i..k and k+1..j."""
        if (i == k and i in scalings) or (k + 1 == j and j in scalings):
            return q[i] * q[j + 1]
        return q[i] * q[k + 1] * q[j + 1]

    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(2, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            cost[i][j], split[i][j] = min((cost[i][k] + cost[k + 1][j] + step(i, k, j), k) for k in range(i, j))

    def build(i: int, j: int) -> Node:
        if i == j:
            return factors[i]
        left, right = build(i, split[i][j]), build(split[i][j] + 1, j)
        return Node("matmul", (left, right), None, left.shape[:-1] + right.shape[1:])

    return build(0, n - 1)


# ----- printing: mathematics -----


def _math_matmul(p, e: Node) -> tuple[str, int]:
    a, b = e.args
    left = p.row(a) if a.ndim == 1 else p.wrap(a, MUL)
    return p.join(left, p.wrap(b, MUL)), MUL


def _math_T(p, e: Node) -> tuple[str, int]:
    a = e.args[0]
    if a.op == "inv":
        return p.wrap(a.args[0], POSTFIX, strict=True) + p.INV_T, POSTFIX
    return p.wrap(a, POSTFIX, strict=True) + p.T, POSTFIX


def _math_outer(p, e: Node) -> tuple[str, int]:
    a, b = e.args
    return p.join(p.wrap(a, MUL), p.row(b)), MUL


def _math_kron(p, e: Node) -> tuple[str, int]:
    """A ⊗ B, binding looser than a product: (B c)ᵀ ⊗ A X⁻¹; a 1-D operand is a row."""
    a, b = e.args
    left = p.wrap(a, MUL)
    if a.ndim == 1:
        left = p.wrap(a, POSTFIX, strict=True) + p.T if a.op == "matmul" else p.row(a)
    return left + p.KRON + p.wrap(b, MUL), HAD


def _apply(name: str):
    return lambda p, e: (p.apply(p.op(name), p.doprint(e.args[0])), ATOM)


# ----- SymPy -----


def _sympy_matmul(e: Node, a, b):
    left, right = e.args
    if left.ndim == 1 and right.ndim == 1:
        return Trace(a.T * b)
    if left.ndim == 1:
        return (a.T * b).T
    return a * b


def _sympy_kron(e: Node, a, b):
    left, right = e.args
    return KroneckerProduct(a.T if left.ndim == 1 else a, b.T if right.ndim == 1 else b)


def _matmul_call(args, kw) -> Node:
    return node("matmul", *args)


def _dot(args, kw) -> Node:
    """np.dot: the matrix product for vectors and matrices, the product for a scalar."""
    a, b = args
    return node("mul", a, b) if a.ndim == 0 or b.ndim == 0 else node("matmul", a, b)


DEFINITIONS = (
    Op(
        "matmul",
        shape=_matmul_shape,
        identity="d(XY) = dX Y + X dY",
        cookbook="(37)",
        vjp=_matmul_vjp,
        jac=_matmul_jac,
        eval=lambda k, e, a, b: k.matmul(a, b),
        simplify=_simplify_matmul,
        transpose=lambda a: mm(T(a.args[1]), T(a.args[0])),
        numpy=_np_matmul,
        lower=_lower_matmul,
        math=_math_matmul,
        sympy=_sympy_matmul,
        syntax=(
            Call("matmul", _matmul_call, arity=(2,), prefixes=NUMPY),
            Call("dot", _dot, arity=(2,), prefixes=NUMPY, method=True),
        ),
    ),
    Op(
        "T",
        shape=lambda args, attr, eq: tuple(reversed(args[0].shape)),
        identity="d(X^T) = (dX)^T",
        cookbook="(44)",
        vjp=lambda e, g, i: T(g),
        jac=_transpose_jac,
        eval=lambda k, e, a: k.transpose(a),
        simplify=_simplify_T,
        transpose=lambda a: a.args[0],
        numpy=lambda p, e: (f"{p.wrap(e.args[0], POSTFIX)}.T", POSTFIX),
        math=_math_T,
        sympy=lambda e, a: a.T,
        syntax=(Call("transpose", lambda args, kw: T(args[0]), prefixes=NUMPY, method=True),),
    ),
    Op(
        "inv",
        shape=_square,
        identity="d(X^-1) = -X^-1 dX X^-1",
        cookbook="(40)",
        vjp=lambda e, g, i: node("mul", const(-1), mm(mm(inv_T(e.args[0]), g), inv_T(e.args[0]))),
        jac=lambda e, js: lin(node("mul", const(-1), node("kron", inv_T(e.args[0]), node("inv", e.args[0]))), js[0]),
        eval=lambda k, e, a: k.inv(a),
        simplify=_simplify_inv,
        numpy=lambda p, e: p.call(p.use("_inv"), e.args[0]),
        math=lambda p, e: (p.wrap(e.args[0], POSTFIX, strict=True) + p.INV, POSTFIX),
        sympy=lambda e, a: Inverse(a),
        syntax=(Call("inv", lambda args, kw: node("inv", args[0]), prefixes=LINALG),),
    ),
    Op(
        "det",
        shape=_scalar_of_square,
        identity="d det(X) = det(X) tr(X^-1 dX)",
        cookbook="(42)",
        vjp=lambda e, g, i: hadamard(g, e, inv_T(e.args[0])),
        jac=lambda e, js: lin(hadamard(e, row(vec(inv_T(e.args[0])))), js[0]),
        eval=lambda k, e, a: k.det(a),
        numpy=lambda p, e: p.call("np.linalg.det", e.args[0]),
        math=_apply("det"),
        sympy=lambda e, a: Determinant(a),
        syntax=(Call("det", lambda args, kw: node("det", args[0]), prefixes=LINALG),),
    ),
    Op(
        "logdet",  # made from log(det(X)) by fusion
        shape=_scalar_of_square,
        identity="d log det(X) = tr(X^-1 dX)",
        cookbook="(43)",
        vjp=lambda e, g, i: hadamard(g, inv_T(e.args[0])),
        jac=_scalar_jac(lambda e: inv_T(e.args[0])),
        eval=lambda k, e, a: k.scalar_fn("log", k.det(a)),
        numpy=lambda p, e: (f"{p.use('_logdet')}({p.doprint(e.args[0])})", ATOM),
        math=lambda p, e: (p.apply(p.op("log") + " " + p.op("det"), p.doprint(e.args[0])), ATOM),
        sympy=lambda e, a: sp.log(Determinant(a)),
    ),
    Op(
        "trace",
        shape=_scalar_of_square,
        identity="d tr(X) = tr(dX)",
        cookbook="(36)",
        vjp=lambda e, g, i: hadamard(g, _eye_like(e)),
        jac=_scalar_jac(_eye_like),
        eval=lambda k, e, a: k.trace(a),
        simplify=_simplify_trace,
        numpy=lambda p, e: p.call("np.trace", e.args[0]),
        math=_apply("tr"),
        sympy=lambda e, a: Trace(a),
        syntax=(Call("trace", lambda args, kw: node("trace", args[0]), prefixes=NUMPY, method=True),),
    ),
    Op(
        "diag",
        shape=_diag_shape,
        identity="d diag(x) = diag(dx); d diag(X) = diag(dX)",
        vjp=lambda e, g, i: node("diag", g),
        jac=Gap("the vec Jacobian of diag is not written in matrix form; derive its uses instead"),
        eval=lambda k, e, a: k.diag(a),
        simplify=_simplify_diag,
        transpose=lambda a: a if a.args[0].ndim == 1 else T(a),
        numpy=lambda p, e: p.call("np.diag" if e.args[0].ndim == 1 else "np.diagonal", e.args[0]),
        math=_apply("diag"),
        sympy=lambda e, a: DiagMatrix(a) if e.args[0].ndim == 1 else DiagonalOf(a),
        syntax=(Call("diag", lambda args, kw: node("diag", args[0]), prefixes=NUMPY),),
    ),
    Op(
        "outer",
        shape=_outer_shape,
        identity="d(x y^T) = dx y^T + x dy^T",
        cookbook="(37)",
        vjp=lambda e, g, i: mm(g, e.args[1]) if i == 0 else mm(T(g), e.args[0]),
        jac=_outer_jac,
        eval=lambda k, e, a, b: k.outer(a, b),
        simplify=_simplify_outer,
        transpose=lambda a: node("outer", a.args[1], a.args[0]),
        numpy=lambda p, e: p.call("np.outer", *e.args),
        math=_math_outer,
        sympy=lambda e, a, b: a * b.T,
        syntax=(Call("outer", lambda args, kw: node("outer", *args), arity=(2,), prefixes=NUMPY),),
    ),
    Op(
        "kron",
        shape=_kron_shape,
        identity="d(A ⊗ B) = dA ⊗ B + A ⊗ dB",
        vjp=Gap("no gradient rule for a Kronecker product of variables; the derivative is given element-wise"),
        jac=Gap("no Jacobian rule for a Kronecker product of variables; the derivative is given element-wise"),
        eval=lambda k, e, a, b: k.kron(a, b),
        simplify=_simplify_kron,
        transpose=lambda a: node("kron", *(_t2(x) for x in a.args)),
        numpy=lambda p, e: p.call("np.kron", *e.args),
        math=_math_kron,
        sympy=_sympy_kron,
        syntax=(Call("kron", lambda args, kw: node("kron", *args), arity=(2,), prefixes=NUMPY),),
    ),
)

__all__ = ["DEFINITIONS", "inv_T", "unbroadcast"]
