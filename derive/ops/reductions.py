"""Reductions and the softmax family: sum and mean (along an axis or all), norm, softmax,
log-softmax and logsumexp (with the signatures and meaning of ``scipy.special``).

``attr`` is the axis: None (every entry) or an axis number. Row-wise forms of a
matrix (axis 1) are one softmax per row; they print as softmax_row(Z).
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions import OneMatrix

from ..ir import Node, ShapeError, size_of
from ..prec import ATOM, MUL
from ..sympy_form import elementwise as sympy_elementwise
from ..sympy_form import total as sympy_total
from .algebra import scale, split_coef, split_scalars, with_scalars
from .base import LINALG, NUMPY, SCIPY, Call, Gap, Op
from .build import T, col, const, diag_of, eye, hadamard, lin, mm, node, ones, power, row, size, vec
from .shaping import broadcast_axes

# ----- axes -----


def _axis_shape(args, attr, eq):
    (a,) = args
    if attr is None:
        return ()
    if a.ndim == 0:
        raise ShapeError("an axis needs a vector or a matrix, not a scalar")
    return a.shape[:attr] + a.shape[attr + 1 :]


def _same_shape(args, attr, eq):
    (a,) = args
    if a.ndim == 0:
        raise ShapeError("softmax needs a vector or a matrix")
    return a.shape


def normal_axis(axis: int | None, ndim: int) -> int | None:
    """An axis keyword as an axis number (or None); raises ValueError when out of range."""
    if axis is None:
        return None
    if ndim == 0:
        raise ValueError("axis= is given, but the operand is a scalar")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for an operand with {ndim} axes")
    axis %= ndim
    return None if ndim == 1 else axis


def _suffix(e: Node) -> str:
    """How a reduction along an axis is named: softmax_row, softmax_col, softmax_all."""
    if e.args[0].ndim < 2:
        return ""
    return {None: "_all", 0: "_col", 1: "_row"}.get(e.attr, f"_axis{e.attr}")


def _spread_back(g: Node, x: Node, axis: int | None) -> Node:
    """An adjoint of the reduced shape, repeated along the reduced axis (numpy broadcasting)."""
    if axis is None:
        return hadamard(g, ones(x.shape)) if x.shape else g
    if x.ndim == 2 and axis == 1:
        g = col(g)
    elif x.ndim > 2 and axis != 0:
        raise ShapeError("an axis other than 0 is supported for vectors and matrices only")
    return node("broadcast", g, attr=x.shape)


# ----- sum -----


def _sum_vjp(e: Node, g: Node, i: int) -> Node:
    return _spread_back(g, e.args[0], e.attr)


def _sum_jac(e: Node, js: list[Node | None]) -> Node | None:
    x = e.args[0]
    if e.attr is None:
        return lin(row(vec(ones(x.shape))), js[0])
    if x.ndim != 2:
        return None if js[0] is None else _no_axis_jac()
    n, k = x.shape
    if e.attr == 0:  # column sums: y_j = sum_i X_ij, J = I (x) 1^T
        return lin(node("kron", eye(k), row(ones((n,)))), js[0])
    return lin(node("kron", row(ones((k,))), eye(n)), js[0])  # row sums: J = 1^T (x) I


def _no_axis_jac():
    from .base import NoRule

    raise NoRule("no Jacobian rule for a sum along an axis of a tensor with more than two axes")


def _simplify_sum(e: Node) -> Node:
    (a,) = e.args
    c, rest = split_coef(a)
    scalars, rest = split_scalars(rest)
    if c != 1 or scalars:
        return scale(c, with_scalars(scalars, node("sum", rest, attr=e.attr)))
    if a.op == "ones":
        return const(a.size) if e.attr is None else scale(a.shape[e.attr], ones(e.shape))
    if a.shape == ():
        return a
    if a.op == "broadcast" and e.attr is None and a.args[0].shape != ():
        inner = a.args[0]  # sum(1 b^T) = n sum(b)
        return node("mul", size(size_of(a.shape) / size_of(inner.shape)), node("sum", inner))
    if a.op == "broadcast" and a.ndim == 2 and e.attr is not None:
        x = a.args[0]
        repeats = broadcast_axes(x.shape, a.shape, lambda u, v: True)
        if repeats == (e.attr,):  # summing along the repeats: n copies of the vector
            v = node("vec", x) if x.ndim == 2 else x
            return node("mul", size(a.shape[e.attr]), v)
    return e


def _np_sum(p, e: Node) -> tuple[str, int]:
    a = p.wrap(e.args[0], 90)
    return (f"{a}.sum()" if e.attr is None else f"{a}.sum(axis={e.attr})"), 90


def _math_sum(p, e: Node) -> tuple[str, int]:
    a = e.args[0]
    if e.attr is None:
        text = p.join(p.ONES + p.T, p.wrap(a, MUL, strict=True))
        if a.ndim == 2:
            text = p.join(text, p.ONES)
        elif a.ndim > 2:
            text = p.apply(p.op("sum"), p.doprint(a))
            return text, ATOM
        return text, MUL
    if a.ndim == 2 and e.attr == 0:  # column sums X^T 1
        return p.join(p.wrap(a, 90, strict=True) + p.T, p.ONES), MUL
    if a.ndim == 2 and e.attr == 1:  # row sums X 1
        return p.join(p.wrap(a, MUL), p.ONES), MUL
    return p.apply(p.op("sum") + p.subscript(f"axis {e.attr}"), p.doprint(a)), ATOM


def _sympy_sum(e: Node, a):
    if e.attr is None:
        return sympy_total(a)
    m, n = a.shape
    return (OneMatrix(1, m) * a).T if e.attr == 0 else a * OneMatrix(n, 1)


def keep_dims(r: Node, a: Node, axis: int | None, keep: object) -> Node:
    """numpy's keepdims=True: the reduced axis stays, with length 1."""
    if not keep:
        return r
    if keep is not True:
        raise ValueError("keepdims must be True or False")
    if a.ndim == 1 or axis is None:
        return node("broadcast", r, attr=(sp.Integer(1),) * a.ndim) if a.ndim else r
    if a.ndim != 2:
        raise ValueError("keepdims is supported for vectors and matrices")
    return col(r) if axis == 1 else row(r)


def _mean(args, kw) -> Node:
    (a,) = args
    axis = normal_axis(kw.get("axis"), a.ndim)
    s = node("sum", a, attr=axis)
    n = size_of(a.shape) if axis is None else a.shape[axis]
    return keep_dims(node("mul", power(size(n), -1), s), a, axis, kw.get("keepdims")) if a.shape else a


def _sum(args, kw) -> Node:
    (a,) = args
    axis = normal_axis(kw.get("axis"), a.ndim)
    return keep_dims(node("sum", a, attr=axis), a, axis, kw.get("keepdims")) if a.shape else a


# ----- softmax family -----


def _p(e: Node) -> Node:
    """softmax along e's axis, for the rules of logsoftmax and logsumexp."""
    return node("softmax", e.args[0], attr=e.attr)


def _rowwise_mix(x: Node, axis: int | None) -> Node:
    """The matrix that sums vec(X) within each group softmax normalises over (column-major vec)."""
    n, k = x.shape
    if axis is None:
        return node("outer", ones((n * k,)), ones((n * k,)))
    if axis == 1:  # same row: (1 1^T (x) I_n)
        return node("kron", node("outer", ones((k,)), ones((k,))), eye(n))
    return node("kron", eye(k), node("outer", ones((n,)), ones((n,))))  # same column


def _softmax_vjp(e: Node, g: Node, i: int) -> Node:
    z = e.args[0]
    if z.ndim == 1:
        return mm(node("add", node("diag", e), node("mul", const(-1), node("outer", e, e))), g)
    inner = node("sum", hadamard(g, e), attr=e.attr)  # softmax: P ∘ (G - Σ(G ∘ P) spread back)
    return hadamard(e, node("add", g, node("mul", const(-1), _spread_back(inner, z, e.attr))))


def _softmax_jac(e: Node, js: list[Node | None]) -> Node | None:
    z = e.args[0]
    if z.ndim == 1:
        return lin(node("add", node("diag", e), node("mul", const(-1), node("outer", e, e))), js[0])
    d = diag_of(e)  # diag(vec P) - diag(vec P) M diag(vec P), M joining each normalisation group
    return lin(node("add", d, node("mul", const(-1), mm(mm(d, _rowwise_mix(z, e.attr)), d))), js[0])


def _logsoftmax_vjp(e: Node, g: Node, i: int) -> Node:
    z = e.args[0]
    if z.ndim == 1:
        return node("add", g, node("mul", const(-1), hadamard(node("sum", g), _p(e))))
    return node("add", g, node("mul", const(-1), hadamard(_p(e), _spread_back(node("sum", g, attr=e.attr), z, e.attr))))


def _logsoftmax_jac(e: Node, js: list[Node | None]) -> Node | None:
    z = e.args[0]
    if z.ndim == 1:
        return lin(node("add", eye(e.shape[0]), node("mul", const(-1), node("outer", ones(e.shape), _p(e)))), js[0])
    mix = mm(_rowwise_mix(z, e.attr), diag_of(_p(e)))
    return lin(node("add", eye(z.size), node("mul", const(-1), mix)), js[0])


def _logsumexp_vjp(e: Node, g: Node, i: int) -> Node:
    z = e.args[0]
    if e.attr is None:
        return hadamard(g, _p(e))
    return hadamard(_spread_back(g, z, e.attr), _p(e))


def _logsumexp_jac(e: Node, js: list[Node | None]) -> Node | None:
    z = e.args[0]
    if e.attr is None:
        return lin(row(vec(_p(e))), js[0])
    n, k = z.shape
    pick = node("kron", row(ones((k,))), eye(n)) if e.attr == 1 else node("kron", eye(k), row(ones((n,))))
    return lin(mm(pick, diag_of(_p(e))), js[0])


def _np_family(helper: str):
    def show(p, e: Node) -> tuple[str, int]:
        args = p.doprint(e.args[0])
        extra = "" if e.attr is None else f", axis={e.attr}"
        return f"{p.use(helper)}({args}{extra})", ATOM

    return show


def _math_family(name: str):
    def show(p, e: Node) -> tuple[str, int]:
        return p.apply(
            p.op(name) + p.subscript(_suffix(e)[1:]) if _suffix(e) else p.op(name), p.doprint(e.args[0])
        ), ATOM

    return show


def _math_logsoftmax(p, e: Node) -> tuple[str, int]:
    name = p.op("softmax") + (p.subscript(_suffix(e)[1:]) if _suffix(e) else "")
    return p.apply(p.op("log") + " " + name, p.doprint(e.args[0])), ATOM


def _sympy_softmax(e: Node, z):
    if e.args[0].ndim > 1 and e.attr is not None:
        raise _no_sympy()
    ez = sympy_elementwise(sp.exp, z)
    return ez * (1 / sympy_total(ez))


def _sympy_logsumexp(e: Node, z):
    if e.args[0].ndim > 1 and e.attr is not None:
        raise _no_sympy()
    return sp.log(sympy_total(sympy_elementwise(sp.exp, z)))


def _no_sympy():
    from .base import MissingPiece

    return MissingPiece("no SymPy matrix expression for a softmax along an axis")


def _family_call(op: str):
    def build(args, kw) -> Node:
        (a,) = args
        if a.ndim == 0:
            raise ValueError(f"{op} needs a vector or a matrix, not a scalar")
        axis = normal_axis(kw.get("axis"), a.ndim)
        out = node(op, a, attr=axis)
        return keep_dims(out, a, axis, kw.get("keepdims")) if op == "logsumexp" else out

    return build


def _norm_call(args, kw) -> Node:
    return node("norm", args[0])


def _norm_shape(args, attr, eq):
    (a,) = args
    if a.ndim not in (1, 2):
        raise ShapeError("norm needs a vector or a matrix")
    return ()


DEFINITIONS = (
    Op(
        "sum",
        shape=_axis_shape,
        identity="d sum(X) = sum(dX) = 1^T vec(dX); along an axis, the same per row or column",
        vjp=_sum_vjp,
        jac=_sum_jac,
        eval=lambda k, e, a: k.total(a, e.attr),
        simplify=_simplify_sum,
        numpy=_np_sum,
        math=_math_sum,
        sympy=_sympy_sum,
        syntax=(
            Call("sum", _sum, prefixes=NUMPY, keywords=("axis", "keepdims"), method=True),
            Call("mean", _mean, prefixes=NUMPY, keywords=("axis", "keepdims"), method=True),
        ),
    ),
    Op(
        "norm",
        shape=_norm_shape,
        identity="d ||x|| = x^T dx / ||x||",
        vjp=lambda e, g, i: hadamard(g, e.args[0], power(e, -1)),
        jac=lambda e, js: lin(row(vec(hadamard(e.args[0], power(e, -1)))), js[0]),
        eval=lambda k, e, a: k.scalar_fn("sqrt", k.total(a * a)),
        numpy=lambda p, e: p.call("np.linalg.norm", e.args[0]),
        math=lambda p, e: (p.norm_text(p.doprint(e.args[0])), ATOM),
        sympy=lambda e, a: sp.sqrt(sympy_total(sympy_elementwise(lambda t: t**2, a))),
        syntax=(Call("norm", _norm_call, prefixes=LINALG),),
    ),
    Op(
        "softmax",
        shape=_same_shape,
        identity="d softmax(z) = (diag(p) - p p^T) dz, p = softmax(z); along an axis, per row or column",
        vjp=_softmax_vjp,
        jac=_softmax_jac,
        eval=lambda k, e, a: k.softmax(a, e.attr),
        numpy=_np_family("_softmax"),
        math=_math_family("softmax"),
        sympy=_sympy_softmax,
        syntax=(Call("softmax", _family_call("softmax"), prefixes=SCIPY, keywords=("axis",)),),
    ),
    Op(
        "logsoftmax",  # made from log(softmax(z)) by fusion; also scipy's log_softmax
        shape=_same_shape,
        identity="d log softmax(z) = (I - 1 p^T) dz; along an axis, per row or column",
        vjp=_logsoftmax_vjp,
        jac=_logsoftmax_jac,
        eval=lambda k, e, a: k.fn("log", 0, k.softmax(a, e.attr)),
        numpy=_np_family("_log_softmax"),
        math=_math_logsoftmax,
        sympy=lambda e, a: sympy_elementwise(sp.log, _sympy_softmax(e, a)),
        syntax=(Call("log_softmax", _family_call("logsoftmax"), prefixes=SCIPY, keywords=("axis",)),),
    ),
    Op(
        "logsumexp",
        shape=_axis_shape,
        identity="d logsumexp(z) = softmax(z)^T dz; along an axis, per row or column",
        vjp=_logsumexp_vjp,
        jac=_logsumexp_jac,
        eval=lambda k, e, a: k.logsumexp(a, e.attr),
        numpy=_np_family("_logsumexp"),
        math=_math_family("logsumexp"),
        sympy=_sympy_logsumexp,
        syntax=(Call("logsumexp", _family_call("logsumexp"), prefixes=SCIPY, keywords=("axis", "keepdims")),),
    ),
)

__all__ = ["DEFINITIONS", "Gap", "T", "normal_axis"]
