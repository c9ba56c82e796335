"""Derivatives by symmetric and diagonal matrices.

The gradient by a symmetric S is the G_s with df = tr(G_s^T dS) for every symmetric dS that is itself
symmetric: sym(G) = (G + G^T)/2 for the unconstrained gradient G (Srinivasan & Panda, "What is the
gradient of a scalar function of a symmetric matrix?", arXiv 1911.06491). The Matrix Cookbook's
G + G^T - G∘I (its section 2.8.2) is the derivative by the n(n+1)/2 free entries instead; check()
names it. By a diagonal D the gradient is diag(diag(G)).
"""

import numpy as np
import pytest

from derive import DeriveError, check, derive
from derive.claims import COOKBOOK, UNSYMMETRISED
from derive.numeric import load

MAHALANOBIS = "(x - m) @ inv(S) @ (x - m)"
GAUSSIAN = f"-0.5 * log(det(S)) - 0.5 * {MAHALANOBIS}"  # log N(x; m, S) up to a constant

# (expression, variable, textbook gradient as a claim, derive's printed form or None)
SYMMETRIC = [
    # d log det S / dS = S^-1 (S symmetric, so S^-T = S^-1)
    ("log(det(S))", "S", "inv(S)", "S⁻¹"),
    # d tr(A S)/dS = (A + A^T)/2
    ("trace(A @ S)", "S", "(A + A.T) / 2", "1/2(Aᵀ + A)"),
    # d x^T S x / dS = x x^T (already symmetric)
    ("x @ S @ x", "S", "outer(x, x)", "x xᵀ"),
    # Mahalanobis by S: -S^-1 (x - m)(x - m)^T S^-1
    (MAHALANOBIS, "S", "-inv(S) @ outer(x - m, x - m) @ inv(S)", "-S⁻¹(x - m)(x - m)ᵀ S⁻¹"),
    # Mahalanobis by m (S symmetric, not differentiated): -2 S^-1 (x - m)
    (MAHALANOBIS, "m", "-2 * inv(S) @ (x - m)", "-2 S⁻¹(x - m)"),
    # the Gaussian log-likelihood by S: (S^-1 (x - m)(x - m)^T S^-1 - S^-1)/2
    (GAUSSIAN, "S", "(inv(S) @ outer(x - m, x - m) @ inv(S) - inv(S)) / 2", "1/2(S⁻¹(x - m)(x - m)ᵀ S⁻¹ - S⁻¹)"),
    # d ||S x - y||^2 / dS = sym(2 (S x - y) x^T) = (S x - y) x^T + x (S x - y)^T
    ("norm(S @ x - y)**2", "S", "outer(S @ x - y, x) + outer(x, S @ x - y)", "(S x - y) xᵀ + x(S x - y)ᵀ"),
    # d tr(S^-1 A)/dS = -S^-1 sym(A) S^-1
    ("trace(inv(S) @ A)", "S", "-inv(S) @ (A + A.T) @ inv(S) / 2", None),
    # d tr(S S)/dS = 2 S
    ("trace(S @ S)", "S", "2 * S", "2 S"),
    # d sum(exp(S))/dS = exp(S) (element-wise: symmetric)
    ("sum(exp(S))", "S", "exp(S)", "exp(S)"),
    # d a^T S b / dS = (a b^T + b a^T)/2
    ("a @ S @ b", "S", "(outer(a, b) + outer(b, a)) / 2", None),
    # d tr(S A S)/dS = sym(S A^T + A^T S... ) = (A S + S A + A^T S + S A^T)/2
    ("trace(S @ A @ S)", "S", "(A @ S + S @ A + A.T @ S + S @ A.T) / 2", None),
]


@pytest.mark.parametrize(("expr", "wrt", "claim", "text"), SYMMETRIC, ids=[f"d({r[0]})/d{r[1]}" for r in SYMMETRIC])
def test_symmetric_identity(expr: str, wrt: str, claim: str, text: str | None) -> None:
    c = check(expr, wrt, claim, symmetric=["S"])
    assert c.ok, c.message
    d = derive(expr, wrt, symmetric=["S"])
    assert d.proof.status == "proven" and d.proof.exact, d.proof
    assert "s_ij = s_ji" in d.proof.method
    assert d.numeric.ok, d.numeric
    if text is not None:
        assert d.text == text
    if wrt == "S":
        assert any("(G + Gᵀ)/2" in n and "Cookbook" in n for n in d.notes)
        assert "(G + Gᵀ)/2" in d.numpy_source("f")  # the generated docstring states the convention


def test_the_generated_gradient_is_symmetric_and_matches_central_differences_along_symmetric_directions() -> None:
    d = derive(GAUSSIAN, "S", symmetric=["S"])
    mod = load(d.numpy_source("f"))
    rng = np.random.default_rng(3)
    B = rng.standard_normal((4, 4))
    S = B @ B.T + 4 * np.eye(4)  # symmetric positive-definite
    x, m = rng.standard_normal(4), rng.standard_normal(4)
    args = [{"S": S, "x": x, "m": m}[n] for n in d.shapes]
    G = mod.grad_f(*args)
    np.testing.assert_allclose(G, G.T, atol=1e-12)
    Si, r = np.linalg.inv(S), x - m
    np.testing.assert_allclose(G, (Si @ np.outer(r, r) @ Si - Si) / 2, rtol=1e-10)  # the formula above
    E = rng.standard_normal((4, 4))
    E = (E + E.T) / 2  # a symmetric direction: df = tr(G^T E)
    f = lambda S_: mod.f(*[{"S": S_, "x": x, "m": m}[n] for n in d.shapes])  # noqa: E731
    h = 1e-6
    assert abs((f(S + h * E) - f(S - h * E)) / (2 * h) - np.sum(G * E)) < 1e-6


def test_hessian_by_a_symmetric_matrix() -> None:
    # d^2 log det S / dS^2 in vec form, along symmetric directions: -(S^-1 ⊗ S^-1)(I + K)/2
    d = derive("log(det(S))", ("S", "S"), symmetric=["S"])
    assert d.proof.status == "proven" and d.numeric.ok
    assert d.text == "-1/2(S⁻¹ ⊗ S⁻¹)(I + K(m,m))"


DIAGONAL = [
    # d tr(A D)/dD = diag(diag(A^T))
    ("trace(A @ D)", "D", "diag(diag(A.T))", "diag(diag(Aᵀ))"),
    # d x^T D x / dD = diag(x ∘ x)
    ("x @ D @ x", "D", "diag(x * x)", "diag(x^∘2)"),
    # d log det D / dD = D^-1 (diagonal)
    ("log(det(D))", "D", "inv(D)", "D⁻¹"),
    # d ||D x - y||^2 / dD = 2 diag((D x - y) ∘ x)
    ("norm(D @ x - y)**2", "D", "2 * diag((D @ x - y) * x)", "2 diag((D x - y) ∘ x)"),
]


@pytest.mark.parametrize(("expr", "wrt", "claim", "text"), DIAGONAL, ids=[f"d({r[0]})/d{r[1]}" for r in DIAGONAL])
def test_diagonal_identity(expr: str, wrt: str, claim: str, text: str) -> None:
    c = check(expr, wrt, claim, diagonal=["D"])
    assert c.ok, c.message
    d = derive(expr, wrt, diagonal=["D"])
    assert d.proof.status == "proven" and d.numeric.ok
    assert d.text == text
    assert "zeros off the diagonal" in d.proof.method


def test_check_names_the_cookbook_rule() -> None:
    # G = S^-1 for log det S: the Cookbook's G + G^T - G∘I = 2 S^-1 - S^-1 ∘ I
    c = check("log(det(S))", "S", "2 * inv(S) - inv(S) * diag(diag(S) ** 0)", symmetric=["S"])
    assert not c.ok and c.mistake == COOKBOOK
    c = check(GAUSSIAN, "S", "2 * G - G * diag(diag(S) ** 0)".replace(
        "G", "((inv(S) @ outer(x - m, x - m) @ inv(S) - inv(S)) / 2)"), symmetric=["S"])  # fmt: skip
    assert not c.ok and c.mistake == COOKBOOK


def test_check_names_a_missing_symmetrisation() -> None:
    # d tr(A S)/dS is (A + A^T)/2, not A^T
    c = check("trace(A @ S)", "S", "A.T", symmetric=["S"])
    assert not c.ok and c.mistake == UNSYMMETRISED
    c = check("a @ S @ b", "S", "outer(a, b)", symmetric=["S"])
    assert not c.ok and c.mistake == UNSYMMETRISED


def test_structured_variables_must_be_square() -> None:
    with pytest.raises(DeriveError, match="square"):
        derive("trace(S @ A)", "S", {"S": (2, 3)}, symmetric=["S"])
    with pytest.raises(DeriveError, match="both symmetric and diagonal"):
        derive("trace(S)", "S", symmetric=["S"], diagonal=["S"])
    with pytest.raises(DeriveError, match="not in the expression"):
        derive("trace(A)", "A", symmetric=["S"])


def test_symmetry_simplifies_without_differentiating_by_it() -> None:
    # S symmetric but not the variable: S^T x is S x
    assert derive("x @ S @ y", "y", symmetric=["S"]).text == "S x"
    assert derive("x @ S @ y", "y").text == "Sᵀ x"


def test_command_line_flags(tmp_path) -> None:
    from derive.cli import main

    assert main([MAHALANOBIS, "--wrt", "S", "--symmetric", "S", "-o", str(tmp_path), "--name", "maha"]) == 0
    tex = (tmp_path / "maha.tex").read_text()
    assert "one symbol per pair" in tex and "Cookbook" in tex
    assert main(["trace(A @ S)", "--wrt", "S", "--symmetric", "S", "--check", "A.T"]) == 1


def test_the_convention_in_a_markdown_write_up_is_markdown_and_math() -> None:
    # the note is shared by the .tex and the .md: its symbols are math ($^{\top}$), never text-mode LaTeX
    # such as \textsuperscript, which a Markdown page shows as it is
    from derive.writeup import documents

    md = documents(derive("log(det(S))", "S", symmetric=["S"]), "f", formats=("md",))["f.md"]
    line = next(ln for ln in md.splitlines() if ln.startswith("By a symmetric S"))
    assert "sym(G) = (G + G$^{\\top }$)/2" in line and "G$\\circ$I" in line
    assert "\\text" not in md and "$$^" not in md
