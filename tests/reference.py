"""Plain numpy meanings of derive's functions, written from their definitions: the tests' independent side.

``NUMPY`` is a namespace in which the tests evaluate their own expression strings with numpy, to
compare generated code with numpy's own evaluation of the same text.
"""

from types import MappingProxyType

import numpy as np


def softmax(z, axis=None):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def logsumexp(z, axis=None, keepdims=False):
    m = np.max(z, axis=axis, keepdims=True)
    out = m + np.log(np.sum(np.exp(z - m), axis=axis, keepdims=True))
    return out if keepdims else out.reshape(()) if axis is None else np.squeeze(out, axis=axis)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def conv2d(X, K):
    """Valid cross-correlation by loops: the definition."""
    X3, K4 = (X[None], K[None, None]) if X.ndim == 2 else (X, K)
    F, _C, kh, kw = K4.shape
    out = np.zeros((F, X3.shape[1] - kh + 1, X3.shape[2] - kw + 1))
    for f in range(F):
        for i in range(out.shape[1]):
            for j in range(out.shape[2]):
                out[f, i, j] = np.sum(X3[:, i : i + kh, j : j + kw] * K4[f])
    return out[0] if X.ndim == 2 else out


def maxpool(X, k):
    *lead, h, w = X.shape
    return X.reshape(*lead, h // k, k, w // k, k).max(axis=(-3, -1))


NUMPY = MappingProxyType({
    "np": np, "sum": np.sum, "mean": np.mean, "norm": np.linalg.norm, "log": np.log, "exp": np.exp,
    "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tanh": np.tanh, "abs": np.abs, "trace": np.trace,
    "det": np.linalg.det, "inv": np.linalg.inv, "diag": np.diag, "outer": np.outer, "kron": np.kron,
    "softmax": softmax, "logsumexp": logsumexp, "log_softmax": lambda z, axis=None: np.log(softmax(z, axis)),
    "sigmoid": sigmoid, "relu": lambda z: np.maximum(z, 0), "softplus": lambda z: np.logaddexp(0, z),
    "conv2d": conv2d, "maxpool": maxpool, "flatten": lambda a: a.ravel(), "log1p": np.log1p, "expm1": np.expm1,
    "sign": np.sign,
})  # fmt: skip
