"""Careful hand-written numpy: the best a careful person writes for each workload's derivative, and the naive
versions where a textbook form is slower.

Careful means: shared subexpressions computed once, constants applied to the smallest array, the im2col matrix
built once and used for both the forward pass and the gradient, the max-pool argmax reused, ``S.T @ S`` (a
symmetric rank-k product) for a Gram matrix, and the stable sigmoid ``(1 + tanh(z/2)) / 2``.
Arguments come in each workload's order (``bench.workloads``); every function returns the derivative in
jax.jacobian's layout (value shape + variable shape).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# ----- least squares ||Ax - b||^2 -----


def lsq_grad(A: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2 Aᵀ(Ax − b): the factor 2 on the n-vector, never on A."""
    return 2 * (A.T @ (A @ x - b))


def lsq_grad_naive(A: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``2*A.T@(A@x-b)``: Python's precedence makes the copy 2Aᵀ first."""
    return 2 * A.T @ (A @ x - b)


def lsq_hess(A: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2 AᵀA: ``A.T @ A`` shares a buffer, so numpy uses the symmetric rank-k product (half the flops)."""
    return 2 * (A.T @ A)


def lsq_hess_naive(A: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``2*A.T@A``: the copy 2Aᵀ times A, a general product."""
    return 2 * A.T @ A


# ----- logistic loss sum(softplus(-(y * (X @ w)))) -----


def _tanh_half_margin(y: np.ndarray, X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """tanh(m/2) with the margins m = y ∘ (Xw); σ(−m) = (1 − tanh(m/2))/2, finite at any |m|."""
    t = X @ w
    t *= y
    t *= 0.5
    return np.tanh(t, out=t)


def logistic_grad(y: np.ndarray, X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """−Xᵀ(y ∘ σ(−m)) = Xᵀ(y ∘ (tanh(m/2) − 1)/2): two matrix-vector products, one tanh pass."""
    t = _tanh_half_margin(y, X, w)
    t -= 1
    t *= 0.5
    t *= y
    return X.T @ t


def logistic_hess(y: np.ndarray, X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Xᵀ diag(s) X = SᵀS with s = y² σ′(m) ≥ 0 and S = √s ∘ X: one scaled copy of X, a symmetric product."""
    t = _tanh_half_margin(y, X, w)
    np.square(t, out=t)  # σ′(m) = (1 − tanh²(m/2))/4, so √s = |y| √(1 − t²) / 2
    np.subtract(1, t, out=t)
    np.sqrt(t, out=t)
    t *= 0.5 * np.abs(y)
    S = X * t[:, None]
    return S.T @ S


def logistic_hess_general(y: np.ndarray, X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Xᵀ (s ∘ X): the same weights, a general product instead of the symmetric one."""
    t = _tanh_half_margin(y, X, w)
    s = 0.25 * (1 - t * t) * (y * y)
    return X.T @ (s[:, None] * X)


# ----- convolution sum((conv2d(X, K) - Y)**2) -----


def im2col(X: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """X (C, H, W) as the (C·kh·kw, H'·W') matrix of its windows, rows in K's (c, i, j) order: one copy."""
    C = X.shape[0]
    return sliding_window_view(X, (kh, kw), axis=(1, 2)).transpose(0, 3, 4, 1, 2).reshape(C * kh * kw, -1)


def col2im(D: np.ndarray, shape: tuple[int, ...], kh: int, kw: int) -> np.ndarray:
    """The adjoint of im2col: each window's (C·kh·kw, H'·W') column added back into an array of ``shape``."""
    C, H, W = shape
    Ho, Wo = H - kh + 1, W - kw + 1
    D = D.reshape(C, kh, kw, Ho, Wo)
    out = np.zeros(shape)
    for i in range(kh):
        for j in range(kw):
            out[:, i : i + Ho, j : j + Wo] += D[:, i, j]
    return out


def _conv_residual(X: np.ndarray, K: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cols, R): the im2col matrix and the residual conv2d(X, K) − Y as an (F, H'·W') matrix, one GEMM."""
    F, _, kh, kw = K.shape
    cols = im2col(X, kh, kw)
    R = K.reshape(F, -1) @ cols
    R -= Y.reshape(F, -1)
    return cols, R


def conv_grad_K(X: np.ndarray, K: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """2 R colsᵀ: the window matrix built once, used by the forward GEMM and the gradient GEMM."""
    cols, R = _conv_residual(X, K, Y)
    G = R @ cols.T
    G *= 2
    return G.reshape(K.shape)


def conv_grad_X(X: np.ndarray, K: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """col2im(2 Kᵀ R): one GEMM for the window gradients, written into the window matrix's buffer (a fresh
    array that size costs page faults), then kh·kw strided adds."""
    F, _, kh, kw = K.shape
    cols, R = _conv_residual(X, K, Y)
    G = col2im(np.matmul(K.reshape(F, -1).T, R, out=cols), X.shape, kh, kw)
    G *= 2
    return G


# ----- tiny CNN -(y @ log(softmax(W @ flatten(maxpool(relu(conv2d(X, K)), 2))))) -----


def _pool_windows(Z: np.ndarray, k: int) -> np.ndarray:
    """Z (F, H, W) as (F, H/k, W/k, k·k): each pooling window's entries in row-major order, one copy."""
    F, H, W = Z.shape
    return Z.reshape(F, H // k, k, W // k, k).transpose(0, 1, 3, 2, 4).reshape(F, H // k, W // k, k * k)


def cnn_grad_K(y: np.ndarray, W: np.ndarray, X: np.ndarray, K: np.ndarray) -> np.ndarray:
    """One im2col for the forward pass and the gradient; the pool's argmax taken once and reused to route.

    relu and max commute, so the pool takes the argmax of the convolution itself; a window whose maximum
    is ≤ 0 gets no gradient (relu′ = 0 there), as derive's step with 0 at 0.
    """
    F, _, kh, kw = K.shape
    Ho, Wo = X.shape[1] - kh + 1, X.shape[2] - kw + 1
    cols = im2col(X, kh, kw)
    windows = _pool_windows((K.reshape(F, -1) @ cols).reshape(F, Ho, Wo), 2)
    at = windows.argmax(axis=-1)[..., None]
    top = np.take_along_axis(windows, at, axis=-1)[..., 0]
    u = W @ np.maximum(top, 0).ravel()
    e = np.exp(u - u.max())
    g = (W.T @ (e * (y.sum() / e.sum()) - y)).reshape(top.shape)
    g *= top > 0
    routed = np.zeros_like(windows)
    np.put_along_axis(routed, at, g[..., None], axis=-1)
    dZ = routed.reshape(F, Ho // 2, Wo // 2, 2, 2).transpose(0, 1, 3, 2, 4).reshape(F, -1)
    return (dZ @ cols.T).reshape(K.shape)


# ----- MLP, softmax cross-entropy, log det, sigmoid layer -----


def mlp_grad_W1(
    W2: np.ndarray, W1: np.ndarray, x: np.ndarray, b1: np.ndarray, b2: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """outer((2 W2ᵀ r) ∘ (1 − h²), x) with h = tanh(W1 x + b1) computed once and the 2 on a vector."""
    h = np.tanh(W1 @ x + b1)
    r = W2 @ h + b2 - y
    return np.outer((2 * (W2.T @ r)) * (1 - h * h), x)


def softmax_xent_grad(y: np.ndarray, W: np.ndarray, x: np.ndarray) -> np.ndarray:
    """outer((Σy) softmax(Wx) − y, x), softmax shifted by its maximum."""
    u = W @ x
    e = np.exp(u - u.max())
    return np.outer(e * (y.sum() / e.sum()) - y, x)


def logdet_grad(X: np.ndarray) -> np.ndarray:
    """X⁻ᵀ: one LU-based inverse, transposed as a view."""
    return np.linalg.inv(X).T


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow


def sigmoid_jac(W: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """J[i, i, :] = σ′(Wx + b)_i x, every other entry 0: shape (m, m, n), only the m nonzero rows written."""
    s = _sigmoid(W @ x + b)
    m, n = W.shape
    J = np.zeros((m, m, n))
    i = np.arange(m)
    J[i, i] = np.outer(s * (1 - s), x)
    return J


def sigmoid_jac_naive(W: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The article's xᵀ ⊗ diag(σ′) as a dense Kronecker product, reshaped (column-major vec) to (m, m, n)."""
    s = _sigmoid(W @ x + b)
    m, n = W.shape
    return np.kron(x[None, :], np.diag(s * (1 - s))).reshape(m, m, n, order="F")
