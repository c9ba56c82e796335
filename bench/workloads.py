"""The workloads, each defined once as data: expression, variable, sizes, inputs, careful numpy, naive numpy and the
loss the peers (jax, autograd) differentiate.

A workload's arguments are named by ``args``, in the order of the expression's variables; ``inputs(dims, rng)``
returns them as a dict, and every variant is called with them in that order. ``loss(ops, *args)`` is the expression
written once for any numpy-like module (``ops.np`` is jax.numpy, autograd.numpy or numpy) with ``ops.conv2d``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from bench import careful

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Ops:
    """What a loss needs from a framework: its numpy and a valid cross-correlation conv2d(X (C,H,W), K (F,C,kh,kw))."""

    np: Any
    conv2d: Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Size:
    """One size of a workload: a label for the tables and the dimensions its functions read."""

    label: str
    dims: Mapping[str, int]
    big: bool = False  # left out of --quick
    small: bool = False  # the per-call overhead target (µs over the careful one-liner) applies
    skip: Mapping[str, str] = field(default_factory=dict)  # variant name -> why it is not run at this size


@dataclass(frozen=True)
class Workload:
    """One derivative to benchmark."""

    key: str
    title: str
    expr: str
    wrt: str | tuple[str, str]
    args: tuple[str, ...]
    sizes: tuple[Size, ...]
    smoke: Size
    inputs: Callable[[Mapping[str, int], np.random.Generator], Arrays]
    careful: Callable[..., np.ndarray]
    loss: Callable[..., Any]
    shapes: Callable[[Mapping[str, int]], dict[str, tuple[int, ...]]] | None = None  # None: derive's own symbols
    proof: Mapping[str, int] | None = None  # the small dims derive proves at, when ``shapes`` is declared
    naive: Callable[..., np.ndarray] | None = None
    naive_label: str = ""
    jacobian: bool = False  # the expression is not a scalar
    notes: tuple[str, ...] = field(default=())

    @property
    def kind(self) -> str:
        """grad, hess or jac: the generated function's prefix and the peers' transform."""
        if not isinstance(self.wrt, str):
            return "hess"
        return "jac" if self.jacobian else "grad"

    @property
    def argnum(self) -> int:
        return self.args.index(self.wrt if isinstance(self.wrt, str) else self.wrt[0])


# ----- inputs -----


def _normal(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return rng.standard_normal(shape) * scale


def lsq_inputs(d: Mapping[str, int], rng: np.random.Generator) -> Arrays:
    n = d["n"]
    return {"A": _normal(rng, n, n), "x": _normal(rng, n), "b": _normal(rng, n)}


def logistic_inputs(d: Mapping[str, int], rng: np.random.Generator) -> Arrays:
    m, n = d["m"], d["n"]
    X = _normal(rng, m, n)
    w = _normal(rng, n, scale=1 / math.sqrt(n))
    return {"y": np.where(rng.random(m) < 0.5, -1.0, 1.0), "X": X, "w": w}


def conv_inputs(d: Mapping[str, int], rng: np.random.Generator) -> Arrays:
    C, H, F, k = d["C"], d["H"], d["F"], d["k"]
    return {
        "X": _normal(rng, C, H, H),
        "K": _normal(rng, F, C, k, k, scale=1 / math.sqrt(C * k * k)),
        "Y": _normal(rng, F, H - k + 1, H - k + 1),
    }


def cnn_inputs(d: Mapping[str, int], rng: np.random.Generator) -> Arrays:
    C, H, F, k, classes = d["C"], d["H"], d["F"], d["k"], d["classes"]
    pooled = F * ((H - k + 1) // 2) ** 2
    y = np.zeros(classes)
    y[rng.integers(classes)] = 1.0
    return {
        "y": y,
        "W": _normal(rng, classes, pooled, scale=1 / math.sqrt(pooled)),
        "X": _normal(rng, C, H, H),
        "K": _normal(rng, F, C, k, k, scale=1 / math.sqrt(C * k * k)),
    }


def mlp_inputs(d: Mapping[str, int], rng: np.random.Generator) -> Arrays:
    out, hidden, inp = d["out"], d["hidden"], d["inp"]
    return {
        "W2": _normal(rng, out, hidden, scale=1 / math.sqrt(hidden)),
        "W1": _normal(rng, hidden, inp, scale=1 / math.sqrt(inp)),
        "x": _normal(rng, inp),
        "b1": _normal(rng, hidden),
        "b2": _normal(rng, out),
        "y": _normal(rng, out),
    }


def xent_inputs(d: Mapping[str, int], rng: np.random.Generator) -> Arrays:
    m, n = d["m"], d["n"]
    y = np.zeros(m)
    y[rng.integers(m)] = 1.0
    return {"y": y, "W": _normal(rng, m, n, scale=1 / math.sqrt(n)), "x": _normal(rng, n)}


def logdet_inputs(d: Mapping[str, int], rng: np.random.Generator) -> Arrays:
    n = d["n"]
    A = _normal(rng, n, n)
    return {"X": A @ A.T / n + np.eye(n)}  # symmetric positive definite, well conditioned


def sigmoid_inputs(d: Mapping[str, int], rng: np.random.Generator) -> Arrays:
    m = d["m"]
    return {"W": _normal(rng, m, m, scale=1 / math.sqrt(m)), "x": _normal(rng, m), "b": _normal(rng, m)}


# ----- declared shapes (for derive, where the expression needs them) -----


def conv_shapes(d: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    C, H, F, k = d["C"], d["H"], d["F"], d["k"]
    return {"X": (C, H, H), "K": (F, C, k, k), "Y": (F, H - k + 1, H - k + 1)}


def cnn_shapes(d: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    C, H, F, k, classes = d["C"], d["H"], d["F"], d["k"], d["classes"]
    return {"X": (C, H, H), "K": (F, C, k, k), "W": (classes, F * ((H - k + 1) // 2) ** 2), "y": (classes,)}


# ----- the losses, written once for jax, autograd and numpy -----


def lsq_loss(o: Ops, A: Any, x: Any, b: Any) -> Any:
    r = A @ x - b
    return o.np.sum(r * r)


def logistic_loss(o: Ops, y: Any, X: Any, w: Any) -> Any:
    return o.np.sum(o.np.logaddexp(0.0, -(y * (X @ w))))


def conv_loss(o: Ops, X: Any, K: Any, Y: Any) -> Any:
    return o.np.sum((o.conv2d(X, K) - Y) ** 2)


def _log_softmax(o: Ops, u: Any) -> Any:
    m = o.np.max(u)
    return u - m - o.np.log(o.np.sum(o.np.exp(u - m)))


def cnn_loss(o: Ops, y: Any, W: Any, X: Any, K: Any) -> Any:
    Z = o.np.maximum(o.conv2d(X, K), 0.0)
    F, H, Wd = Z.shape
    pooled = o.np.max(Z.reshape(F, H // 2, 2, Wd // 2, 2), axis=(2, 4))
    return -(y @ _log_softmax(o, W @ pooled.reshape(-1)))


def mlp_loss(o: Ops, W2: Any, W1: Any, x: Any, b1: Any, b2: Any, y: Any) -> Any:
    r = W2 @ o.np.tanh(W1 @ x + b1) + b2 - y
    return o.np.sum(r * r)


def xent_loss(o: Ops, y: Any, W: Any, x: Any) -> Any:
    return -(y @ _log_softmax(o, W @ x))


def logdet_loss(o: Ops, X: Any) -> Any:
    return o.np.linalg.slogdet(X)[1]


def sigmoid_layer(o: Ops, W: Any, x: Any, b: Any) -> Any:
    return 0.5 * (1.0 + o.np.tanh(0.5 * (W @ x + b)))


# ----- the workloads -----

_REVERSE_PASSES = "skipped: one reverse pass per entry of the variable, a minute or more a call"


def _lsq_sizes(*ns: int, hessian: bool = False) -> tuple[Size, ...]:
    skip = {"autograd": _REVERSE_PASSES} if hessian else {}
    return tuple(Size(f"n={n}", {"n": n}, big=n > 1000, small=n <= 100, skip=skip if n > 1000 else {}) for n in ns)


LOGISTIC_GRAD = Workload(
    key="logistic-grad",
    title="Logistic loss gradient by w",
    expr="sum(softplus(-(y * (X @ w))))",
    wrt="w",
    args=("y", "X", "w"),
    sizes=(Size("X 10000×100", {"m": 10000, "n": 100}),),
    smoke=Size("X 40×5", {"m": 40, "n": 5}),
    inputs=logistic_inputs,
    careful=careful.logistic_grad,
    loss=logistic_loss,
)
LOGISTIC_HESS = replace(
    LOGISTIC_GRAD,
    key="logistic-hess",
    title="Logistic loss Hessian by w",
    wrt=("w", "w"),
    sizes=(
        Size("X 10000×100", {"m": 10000, "n": 100}),
        Size("X 10000×500", {"m": 10000, "n": 500}, big=True, skip={"autograd": _REVERSE_PASSES}),
    ),
    careful=careful.logistic_hess,
    naive=careful.logistic_hess_general,
    naive_label="general product `X.T @ (s[:, None] * X)`",
)
CONV_K = Workload(
    key="conv-K",
    title="Convolution loss gradient by K",
    expr="sum((conv2d(X, K) - Y)**2)",
    wrt="K",
    args=("X", "K", "Y"),
    sizes=(
        Size("X 3×32×32, K 8×3×3×3", {"C": 3, "H": 32, "F": 8, "k": 3}),
        Size("X 16×64×64, K 32×16×3×3", {"C": 16, "H": 64, "F": 32, "k": 3}, big=True),
    ),
    smoke=Size("X 2×6×6, K 3×2×3×3", {"C": 2, "H": 6, "F": 3, "k": 3}),
    inputs=conv_inputs,
    careful=careful.conv_grad_K,
    loss=conv_loss,
    shapes=conv_shapes,
    proof={"C": 2, "H": 4, "F": 2, "k": 3},
)
CONV_X = replace(CONV_K, key="conv-X", title="Convolution loss gradient by X", wrt="X", careful=careful.conv_grad_X)
LSQ_GRAD = Workload(
    key="lsq-grad",
    title="‖Ax − b‖² gradient by x",
    expr="norm(A @ x - b)**2",
    wrt="x",
    args=("A", "x", "b"),
    sizes=_lsq_sizes(10, 30, 100, 1000, 4000),
    smoke=Size("n=8", {"n": 8}, small=True),
    inputs=lsq_inputs,
    careful=careful.lsq_grad,
    loss=lsq_loss,
    naive=careful.lsq_grad_naive,
    naive_label="`2*A.T@(A@x-b)`",
)
LSQ_HESS = replace(
    LSQ_GRAD,
    key="lsq-hess",
    title="‖Ax − b‖² Hessian by x",
    wrt=("x", "x"),
    sizes=_lsq_sizes(1000, 4000, hessian=True),
    smoke=Size("n=8", {"n": 8}),
    careful=careful.lsq_hess,
    naive=careful.lsq_hess_naive,
    naive_label="`2*A.T@A`",
)

WORKLOADS: tuple[Workload, ...] = (
    LOGISTIC_GRAD,
    LOGISTIC_HESS,
    CONV_K,
    CONV_X,
    Workload(
        key="cnn-K",
        title="Tiny CNN loss gradient by K",
        expr="-(y @ log(softmax(W @ flatten(maxpool(relu(conv2d(X, K)), 2)))))",
        wrt="K",
        args=("y", "W", "X", "K"),
        sizes=(
            Size("X 3×28×28, K 8×3×3×3, W 10×1352", {"C": 3, "H": 28, "F": 8, "k": 3, "classes": 10}),
            Size("X 3×56×56, K 16×3×3×3, W 10×11664", {"C": 3, "H": 56, "F": 16, "k": 3, "classes": 10}, big=True),
        ),
        smoke=Size("X 2×6×6, K 3×2×3×3, W 4×12", {"C": 2, "H": 6, "F": 3, "k": 3, "classes": 4}),
        inputs=cnn_inputs,
        careful=careful.cnn_grad_K,
        loss=cnn_loss,
        shapes=cnn_shapes,
        proof={"C": 1, "H": 3, "F": 2, "k": 2, "classes": 2},
    ),
    LSQ_GRAD,
    LSQ_HESS,
    Workload(
        key="mlp-W1",
        title="MLP loss gradient by W1",
        expr="norm(W2 @ tanh(W1 @ x + b1) + b2 - y)**2",
        wrt="W1",
        args=("W2", "W1", "x", "b1", "b2", "y"),
        sizes=(
            Size("W1 512×784", {"out": 10, "hidden": 512, "inp": 784}),
            Size("W1 2048×3072", {"out": 10, "hidden": 2048, "inp": 3072}, big=True),
        ),
        smoke=Size("W1 8×12", {"out": 3, "hidden": 8, "inp": 12}),
        inputs=mlp_inputs,
        careful=careful.mlp_grad_W1,
        loss=mlp_loss,
    ),
    Workload(
        key="xent-W",
        title="Softmax cross-entropy gradient by W",
        expr="-(y @ log(softmax(W @ x)))",
        wrt="W",
        args=("y", "W", "x"),
        sizes=(
            Size("W 1000×784", {"m": 1000, "n": 784}),
            Size("W 10000×784", {"m": 10000, "n": 784}, big=True),
        ),
        smoke=Size("W 6×8", {"m": 6, "n": 8}),
        inputs=xent_inputs,
        careful=careful.softmax_xent_grad,
        loss=xent_loss,
    ),
    Workload(
        key="logdet",
        title="log det gradient by X",
        expr="log(det(X))",
        wrt="X",
        args=("X",),
        sizes=(Size("X 500×500", {"n": 500}), Size("X 1000×1000", {"n": 1000}, big=True)),
        smoke=Size("X 6×6", {"n": 6}),
        inputs=logdet_inputs,
        careful=careful.logdet_grad,
        loss=logdet_loss,
        notes=("X is symmetric positive definite (AAᵀ/n + I), so log det is log|det|.",),
    ),
    Workload(
        key="sigmoid-jac",
        title="Jacobian of σ(Wx + b) by W (result m×m×n)",
        expr="sigmoid(W @ x + b)",
        wrt="W",
        args=("W", "x", "b"),
        sizes=(Size("W 100×100", {"m": 100}), Size("W 300×300", {"m": 300}, big=True)),
        smoke=Size("W 6×6", {"m": 6}),
        inputs=sigmoid_inputs,
        careful=careful.sigmoid_jac,
        loss=sigmoid_layer,
        naive=careful.sigmoid_jac_naive,
        naive_label="`kron(xᵀ, diag(σ′))` reshaped",
        jacobian=True,
        notes=("Every variant returns the dense m×m×n array (jax.jacobian's layout); at m = 300 that is 216 MB.",),
    ),
)

BY_KEY = {w.key: w for w in WORKLOADS}
