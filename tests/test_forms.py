"""The matrix form as a careful author writes it: one test per family of defects, several cases each.

Expected texts are the textbook forms (the Matrix Cookbook's, or the algebra in the comment); derive
must also prove each one, so a form that reads well but is wrong fails here.
"""

import pytest
import sympy as sp

from derive import derive
from derive.ops.build import const, fn, node, var
from derive.printing import LatexPrinter, TextPrinter

X, A, B = (var(n, (sp.Symbol("n"), sp.Symbol("n"))) for n in "XAB")
x, y, z = (var(n, (sp.Symbol("n"),)) for n in "xyz")
s = var("s", ())


def proven(expr: str, wrt, **kw) -> str:
    d = derive(expr, wrt, **kw)
    assert d.proof.status == "proven", d.proof
    assert d.numeric is None or d.numeric.ok, d.numeric
    return d.text


# ----- Kronecker products folded by the mixed-product rule (P ⊗ Q)(R ⊗ S) = PR ⊗ QS -----


@pytest.mark.parametrize(
    ("expr", "wrt", "text"),
    [
        ("A @ X @ B @ c", "X", "(B c)ᵀ ⊗ A"),  # d vec(A X B c) = ((B c)^T ⊗ A) d vec(X)
        ("A @ inv(X) @ c", "X", "-(X⁻¹ c)ᵀ ⊗ A X⁻¹"),  # d X^-1 = -X^-1 dX X^-1
        ("A @ X @ B", "X", "Bᵀ ⊗ A"),  # Cookbook (520)'s vec rule
        ("W @ x + b", "W", "xᵀ ⊗ I"),
        ("inv(X)", "X", "-X⁻ᵀ ⊗ X⁻¹"),
    ],
)
def test_kronecker_products_fold(expr: str, wrt: str, text: str) -> None:
    assert proven(expr, wrt) == text


# ----- symmetry recognised: S^T = S, S^-T = S^-1, like terms merged -----


@pytest.mark.parametrize(
    ("expr", "wrt", "kw", "text"),
    [
        ("log(det(A.T @ X @ A))", "X", {}, "A(Aᵀ X A)⁻ᵀ Aᵀ"),  # X general: the transpose stays
        ("log(det(A.T @ X @ A))", "X", {"symmetric": ["X"]}, "A(Aᵀ X A)⁻¹ Aᵀ"),  # A^T X A symmetric
        ("log(det(X.T @ X))", "X", {}, "2 X(Xᵀ X)⁻¹"),  # two (X^T X)^-T terms merge into one times 2
        ("x @ (A + A.T) @ x", "x", {}, "2(A + Aᵀ) x"),  # A + A^T is symmetric
        ("x @ X.T @ X @ x", "x", {}, "2 Xᵀ X x"),
        ("(x - m) @ inv(S) @ (x - m)", "m", {"symmetric": ["S"]}, "-2 S⁻¹(x - m)"),
    ],
)
def test_symmetry_is_used(expr: str, wrt: str, kw: dict, text: str) -> None:
    assert proven(expr, wrt, **kw) == text


@pytest.mark.parametrize(("layout", "text"), [("numerator", "K(m,n)"), ("denominator", "K(n,m)")])
def test_the_commutation_matrix_is_not_symmetric(layout: str, text: str) -> None:
    # vec(dX^T) = K(m,n) vec(dX) for X m x n; its transpose is K(n,m), a different matrix unless m = n
    assert proven("A.T", "A", layout=layout) == text


# ----- quotients: one fraction, ⊘, and sigma where it hides -----


@pytest.mark.parametrize(
    ("expr", "wrt", "text"),
    [
        ("sum(exp(x) / (1 + exp(x)))", "x", "σ′(x)"),  # d sigma(x)/dx = exp(x)/(1 + exp(x))^2
        ("sum(x / y)", "y", "-x ⊘ y^∘2"),
        ("sum(x / y)", "x", "𝟏 ⊘ y"),
        ("norm(x) / (1 + norm(x))", "x", "x/(‖x‖(‖x‖ + 1)^2)"),
        ("np.sum(np.log1p(np.exp(-y * (X @ w))))", "w", "-Xᵀ(y ∘ σ(-y ∘ (X w)))"),  # logistic loss
    ],
)
def test_quotients_read_as_fractions(expr: str, wrt: str, text: str) -> None:
    assert proven(expr, wrt) == text


def test_element_wise_division_in_latex_is_oslash() -> None:
    assert derive("sum(x / y)", "y").latex_form() == "-\\mathbf{x} \\oslash \\mathbf{y}^{\\circ 2}"


# ----- normalisation: the projector form -----


@pytest.mark.parametrize(
    ("expr", "wrt", "text"),
    [
        ("x / norm(x)", "x", "(I - x xᵀ/‖x‖²)/‖x‖"),  # d(x/||x||) = (I - x x^T/||x||^2) dx/||x||
        ("(A @ x - b) / norm(A @ x - b)", "x", "(A - u uᵀ A/‖u‖²)/‖u‖, where u = A x - b"),
    ],
)
def test_normalisation_is_the_projector_form(expr: str, wrt: str, text: str) -> None:
    assert proven(expr, wrt) == text


# ----- repeated parts named -----


@pytest.mark.parametrize(
    ("expr", "wrt", "text"),
    [
        ("softmax(W @ x)", "x", "(diag(p) - p pᵀ) W, where p = softmax(W x)"),
        ("softmax(W @ x)", "W", "xᵀ ⊗ (diag(p) - p pᵀ), where p = softmax(W x)"),
        ("logsumexp(x)", ("x", "x"), "diag(p) - p pᵀ, where p = softmax(x)"),
        ("norm(W2 @ tanh(W1 @ x + b1) + b2 - y)**2", "W2", "2(W2 h + b2 - y) hᵀ, where h = tanh(W1 x + b1)"),
    ],
)
def test_repeated_parts_are_named(expr: str, wrt, text: str) -> None:
    assert proven(expr, wrt) == text


def test_names_in_latex_are_bold_vectors_with_a_where() -> None:
    tex = derive("softmax(W @ x)", "x").latex_form()
    assert tex.endswith("\\quad \\text{where } \\mathbf{p} = \\operatorname{softmax}\\left(W \\mathbf{x}\\right)")
    assert "\\mathbf{p} \\mathbf{p}^{\\top}" in tex


def test_names_avoid_the_expressions_own_variables() -> None:
    text = proven("softmax(W @ p)", "p")  # p is taken: the softmax gets another letter
    assert "where p =" not in text and "= softmax(W p)" in text


# ----- zero is 0 -----


@pytest.mark.parametrize(("expr", "wrt"), [("inv(X) @ X", "X"), ("sum(x * 0)", "x"), ("sum(X @ x) * 0", "X")])
def test_zero_is_zero(expr: str, wrt: str) -> None:
    assert proven(expr, wrt) == "0"


# ----- precedence: one case per pair of operators -----

PLUS = node("add", x, y)
PRECEDENCE = [
    # (node, text, what it must not read as)
    (node("pow", node("add", const(1), s), attr=-1), "1/(1 + s)", "a sum's reciprocal keeps its parentheses"),
    (node("mul", PLUS, z), "(x + y) ∘ z", "a sum inside a Hadamard product"),
    (node("mul", z, PLUS), "z ∘ (x + y)", "a sum as the second factor"),
    (node("add", node("mul", x, y), z), "x ∘ y + z", "no parentheses a product inside a sum needs"),
    (node("add", x, node("mul", const(-1), PLUS)), "x - (y + z)"[:0] + "x - (x + y)", "a subtracted sum"),
    (node("mul", s, PLUS), "s(x + y)", "a scalar times a sum"),
    (node("matmul", node("add", X, A), x), "(X + A) x", "a sum times a vector"),
    (node("matmul", X, PLUS), "X(x + y)", "a matrix times a sum"),
    (node("T", node("add", X, A)), "(X + A)ᵀ", "the transpose of a sum"),
    (node("T", node("matmul", X, A)), "(X A)ᵀ", "the transpose of a product"),
    (node("inv", node("matmul", X, A)), "(X A)⁻¹", "the inverse of a product"),
    (node("inv", node("T", X)), "(Xᵀ)⁻¹", "the inverse of a transpose"),
    (node("pow", PLUS, attr=2), "(x + y)^∘2", "a power of a sum"),
    (node("pow", node("mul", x, y), attr=2), "(x ∘ y)^∘2", "a power of a product"),
    (fn("exp", PLUS), "exp(x + y)", "a function's argument"),
    (node("kron", node("add", X, A), B), "(X + A) ⊗ B", "a sum inside a Kronecker product"),
    (node("kron", node("matmul", X, A), B), "X A ⊗ B", "a product binds tighter than ⊗"),
    (node("mul", node("kron", X, A), s), "s(X ⊗ A)", "a scaled Kronecker product"),
    (node("add", node("kron", X, A), node("kron", A, X)), "X ⊗ A + A ⊗ X", "Kronecker products inside a sum"),
    (node("mul", node("pow", PLUS, attr=-1), z), "z ⊘ (x + y)", "a quotient by a sum"),
    (node("mul", const(-1), node("mul", x, y)), "-x ∘ y", "a negated Hadamard product"),
    (node("mul", const(2), node("add", X, A)), "2(X + A)", "a number times a sum"),
    (node("matmul", node("mul", const(2), X), x), "2 X x", "a number in a product comes first"),
    (node("outer", PLUS, z), "(x + y) zᵀ", "an outer product of a sum"),
    (node("trace", node("add", X, A)), "tr(X + A)", "a trace's argument"),
    (node("sum", PLUS), "𝟏ᵀ(x + y)", "a sum of a sum"),
]


@pytest.mark.parametrize(("e", "text", "why"), PRECEDENCE, ids=[w for _, _, w in PRECEDENCE])
def test_precedence(e, text: str, why: str) -> None:
    assert TextPrinter().doprint(e) == text, why
    latex = LatexPrinter().doprint(e)
    assert latex.count("\\left(") == latex.count("\\right)")
    assert (text.count("(") > 0) == ("\\left(" in latex or "\\frac" in latex or "(" in latex)


# ----- the same families in LaTeX -----

LATEX = [
    ("A @ X @ B @ c", "X", {}, r"\left(B \mathbf{c}\right)^{\top} \otimes A"),
    ("A @ inv(X) @ c", "X", {}, r"-\left(X^{-1} \mathbf{c}\right)^{\top} \otimes A X^{-1}"),
    ("log(det(X.T @ X))", "X", {}, r"2 X \left(X^{\top} X\right)^{-1}"),
    ("log(det(A.T @ X @ A))", "X", {"symmetric": ["X"]}, r"A \left(A^{\top} X A\right)^{-1} A^{\top}"),
    ("sum(exp(x) / (1 + exp(x)))", "x", {}, r"\sigma'\left(\mathbf{x}\right)"),
    ("sum(x / y)", "y", {}, r"-\mathbf{x} \oslash \mathbf{y}^{\circ 2}"),
    ("mean((X @ w - y)**2)", "w", {}, r"\frac{2}{m} X^{\top} \left(X \mathbf{w} - \mathbf{y}\right)"),
    (
        "x / norm(x)",
        "x",
        {},
        r"\frac{I - \frac{\mathbf{x} \mathbf{x}^{\top}}{\left\| \mathbf{x} \right\|_2^{2}}}"
        r"{\left\| \mathbf{x} \right\|_2}",
    ),
    (
        "softmax(W @ x)",
        "x",
        {},
        r"\left(\operatorname{diag}\left(\mathbf{p}\right) - \mathbf{p} \mathbf{p}^{\top}\right) W,"
        r" \quad \text{where } \mathbf{p} = \operatorname{softmax}\left(W \mathbf{x}\right)",
    ),
    ("inv(X) @ X", "X", {}, "0"),
]


@pytest.mark.parametrize(("expr", "wrt", "kw", "latex"), LATEX, ids=[f"d({r[0]})/d{r[1]}" for r in LATEX])
def test_forms_in_latex(expr: str, wrt: str, kw: dict, latex: str) -> None:
    d = derive(expr, wrt, **kw)
    assert d.proof.status == "proven"
    assert d.latex_form() == latex
