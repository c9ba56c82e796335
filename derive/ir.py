"""The expression tree: one immutable node type, an op name and a shape.

Every expression derive handles, the user's and the derivatives it builds,
is a :class:`Node`. Shapes follow numpy: ``()`` is a scalar, ``(n,)`` a 1-D
vector, ``(m, n)`` a matrix; dimensions are sympy Integers or Symbols.
Each op's shape rule lives in :data:`SHAPES`; a node is only ever made
through :func:`node`, which checks its operands and raises
:class:`ShapeError` (caught and located by the parser) when they do not fit.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

Dim = sp.Expr
Shape = tuple[Dim, ...]


class ShapeError(Exception):
    """Operands whose shapes do not fit an op; the parser adds where."""


@dataclass(frozen=True, eq=True)
class Node:
    """``op`` applied to ``args``; ``attr`` holds non-node data (a name, a number)."""

    op: str
    args: tuple[Node, ...] = ()
    attr: Any = None
    shape: Shape = field(default=(), compare=False)
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.op, self.args, self.attr)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> Dim:
        return sp.Mul(*self.shape) if self.shape else sp.Integer(1)

    def __repr__(self) -> str:  # compact, for debugging only
        inner = ", ".join(repr(a) for a in self.args)
        extra = f"{self.attr!r}" if self.attr is not None else ""
        return f"{self.op}({extra}{', ' if extra and inner else ''}{inner})"


#: While shapes are being inferred, the parser sets this to a function that
#: unifies two dimensions and says whether they could be made equal.
UNIFY: ContextVar[Callable[[Dim, Dim], bool] | None] = ContextVar("UNIFY", default=None)


def eq(x: Dim, y: Dim) -> bool:
    """Dimension equality; during inference, unification."""
    unify = UNIFY.get()
    return unify(x, y) if unify is not None else x == y


def eq_shapes(a: Shape, b: Shape) -> bool:
    return len(a) == len(b) and all([eq(x, y) for x, y in zip(a, b, strict=True)])


def _broadcast(args: tuple[Node, ...], attr: Any) -> Shape:
    a, b = args
    if a.shape == () or eq_shapes(a.shape, b.shape):
        return b.shape
    if b.shape == ():
        return a.shape
    raise ShapeError("element-wise operands need equal shapes, or one must be a scalar")


def _matmul(args: tuple[Node, ...], attr: Any) -> Shape:
    a, b = args
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError("@ needs vectors or matrices, not scalars (use * to scale)")
    if a.ndim > 2 or b.ndim > 2:
        raise ShapeError("@ is defined here for vectors and matrices only")
    if not eq(a.shape[-1], b.shape[0]):
        raise ShapeError("@ needs the inner dimensions to agree")
    return a.shape[:-1] + b.shape[1:]


def _square(args: tuple[Node, ...], attr: Any) -> Shape:
    (a,) = args
    if a.ndim != 2:
        raise ShapeError("needs a square matrix, not a vector or scalar")
    if not eq(a.shape[0], a.shape[1]):
        raise ShapeError("needs a square matrix")
    return a.shape


def _scalar_of_square(args: tuple[Node, ...], attr: Any) -> Shape:
    _square(args, attr)
    return ()


def _vector(args: tuple[Node, ...], attr: Any) -> Shape:
    (a,) = args
    if a.ndim != 1:
        raise ShapeError("needs a vector")
    return a.shape


def _scalar_of_vector(args: tuple[Node, ...], attr: Any) -> Shape:
    _vector(args, attr)
    return ()


def _transpose(args: tuple[Node, ...], attr: Any) -> Shape:
    (a,) = args
    return tuple(reversed(a.shape))


def _norm(args: tuple[Node, ...], attr: Any) -> Shape:
    (a,) = args
    if a.ndim not in (1, 2):
        raise ShapeError("norm needs a vector or a matrix")
    return ()


def _diag(args: tuple[Node, ...], attr: Any) -> Shape:
    (a,) = args
    if a.ndim == 1:
        return (a.shape[0], a.shape[0])
    if a.ndim == 2 and eq(a.shape[0], a.shape[1]):
        return (a.shape[0],)
    raise ShapeError("diag needs a vector or a square matrix")


def _outer(args: tuple[Node, ...], attr: Any) -> Shape:
    a, b = args
    if a.ndim != 1 or b.ndim != 1:
        raise ShapeError("outer needs two vectors")
    return (a.shape[0], b.shape[0])


def _kron(args: tuple[Node, ...], attr: Any) -> Shape:
    a, b = args
    if a.ndim not in (1, 2) or b.ndim not in (1, 2):
        raise ShapeError("kron needs vectors or matrices")
    sa, sb = a.shape, b.shape
    if len(sa) < len(sb):
        sa = (sp.Integer(1),) + sa
    if len(sb) < len(sa):
        sb = (sp.Integer(1),) + sb
    return tuple(x * y for x, y in zip(sa, sb, strict=True))


# ----- convolution and pooling -----


def _conv2d(args: tuple[Node, ...], attr: Any) -> Shape:
    """Valid cross-correlation, stride 1: (H, W) * (kh, kw), or (C, H, W) * (F, C, kh, kw) [+ c (F,)]."""
    x, k = args[0], args[1]
    if x.ndim == 2 and k.ndim == 2:
        lead: Shape = ()
    elif x.ndim == 3 and k.ndim == 4:
        if not eq(k.shape[1], x.shape[0]):
            raise ShapeError("conv2d needs the kernel's channels (axis 1) to match the input's (axis 0)")
        lead = (k.shape[0],)
    else:
        raise ShapeError("conv2d takes X (H, W) with K (kh, kw), or X (C, H, W) with K (F, C, kh, kw)")
    if len(args) == 3 and (args[2].ndim != 1 or not lead or not eq(args[2].shape[0], lead[0])):
        raise ShapeError("conv2d's bias needs shape (F,), one entry per filter")
    out = tuple(sp.S(h) - sp.S(kh) + 1 for h, kh in zip(x.shape[-2:], k.shape[-2:], strict=True))
    if any(d.is_number and d < 1 for d in out):
        raise ShapeError("conv2d's kernel is larger than its input")
    return lead + out


def _maxpool(args: tuple[Node, ...], attr: Any) -> Shape:
    (x,) = args
    k = attr
    if x.ndim < 2:
        raise ShapeError("maxpool needs at least two axes (it pools the last two)")
    h, w = x.shape[-2:]
    if not (sp.S(h).is_Integer and sp.S(w).is_Integer) or h % k or w % k:
        raise ShapeError(f"maxpool with k={k} needs the last two sizes to be numbers divisible by {k}")
    return x.shape[:-2] + (h // k, w // k)


def _attr_shape(args: tuple[Node, ...], attr: Any) -> Shape:
    return attr[-1] if isinstance(attr, tuple) and attr and isinstance(attr[-1], tuple) else ()


SHAPES: dict[str, Callable[[tuple[Node, ...], Any], Shape]] = {
    # leaves carry their shape in attr: (name, shape), (value, ()), (shape,)
    "var": _attr_shape,
    "const": lambda args, attr: (),
    "eye": lambda args, attr: (attr[0], attr[0]),
    "ones": lambda args, attr: attr[0],
    "commutation": lambda args, attr: (attr[0] * attr[1], attr[0] * attr[1]),
    # element-wise
    "add": _broadcast,
    "mul": _broadcast,
    "pow": lambda args, attr: args[0].shape,
    "fn": lambda args, attr: args[0].shape,
    # linear algebra
    "matmul": _matmul,
    "T": _transpose,
    "inv": _square,
    "det": _scalar_of_square,
    "logdet": _scalar_of_square,
    "trace": _scalar_of_square,
    "sum": lambda args, attr: (),
    "norm": _norm,
    "softmax": _vector,
    "logsoftmax": _vector,
    "logsumexp": _scalar_of_vector,
    "diag": _diag,
    "outer": _outer,
    "kron": _kron,
    # claims written entry by entry: a11, [x1, x2]
    "entry": lambda args, attr: (),
    "stack": lambda args, attr: (sp.Integer(len(args)),) + args[0].shape,
    # reshapes used by Jacobians in vec form (column-major vec)
    "row": lambda args, attr: (sp.Integer(1), args[0].size),
    "col": lambda args, attr: (args[0].size, sp.Integer(1)),
    "vec": lambda args, attr: (args[0].size,),
    # a vec Jacobian (p x q) rearranged to the tensor shape out + in (column-major); for code only
    "unvec": lambda args, attr: tuple(attr[0]) + tuple(attr[1]),
    # convolution, pooling and their adjoints (attr: the pool size, or the shape produced)
    "conv2d": _conv2d,
    "maxpool": _maxpool,
    "flatten": lambda args, attr: (args[0].size,),
    "unflatten": lambda args, attr: tuple(attr),
    "conv2d_kernel_grad": lambda args, attr: tuple(attr),
    "conv2d_input_grad": lambda args, attr: tuple(attr),
    "maxpool_grad": lambda args, attr: args[0].shape,
    "spatial_sum": lambda args, attr: args[0].shape[:1],
    # conv2d as a matrix product, column-major vec: vec(X ⋆ K) = im2col(X) vec(K) = toeplitz(K) vec(X)
    "im2col": lambda args, attr: (_conv_size(args[0].shape, attr), sp.Mul(*attr)),
    "toeplitz": lambda args, attr: (_conv_size(attr, args[0].shape), sp.Mul(*attr)),
}


def _conv_size(xshape: Shape, kshape: Shape) -> Dim:
    """The number of entries of X ⋆ K."""
    lead = sp.S(kshape[0]) if len(kshape) == 4 else sp.Integer(1)
    h, w = (sp.S(a) - sp.S(b) + 1 for a, b in zip(xshape[-2:], kshape[-2:], strict=True))
    return lead * h * w


def node(op: str, *args: Node, attr: Any = None) -> Node:
    """Make a node, checking the operands' shapes against the op's rule."""
    return Node(op, tuple(args), attr, SHAPES[op](tuple(args), attr))


# ----- leaves -----


def dim(name: str) -> sp.Symbol:
    """A named dimension (a positive integer symbol)."""
    return sp.Symbol(name, positive=True, integer=True)


def var(name: str, shape: Shape) -> Node:
    return node("var", attr=(name, tuple(shape)))


def const(value: Any) -> Node:
    """A number; a division by zero (or any non-finite result) is the user's error."""
    v = sp.nsimplify(value) if isinstance(value, float) else sp.S(value)
    if not v.is_finite:
        from .errors import DeriveError

        raise DeriveError("the expression divides by zero (a constant part of it is not finite)")
    return node("const", attr=v)


def eye(n: Dim) -> Node:
    return node("eye", attr=(sp.S(n),))


def ones(shape: Shape) -> Node:
    return node("ones", attr=(tuple(shape),))


def commutation(m: Dim, n: Dim) -> Node:
    """K with K vec(A) = vec(A^T) for A of shape (m, n)."""
    return node("commutation", attr=(sp.S(m), sp.S(n)))


def hadamard(*xs: Node) -> Node:
    """The element-wise product of the operands (a scalar broadcasts)."""
    out = xs[0]
    for x in xs[1:]:
        out = node("mul", out, x)
    return out


def power(a: Node, p: Any) -> Node:
    """a to the (numeric) power p, element-wise."""
    return node("pow", a, attr=sp.S(p))


ONE = const(1)
MINUS_ONE = const(-1)


def is_const(e: Node, value: Any = None) -> bool:
    return e.op == "const" and (value is None or e.attr == value)


def depends(e: Node, name: str, _memo: dict | None = None) -> bool:
    """Whether ``e`` contains the variable ``name``."""
    memo = {} if _memo is None else _memo
    if e in memo:
        return memo[e]
    r = (e.op == "var" and e.attr[0] == name) or any(depends(a, name, memo) for a in e.args)
    memo[e] = r
    return r


def topo(e: Node) -> list[Node]:
    """Distinct subexpressions of ``e``, children before parents."""
    out: list[Node] = []
    seen: set[Node] = set()

    def visit(n: Node) -> None:
        if n in seen:
            return
        seen.add(n)
        for a in n.args:
            visit(a)
        out.append(n)

    visit(e)
    return out


def substitute_dims(e: Node, mapping: dict) -> Node:
    """Rebuild ``e`` with dimensions replaced (used after shape inference)."""
    memo: dict[Node, Node] = {}

    def sub_attr(a: Any) -> Any:
        if isinstance(a, tuple):
            return tuple(sub_attr(x) for x in a)
        if isinstance(a, sp.Basic):
            return a.xreplace(mapping)
        return a

    def go(n: Node) -> Node:
        if n not in memo:
            attr = n.attr if n.op == "const" else sub_attr(n.attr)
            memo[n] = node(n.op, *(go(a) for a in n.args), attr=attr)
        return memo[n]

    return go(e)
