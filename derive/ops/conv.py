"""Convolution and pooling, the article's promised part two, and their adjoints.

``conv2d(X, K)`` is the valid cross-correlation with stride 1: X (H, W) with
K (kh, kw), or X (C, H, W) with K (F, C, kh, kw) and a bias c (F,).
``maxpool(X, k)`` takes the maximum of each k x k window of the last two
axes. As matrix products (column-major vec): vec(X ⋆ K) = im2col(X) vec(K)
= toeplitz(K) vec(X).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..ir import Node, ShapeError
from ..prec import ATOM, HAD, MUL
from .algebra import pull_numbers
from .base import Call, Gap, Op
from .build import col, eye, lin, node, ones, plus

# ----- shapes -----


def _conv_shape(args, attr, eq):
    x, k = args[0], args[1]
    if x.ndim == 2 and k.ndim == 2:
        lead: tuple = ()
    elif x.ndim == 3 and k.ndim == 4:
        if not eq(k.shape[1], x.shape[0]):
            raise ShapeError("conv2d needs the kernel's channels (axis 1) to match the input's (axis 0)")
        lead = (k.shape[0],)
    else:
        raise ShapeError("conv2d takes X (H, W) with K (kh, kw), or X (C, H, W) with K (F, C, kh, kw)")
    if len(args) == 3 and (args[2].ndim != 1 or not lead or not eq(args[2].shape[0], lead[0])):
        raise ShapeError("conv2d's bias needs shape (F,), one entry per filter")
    out = tuple(sp.S(h) - sp.S(kh) + 1 for h, kh in zip(x.shape[-2:], k.shape[-2:], strict=True))
    if any((v := eq.value(d)) is not None and v < 1 for d in out):
        raise ShapeError("conv2d's kernel is larger than its input")
    return lead + out


def _maxpool_shape(args, attr, eq):
    (x,) = args
    k = attr
    if x.ndim < 2:
        raise ShapeError("maxpool needs at least two axes (it pools the last two)")
    out = []
    for d in x.shape[-2:]:
        v = eq.value(d)
        if v is not None and v % k:
            raise ShapeError(f"maxpool with k={k} needs the last two sizes to be divisible by {k} (one is {v})")
        out.append(sp.S(d) / k)
    return x.shape[:-2] + tuple(out)


def conv_size(xshape: tuple, kshape: tuple):
    """The number of entries of X ⋆ K."""
    lead = sp.S(kshape[0]) if len(kshape) == 4 else sp.Integer(1)
    h, w = (sp.S(a) - sp.S(b) + 1 for a, b in zip(xshape[-2:], kshape[-2:], strict=True))
    return lead * h * w


# ----- rules -----


def _conv_vjp(e: Node, g: Node, i: int) -> Node:
    x, k = e.args[0], e.args[1]
    if i == 0:
        return node("conv2d_input_grad", g, k, attr=x.shape)
    if i == 1:
        return node("conv2d_kernel_grad", x, g, attr=k.shape)
    return node("spatial_sum", g)


def _conv_jac(e: Node, js: list[Node | None]) -> Node | None:
    """vec(X ⋆ K + c) = toeplitz(K) vec(X) + im2col(X) vec(K) + (1 (x) I) c: the matrix view."""
    x, k = e.args[0], e.args[1]
    terms = [lin(node("toeplitz", k, attr=x.shape), js[0]), lin(node("im2col", x, attr=k.shape), js[1])]
    if len(e.args) == 3:
        terms.append(lin(node("kron", col(ones((e.size / e.shape[0],))), eye(e.shape[0])), js[2]))
    return plus(*terms)


# ----- evaluation entry by entry (any scalar domain) -----


def _conv_eval(k, e: Node, x, kern, c=None):
    """Y[f, i, j] = sum_{c, a, b} X[c, i + a, j + b] K[f, c, a, b] (+ c[f])."""
    x3 = x[None] if x.ndim == 2 else x
    k4 = kern[None, None] if kern.ndim == 2 else kern
    nf, nc, kh, kw = k4.shape
    h, w = x3.shape[1] - kh + 1, x3.shape[2] - kw + 1
    out = np.empty((nf, h, w), dtype=object)
    for f, i, j in np.ndindex(nf, h, w):
        terms = [x3[ch, i + a, j + b] * k4[f, ch, a, b] for ch, a, b in np.ndindex(nc, kh, kw)]
        if c is not None:
            terms.append(c[f])
        out[f, i, j] = k.add_all(terms)
    return out[0] if x.ndim == 2 else out


def _kernel_grad_eval(k, e: Node, x, g):
    """dK[f, c, a, b] = sum_{i, j} G[f, i, j] X[c, i + a, j + b]: X cross-correlated with G."""
    x3, g3 = (x[None], g[None]) if x.ndim == 2 else (x, g)
    nf, h, w = g3.shape
    nc = x3.shape[0]
    kh, kw = x3.shape[1] - h + 1, x3.shape[2] - w + 1
    out = np.empty((nf, nc, kh, kw), dtype=object)
    for f, ch, a, b in np.ndindex(nf, nc, kh, kw):
        out[f, ch, a, b] = k.add_all([g3[f, i, j] * x3[ch, i + a, j + b] for i, j in np.ndindex(h, w)])
    return out.reshape(k.shape(e))


def _input_grad_eval(k, e: Node, g, kern):
    """dX[c, p, q] = sum_{f, a, b} G[f, p - a, q - b] K[f, c, a, b]: full convolution with the kernel."""
    g3, k4 = (g[None], kern[None, None]) if kern.ndim == 2 else (g, kern)
    nf, nc, kh, kw = k4.shape
    h, w = g3.shape[1] + kh - 1, g3.shape[2] + kw - 1
    out = np.empty((nc, h, w), dtype=object)
    for ch, p, q in np.ndindex(nc, h, w):
        out[ch, p, q] = k.add_all([
            g3[f, p - a, q - b] * k4[f, ch, a, b]
            for f, a, b in np.ndindex(nf, kh, kw)
            if 0 <= p - a < g3.shape[1] and 0 <= q - b < g3.shape[2]
        ])  # fmt: skip
    return out.reshape(k.shape(e))


def _conv_matrix_eval(k, x, kern, by_kernel: bool):
    """d vec(X ⋆ K) / d vec(K) (im2col(X)) or / d vec(X) (toeplitz(K)), column-major vec."""
    x3 = x[None] if x.ndim == 2 else x
    k4 = kern[None, None] if kern.ndim == 2 else kern
    nf, nc, kh, kw = k4.shape
    h, w = x3.shape[1] - kh + 1, x3.shape[2] - kw + 1
    yshape = (h, w) if x.ndim == 2 else (nf, h, w)
    out = k.zeros((nf * h * w, kern.size if by_kernel else x.size))
    for f, i, j in np.ndindex(nf, h, w):
        r = np.ravel_multi_index((i, j) if x.ndim == 2 else (f, i, j), yshape, order="F")
        for ch, a, b in np.ndindex(nc, kh, kw):
            kidx = (a, b) if kern.ndim == 2 else (f, ch, a, b)
            xidx = (i + a, j + b) if x.ndim == 2 else (ch, i + a, j + b)
            if by_kernel:
                out[r, np.ravel_multi_index(kidx, kern.shape, order="F")] = x[xidx]
            else:
                out[r, np.ravel_multi_index(xidx, x.shape, order="F")] = kern[kidx]
    return out


def _windows(x: np.ndarray, k: int) -> np.ndarray:
    """(..., H, W) -> (..., H/k, W/k, k*k): each k x k window's entries, row by row."""
    lead = x.shape[:-2]
    h, w = x.shape[-2] // k, x.shape[-1] // k
    return x.reshape(*lead, h, k, w, k).swapaxes(-3, -2).reshape(*lead, h, w, k * k)


def _maxpool_eval(k, e: Node, x):
    """Each window's maximum, as sum_r delta_r x_r with delta the window's (symbolic) choice."""
    win = _windows(x, e.attr)
    out = np.empty(win.shape[:-1], dtype=object)
    for idx in np.ndindex(*out.shape):
        entries = list(win[idx])
        out[idx] = k.add_all([d * v for d, v in zip(k.argmax(entries), entries, strict=True)])
    return out


def _maxpool_grad_eval(k, e: Node, x, g):
    """Each window's upstream gradient, routed to the window's maximum."""
    r = e.attr
    win = _windows(x, r)
    routed = np.empty(win.shape, dtype=object)
    for idx in np.ndindex(*win.shape[:-1]):
        for j, d in enumerate(k.argmax(list(win[idx]))):
            routed[idx + (j,)] = d * g[idx]
    lead = x.shape[:-2]
    h, w = x.shape[-2] // r, x.shape[-1] // r
    return routed.reshape(*lead, h, w, r, r).swapaxes(-3, -2).reshape(x.shape)


def _spatial_sum_eval(k, e: Node, g):
    return np.array([k.add_all(list(g[f].ravel())) for f in range(g.shape[0])], dtype=object)


# ----- sharing: the parts generated code computes once -----

_CODE = Gap("a part of generated code only (made to be shared), never of a formula")


def _share_conv(e: Node) -> Node:
    """X ⋆ K as one product with X's window matrix, which X ⋆ G (a kernel gradient) shares."""
    return node("conv2d_windows", node("windows", e.args[0], attr=tuple(e.args[1].shape[-2:])), *e.args[1:])


def _share_kernel_grad(e: Node) -> Node:
    return node("kernel_grad_windows", node("windows", e.args[0], attr=tuple(e.attr[-2:])), e.args[1], attr=e.attr)


def _share_maxpool(e: Node) -> Node:
    """The pooled entries picked at each window's argmax, which the pool's gradient routes by."""
    return node("pool_pick", e.args[0], node("pool_argmax", e.args[0], attr=e.attr))


def _share_maxpool_grad(e: Node) -> Node:
    x, g = e.args
    return node("pool_route", node("pool_argmax", x, attr=e.attr), g, attr=tuple(x.shape))


def _windows_shape(args, attr, eq):
    (x,) = args
    lead = sp.Mul(*attr[-2:]) * (x.shape[0] if x.ndim == 3 else 1)
    return (lead, *(sp.S(h) - sp.S(k) + 1 for h, k in zip(x.shape[-2:], attr[-2:], strict=True)))


def _conv_windows_shape(args, attr, eq):
    cols, k = args[0], args[1]
    return ((k.shape[0],) if k.ndim == 4 else ()) + tuple(cols.shape[1:])


def _code_only(name: str, shape, numpy, identity: str) -> Op:
    return Op(name, shape=shape, identity=identity, vjp=_CODE, jac=_CODE, eval=_CODE, numpy=numpy, math=_CODE,
              sympy=_CODE)  # fmt: skip


def _np_helper(helper: str, attr_shape: bool = False, attr_int: bool = False):
    def show(p, e: Node) -> tuple[str, int]:
        args = [p.doprint(a) for a in e.args]
        if attr_shape:
            args.append(p.shape(e.attr))
        if attr_int:
            args.append(str(e.attr))
        return f"{p.use(helper)}({', '.join(args)})", ATOM

    return show


# ----- printing -----


def _math_conv(p, e: Node) -> tuple[str, int]:
    x, kern = (p.wrap(a, MUL, strict=True) for a in e.args[:2])
    text = f"{x}{p.STAR}{kern}"
    return (text + " + " + p.doprint(e.args[2]), 30) if len(e.args) == 3 else (text, HAD)


def _math_input_grad(p, e: Node) -> tuple[str, int]:
    g, kern = (p.doprint(a) for a in e.args)
    return f"{p.apply(p.op('pad'), g)}{p.STAR}{p.apply(p.op('rot180'), kern)}", HAD


def _sub_op(p, name: str, k: int) -> str:
    return p.op(name) + p.subscript(str(k))


def _maxpool_call(args, kw) -> Node:
    x, k = args
    if not isinstance(k, int) or not 1 <= k <= 64:
        raise ValueError("maxpool's window size must be a whole number from 1 to 64")
    return node("maxpool", x, attr=k)


def _conv_call(args, kw) -> Node:
    return node("conv2d", *args)


_LINEAR_G = Gap("the upstream gradient's own derivative is not needed: it is used in gradients only")

DEFINITIONS = (
    Op(
        "conv2d",
        shape=_conv_shape,
        identity="d(X ⋆ K + c) = dX ⋆ K + X ⋆ dK + dc: dL/dK = X ⋆ G, dL/dX = pad(G) ⋆ rot180(K)",
        vjp=_conv_vjp,
        jac=_conv_jac,
        eval=_conv_eval,
        numpy=lambda p, e: p.call(p.use("_conv2d"), *e.args),
        share=_share_conv,
        math=_math_conv,
        sympy=Gap("SymPy has no convolution matrix expression"),
        syntax=(Call("conv2d", _conv_call, arity=(2, 3)),),
    ),
    Op(
        "conv2d_kernel_grad",  # X ⋆ G, the gradient by the kernel
        shape=lambda args, attr, eq: tuple(attr),
        identity="X ⋆ G: the adjoint of K -> X ⋆ K",
        vjp=_LINEAR_G,
        jac=Gap("no Jacobian rule for a convolution gradient (a Hessian by a kernel)"),
        eval=_kernel_grad_eval,
        simplify=lambda e: pull_numbers(e, (1,)),
        numpy=lambda p, e: p.call(p.use("_conv2d_kernel_grad"), *e.args),
        share=_share_kernel_grad,
        math=lambda p, e: (f"{p.wrap(e.args[0], MUL, strict=True)}{p.STAR}{p.wrap(e.args[1], MUL, strict=True)}", HAD),
        sympy=Gap("SymPy has no convolution matrix expression"),
    ),
    Op(
        "conv2d_input_grad",  # pad(G) ⋆ rot180(K), the gradient by the input
        shape=lambda args, attr, eq: tuple(attr),
        identity="pad(G) ⋆ rot180(K): the adjoint of X -> X ⋆ K",
        vjp=_LINEAR_G,
        jac=Gap("no Jacobian rule for a convolution gradient (a Hessian by an input)"),
        eval=_input_grad_eval,
        simplify=lambda e: pull_numbers(e, (0,)),
        numpy=lambda p, e: p.call(p.use("_conv2d_input_grad"), *e.args),
        math=_math_input_grad,
        sympy=Gap("SymPy has no convolution matrix expression"),
    ),
    Op(
        "spatial_sum",  # the bias gradient: each filter's sum over positions
        shape=lambda args, attr, eq: args[0].shape[:1],
        identity="Σ_ij G[f, i, j]: the adjoint of c -> c broadcast over positions",
        vjp=_LINEAR_G,
        jac=Gap("no Jacobian rule for a bias gradient"),
        eval=_spatial_sum_eval,
        simplify=lambda e: pull_numbers(e, (0,)),
        numpy=lambda p, e: (f"{p.wrap(e.args[0], 90)}.sum(axis=(-2, -1))", 90),
        math=lambda p, e: (p.join(p.SPATIAL_SUM, p.wrap(e.args[0], MUL, strict=True)), MUL),
        sympy=Gap("SymPy has no convolution matrix expression"),
    ),
    Op(
        "im2col",  # d vec(X ⋆ K) / d vec(K)
        shape=lambda args, attr, eq: (conv_size(args[0].shape, attr), sp.Mul(*attr)),
        identity="vec(X ⋆ K) = im2col(X) vec(K)",
        vjp=Gap("a Jacobian form, not differentiated further"),
        jac=Gap("a Jacobian form, not differentiated further"),
        eval=lambda k, e, x: _conv_matrix_eval(k, x, np.empty(k.shape_of(e.attr), dtype=object), True),
        numpy=lambda p, e: (f"{p.use('_im2col')}({p.doprint(e.args[0])}, {p.shape(e.attr)})", ATOM),
        math=lambda p, e: (p.apply(p.op("im2col"), p.doprint(e.args[0])), ATOM),
        sympy=Gap("SymPy has no convolution matrix expression"),
    ),
    Op(
        "toeplitz",  # d vec(X ⋆ K) / d vec(X)
        shape=lambda args, attr, eq: (conv_size(attr, args[0].shape), sp.Mul(*attr)),
        identity="vec(X ⋆ K) = toeplitz(K) vec(X)",
        vjp=Gap("a Jacobian form, not differentiated further"),
        jac=Gap("a Jacobian form, not differentiated further"),
        eval=lambda k, e, kern: _conv_matrix_eval(k, np.empty(k.shape_of(e.attr), dtype=object), kern, False),
        numpy=lambda p, e: (f"{p.use('_toeplitz')}({p.doprint(e.args[0])}, {p.shape(e.attr)})", ATOM),
        math=lambda p, e: (p.apply(p.op("toeplitz"), p.doprint(e.args[0])), ATOM),
        sympy=Gap("SymPy has no convolution matrix expression"),
    ),
    Op(
        "maxpool",
        shape=_maxpool_shape,
        identity="d maxpool(X) routes dX at each window's maximum (the first, as argmax picks it)",
        vjp=lambda e, g, i: node("maxpool_grad", e.args[0], g, attr=e.attr),
        jac=Gap("no vec Jacobian for max pooling; its uses are differentiated"),
        eval=_maxpool_eval,
        numpy=lambda p, e: (f"{p.use('_maxpool')}({p.doprint(e.args[0])}, {e.attr})", ATOM),
        share=_share_maxpool,
        math=lambda p, e: (p.apply(_sub_op(p, "maxpool", e.attr), p.doprint(e.args[0])), ATOM),
        sympy=Gap("SymPy has no max-pooling matrix expression"),
        syntax=(Call("maxpool", _maxpool_call, arity=(2,), numbers=(1,)),),
    ),
    Op(
        "maxpool_grad",  # unpool_k(G; X): each window's gradient at its maximum
        shape=lambda args, attr, eq: args[0].shape,
        identity="unpool(G; X): the adjoint of max pooling",
        vjp=_LINEAR_G,
        jac=Gap("no Jacobian rule for a max-pooling gradient"),
        eval=_maxpool_grad_eval,
        simplify=lambda e: pull_numbers(e, (1,)),
        numpy=lambda p, e: (
            f"{p.use('_maxpool_grad')}({p.doprint(e.args[0])}, {p.doprint(e.args[1])}, {e.attr})",
            ATOM,
        ),
        share=_share_maxpool_grad,
        math=lambda p, e: (
            p.apply(_sub_op(p, "unpool", e.attr), f"{p.doprint(e.args[1])}; {p.doprint(e.args[0])}"),
            ATOM,
        ),
        sympy=Gap("SymPy has no max-pooling matrix expression"),
    ),
    _code_only(
        "windows",
        _windows_shape,
        _np_helper("_windows", attr_shape=True),
        "X's kh x kw windows (attr) as columns (im2col): (C kh kw, H', W'), rows in the kernel's (c, i, j) order",
    ),
    _code_only(
        "conv2d_windows",
        _conv_windows_shape,
        _np_helper("_conv2d_windows"),
        "X ⋆ K + c = K W + c with W = windows(X): one matrix product",
    ),
    _code_only(
        "kernel_grad_windows",
        lambda args, attr, eq: tuple(attr),
        _np_helper("_kernel_grad_windows", attr_shape=True),
        "X ⋆ G = G Wᵀ with W = windows(X)",
    ),
    _code_only(
        "pool_argmax",
        _maxpool_shape,
        _np_helper("_pool_argmax", attr_int=True),
        "where each k x k window of X has its first maximum, as a flat index into X",
    ),
    _code_only(
        "pool_pick",
        lambda args, attr, eq: args[1].shape,
        _np_helper("_pool_pick"),
        "maxpool(X) = X at each window's argmax",
    ),
    _code_only(
        "pool_route",
        lambda args, attr, eq: tuple(attr),
        _np_helper("_pool_route", attr_shape=True),
        "unpool(G; X): G at each window's argmax, zero elsewhere",
    ),
)

__all__ = ["DEFINITIONS", "conv_size"]
