"""check(): hand derivations, including the article's own mistakes."""

import pytest
import sympy as sp

from derive import DeriveError, check

b1, b2 = sp.symbols("b1 b2")


def test_article_expansion_of_ax_minus_b_subtracts_b1_twice() -> None:
    # The article's y = Ax - b at 2x2: its second row subtracts b1 instead of b2.
    c = check("A @ x - b", None, "[a11*x1 + a12*x2 - b1, a21*x1 + a22*x2 - b1]")
    assert not c.ok
    assert c.mismatch.index == (2,)
    assert sp.expand(c.mismatch.expected - c.mismatch.got) == b1 - b2
    assert c.sizes == {"m": 2, "n": 2}


def test_article_expansion_of_z_subtracts_b1_in_every_row() -> None:
    # The article's z = Wx + b at 3x2 writes "- b1" in all three rows.
    c = check("W @ x + b", None, "[w11*x1 + w12*x2 - b1, w21*x1 + w22*x2 - b1, w31*x1 + w32*x2 - b1]")
    assert not c.ok
    assert c.mismatch.index == (1,)
    assert sp.expand(c.mismatch.expected - c.mismatch.got) == 2 * b1
    assert c.sizes == {"m": 3, "n": 2}


def test_article_objective_function_returns_squares_not_their_sum() -> None:
    # objective_function returns (Ax - b)**2; F(x) = ||Ax - b||^2 is their sum.
    c = check("norm(A @ x - b)**2", None, "(A @ x - b)**2")
    assert not c.ok
    assert "missing sum" in c.mistake


def test_corrected_expansion_holds() -> None:
    assert check("A @ x - b", None, "[a11*x1 + a12*x2 - b1, a21*x1 + a22*x2 - b2]").ok


def test_article_gradient_holds_in_both_forms() -> None:
    assert check("norm(A @ x - b)**2", "x", "2 * A.T @ (A @ x - b)").ok
    assert check("norm(A @ x - b)**2", "x", "2 * (A @ x - b) @ A").ok  # 2 (Ax - b)^T A, as a 1-D row


def test_article_kronecker_form_holds() -> None:
    # da/dW = x^T (x) diag(sigma'(W x + b)), in the article's vec form
    assert check("sigmoid(W @ x + b)", "W", "kron(x, diag(dsigmoid(W @ x + b)))").ok
    assert check("sigmoid(W @ x + b)", "W", "kron(x, diag(sigmoid(W @ x + b) * (1 - sigmoid(W @ x + b))))").ok


def test_missing_factor_two_is_found_at_the_smallest_size() -> None:
    c = check("norm(A @ x - b)**2", "x", "A.T @ (A @ x - b)")
    assert not c.ok
    assert c.mistake == "a missing factor of 2"
    assert c.sizes == {"m": 1, "n": 1}
    assert c.mismatch.expected == 2 * c.mismatch.got


def test_flipped_sign() -> None:
    assert check("norm(A @ x - b)**2", "x", "2 * A.T @ (b - A @ x)").mistake == "a flipped sign"


def test_transpose_is_named() -> None:
    # d tr(AXB)/dX = A^T B^T (Cookbook 101), not B A
    c = check("trace(A @ X @ B)", "X", "B @ A")
    assert not c.ok and "transpose" in c.mistake


def test_wrong_layout_of_a_jacobian_is_named() -> None:
    c = check("W @ x", "x", "W.T", shapes={"W": (2, 3)})
    assert not c.ok and "transpose" in c.mistake


def test_claim_whose_shapes_do_not_fit_fails_without_raising() -> None:
    c = check("norm(A @ x - b)**2", "x", "2 * A @ (A @ x - b)")
    assert not c.ok and "shapes" in c.mistake


def test_claim_with_an_unknown_name_is_bad_input() -> None:
    with pytest.raises(DeriveError, match="'z'"):
        check("norm(A @ x - b)**2", "x", "z")


def test_claim_is_never_evaluated(tmp_path) -> None:
    canary = tmp_path / "canary"
    with pytest.raises(DeriveError):
        check("norm(x)", "x", f"__import__('os').system('touch {canary}')")
    assert not canary.exists()


# ----- layout -----


@pytest.mark.parametrize(
    ("expr", "wrt", "layout", "claim"),
    [
        # d(x^T A y)/dA = x y^T (the gradient); numerator layout is its transpose, y x^T
        ("x @ A @ y", "A", None, "outer(x, y)"),
        ("x @ A @ y", "A", "denominator", "outer(x, y)"),
        ("x @ A @ y", "A", "numerator", "outer(y, x)"),
        # d(A x)/dx = A, one row per output (numerator); denominator layout is A^T
        ("A @ x", "x", None, "A"),
        ("A @ x", "x", "numerator", "A"),
        ("A @ x", "x", "denominator", "A.T"),
        # d/dx of x^T x is 2x in every layout: a 1-D claim has no orientation
        ("x @ x", "x", "numerator", "2 * x"),
    ],
)
def test_claim_in_the_named_layout_holds(expr: str, wrt: str, layout: str | None, claim: str) -> None:
    assert check(expr, wrt, claim, layout=layout).ok


def test_claim_in_the_other_layout_is_the_transpose() -> None:
    c = check("x @ A @ y", "A", "outer(x, y)", layout="numerator")
    assert not c.ok
    assert "transpose" in c.mistake


def test_unknown_layout_is_refused() -> None:
    with pytest.raises(DeriveError, match="layout"):
        check("A @ x", "x", "A", layout="sideways")


# ----- Jupyter display -----


def test_check_shows_itself_in_jupyter() -> None:
    good = check("norm(A @ x - b)**2", "x", "2 * A.T @ (A @ x - b)")
    assert good._repr_markdown_().startswith("**The claim holds**: `2 * A.T @ (A @ x - b)`")
    assert good._repr_latex_().startswith("$$\\text{the claim holds") and good._repr_latex_().endswith("$$")
    bad = check("A @ x - b", None, "[a11*x1 + a12*x2 - b1, a21*x1 + a22*x2 - b1]")
    md, tex = bad._repr_markdown_(), bad._repr_latex_()
    assert md.startswith("**The claim fails**")
    # the counterexample as math: claimed a21 x1 + a22 x2 - b1, correct ... - b2
    assert f"claimed ${sp.latex(bad.mismatch.got)}$" in md and f"correct ${sp.latex(bad.mismatch.expected)}$" in md
    assert sp.latex(bad.mismatch.expected) in tex and tex.count("{") == tex.count("}")
    shape = check("norm(A @ x - b)**2", "x", "A @ (A @ x - b)")  # no mismatch entry: the message, escaped
    assert shape.mismatch is None and "\\_" not in shape._repr_latex_()
    assert shape._repr_markdown_().startswith("**The claim fails**")
