"""The helper functions generated modules use, as real, tested code.

The code generator copies the source of each helper a module calls (and of
the helpers those call) into the module, so a generated file needs only
numpy. Helpers use only ``np`` and ``sliding_window_view``. Stable forms:
softmax and logsumexp subtract the maximum; sigmoid and its derivatives
stay finite and accurate for large |z|.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

#: the import line a helper needs when its source uses one of these names
IMPORTS = (("sliding_window_view", "from numpy.lib.stride_tricks import sliding_window_view"),)


def _sigmoid(z):
    """1 / (1 + exp(-z)), without overflow."""
    return np.exp(-np.logaddexp(0.0, -z))


def _dsigmoid(z):
    """sigma'(z) = sigma(z) (1 - sigma(z)), accurate in both tails."""
    return np.exp(-np.logaddexp(0.0, z) - np.logaddexp(0.0, -z))


def _d2sigmoid(z):
    """sigma''(z) = sigma'(z) (1 - 2 sigma(z))."""
    return _dsigmoid(z) * np.tanh(-z / 2)


def _dtanh(z):
    """tanh'(z) = 1 - tanh(z)^2 = sech(z)^2, accurate where tanh(z) rounds to 1."""
    t = np.exp(-2 * np.abs(z))
    return 4 * t / (1 + t) ** 2


def _d2tanh(z):
    """tanh''(z) = -2 tanh(z) tanh'(z)."""
    return -2 * np.tanh(z) * _dtanh(z)


def _softmax(z, axis=None):
    """exp(z) / sum(exp(z)) over ``axis`` (all entries if None), shifted by the maximum."""
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _logsumexp(z, axis=None):
    """log(sum(exp(z))) over ``axis`` (all entries if None), shifted by the maximum."""
    m = np.max(z, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))
    return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)


def _log_softmax(z, axis=None):
    """log(softmax(z)) = z - logsumexp(z) over ``axis``."""
    lse = _logsumexp(z, axis)
    return z - (lse if axis is None else np.expand_dims(lse, axis))


def _logdet(m):
    """log(det(M)) as numpy computes it (nan where det < 0, -inf where det = 0), without overflow."""
    sign, logabs = np.linalg.slogdet(m)
    return logabs + np.log(sign)


def _conv2d(x, k, c=None):
    """Valid cross-correlation, stride 1: X (H, W) with K (kh, kw), or X (C, H, W) with K (F, C, kh, kw)."""
    if x.ndim == 2:
        return np.tensordot(sliding_window_view(x, k.shape), k, axes=([2, 3], [0, 1]))
    windows = sliding_window_view(x, k.shape[2:], axis=(1, 2))  # (C, H', W', kh, kw), no copy
    y = np.tensordot(k, windows, axes=([1, 2, 3], [0, 3, 4]))  # one GEMM, as im2col would do
    return y if c is None else y + c[:, None, None]


def _conv2d_kernel_grad(x, g):
    """dL/dK: X cross-correlated with the upstream gradient G (the shape of K)."""
    if x.ndim == 2:
        return np.tensordot(sliding_window_view(x, g.shape), g, axes=([2, 3], [0, 1]))
    windows = sliding_window_view(x, g.shape[1:], axis=(1, 2))  # (C, kh, kw, H', W')
    return np.tensordot(g, windows, axes=([1, 2], [3, 4]))


def _conv2d_input_grad(g, k):
    """dL/dX: the full convolution of the upstream gradient with the kernel, one kernel offset at a time."""
    kh, kw = k.shape[-2:]
    h, w = g.shape[-2:]
    if k.ndim == 2:
        dx = np.zeros((h + kh - 1, w + kw - 1))
        for a in range(kh):
            for b in range(kw):
                dx[a : a + h, b : b + w] += k[a, b] * g
        return dx
    dx = np.zeros((k.shape[1], h + kh - 1, w + kw - 1))
    for a in range(kh):
        for b in range(kw):
            dx[:, a : a + h, b : b + w] += np.tensordot(k[:, :, a, b], g, axes=([0], [0]))
    return dx


def _maxpool(x, k):
    """The maximum of each k x k window of the last two axes."""
    *lead, h, w = x.shape
    return x.reshape(*lead, h // k, k, w // k, k).max(axis=(-3, -1))


def _maxpool_grad(x, g, k):
    """Each window's gradient g, routed to the window's first maximum (numpy's argmax picks the first)."""
    *lead, h, w = x.shape
    windows = x.reshape(*lead, h // k, k, w // k, k).swapaxes(-3, -2).reshape(*lead, h // k, w // k, k * k)
    routed = (np.arange(k * k) == windows.argmax(axis=-1)[..., None]) * g[..., None]
    return routed.reshape(*lead, h // k, w // k, k, k).swapaxes(-3, -2).reshape(x.shape)


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
