"""numpy as people write it: batch losses with broadcasting, reductions along an axis, and ML functions.

Each idiom is derived, proven, checked numerically, and its generated code is compared with numpy's
own evaluation of the same string (the value), and its derivative with central differences of that
evaluation (an independent computation). Rows: X is a batch (one sample per row), b a bias broadcast
over the rows. Where a person would write the gradient, the comment gives it and the test checks the
generated gradient against that formula too.
"""

from __future__ import annotations

import numpy as np
import pytest

from derive import check_grad, derive
from derive.numeric import load

from .reference import NUMPY, sigmoid, softmax

N, D, K = 5, 3, 4  # samples, features, classes


_softmax, _sig = softmax, sigmoid


SHAPES = {"X": (N, D), "w": (D,), "y": (N,), "W": (D, K), "b": (K,), "Y": (N, K), "W1": (D, K), "b1": (K,),
          "W2": (K, 2), "b2": (2,), "Y2": (N, 2), "w2": (K,), "v": (D,), "u": (N,), "x": (D,)}  # fmt: skip


# (expression, variable, the gradient a person writes (of the inputs), or None)
IDIOMS = [
    # batch MSE: d mean((Xw - y)^2)/dw = (2/n) X^T (Xw - y)
    ("mean((X @ w - y)**2)", "w", lambda X, w, y: 2 / N * X.T @ (X @ w - y)),
    ("np.mean((X @ w - y) ** 2)", "w", lambda X, w, y: 2 / N * X.T @ (X @ w - y)),
    ("((X @ w - y)**2).mean()", "w", lambda X, w, y: 2 / N * X.T @ (X @ w - y)),
    ("np.square(X @ w - y).sum()", "w", lambda X, w, y: 2 * X.T @ (X @ w - y)),
    # ridge: d(||Xw - y||^2 + lam ||w||^2)/dw = 2 X^T (Xw - y) + 2 lam w (lam an undeclared scalar)
    ("norm(X @ w - y)**2 + lam * norm(w)**2", "w", lambda X, w, y, lam: 2 * X.T @ (X @ w - y) + 2 * lam * w),
    ("sum((X @ w - y)**2) + reg * sum(w**2)", "w", lambda X, w, y, reg: 2 * X.T @ (X @ w - y) + 2 * reg * w),
    # logistic loss: d sum(log(1 + exp(-y * Xw)))/dw = -X^T (y * sigma(-y * Xw))
    ("np.sum(np.log1p(np.exp(-y * (X @ w))))", "w", lambda X, w, y: -X.T @ (y * _sig(-y * (X @ w)))),
    ("sum(softplus(-y * (X @ w)))", "w", lambda X, w, y: -X.T @ (y * _sig(-y * (X @ w)))),
    ("mean(np.logaddexp(0, -y * (X @ w)))", "w", lambda X, w, y: -X.T @ (y * _sig(-y * (X @ w))) / N),
    ("sum(sigmoid(X @ w) - y)", "w", lambda X, w, y: X.T @ (_sig(X @ w) * (1 - _sig(X @ w)))),
    # softmax cross-entropy over a batch: dL/dW = X^T (diag(Y 1) softmax_row(XW) - Y)
    ("-sum(Y * log(softmax(X @ W, axis=1)))", "W", lambda X, W, Y: X.T @ (Y.sum(1)[:, None] * _softmax(X @ W, 1) - Y)),
    (
        "-np.sum(Y * log_softmax(X @ W, axis=1))",
        "W",
        lambda X, W, Y: X.T @ (Y.sum(1)[:, None] * _softmax(X @ W, 1) - Y),
    ),
    ("sum(logsumexp(X @ W, axis=1)) - sum(Y * (X @ W))", "W", lambda X, W, Y: X.T @ (_softmax(X @ W, 1) - Y)),
    # with a bias broadcast over the rows: dL/db = column sums of the same residual, over n
    (
        "-mean(sum(Y * log(softmax(X @ W + b, axis=1)), axis=1))",
        "b",
        lambda X, W, b, Y: (Y.sum(1)[:, None] * _softmax(X @ W + b, 1) - Y).sum(0) / N,
    ),
    # a batch MLP with broadcast biases, by each weight and bias
    ("sum((tanh(X @ W1 + b1) @ W2 + b2 - Y2)**2)", "W1", None),
    ("sum((tanh(X @ W1 + b1) @ W2 + b2 - Y2)**2)", "b1", None),
    (
        "sum((tanh(X @ W1 + b1) @ W2 + b2 - Y2)**2)",
        "W2",
        lambda X, W1, b1, W2, b2, Y2: 2 * np.tanh(X @ W1 + b1).T @ (np.tanh(X @ W1 + b1) @ W2 + b2 - Y2),
    ),
    # d sum((H W2 + b2 - Y)^2)/db2 = 2 (H W2 + b2 - Y)^T 1, the column sums
    (
        "sum((tanh(X @ W1 + b1) @ W2 + b2 - Y2)**2)",
        "b2",
        lambda X, W1, b1, W2, b2, Y2: 2 * (np.tanh(X @ W1 + b1) @ W2 + b2 - Y2).sum(0),
    ),
    ("sum(relu(X @ W1 + b1) @ w2)", "W1", None),
    # L1: d sum(|Xw - y|)/dw = X^T sign(Xw - y)
    ("sum(np.abs(X @ w - y))", "w", lambda X, w, y: X.T @ np.sign(X @ w - y)),
    ("np.abs(w).sum()", "w", lambda w: np.sign(w)),
    # hinge: d sum(max(0, 1 - y * Xw))/dw = -X^T (y * [1 - y * Xw > 0])
    ("sum(np.maximum(0, 1 - y * (X @ w)))", "w", lambda X, w, y: -X.T @ (y * (1 - y * (X @ w) > 0))),
    (
        "mean(np.maximum(0, 1 - y * (X @ w))) + lam * (w @ w)",
        "w",
        lambda X, w, y, lam: -X.T @ (y * (1 - y * (X @ w) > 0)) / N + 2 * lam * w,
    ),
    # centring by the column means
    ("sum((X - X.mean(axis=0))**2)", "X", lambda X: 2 * (X - X.mean(0))),
    ("sum((X - mean(X, axis=0)) @ v)", "X", lambda X, v: np.zeros_like(X)),
    # row normalisation
    ("sum((X / X.sum(axis=1, keepdims=True)) * Z)", "X", None),
    ("sum((X.T / X.sum(axis=1)).T * Z)", "X", None),
    # scaling to unit norm
    ("sum((X / norm(X)) * Z)", "X", None),
    # np.dot and friends
    ("np.dot(x, x)", "x", lambda x: 2 * x),
    ("np.dot(X, x) @ u", "x", lambda X, x, u: X.T @ u),
    ("sum(np.expm1(x))", "x", lambda x: np.exp(x)),
    ("sum(np.minimum(x, 1))", "x", lambda x: (x < 1).astype(float)),
    ("sum(np.maximum(x, v))", "x", lambda x, v: (x > v).astype(float)),
    # reductions along an axis, then a product
    ("sum((X @ W + b)**2, axis=0) @ w2", "b", lambda X, W, b, w2: 2 * w2 * (X @ W + b).sum(0)),
    ("sum(X * (X @ A), axis=1) @ u", "A", lambda X, A, u: X.T @ (u[:, None] * X)),
    ("mean(X, axis=1) @ u", "X", lambda X, u: np.outer(u, np.ones(D)) / D),
    ("logsumexp(X @ w)", "w", lambda X, w: X.T @ _softmax(X @ w)),
]

EXTRA = {"Z": (N, D), "A": (D, D), "lam": (), "reg": ()}


def _inputs(d, rng):
    """Standard normal inputs; positive where rows are normalised (row sums away from zero)."""
    positive = "X.sum" in d.expr
    out = {}
    for n in d.shapes:
        shape = (SHAPES | EXTRA)[n]
        out[n] = rng.uniform(1.0, 2.0, shape) if positive and n == "X" else rng.standard_normal(shape)
    return [out[n] for n in d.shapes], out


@pytest.mark.parametrize(("expr", "wrt", "formula"), IDIOMS, ids=[f"d({e})/d{w}" for e, w, _ in IDIOMS])
def test_idiom(expr: str, wrt: str, formula) -> None:
    d = derive(expr, wrt, {n: s for n, s in (SHAPES | EXTRA).items() if _mentions(expr, n)})
    assert d.proof.status == "proven", d.proof
    assert d.numeric.ok, d.numeric
    mod = load(d.numpy_source("f"))
    rng = np.random.default_rng(1)
    args, named = _inputs(d, rng)
    # the generated value is numpy's own evaluation of the same string
    expected = eval(expr, dict(NUMPY), named)  # the test's own strings, not user text
    np.testing.assert_allclose(mod.f(*args), expected, rtol=1e-10, atol=1e-12)
    # the generated gradient against central differences of numpy's evaluation (independent of derive)
    numpy_f = lambda *a: eval(expr, dict(NUMPY), dict(zip(d.shapes, a, strict=True)))  # noqa: E731
    assert check_grad(numpy_f, mod.grad_f, args, wrt=list(d.shapes).index(wrt)) < 1e-6
    if formula is not None:
        want = formula(*[named[n] for n in formula.__code__.co_varnames[: formula.__code__.co_argcount]])
        np.testing.assert_allclose(mod.grad_f(*args), want, rtol=1e-9, atol=1e-10)


def _mentions(expr: str, name: str) -> bool:
    import re

    return re.search(rf"(?<![\w.]){name}(?!\w)", expr) is not None


def test_there_are_at_least_thirty_idioms() -> None:
    assert len(IDIOMS) >= 30


@pytest.mark.parametrize(
    ("expr", "wrt", "text"),
    [
        ("mean((X @ w - y)**2)", "w", "(2/m) Xᵀ(X w - y)"),  # the 1/n of a mean, in front
        ("X @ W + b", "b", None),  # a bias broadcast over rows is 1 b^T; its Jacobian exists
        ("sum(logsumexp(X @ W, axis=1)) - sum(Y * (X @ W))", "W", "Xᵀ(softmax_row(X W) - Y)"),
        ("sum((tanh(X @ W1 + b1) @ W2 + b2 - Y2)**2)", "b2", "2(tanh(X W1 + 𝟏 b1ᵀ) W2 + 𝟏 b2ᵀ - Y2)ᵀ 𝟏"),
    ],
)
def test_forms_read_as_a_person_writes_them(expr: str, wrt: str, text: str | None) -> None:
    d = derive(expr, wrt)
    assert d.proof.status == "proven"
    if text is not None:
        assert d.text == text


def test_undeclared_scalars_are_scalars_when_every_use_meets_a_scalar() -> None:
    d = derive("lam * norm(w)**2 + norm(X @ w - y)**2", "w")
    assert d.shapes["lam"] == ()
    assert d.kind == "gradient" and len(d.shapes["w"]) == 1
    assert d.problem.notes == ()


def test_a_real_choice_is_printed() -> None:
    d = derive("c * x", "x")
    assert d.shapes["c"] != ()  # today's rule: a lower-case name is a vector
    assert any("'c'" in n and "scalar" in n for n in d.problem.notes)
    assert "note:" in str(d).splitlines()[1]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("sum(x, keepdims=True, dtype=1)", "keyword argument 'dtype'"),
        ("sum(X, axis=2)", "axis 2 is out of range"),
        ("sum(x, axis=1)", "axis 1 is out of range"),
        ("sum(X, axis=x)", "axis must be a whole number"),
        ("np.sum(X, out=X)", "keyword argument 'out'"),
        ("softmax(X, axis=-3)", "out of range"),
        ("(2).sum() + sum(x)", "called on a constant"),
        ("np.sum.sum()", "unknown function"),
        ("x.foo()", "unknown method '.foo()'"),
        ("np.logaddexp(x)", "takes 2 arguments"),
        ("sum(x, keepdims=2)", "keepdims must be True or False"),
        ("np.einsum('ij->i', X)", "unknown function 'np.einsum'"),
        ("X[0]", "subscript"),
        ("sum(X, axis=True)", "axis must be a whole number or None, not True"),
        ("sum(X, keepdims=X)", "keepdims must be True or False"),
        ("'a'.sum() + sum(x)", "called on a constant"),
        ("x.sum.mean()", "the attribute '.sum' is not allowed"),
        ("x.mean(axis=(0, 1))", "axis must be a whole number"),
        ("sum(x, axis=0, keepdims=True, axis=0)", "keyword argument repeated"),
    ],
)
def test_new_syntax_is_refused_clearly(text: str, fragment: str) -> None:
    from derive import DeriveError

    with pytest.raises(DeriveError, match=None) as e:
        derive(text, "x" if "x" in text else "X")
    assert fragment in str(e.value) and "\n" not in str(e.value)
