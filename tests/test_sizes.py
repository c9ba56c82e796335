"""Sizes: forms hold at every size, proofs run at small ones, and the slow cases of the past stay fast.

Generated code holds no sizes: each module is derived at one size and run at another, against numpy's
own evaluation of the same expression (an independent computation) and central differences of it.
"""

from __future__ import annotations

import re
import resource
import time

import numpy as np
import pytest

from derive import derive
from derive.article import CNN
from derive.gradcheck import check_grad
from derive.numeric import load
from derive.ops import OPS

from .reference import NUMPY

# (expression, variable, the sizes it is derived at, the sizes its code runs at): every op with syntax
CASES = [
    ("norm(A @ x - b)**2", "x", {"A": (13, 11)}, {"A": (7, 5)}),
    ("sum(sigmoid(W @ x + b) * y)", "W", {"W": (11, 13)}, {"W": (5, 4)}),
    ("trace(inv(X) @ A)", "X", {"X": (11, 11)}, {"X": (5, 5)}),
    ("log(det(X))", "X", {"X": (11, 11)}, {"X": (4, 4)}),
    ("det(X)", "X", {"X": (11, 11)}, {"X": (4, 4)}),
    ("sum(diag(X) * x)", "X", {"X": (11, 11)}, {"X": (4, 4)}),
    ("outer(x, y) @ z", "x", {"x": (11,), "y": (13,)}, {"x": (5,), "y": (4,)}),
    ("sum(kron(A, B) * C)", "C", {"A": (11, 13), "B": (7, 17)}, {"A": (3, 2), "B": (2, 2)}),
    ("sum(softmax(X, axis=1) * Y)", "X", {"X": (11, 13)}, {"X": (6, 4)}),
    ("sum(logsumexp(X, axis=0))", "X", {"X": (11, 13)}, {"X": (5, 4)}),
    ("sum(log_softmax(X, axis=1) * Y)", "X", {"X": (11, 13)}, {"X": (5, 4)}),
    ("mean((X @ w - y)**2)", "w", {"X": (13, 11)}, {"X": (9, 4)}),
    ("sum((X @ W + b)**2)", "b", {"X": (13, 11), "W": (11, 17)}, {"X": (6, 3), "W": (3, 5)}),
    ("sum(np.maximum(0, 1 - y * (X @ w)) + np.minimum(X @ w, 1))", "w", {"X": (13, 11)}, {"X": (8, 5)}),
    (
        "sum(np.abs(x) + np.log1p(x**2) + np.expm1(x) + sqrt(x**2 + 1) + sin(x) * cos(x))",
        "x",
        {"x": (11,)},
        {"x": (6,)},
    ),
    ("sum(relu(x) + softplus(x) + tanh(x))", "x", {"x": (11,)}, {"x": (7,)}),
    ("sum(conv2d(X, K) * G)", "K", {"X": (17, 13), "K": (7, 5)}, {"X": (7, 6), "K": (3, 2)}),
    ("sum(conv2d(X, K) * G)", "X", {"X": (17, 13), "K": (7, 5)}, {"X": (7, 6), "K": (3, 2)}),
    ("sum(maxpool(X, 2) * G)", "X", {"X": (14, 22)}, {"X": (6, 8)}),
    (CNN, "K", {"X": (1, 14, 12), "K": (5, 1, 5, 7), "y": (11,)}, {"X": (2, 7, 6), "K": (3, 2, 2, 3), "y": (4,)}),
    (CNN, "W", {"X": (1, 14, 12), "K": (5, 1, 5, 7), "y": (11,)}, {"X": (2, 7, 6), "K": (3, 2, 2, 3), "y": (4,)}),
    ("w @ flatten(X)", "X", {"X": (11, 13)}, {"X": (4, 5)}),
    ("x @ x.T", "x", None, {"x": (6,)}),
]


def _shapes(d, run: dict) -> dict:
    """Every variable's shape at the run sizes: from ``run``, else solved from the expression."""
    import sympy as sp

    sizes = {}
    for name, shape in run.items():
        for dim, n in zip(d.shapes[name], shape, strict=True):
            for s in sp.S(dim).free_symbols:
                if sp.S(dim) == s:
                    sizes[s] = n
    return {n: tuple(int(sp.S(x).xreplace(sizes)) for x in s) for n, s in d.shapes.items()}


@pytest.mark.parametrize(("expr", "wrt", "at", "run"), CASES, ids=[f"d({c[0][:40]})/d{c[1]}" for c in CASES])
def test_code_derived_at_one_size_runs_at_another(expr: str, wrt: str, at: dict | None, run: dict) -> None:
    d = derive(expr, wrt, at)
    assert d.proof.status == "proven"
    source = d.numpy_source("f")
    mod = load(source)
    shapes = _shapes(d, run)
    rng = np.random.default_rng(4)
    values = {n: rng.standard_normal(s) + (3 * np.eye(s[0]) if len(s) == 2 and s[0] == s[1] else 0)
              for n, s in shapes.items()}  # fmt: skip
    args = [values[n] for n in d.shapes]
    expected = eval(expr, dict(NUMPY), dict(values))  # the test's own strings, not user text
    np.testing.assert_allclose(mod.f(*args), expected, rtol=1e-9, atol=1e-11)
    numpy_f = lambda *a: eval(expr, dict(NUMPY), dict(zip(d.shapes, a, strict=True)))  # noqa: E731
    assert check_grad(numpy_f, getattr(mod, f"{d.kind.code}_f"), args, wrt=list(d.shapes).index(wrt)) < 1e-6
    declared = {str(v) for shape in (at or {}).values() for v in shape if v > 1}  # all 5 or more: not 2 * ...
    assert not any(re.search(rf"\b{n}\b", line) for line in _code_lines(source) for n in declared), \
        "a declared size is written into the code"  # fmt: skip


def _code_lines(source: str) -> list[str]:
    """The generated statements, without docstrings and comments."""
    import ast

    tree = ast.parse(source)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.Return):
            out.append(ast.unparse(node))
    return out


def test_every_op_with_syntax_is_in_the_size_cases() -> None:
    written = " ".join(e for e, *_ in CASES)
    for name, op in OPS.items():
        if not op.syntax or name in ("stack", "entry"):
            continue
        spellings = [c.name for c in op.syntax]
        assert any(re.search(rf"\b{s}\b", written) for s in spellings) or name in ("fn", "T", "matmul", "pow"), name


# ----- the slow cases of the past: each now finishes within a CPU-time budget -----

SLOW = [
    ("a @ inv(X) @ b", "X", {"X": (3, 3)}),
    ("inv(X)", "X", {"X": (3, 3)}),
    ("trace(inv(X) @ A)", "X", {"X": (3, 3)}),
    ("inv(X) @ b", "X", {"X": (3, 3)}),
    ("(A @ x - b) / norm(A @ x - b)", "x", {"A": (4, 3)}),
    ("-(y @ log(softmax(W @ x)))", "W", None),
    (CNN, "K", {"X": (1, 3, 3), "K": (2, 1, 2, 2), "y": (2,)}),
    (CNN, "W", {"X": (2, 5, 5), "K": (3, 2, 2, 2), "W": (4, 12)}),
    ("sum(softplus(-(y * (X @ w))))", "w", {"X": (10000, 100)}),
    ("norm(X @ w - y)**2", "w", {"X": (10000, 1000)}),
]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@pytest.mark.parametrize(("expr", "wrt", "shapes"), SLOW, ids=[f"d({c[0][:40]})/d{c[1]}" for c in SLOW])
def test_once_slow_now_fast(expr: str, wrt: str, shapes: dict | None) -> None:
    # CPU time of this process (BLAS threads included), with room for a busy machine: 12 s each;
    # these took from 4.8 s to over 15 minutes before proofs moved to small sizes
    start = _cpu()
    d = derive(expr, wrt, shapes)
    spent = _cpu() - start
    assert d.proof.status == "proven" and d.numeric.ok
    assert spent < 12, f"{spent:.1f} s of CPU"


def test_declared_real_sizes_work_and_the_proof_states_both_sizes() -> None:
    d = derive("sum(softplus(-(y * (X @ w))))", "w", {"X": (10000, 100)})
    assert d.proof.shapes["X"][0] < 10 and d.numeric.shapes["X"] == (10000, 100) and d.numeric.declared
    text = str(d)
    assert "proof: proven" in text and "X 10000×100" in text


def test_proof_sizes_can_be_chosen_and_are_honoured() -> None:
    d = derive("norm(A @ x - b)**2", "x", proof_sizes={"m": 5, "n": 3})
    assert d.proof.shapes == {"A": (5, 3), "x": (3,), "b": (5,)}
    with pytest.raises(Exception, match="not a dimension"):
        derive("norm(A @ x - b)**2", "x", proof_sizes={"z": 5})


def test_the_time_budget_ends_a_proof_with_its_form() -> None:
    # a 6x6 determinant's exact proof takes longer than a tiny budget; the form still comes back
    t = time.process_time()
    d = derive("log(det(X))", "X", proof_sizes={"m": 6}, max_seconds=0.05)
    assert time.process_time() - t < 30
    assert d.text == "X⁻ᵀ"
    assert d.proof.status in ("not finished", "proven")
    if d.proof.status == "proven":
        assert not d.proof.exact and "did not finish" in d.proof.method
