"""The helper functions generated modules use, as real, tested code.

The code generator copies the source of each helper a module calls (and of
the helpers those call) into the module, so a generated file needs only
numpy. Helpers use only ``np`` and ``as_strided`` (a read-only view). Stable forms:
softmax and logsumexp subtract the maximum; sigmoid and its derivatives
stay finite and accurate for large |z|.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

#: the import line a helper needs when its source uses one of these names
IMPORTS = (("as_strided", "from numpy.lib.stride_tricks import as_strided"),)

#: the helpers whose result is a new float array, never a view of an argument: generated code may
#: update such a result in place (see :mod:`derive.inplace`)
FRESH = (
    "_sigmoid", "_dsigmoid", "_d2sigmoid", "_softplus", "_dtanh", "_d2tanh", "_softmax", "_log_softmax",
    "_inv", "_gram", "_conv2d", "_conv2d_kernel_grad", "_conv2d_input_grad", "_conv2d_windows",
    "_kernel_grad_windows", "_maxpool_grad", "_pool_pick", "_pool_route", "_kron_diag",
)  # fmt: skip


def _sigmoid(z, out=None):
    """1 / (1 + exp(-z)), into ``out`` (which may be z itself) or a new array (a scalar for a scalar z): a few
    ulps from the true value for every z, no overflow. Besides ``out``, one boolean array of z's size, and a
    copy of the entries below -708, where exp(-z) would overflow and sigma(z) is exp(z) to within exp(z)."""
    z = np.asarray(z)
    tail = z < -708.0
    low = z[tail] if tail.any() else None
    out = np.negative(z, out=np.empty(z.shape, np.result_type(z, 0.5)) if out is None else out)
    np.minimum(out, 708.0, out=out)
    np.exp(out, out=out)
    out += 1
    np.reciprocal(out, out=out)
    if low is not None:
        out[tail] = np.exp(low)
    return out if out.ndim else out[()]


def _dsigmoid(z):
    """sigma'(z) = sigma(z) sigma(-z) = e / (1 + e)^2 with e = exp(-|z|): accurate in both tails."""
    e = np.exp(-np.abs(z))
    d = e + 1
    d *= d
    e /= d
    return e


def _d2sigmoid(z):
    """sigma''(z) = sigma'(z) (1 - 2 sigma(z)) = sigma'(z) tanh(-z / 2)."""
    return _dsigmoid(z) * np.tanh(-z / 2)


def _softplus(z):
    """log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)): no overflow, accurate in both tails."""
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def _dtanh(z):
    """tanh'(z) = 1 - tanh(z)^2 = 4 t / (1 + t)^2 with t = exp(-2|z|), accurate where tanh(z) rounds to 1."""
    t = np.exp(-2 * np.abs(z))
    d = t + 1
    d *= d
    t *= 4
    t /= d
    return t


def _d2tanh(z):
    """tanh''(z) = -2 tanh(z) tanh'(z)."""
    return -2 * np.tanh(z) * _dtanh(z)


def _softmax(z, axis=None):
    """exp(z) / sum(exp(z)) over ``axis`` (all entries if None), shifted by the maximum."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _logsumexp(z, axis=None):
    """log(sum(exp(z))) over ``axis`` (all entries if None), shifted by the maximum."""
    m = z.max(axis=axis, keepdims=True)
    out = m + np.log(np.exp(z - m).sum(axis=axis, keepdims=True))
    return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)


def _log_softmax(z, axis=None):
    """log(softmax(z)) = z - logsumexp(z) over ``axis``."""
    lse = _logsumexp(z, axis)
    return z - (lse if axis is None else np.expand_dims(lse, axis))


def _inv(m):
    """M^-1; a singular M raises numpy's LinAlgError with the domain in its message."""
    try:
        return np.linalg.inv(m)
    except np.linalg.LinAlgError:
        raise np.linalg.LinAlgError(
            "this code is written with a matrix inverse, so it needs an invertible matrix and this one is "
            "singular (at a singular M the gradient of det(M) is the transposed adjugate, which it does not compute)"
        ) from None


def _logdet(m):
    """log(det(M)) as numpy computes it (nan where det < 0, -inf where det = 0), without overflow."""
    sign, logabs = np.linalg.slogdet(m)
    return logabs + np.log(sign)


def _gram(s):
    """S^T S: numpy's symmetric rank-k product (S.T and S share a buffer), half the work of a general one."""
    return s.T @ s


def _conv2d(x, k, c=None):
    """Valid cross-correlation, stride 1: X (H, W) with K (kh, kw), or X (C, H, W) with K (F, C, kh, kw)."""
    return _conv2d_windows(_windows(x, k.shape[-2:]), k, c)


def _conv2d_kernel_grad(x, g):
    """dL/dK: X cross-correlated with the upstream gradient G (the shape of K)."""
    size = (x.shape[-2] - g.shape[-2] + 1, x.shape[-1] - g.shape[-1] + 1)
    return _kernel_grad_windows(_windows(x, size), g, size if x.ndim == 2 else (g.shape[0], x.shape[0], *size))


def _conv2d_input_grad(g, k):
    """dL/dX: the window gradients K^T G in one matrix product, each added back where its window lies (col2im)."""
    kh, kw = k.shape[-2:]
    h, w = g.shape[-2:]
    k4 = k.reshape(-1, k.shape[-3] if k.ndim == 4 else 1, kh, kw)
    cols = (k4.reshape(k4.shape[0], -1).T @ g.reshape(k4.shape[0], -1)).reshape(k4.shape[1], kh, kw, h, w)
    dx = np.zeros((k4.shape[1], h + kh - 1, w + kw - 1))
    for a in range(kh):
        for b in range(kw):
            dx[:, a : a + h, b : b + w] += cols[:, a, b]
    return dx if k.ndim == 4 else dx[0]


def _windows(x, size):
    """im2col: X (C, H, W) as its windows of ``size`` (kh, kw), (C kh kw, H', W') with rows in a kernel's
    (c, i, j) order (X (H, W): (kh kw, H', W')). One copy, shared by the convolution and its kernel gradient."""
    x = x if x.ndim == 3 else x[None]
    (kh, kw), (c, h, w), (sc, sh, sw) = size, x.shape, x.strides
    view = as_strided(x, (c, kh, kw, h - kh + 1, w - kw + 1), (sc, sh, sw, sh, sw), writeable=False)  # no copy
    return view.reshape(c * kh * kw, h - kh + 1, w - kw + 1)


def _conv2d_windows(cols, k, c=None):
    """X ⋆ K (+ c) from X's windows: one matrix product (F, C kh kw) @ (C kh kw, H' W')."""
    n, h, w = cols.shape
    y = (k.reshape(-1, n) @ cols.reshape(n, h * w)).reshape(-1, h, w)
    if k.ndim == 2:
        return y[0]
    return y if c is None else y + c[:, None, None]


def _kernel_grad_windows(cols, g, kshape):
    """X ⋆ G from X's windows: G (F, H' W') @ windows^T, in the kernel's shape."""
    return (g.reshape(-1, cols.shape[1] * cols.shape[2]) @ cols.reshape(cols.shape[0], -1).T).reshape(kshape)


def _maxpool(x, k):
    """The maximum of each k x k window of the last two axes: k^2 - 1 element-wise maxima of strided views."""
    out = x[..., ::k, ::k]
    for a in range(k):
        for b in range(k):
            if a or b:
                out = np.maximum(out, x[..., a::k, b::k])
    return out


def _maxpool_grad(x, g, k):
    """Each window's gradient g, routed to the window's first maximum (numpy's argmax picks the first)."""
    return _pool_route(_pool_argmax(x, k), g, x.shape)


def _pool_argmax(x, k):
    """Where each k x k window of the last two axes has its first maximum (in row-major order within the
    window, as numpy's argmax), as a flat index into x: one pass per window offset."""
    corner = np.arange(x.size).reshape(x.shape)[..., ::k, ::k]
    best, at = x[..., ::k, ::k].copy(), corner.copy()
    for a in range(k):
        for b in range(k):
            if a or b:
                v = x[..., a::k, b::k]
                larger = v > best
                np.copyto(best, v, where=larger)
                np.copyto(at, corner + (a * x.shape[-1] + b), where=larger)
    return at


def _pool_pick(x, at):
    """The entries of x at the flat indices ``at`` (the max pool, at each window's argmax)."""
    return np.take(x, at)


def _pool_route(at, g, shape):
    """The adjoint of _pool_pick: each entry of g at its flat index ``at``, zeros elsewhere."""
    out = np.zeros(shape)
    np.put(out, at, g)
    return out


def _conv_index(xshape, kshape):
    """For every product X[p] K[q] in X ⋆ K: its output row, kernel column and input column (column-major)."""
    x3 = tuple(xshape) if len(xshape) == 3 else (1, *xshape)
    nf, nc, kh, kw = tuple(kshape) if len(kshape) == 4 else (1, 1, *kshape)
    h, w = x3[1] - kh + 1, x3[2] - kw + 1
    f, i, j, c, a, b = np.meshgrid(*map(np.arange, (nf, h, w, nc, kh, kw)), indexing="ij")
    flat = len(xshape) == 2
    rows = np.ravel_multi_index((i, j) if flat else (f, i, j), (h, w) if flat else (nf, h, w), order="F")
    kcols = np.ravel_multi_index((a, b) if flat else (f, c, a, b), kshape, order="F")
    xcols = np.ravel_multi_index((i + a, j + b) if flat else (c, i + a, j + b), xshape, order="F")
    return rows.ravel(), kcols.ravel(), xcols.ravel(), nf * h * w


def _im2col(x, kshape):
    """d vec(X ⋆ K) / d vec(K): X's patches, one row per output entry."""
    rows, kcols, xcols, n = _conv_index(x.shape, kshape)
    m = np.zeros((n, int(np.prod(kshape))))
    m[rows, kcols] = np.ravel(x, order="F")[xcols]
    return m


def _toeplitz(k, xshape):
    """d vec(X ⋆ K) / d vec(X): the kernel placed at every output position."""
    rows, kcols, xcols, n = _conv_index(xshape, k.shape)
    m = np.zeros((n, int(np.prod(xshape))))
    m[rows, xcols] = np.ravel(k, order="F")[kcols]
    return m


def _kron_diag(s, x):
    """x^T (x) diag(s) as an (m, m, n) array: zero but for [i, i, :] = s[i] x."""
    out = np.zeros((s.shape[0], s.shape[0], x.shape[0]))
    out[np.arange(s.shape[0]), np.arange(s.shape[0])] = np.outer(s, x)
    return out


def _commutation(m, n):
    """K with K @ vec(A) = vec(A.T) for A of shape (m, n), column-major vec."""
    k = np.zeros((m * n, m * n))
    i, j = np.meshgrid(np.arange(m), np.arange(n), indexing="ij")
    k[(i * n + j).ravel(), (j * m + i).ravel()] = 1.0
    return k
