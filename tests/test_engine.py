"""The engine's contracts: kinds, layouts, simplification, proofs, fallbacks."""

import numpy as np
import pytest
import sympy as sp
from sympy.matrices.expressions import KroneckerProduct, MatrixExpr

from derive import DeriveError, derive

# ----- one answer, however the loss is written -----


@pytest.mark.parametrize(
    "loss",
    ["norm(A @ x - b)**2", "(A @ x - b) @ (A @ x - b)", "sum((A @ x - b)**2)", "(A @ x - b).T @ (A @ x - b)",
     "np.linalg.norm(A @ x - b) ** 2", "sum((A @ x - b) * (A @ x - b))"],
)  # fmt: skip
def test_squared_norm_written_any_way(loss: str) -> None:
    # d||Ax-b||^2/dx = 2 A^T (A x - b), never 2 A^T A x - 2 A^T b
    d = derive(loss, "x")
    assert d.text == "2 Aᵀ(A x - b)"
    assert d.proof.status == "proven" and d.numeric.ok


# ----- layouts -----


def test_gradient_by_matrix_in_both_layouts() -> None:
    # d tr(AX)/dX = A^T (Cookbook 100); numerator layout is its transpose, A
    assert derive("trace(A @ X)", "X").text == "Aᵀ"
    num = derive("trace(A @ X)", "X", layout="numerator")
    assert num.text == "A"
    assert num.layout == "numerator" and "Numerator" in num.convention
    assert num.proof.status == "proven"


def test_jacobian_in_both_layouts() -> None:
    # d(Wx)/dx = W in numerator layout, W^T in denominator layout
    assert derive("W @ x", "x").text == "W"
    den = derive("W @ x", "x", shapes={"W": (2, 3)}, layout="denominator")
    assert den.text == "Wᵀ"
    assert den.proof.status == "proven"


def test_gradient_by_vector_in_numerator_layout_is_a_row() -> None:
    d = derive("norm(A @ x - b)**2", "x", layout="numerator")
    assert d.latex_form() == "2 \\left(A \\mathbf{x} - \\mathbf{b}\\right)^{\\top} A"  # the article's 2(Ax-b)^T A
    assert d.proof.status == "proven"


def test_every_result_states_its_convention() -> None:
    assert "shape of x" in derive("norm(x)", "x").convention
    assert "vec" in derive("sigmoid(W @ x + b)", "W").convention
    assert "row per entry of the output" in derive("tanh(x)", "x").convention


def test_invalid_layout_is_refused() -> None:
    with pytest.raises(DeriveError, match="layout"):
        derive("norm(x)", "x", layout="sideways")


# ----- kinds of derivative -----


def test_third_order_is_the_articles_kronecker_form() -> None:
    # da/dW = x^T (x) diag(sigma'(Wx + b))
    d = derive("sigmoid(W @ x + b)", "W", shapes={"W": (2, 3)})
    assert d.text == "xᵀ ⊗ diag(σ′(W x + b))"
    assert d.elementwise.shape == (2, 2, 3)  # value shape + variable shape
    assert d.proof.status == "proven" and d.numeric.ok


def test_fourth_order_inverse() -> None:
    # d vec(X^-1) = -(X^-T (x) X^-1) vec(dX)  (Cookbook 40, vectorised)
    d = derive("inv(X)", "X")
    assert d.text == "-X⁻ᵀ ⊗ X⁻¹"
    assert d.elementwise.ndim == 4
    assert d.proof.status == "proven" and d.numeric.ok


@pytest.mark.parametrize(
    ("expr", "wrt", "text"),
    [
        ("norm(A @ x - b)**2", ("x", "x"), "2 Aᵀ A"),  # Hessian of least squares
        ("sum(sigmoid(W @ x + b))", ("x", "x"), "Wᵀ diag(σ″(W x + b)) W"),
        ("logsumexp(x)", ("x", "x"), "diag(p) - p pᵀ, where p = softmax(x)"),  # diag(p) - p p^T
    ],
)
def test_hessians(expr: str, wrt: tuple[str, str], text: str) -> None:
    d = derive(expr, wrt)
    assert d.kind == "hessian"
    assert d.text == text
    assert d.proof.status == "proven" and d.numeric.ok


def test_second_derivative_needs_a_scalar() -> None:
    with pytest.raises(DeriveError, match="scalar"):
        derive("W @ x", ("x", "x"))


def test_scalar_variable() -> None:
    # d(c ||x||^2)/dc = ||x||^2, here x^T x
    d = derive("c * (x @ x)", "c", shapes={"c": ()})
    assert d.elementwise.shape == ()
    assert d.proof.status == "proven" and d.numeric.ok


def test_independent_variable_gives_zero() -> None:
    d = derive("norm(x)**2 + 0 * sum(y)", "y")
    assert d.proof.status == "proven"
    assert np.all(d.elementwise == 0)


def test_unknown_variable_is_refused() -> None:
    with pytest.raises(DeriveError, match="'z' is not in the expression"):
        derive("norm(x)", "z")


# ----- how sigma' is written -----


def test_sigma_prime_or_written_out() -> None:
    assert derive("sigmoid(W @ x + b)", "x").text == "diag(σ′(W x + b)) W"
    d = derive("sigmoid(W @ x + b)", "x", primes=False)
    assert d.text == "diag(s ∘ (1 - s)) W, where s = σ(W x + b)"
    assert d.proof.status == "proven" and d.numeric.ok
    assert derive("tanh(x)", "x", primes=False).text == "diag(1 - tanh(x)^∘2)"


# ----- the proof -----


def test_declared_sizes_are_the_numeric_checks_and_proof_sizes_can_be_asked_for() -> None:
    d = derive("norm(A @ x - b)**2", "x", shapes={"A": (4, 3)})
    assert d.numeric.shapes == {"A": (4, 3), "x": (3,), "b": (4,)} and d.numeric.declared
    assert d.proof.shapes["A"][0] != d.proof.shapes["A"][1]  # proven at small non-square sizes
    e = derive("norm(A @ x - b)**2", "x", shapes={"A": (4, 3)}, proof_sizes={"m": 4, "n": 3})
    assert e.proof.shapes == {"A": (4, 3), "x": (3,), "b": (4,)}
    assert e.proof.entries == 3


def test_symbolic_sizes_are_proven_non_square() -> None:
    d = derive("norm(A @ x - b)**2", "x")
    rows, cols = d.proof.shapes["A"]
    assert rows != cols


def test_elementwise_is_sympys_partial_derivatives() -> None:
    d = derive("norm(A @ x - b)**2", "x", shapes={"A": (1, 1)})
    a, x, b = sp.symbols("a11 x1 b1")
    assert sp.expand(d.elementwise[0] - 2 * a * (a * x - b)) == 0  # d/dx (a x - b)^2


def test_no_rule_gives_the_elementwise_form_and_says_so() -> None:
    d = derive("sum(kron(A, B))", "A")
    assert d.form is None
    assert d.text.startswith("no matrix form")
    assert "kron" in d.note
    assert d.proof.status == "no matrix form"
    assert d.elementwise.shape == d.proof.shapes["A"]
    with pytest.raises(DeriveError, match="no numpy code"):
        d.numpy_source()


# ----- the SymPy form -----


def test_matrix_is_a_sympy_matrix_expression_that_evaluates_right() -> None:
    d = derive("norm(A @ x - b)**2", "x")
    M = d.matrix
    assert isinstance(M, MatrixExpr)
    rng = np.random.default_rng(0)
    A, x, b = rng.integers(-5, 5, (2, 3)), rng.integers(-5, 5, (3, 1)), rng.integers(-5, 5, (2, 1))
    m, n = sp.symbols("m n", positive=True, integer=True)
    sized = M.subs({m: 2, n: 3})
    syms = {s.name: s for s in sized.free_symbols if isinstance(s, sp.MatrixSymbol)}
    values = {syms["A"]: sp.ImmutableMatrix(A), syms["x"]: sp.ImmutableMatrix(x), syms["b"]: sp.ImmutableMatrix(b)}
    got = sized.xreplace(values).doit()
    np.testing.assert_array_equal(np.array(got, dtype=float), 2 * A.T @ (A @ x - b))


def test_matrix_of_third_order_is_a_kronecker_product() -> None:
    M = derive("sigmoid(W @ x + b)", "W").matrix
    assert isinstance(M, KroneckerProduct)
    assert "PermuteDims" not in sp.srepr(M) and "ArrayTensorProduct" not in sp.srepr(M)


# ----- Jupyter -----


def test_jupyter_display() -> None:
    d = derive("norm(A @ x - b)**2", "x")
    assert d._repr_latex_() == "$$2 A^{\\top} \\left(A \\mathbf{x} - \\mathbf{b}\\right)$$"
    assert "proven" in d._repr_markdown_()


def test_repr_is_one_short_line() -> None:
    d = derive("norm(A @ x - b)**2", "x")
    assert repr(d) == "Derivation('norm(A @ x - b)**2', wrt='x', status='proven')"
    h = derive("norm(A @ x - b)**2", ("x", "x"))
    assert repr(h) == "Derivation('norm(A @ x - b)**2', wrt=('x', 'x'), status='proven')"
    long = derive(" + ".join(["sum(x)"] * 20), "x")
    assert "\n" not in repr(long) and len(repr(long)) < 120
    assert repr(derive("sum(kron(x, x))", "x")).endswith("status='no matrix form')")
