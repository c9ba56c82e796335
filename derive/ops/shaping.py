"""Reshapes and broadcasts: vec, rows and columns of vec, flatten and its inverse, numpy broadcasting.

``vec`` stacks columns (column-major); ``flatten`` is numpy's C order.
``broadcast`` repeats an operand to a larger shape by numpy's rules (a
vector along the rows of a matrix, a column along its columns); the parser
makes it where numpy would broadcast, so every other op sees equal shapes.
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions import OneMatrix

from ..ir import Node, ShapeError, size_of
from ..prec import ATOM, MUL, POSTFIX
from ..sympy_form import Vec
from .algebra import scale, split_coef, split_scalars, with_scalars
from .base import Call, Gap, Op
from .build import T, col, eye, lin, node, ones, row

# ----- broadcasting -----


def broadcast_axes(shape: tuple, target: tuple, eq) -> tuple[int, ...]:
    """The axes of ``target`` along which ``shape`` is repeated, by numpy's rules (trailing axes align;
    a literal 1 or a missing axis repeats). Raises ShapeError when they do not fit."""
    if len(shape) > len(target):
        raise ShapeError("cannot broadcast to fewer axes")
    lead = len(target) - len(shape)
    axes = list(range(lead))
    for i, d in enumerate(shape):
        t = target[lead + i]
        if sp.S(d) == 1 and sp.S(t) != 1:
            axes.append(lead + i)
        elif not eq(d, t):
            raise ShapeError("shapes do not broadcast: each axis must match, or be 1")
    return tuple(axes)


def _broadcast_shape(args, attr, eq):
    broadcast_axes(args[0].shape, tuple(attr), eq)
    return tuple(attr)


def _bvjp(e: Node, g: Node, i: int) -> Node:
    """Sum the adjoint over the repeated axes, back to the operand's shape."""
    x = e.args[0]
    axes = broadcast_axes(x.shape, e.shape, lambda a, b: True)
    lead = e.ndim - x.ndim
    out = g
    for ax in sorted(axes, reverse=True):
        out = node("sum", out, attr=ax if out.ndim > 1 else None)
    if x.ndim == 2 and len(out.shape) == 1:  # a (n, 1) column or a (1, k) row
        return col(out) if lead == 0 and axes == (1,) else row(out)
    if out.shape != x.shape:  # a length-1 vector: the summed scalar, as one entry
        return node("broadcast", out, attr=x.shape)
    return out


def _repeats(e: Node) -> frozenset[int]:
    """The axes of the result along which a broadcast repeats its operand."""
    return frozenset(broadcast_axes(e.args[0].shape, e.shape, lambda a, b: True))


def _bjac(e: Node, js: list[Node | None]) -> Node | None:
    """vec(1 b^T) = (I (x) 1) b; vec(c 1^T) = (1 (x) I) c; a single entry repeated: 1 (column-major vec)."""
    if js[0] is None:
        return None
    if e.ndim == 1 or _repeats(e) == frozenset({0, 1}):
        return lin(col(ones((e.size,))), js[0])
    if e.ndim != 2:
        return _no_jac()
    n, k = e.shape
    if _repeats(e) == frozenset({0}):  # a row repeated down the rows
        return lin(node("kron", eye(k), col(ones((n,)))), js[0])
    return lin(node("kron", col(ones((k,))), eye(n)), js[0])  # a column repeated across


def _no_jac():
    from .base import NoRule

    raise NoRule("no Jacobian rule for broadcasting to a tensor with more than two axes")


def _simplify_broadcast(e: Node) -> Node:
    x = e.args[0]
    c, rest = split_coef(x)
    if c != 1:
        return scale(c, node("broadcast", rest, attr=e.attr))
    if x.shape == e.shape:
        return x
    if x.op == "ones" or (x.op in ("col", "row", "vec") and x.args[0].op == "ones"):
        return ones(e.shape)
    return e


def _transpose_broadcast(a: Node) -> Node:
    """(1 b^T)^T = b 1^T: the repeated vector stays; the axes swap."""
    x = a.args[0]
    if a.ndim != 2:
        return node("T", a)
    if _repeats(a) == frozenset({0}) and x.ndim == 1:
        return node("broadcast", col(x), attr=tuple(reversed(a.shape)))
    if _repeats(a) == frozenset({1}) and x.ndim == 2:
        return node("broadcast", node("vec", x), attr=tuple(reversed(a.shape)))
    return node("T", a)


def _np_broadcast(p, e: Node) -> tuple[str, int]:
    x = e.args[0]
    text = p.wrap(x, POSTFIX)
    if x.ndim == 1 and e.ndim == 2 and sp.S(e.shape[1]) != sp.S(x.shape[0]):
        text = f"{text}[:, None]"
    if p.implicit_broadcast:
        return text, POSTFIX
    return f"np.broadcast_to({text}, {p.shape(e.shape)}).copy()", ATOM


def _math_broadcast(p, e: Node) -> tuple[str, int]:
    x = e.args[0]
    repeats = _repeats(e) if e.ndim == 2 else frozenset()
    if repeats == frozenset({0}):  # 1 b^T: b in every row
        inner = p.row(x) if x.ndim == 1 else p.wrap(x, MUL)
        return p.join(p.ONES, inner), MUL
    if repeats == frozenset({1}):  # c 1^T: c in every column
        return p.join(p.wrap(x, MUL), p.ONES + p.T), MUL
    if e.ndim == 1:  # one entry repeated
        return p.join(p.wrap(x, MUL), p.ONES), MUL
    return p.join(p.wrap(x, MUL), p.join(p.ONES, p.ONES + p.T)), MUL


def _sympy_broadcast(e: Node, a):
    x = e.args[0]
    if e.ndim == 1:
        return a * OneMatrix(e.shape[0], 1)
    n, k = e.shape
    repeats = _repeats(e)
    if repeats == frozenset({0}):
        return OneMatrix(n, 1) * (a.T if x.ndim == 1 else a)
    if repeats == frozenset({1}):
        return a * OneMatrix(1, k)
    return a * OneMatrix(n, k)


# ----- vec and its rows and columns -----


def _linear1(op: str):
    """Pull a number out of a one-argument linear op: vec(2 X) -> 2 vec(X)."""

    def rewrite(e: Node) -> Node:
        c, rest = split_coef(e.args[0])
        if c != 1 and rest.shape == e.args[0].shape:
            return scale(c, node(op, rest, attr=e.attr))
        scalars, inner = split_scalars(e.args[0])
        if scalars:  # row(s v) = s row(v): scalars come out too
            return with_scalars(scalars, node(op, inner, attr=e.attr))
        if op == "vec" and rest.ndim < 2:
            return rest
        if op == "vec" and rest.op in ("col", "row") and rest.args[0].ndim == 1:
            return rest.args[0]  # vec of a vector's column or row is the vector
        return e

    return rewrite


def _np_row(p, e: Node) -> tuple[str, int]:
    (a,) = e.args
    if a.ndim == 1:
        return f"{p.wrap(a, POSTFIX)}[None, :]", POSTFIX
    return f'np.ravel({p.doprint(a)}, order="F")[None, :]', POSTFIX


def _np_col(p, e: Node) -> tuple[str, int]:
    (a,) = e.args
    if a.ndim == 1:
        return f"{p.wrap(a, POSTFIX)}[:, None]", POSTFIX
    return f'np.ravel({p.doprint(a)}, order="F")[:, None]', POSTFIX


def _math_row(p, e: Node) -> tuple[str, int]:
    a = e.args[0]
    if a.ndim == 1:
        return p.row(a), POSTFIX
    return p.apply(p.op("vec"), p.doprint(a)) + p.T, POSTFIX


def _math_col(p, e: Node) -> tuple[str, int]:
    a = e.args[0]
    return p.prec(a) if a.ndim == 1 else (p.apply(p.op("vec"), p.doprint(a)), ATOM)


def _vec_sympy(e: Node, a):
    return Vec(a) if e.args[0].ndim == 2 else a


def _np_unvec(p, e: Node) -> tuple[str, int]:
    """A vec Jacobian as the array jax.jacobian returns (value shape + variable shape).

    A Kronecker product A (x) B whose factors line up with those axes is built by
    broadcasting, A[i, j] B[k, l] at [k, i, l, j], never as a dense Kronecker matrix.
    """
    (j,) = e.args
    out, tail = e.attr
    c, core = split_coef(j)
    coef = "" if c == 1 else "-" if c == -1 else f"{p.number_code(c)[0]} * "
    if core.op == "kron" and core not in p.names and _diagonal_kron(core, out, tail):
        a, b = core.args  # x^T (x) diag(s): only the diagonal rows are non-zero
        s_text = p.doprint(b.args[0]) if b.op == "diag" else f"np.ones({p.dim(b.shape[0])})"
        body = f"{p.use('_kron_diag')}({s_text}, {p.doprint(a)})"
        return (body, ATOM) if c == 1 else (f"{coef}{body}", MUL)
    if core.op == "kron" and core not in p.names and core.args[1].ndim == 2:
        a, b = core.args  # (A (x) B)[(i, k), (j, l)] = A[i, j] B[k, l]: lay it out directly
        if a.op in ("col", "row") and a.args[0].ndim == 1:
            a_text, a_sub = p.doprint(a.args[0]), "i" if a.op == "col" else "j"
        else:
            a_text, a_sub = p.doprint(a), "j" if a.ndim == 1 else "ij"
        rows_a = a.shape[0] if a.ndim == 2 else sp.Integer(1)
        cols_a = a.shape[-1]
        if _splits(out, b.shape[0], rows_a) and _splits(tail, b.shape[1], cols_a):
            target = "k" + ("i" if rows_a != 1 else "") + "l" + ("j" if cols_a != 1 else "")
            body = f'np.einsum("kl,{a_sub}->{target}", {p.doprint(b)}, {a_text})'
            return (body, ATOM) if c == 1 else (f"{coef}{body}", MUL)
    target = ", ".join(p.dim(d) for d in tuple(out) + tuple(tail))
    return f'np.reshape({p.doprint(j)}, ({target}), order="F")', ATOM


def _diagonal_kron(k: Node, out: tuple, tail: tuple) -> bool:
    """x^T (x) diag(s) or x^T (x) I, whose jax-layout array is zero off the diagonal (i, i, :)."""
    a, b = k.args
    diagonal = (b.op == "diag" and b.args[0].ndim == 1) or b.op == "eye"
    return diagonal and a.ndim == 1 and len(out) == 1 and _splits(tail, b.shape[1], a.shape[0])


def _splits(axes: tuple, inner, outer) -> bool:
    """Whether column-major ``axes`` are (inner, outer), an outer of size 1 dropped."""
    if outer == 1:
        return len(axes) == 1 and axes[0] == inner
    return len(axes) == 2 and axes[0] == inner and axes[1] == outer


def _flatten_call(args, kw) -> Node:
    return node("flatten", args[0])


def _ravel_call(args, kw) -> Node:
    return node("flatten", args[0]) if args[0].ndim > 1 else args[0]


DEFINITIONS = (
    Op(
        "broadcast",
        shape=_broadcast_shape,
        identity="d(1 b^T) = 1 db^T: a repeated operand's adjoint is summed over the repeats",
        vjp=_bvjp,
        jac=_bjac,
        eval=lambda k, e, a: k.broadcast(a, k.shape(e)),
        simplify=_simplify_broadcast,
        transpose=_transpose_broadcast,
        numpy=_np_broadcast,
        math=_math_broadcast,
        sympy=_sympy_broadcast,
    ),
    Op(
        "row",  # vec(X)^T, or x^T for a vector: a 1 x n matrix
        shape=lambda args, attr, eq: (sp.Integer(1), args[0].size),
        identity="d vec(X)^T = vec(dX)^T",
        vjp=lambda e, g, i: _unvec_adjoint(g, e.args[0]),
        jac=lambda e, js: js[0],
        eval=lambda k, e, a: k.reshape_f(a, (1, -1)),
        simplify=_linear1("row"),
        transpose=lambda a: col(a.args[0]),
        numpy=_np_row,
        math=_math_row,
        sympy=lambda e, a: _vec_sympy(e, a).T,
    ),
    Op(
        "col",  # vec(X), or x for a vector, as an n x 1 matrix
        shape=lambda args, attr, eq: (args[0].size, sp.Integer(1)),
        identity="d vec(X) = vec(dX)",
        vjp=lambda e, g, i: _unvec_adjoint(g, e.args[0]),
        jac=lambda e, js: js[0],
        eval=lambda k, e, a: k.reshape_f(a, (-1, 1)),
        simplify=_linear1("col"),
        transpose=lambda a: row(a.args[0]),
        numpy=_np_col,
        math=_math_col,
        sympy=_vec_sympy,
    ),
    Op(
        "vec",
        shape=lambda args, attr, eq: (args[0].size,),
        identity="d vec(X) = vec(dX)",
        vjp=lambda e, g, i: _unvec_adjoint(g, e.args[0]),
        jac=lambda e, js: js[0],
        eval=lambda k, e, a: k.reshape_f(a, (-1,)),
        simplify=_linear1("vec"),
        numpy=lambda p, e: (f'np.ravel({p.doprint(e.args[0])}, order="F")', ATOM),
        math=lambda p, e: (p.apply(p.op("vec"), p.doprint(e.args[0])), ATOM),
        sympy=_vec_sympy,
    ),
    Op(
        "unvec",  # a vec Jacobian (p x q) rearranged to the tensor shape out + in; for generated code only
        shape=lambda args, attr, eq: tuple(attr[0]) + tuple(attr[1]),
        identity="the same numbers, arranged as value shape + variable shape",
        vjp=Gap("only generated code uses it"),
        jac=Gap("only generated code uses it"),
        eval=lambda k, e, a: k.reshape_f(a, k.shape(e)),
        numpy=_np_unvec,
        math=Gap("only generated code uses it"),
        sympy=Gap("only generated code uses it"),
    ),
    Op(
        "flatten",
        shape=lambda args, attr, eq: (args[0].size,),
        identity="d flatten(X) = flatten(dX)",
        vjp=lambda e, g, i: node("unflatten", g, attr=e.args[0].shape),
        jac=Gap("no vec Jacobian for flatten (C order against column-major vec); its uses are differentiated"),
        eval=lambda k, e, x: k.reshape_c(x, (-1,)),
        numpy=lambda p, e: (f"{p.wrap(e.args[0], POSTFIX)}.ravel()", POSTFIX),
        math=lambda p, e: (p.apply(p.op("flatten"), p.doprint(e.args[0])), ATOM),
        sympy=Gap("SymPy has no C-order flatten"),
        syntax=(
            Call("flatten", _flatten_call, method=True),
            Call("ravel", _ravel_call, prefixes=("", "np."), method=True),
        ),
    ),
    Op(
        "unflatten",
        shape=lambda args, attr, eq: tuple(attr),
        identity="d reshape(x) = reshape(dx)",
        vjp=lambda e, g, i: node("flatten", g),
        jac=Gap("no vec Jacobian for a C-order reshape"),
        eval=lambda k, e, g: k.reshape_c(g, k.shape(e)),
        simplify=_linear1("unflatten"),
        numpy=lambda p, e: (f"{p.wrap(e.args[0], POSTFIX)}.reshape({p.shape(e.shape)})", POSTFIX),
        math=lambda p, e: (p.apply(p.op("reshape"), p.doprint(e.args[0])), ATOM),
        sympy=Gap("SymPy has no C-order reshape"),
    ),
)


def _unvec_adjoint(g: Node, x: Node) -> Node:
    """The adjoint of vec(x) (or its row or column view) back in x's shape: vectors only."""
    if x.ndim <= 1:
        return node("vec", g) if g.ndim > 1 else g
    from .base import NoRule

    raise NoRule("no gradient rule through vec of a matrix (only derivative forms use vec)")


__all__ = ["DEFINITIONS", "T", "broadcast_axes", "size_of"]
