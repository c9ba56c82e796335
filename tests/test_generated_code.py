"""The generated code itself, read as a program: no dead statements, no dense structured matrices that
broadcasting replaces, shared work done once. Every module in output/, every identity's and every numpy
idiom's module (tests/test_identities.py, tests/test_numpy_idioms.py) and issue 15's workloads are parsed
with ``ast`` and checked; the modules come from the rules alone (``numpy_module``), as derive() makes them.
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
from pathlib import Path

import numpy as np
import pytest

from derive import derive
from derive.core import load, numpy_module

ROOT = Path(__file__).resolve().parent.parent

# The dense structured matrices: identity, diagonal (np.diag of a vector; a diagonal taken out of a matrix is
# np.diagonal), Kronecker, commutation, and the convolution and element-wise Jacobians as matrices.
DENSE = frozenset({"np.eye", "np.diag", "np.kron", "_commutation", "_im2col", "_toeplitz", "_kron_diag"})

# Issue 15's workloads (expression, variable, declared shapes): the code the benchmark times.
WORKLOADS = [
    ("sum(softplus(-(y * (X @ w))))", "w", None),
    ("sum(softplus(-(y * (X @ w))))", ("w", "w"), None),
    ("sum((conv2d(X, K) - Y)**2)", "K", {"X": (3, 8, 8), "K": (4, 3, 3, 3), "Y": (4, 6, 6)}),
    ("sum((conv2d(X, K) - Y)**2)", "X", {"X": (3, 8, 8), "K": (4, 3, 3, 3), "Y": (4, 6, 6)}),
    ("-(y @ log(softmax(W @ flatten(maxpool(relu(conv2d(X, K)), 2)))))", "K",
     {"X": (3, 8, 8), "K": (4, 3, 3, 3), "W": (10, 36), "y": (10,)}),
    ("norm(A @ x - b)**2", "x", None),
    ("norm(A @ x - b)**2", ("x", "x"), None),
    ("norm(W2 @ tanh(W1 @ x + b1) + b2 - y)**2", "W1", None),
    ("-(y @ log(softmax(W @ x)))", "W", None),
    ("log(det(X))", "X", None),
    ("sigmoid(W @ x + b)", "W", None),
    ("sum(sigmoid(W @ x + b))", ("x", "x"), None),
    ("logsumexp(A @ x)", ("x", "x"), None),
    ("norm(A @ x)", ("x", "x"), None),
    ("norm(x)", ("x", "x"), None),
]  # fmt: skip


def _table(name: str) -> list[tuple]:
    """(expression, variable, shapes) of each row of a test module's table."""
    mod = importlib.import_module(f".{name}", __package__)  # a sibling in the tests package
    if name == "test_identities":
        return [(e, w, s) for e, w, _claim, s, _text in mod.CASES]
    every = mod.SHAPES | mod.EXTRA
    return [(e, w, {n: s for n, s in every.items() if mod._mentions(e, n)}) for e, w, _ in mod.IDIOMS]


def _corpus() -> list[tuple[str, Path | tuple]]:
    """(label, where) of every module the rules apply to: a file of output/, or the row it is generated from."""
    out: list[tuple[str, Path | tuple]] = [(p.name, p) for p in sorted((ROOT / "output").glob("*.py"))]
    rows = _table("test_identities") + _table("test_numpy_idioms") + WORKLOADS
    out += [(f"d({e})/d{''.join(w)}", (e, w, s)) for e, w, s in rows]
    return out


CORPUS = _corpus()
IDS = [label for label, _ in CORPUS]


@functools.cache
def source(k: int) -> str:
    """The source of CORPUS[k], generated when a test first asks for it (not while the tests are collected)."""
    where = CORPUS[k][1]
    return where.read_text() if isinstance(where, Path) else numpy_module(*where)


# ----- the rules, as functions of a module's source -----


def unused_assignments(source: str) -> list[str]:
    """Assignments whose name is not read after them, in any function: ``"grad_f: t1"``."""
    found = []
    for fn in (n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)):
        loads = [n for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
        for st in (n for n in ast.walk(fn) if isinstance(n, ast.Assign)):
            end = (st.end_lineno, st.end_col_offset)
            stored = (
                t
                for tgt in st.targets
                for t in ast.walk(tgt)
                if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)
            )
            for target in stored:
                if not any(n.id == target.id and (n.lineno, n.col_offset) > end for n in loads):
                    found.append(f"{fn.name}: {target.id}")
    return found


def _name(call: ast.Call) -> str:
    return ast.unparse(call.func)


def dense_misuses(source: str) -> list[str]:
    """Dense structured matrices (``DENSE``) built anywhere but as the derivative itself, in the generated
    functions (helpers, whose names start with ``_``, are those matrices' constructors).

    The rule: such a matrix may be built only in a return statement, as the returned value or a term of it,
    reached from the return through ``+``, ``-``, scaling by a scalar (a number, a scalar argument, or a
    temporary computed as a scalar: a norm, a full sum, a determinant) and the final ``np.reshape`` into
    jax's layout; then the result IS that matrix. Anywhere else (a temporary, an operand of ``@`` or of an
    element-wise product with an array, an argument of another call) broadcasting does its work without it:
    ``y[:, None] * X`` for diag(y) X, ``np.outer`` or ``einsum`` for a Kronecker product.
    """
    found = []
    for fn in (n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name[0] != "_"):
        scalars = _scalar_names(fn)
        parents = {c: p for p in ast.walk(fn) for c in ast.iter_child_nodes(p)}
        for call in (n for n in ast.walk(fn) if isinstance(n, ast.Call) and _name(n) in DENSE):
            child, parent = call, parents.get(call)
            while _passes_through(parent, child, scalars):
                child, parent = parent, parents.get(parent)
            if not isinstance(parent, ast.Return):
                found.append(f"{fn.name}: {ast.unparse(call)[:60]} in {ast.unparse(parent)[:80]}")
    return found


SCALAR_CALLS = frozenset({"np.linalg.norm", "np.trace", "np.linalg.det", "_logdet", "_logsumexp"})


def _scalar_names(fn: ast.FunctionDef) -> set[str]:
    """The arguments the docstring gives shape () and the temporaries computed from scalars only."""
    doc = ast.get_docstring(fn) or ""
    names = set(re.findall(r"(\w+) \(\)", doc.split("Returns")[0]))
    for st in fn.body:
        one = isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name)
        if one and _is_scalar(st.value, names):
            names.add(st.targets[0].id)
    return names


def _is_scalar(e: ast.expr, scalars: set[str]) -> bool:
    if isinstance(e, ast.Constant):
        return True
    if isinstance(e, ast.Name):
        return e.id in scalars
    if isinstance(e, ast.UnaryOp):
        return _is_scalar(e.operand, scalars)
    if isinstance(e, ast.BinOp) and not isinstance(e.op, ast.MatMult):
        return _is_scalar(e.left, scalars) and _is_scalar(e.right, scalars)
    if isinstance(e, ast.Call):
        if _name(e) in SCALAR_CALLS and len(e.args) == 1 and not e.keywords:
            return True
        full = isinstance(e.func, ast.Attribute) and e.func.attr in ("sum", "max") and not e.args and not e.keywords
        return full  # x.sum(): every entry
    return False


def _passes_through(parent: ast.AST | None, child: ast.AST, scalars: set[str]) -> bool:
    """Whether ``parent`` keeps ``child``'s value as (a term of) the same matrix."""
    if isinstance(parent, ast.Tuple):
        return True  # (value, derivative)
    if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Add | ast.Sub):
        return True
    if isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.USub):
        return True
    if isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Mult | ast.Div):
        other = parent.right if parent.left is child else parent.left
        return _is_scalar(other, scalars) and (parent.left is child or isinstance(parent.op, ast.Mult))
    if isinstance(parent, ast.Call) and _name(parent) == "np.reshape":
        return parent.args[0] is child
    return False


# ----- the rules hold -----


@pytest.mark.parametrize("k", range(len(CORPUS)), ids=IDS)
def test_every_statement_is_used(k: int) -> None:
    assert unused_assignments(source(k)) == []


@pytest.mark.parametrize("k", range(len(CORPUS)), ids=IDS)
def test_no_dense_structured_matrix_that_broadcasting_replaces(k: int) -> None:
    assert dense_misuses(source(k)) == []


def test_the_corpus_covers_every_output_module_and_every_table_row() -> None:
    assert len([p for p in (ROOT / "output").glob("*.py")]) == sum(label.endswith(".py") for label in IDS)
    assert len(CORPUS) > 100


# ----- the rules can fail -----


def test_an_unused_assignment_is_found() -> None:
    src = "def f(x):\n    t1 = np.diag(x)\n    x = np.ravel(x)\n    return 2 * x\n"
    assert unused_assignments(src) == ["f: t1"]
    assert unused_assignments("def f(x):\n    x = np.ravel(x)\n    return 1\n") == ["f: x"]
    assert unused_assignments("def f(x):\n    a, b = g(x)\n    return a\n") == ["f: b"]


@pytest.mark.parametrize(
    ("body", "bad"),
    [
        ("return X.T @ (np.diag(y) @ X)", True),  # a dense m x m diagonal in a product
        ("t1 = np.diag(y)\n    return t1", True),  # a temporary
        ("return np.kron(x, np.eye(3)) @ v", True),
        ("return v * np.eye(3)", True),  # an element-wise product with an array
        ("return A.sum(axis=0) * np.eye(3)", True),
        ("t1 = np.linalg.norm(x)\n    return 1 / t1 * (np.eye(3) - np.outer(x, x))", False),  # (I - x xᵀ)/‖x‖
        ("return c * np.eye(3)", False),  # c is a scalar argument
        ("return np.linalg.inv(np.eye(3) + X)", True),  # an argument of another call
        ("return np.diag(s)", False),  # the Jacobian of an element-wise map IS diag(s)
        ("return f(x), 2 * np.eye(3)", False),
        ("return np.diag(p) - np.outer(p, p)", False),  # the Hessian of logsumexp IS that matrix
        ('return np.reshape(np.kron(x, A), (3, 2, 3), order="F")', False),  # laid out as jax does
        ("return X.T @ (y[:, None] * X)", False),
    ],
)
def test_a_dense_matrix_is_found_where_it_is_not_the_result(body: str, bad: bool) -> None:
    doc = '"""Shapes: X (m, n), c (). Returns shape (n, n)."""'
    assert bool(dense_misuses(f"def f(X, y, x, s, p, v, A, c):\n    {doc}\n    {body}\n")) == bad


# ----- shared work, done once -----


def _body(source: str, fn: str) -> str:
    return source.split(f"def {fn}(")[1].split("\ndef ")[0]


def test_logistic_hessian_is_a_symmetric_product_of_one_scaled_copy() -> None:
    # X^T diag(y) diag(σ'(m)) diag(y) X = S^T S with S = (y ∘ √σ'(m)) X: one scaled copy of X, no diag(y)
    src = numpy_module("sum(softplus(-(y * (X @ w))))", ("w", "w"))
    body = _body(src, "hess_f")
    assert "_gram(" in body and body.count("* X") == 1 and "np.diag" not in body


def test_a_diagonal_of_unknown_sign_scales_once_and_multiplies_generally() -> None:
    # W^T diag(σ''(Wx + b)) W: σ'' changes sign, so no square root; one scaling of W, one general product
    body = _body(numpy_module("sum(sigmoid(W @ x + b))", ("x", "x")), "hess_f")
    assert "_gram(" not in body and "[:, None] * W" in body and body.count("@") == 2


def test_convolution_window_matrix_is_built_once_for_value_and_gradient() -> None:
    shapes = {"X": (3, 8, 8), "K": (4, 3, 3, 3), "Y": (4, 6, 6)}
    src = numpy_module("sum((conv2d(X, K) - Y)**2)", "K", shapes)
    for fn in ("grad_f", "f_and_grad"):
        assert _body(src, fn).count("_windows(X") == 1, fn


def test_max_pool_gradient_reuses_the_forward_argmax() -> None:
    shapes = {"X": (3, 8, 8), "K": (4, 3, 3, 3), "W": (10, 36), "y": (10,)}
    src = numpy_module("-(y @ log(softmax(W @ flatten(maxpool(relu(conv2d(X, K)), 2)))))", "K", shapes)
    body = _body(src, "grad_f")
    assert body.count("_pool_argmax(") == 1 and body.count("_windows(X") == 1


def test_one_dimensional_vectors_pay_one_test_and_columns_still_work() -> None:
    d = derive("norm(A @ x - b)**2", "x")
    src = d.numpy_source("f")
    body = _body(src, "grad_f")
    one_d = body.split("# columns (n, 1)\n")[1].split("\n", 1)[1]  # after the column test and its call
    assert "np.ravel" not in one_d and "ndim" not in one_d  # the 1-D path: one test, then the formula
    mod = load(src)
    rng = np.random.default_rng(0)
    A, x, b = rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal(4)
    g = mod.grad_f(A, x, b)
    np.testing.assert_allclose(mod.grad_f(A, x[:, None], b[:, None]), g[:, None])  # a column's gradient
    value, col = mod.f_and_grad(A, x[:, None], b)
    assert col.shape == (3, 1) and np.isclose(value, mod.f(A, x, b))


def test_a_product_is_multiplied_out_over_a_diagonal_and_its_parts_are_computed_once() -> None:
    # (diag(p) - p pᵀ) r = p ∘ r - (pᵀ r) p: no m x m matrix, and r = (Aᵀ + A) p computed once
    body = _body(numpy_module("softmax(x) @ A @ softmax(x)", "x"), "grad_f")
    assert "np.diag" not in body and "np.outer" not in body and body.count("(A.T + A) @") == 1
    # Aᵀ(diag(p) - p pᵀ)A = Aᵀ diag(p) A - (Aᵀ p)(Aᵀ p)ᵀ: a symmetric product and a rank-one term
    body = _body(numpy_module("logsumexp(A @ x)", ("x", "x")), "hess_f")
    assert "_gram(" in body and "np.diag" not in body


def test_relu_derivative_is_a_mask_inside_a_product_and_a_float_array_alone() -> None:
    assert "(t1 > 0) * w2" in _body(numpy_module("sum(relu(X @ W1 + b1) @ w2)", "W1"), "f_and_grad")
    mod = load(numpy_module("relu(x)", "x"))
    J = mod.jac_f(np.array([1.0, -1.0]))
    assert J.dtype == np.float64 and J.tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_square_roots_for_the_symmetric_product_only_where_the_scaling_is_known_nonnegative() -> None:
    from derive.ops.build import const, fn, node, var
    from derive.ops.linalg import half
    from derive.printing import TextPrinter

    y, z = var("y", (3,)), var("z", (3,))
    ds = fn("sigmoid", z, 1)
    show = lambda e: None if e is None else TextPrinter().doprint(e)  # noqa: E731
    assert show(half(node("mul", node("mul", y, ds), y))) == "y ∘ sqrt(σ′(z))"  # y ∘ σ′ ∘ y
    assert show(half(node("pow", z, attr=2))) == "z"  # z²: z itself (the sign cancels in SᵀS)
    assert show(half(node("mul", const(4), fn("exp", z)))) == "2 sqrt(exp(z))"
    assert half(z) is None  # z may be negative
    assert half(fn("sigmoid", z, 2)) is None  # σ″ changes sign
    assert half(node("mul", const(-1), ds)) is None
    assert half(node("mul", const(2), ds)) is None  # √2 is not written as a number


def _central_jacobian(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """d f / d x by central differences: one column per entry of x (an independent computation)."""
    cols = [(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(x.size)]
    return np.stack(cols, axis=-1)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("exp(exp(exp(b)))", lambda b, c: np.exp(np.exp(np.exp(b)))),
        ("logsumexp(b) + c / softmax(softmax(b))", lambda b, c: np.log(np.exp(b).sum()) + c / _softmax(_softmax(b))),
    ],
)
def test_a_chain_of_diagonal_factors_prints_as_one_scaling(expr: str, value) -> None:
    # Each element-wise layer contributes diag(f′): a chain of diagonals only merges into one diagonal
    # (found by the fuzz test: the merged chain had one factor), and vᵀ diag(u) is v ∘ u, no matrix built
    src = numpy_module(expr, "b", {"b": (3,), "c": ()})
    mod = load(src)
    b, c = np.array([0.3, -0.2, 0.1]), 1.5
    args = (b, c) if "c" in expr else (b,)
    np.testing.assert_allclose(mod.jac_f(*args), _central_jacobian(lambda v: value(v, c), b), rtol=1e-6, atol=1e-8)
    assert "@ np.diag(" not in _body(src, "jac_f")


# Expressions whose code updates arrays in place, with every kind of step: a product, a negation, a sum, a
# subtraction from another array, a numpy function, a helper with out=, a power, relu, a mask.
IN_PLACE = [
    ("sum(softplus(-(y * (X @ w))))", "w", None),
    ("norm(A @ x - b)**2", "x", None),
    ("norm(W2 @ tanh(W1 @ x + b1) + b2 - y)**2", "W1", None),
    ("-(y @ log(softmax(W @ x)))", "W", None),
    ("sum(exp(A @ x) ** 3)", "x", None),
    ("sum(sqrt(exp(A @ x) + 1))", "x", None),
    ("sum(b - (A @ x) ** 2)", "x", None),
    ("sum(relu(X @ W1 + b1) @ w2)", "W1", None),
    ("sum((conv2d(X, K) - Y)**2)", "K", {"X": (3, 8, 8), "K": (4, 3, 3, 3), "Y": (4, 6, 6)}),
]


@pytest.mark.parametrize(("expr", "wrt", "shapes"), IN_PLACE, ids=[e for e, _, _ in IN_PLACE])
def test_in_place_steps_leave_the_arguments_alone_and_take_integers(expr: str, wrt: str, shapes) -> None:
    d = derive(expr, wrt, shapes=shapes)
    src = d.numpy_source("f")
    tree = ast.parse(src)
    assert any(isinstance(n, ast.AugAssign) for n in ast.walk(tree)) or "out=" in src  # it does work in place
    mod = load(src)
    rng = np.random.default_rng(1)
    args = {n: rng.integers(-3, 4, s).astype(float) for n, s in d.numeric.shapes.items()}
    kept = {n: a.copy() for n, a in args.items()}
    names = [f"{d.kind.code}_f", "f", f"f_and_{d.kind.code}"]
    with np.errstate(all="ignore"):
        results = [getattr(mod, fn)(*args.values()) for fn in names]
        for n, a in args.items():
            assert np.array_equal(a, kept[n]), f"{n} was changed"
        # the same integer values as int64 arrays: the function converts them and gives the same numbers
        ints = [getattr(mod, fn)(*(a.astype(np.int64) for a in args.values())) for fn in names]
    for got, want in zip(ints, results, strict=True):
        last = lambda r: r[-1] if isinstance(r, tuple) else r  # noqa: E731 - the derivative of f_and_grad
        np.testing.assert_allclose(np.asarray(last(got), float), np.asarray(last(want), float), rtol=1e-12)


def test_a_step_its_parent_prints_through_is_not_taken() -> None:
    # 1 - n softmax(s): the sum prints its term as n * (...), through the scaled node, so scaling the softmax
    # in place would leave its buffer holding n softmax(s) under softmax(s)'s name (the fuzzer found this)
    mod = load(numpy_module("sum(log(softmax(sum(A0, axis=0))))", "A0"))
    A = np.random.default_rng(0).standard_normal((3, 4))
    s = A.sum(axis=0)
    p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
    np.testing.assert_allclose(mod.grad_f(A), np.broadcast_to(1 - 4 * p, (3, 4)), rtol=1e-12)


def test_each_helper_said_to_return_a_new_array_does() -> None:
    # derive.inplace starts a buffer from these calls' results: each must be a new, writeable float array
    from derive import numpy_helpers as h

    rng = np.random.default_rng(0)
    z, m, x3 = rng.standard_normal(5), rng.standard_normal((3, 3)) + 3 * np.eye(3), rng.standard_normal((2, 5, 5))
    k4, k2 = rng.standard_normal((3, 2, 2, 2)), rng.standard_normal((2, 2))
    cols = h._windows(x3, (2, 2))
    calls = {
        "_sigmoid": (z,), "_dsigmoid": (z,), "_d2sigmoid": (z,), "_softplus": (z,), "_dtanh": (z,),
        "_d2tanh": (z,), "_softmax": (z,), "_log_softmax": (z,), "_inv": (m,), "_gram": (m,),
        "_conv2d": (x3, k4), "_conv2d_kernel_grad": (x3, rng.standard_normal((3, 4, 4))),
        "_conv2d_input_grad": (rng.standard_normal((4, 4)), k2), "_conv2d_windows": (cols, k4),
        "_kernel_grad_windows": (cols, rng.standard_normal((3, 4, 4)), k4.shape),
        "_maxpool_grad": (x3[:, :4, :4], rng.standard_normal((2, 2, 2)), 2),
        "_pool_pick": (x3, np.array([[0, 7], [30, 49]])), "_pool_route": (np.array([0, 7]), z[:2], (2, 5, 5)),
        "_kron_diag": (z, z[:3]),
    }  # fmt: skip
    assert set(calls) == set(h.FRESH)
    for name, args in calls.items():
        kept = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        out = getattr(h, name)(*args)
        assert out.dtype.kind == "f" and out.flags.writeable, name
        assert not any(isinstance(a, np.ndarray) and np.shares_memory(out, a) for a in args), name
        out[...] = 0  # writing into the result leaves every argument as it was
        assert all(not isinstance(a, np.ndarray) or np.array_equal(a, b) for a, b in zip(args, kept, strict=True))


def test_a_mask_does_not_make_a_buffer_float() -> None:
    # (x > 0) * y has y's dtype: a buffer starting there needs y converted, as one starting at X @ w does
    from derive.inplace import floating
    from derive.ops.build import fn, node, var

    x, y = var("x", (3,)), var("y", (3,))
    assert not floating(node("mul", fn("step", x), y), set())
    assert floating(node("mul", fn("step", x), y), {"y"})
    assert floating(node("mul", fn("tanh", x), y), set())  # a float function is float whatever y is
    assert not floating(node("matmul", var("X", (3, 3)), x), set())
