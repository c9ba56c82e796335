"""Matrix-calculus identities: each claim is checked exactly, and derive() must prove its own answer.

Claims are the textbook right-hand sides, written from the mathematics (Matrix Cookbook, Petersen &
Pedersen 2012, where an equation number exists). ``diag(v ** 0)`` spells an identity matrix, since the
expression language has no ``eye``. Jacobians by a matrix are in vec form (column-major), and numpy's
``kron(x, D)`` with a 1-D ``x`` is xᵀ ⊗ D.
"""

import pytest

from derive import check, derive

# Shorthands for the claims (plain text substitution keeps each table row one readable line).
SIG = "sigmoid(W @ x + b)"
DSIG = f"{SIG} * (1 - {SIG})"  # σ′ = σ(1 - σ)
D2SIG = f"{DSIG} * (1 - 2 * {SIG})"  # σ″ = σ(1 - σ)(1 - 2σ)
DTANH = "(1 - tanh(W @ x + b) ** 2)"  # tanh′ = 1 - tanh²
H = "tanh(W1 @ x + b1)"
R = f"(W2 @ {H} + b2 - y)"  # the MLP residual
MLP = "norm(W2 @ tanh(W1 @ x + b1) + b2 - y)**2"
DH = f"(W2.T @ {R}) * (1 - {H} ** 2)"  # the back-propagated signal at the hidden layer
CE = "-(y @ log(softmax(W @ x)))"
P = "softmax(W @ x) * sum(y) - y"  # d CE / dz, exact without assuming sum(y) = 1

SQ = {"A": (2, 3)}  # non-square sizes where shapes are declared
BCD = {"B": (2, 3), "C": (2, 4), "D": (4, 3)}
PX = "softmax(x)"
INV = {"A": (3, 2), "X": (2, 2), "B": (2, 3)}

# (expression, wrt, claim, shapes, expected derive() text or None)
CASES = [
    # Cookbook (69): d(x^T a)/dx = a
    ("x @ a", "x", "a", None, "a"),
    # Cookbook (70): d(a^T X b)/dX = a b^T
    ("a @ X @ b", "X", "outer(a, b)", {"X": (2, 3)}, "a bᵀ"),
    # Cookbook (71): d(a^T X^T b)/dX = b a^T
    ("a @ X.T @ b", "X", "outer(b, a)", {"X": (2, 3)}, "b aᵀ"),
    # Cookbook (72): d(a^T X a)/dX = a a^T
    ("a @ X @ a", "X", "outer(a, a)", None, "a aᵀ"),
    # Cookbook (77): d(b^T X^T X c)/dX = X (b c^T + c b^T)
    ("b @ X.T @ X @ c", "X", "X @ (outer(b, c) + outer(c, b))", {"X": (3, 2)}, None),
    # Cookbook (78): d((Bx+b)^T C (Dx+d))/dx = B^T C (Dx+d) + D^T C^T (Bx+b)
    ("(B @ x + b) @ C @ (D @ x + d)", "x", "B.T @ C @ (D @ x + d) + D.T @ C.T @ (B @ x + b)", BCD, None),
    # Cookbook (81): d(x^T B x)/dx = (B + B^T) x
    ("x @ B @ x", "x", "(B + B.T) @ x", None, "(Bᵀ + B) x"),
    # Cookbook (82): d(b^T X^T D X c)/dX = D^T X b c^T + D X c b^T
    ("b @ X.T @ D @ X @ c", "X", "D.T @ X @ outer(b, c) + D @ X @ outer(c, b)", {"X": (3, 2)}, None),
    # Cookbook (83): d((Xb+c)^T D (Xb+c))/dX = (D + D^T)(Xb + c) b^T
    ("(X @ b + c) @ D @ (X @ b + c)", "X", "(D + D.T) @ outer(X @ b + c, b)", {"X": (3, 2)}, None),
    # Cookbook (99): d tr(X)/dX = I
    ("trace(X)", "X", "diag(diag(X) ** 0)", None, "I"),
    # Cookbook (100): d tr(XA)/dX = A^T
    ("trace(X @ A)", "X", "A.T", {"X": (2, 3)}, "Aᵀ"),
    # Cookbook (101): d tr(AXB)/dX = A^T B^T
    ("trace(A @ X @ B)", "X", "A.T @ B.T", {"A": (2, 3), "X": (3, 4)}, "Aᵀ Bᵀ"),
    # Cookbook (102): d tr(A X^T B)/dX = B A
    ("trace(A @ X.T @ B)", "X", "B @ A", {"A": (2, 3), "X": (4, 3)}, "B A"),
    # Cookbook (103): d tr(X^T A)/dX = A
    ("trace(X.T @ A)", "X", "A", {"X": (2, 3)}, "A"),
    # Cookbook (104): d tr(A X^T)/dX = A
    ("trace(A @ X.T)", "X", "A", {"X": (2, 3)}, "A"),
    # Cookbook (106): d tr(X^2)/dX = 2 X^T
    ("trace(X @ X)", "X", "2 * X.T", None, "2 Xᵀ"),
    # Cookbook (107): d tr(X^2 B)/dX = (X B + B X)^T
    ("trace(X @ X @ B)", "X", "(X @ B + B @ X).T", None, None),
    # Cookbook (108): d tr(X^T B X)/dX = B X + B^T X
    ("trace(X.T @ B @ X)", "X", "B @ X + B.T @ X", {"X": (3, 2)}, None),
    # Cookbook (111): d tr(X B X^T)/dX = X B^T + X B
    ("trace(X @ B @ X.T)", "X", "X @ B.T + X @ B", {"X": (2, 3)}, None),
    # Cookbook (115): d tr(X^T X)/dX = 2 X
    ("trace(X.T @ X)", "X", "2 * X", {"X": (2, 3)}, "2 X"),
    # Cookbook (119): d tr((AXB+C)(AXB+C)^T)/dX = 2 A^T (AXB + C) B^T
    ("trace((A @ X @ B + C) @ (A @ X @ B + C).T)", "X", "2 * A.T @ (A @ X @ B + C) @ B.T", None, "2 Aᵀ(A X B + C) Bᵀ"),
    # Cookbook (124): d tr(A X^-1 B)/dX = -X^-T A^T B^T X^-T
    ("trace(A @ inv(X) @ B)", "X", "-inv(X).T @ A.T @ B.T @ inv(X).T", INV, "-X⁻ᵀ Aᵀ Bᵀ X⁻ᵀ"),
    # Cookbook (49): d det(X)/dX = det(X) X^-T
    ("det(X)", "X", "det(X) * inv(X).T", None, "det(X) X⁻ᵀ"),
    # Cookbook (57): d log det(X)/dX = X^-T
    ("log(det(X))", "X", "inv(X).T", None, "X⁻ᵀ"),
    # Cookbook (61): d(a^T X^-1 b)/dX = -X^-T a b^T X^-T
    ("a @ inv(X) @ b", "X", "-inv(X).T @ outer(a, b) @ inv(X).T", None, "-X⁻ᵀ a bᵀ X⁻ᵀ"),
    # d(c x^T x)/dx = 2 c x, c a scalar
    ("c * (x @ x)", "x", "2 * c * x", {"c": ()}, "2 c x"),
    # d(c a^T X b)/dX = c a b^T, c a scalar
    ("c * (a @ X @ b)", "X", "c * outer(a, b)", {"c": (), "X": (2, 3)}, "c a bᵀ"),
    # d||c x - y||^2/dc = 2 x^T (c x - y), c a scalar
    ("norm(c * x - y)**2", "c", "2 * x @ (c * x - y)", {"c": ()}, None),
    # d||Ax-b||^2/dx = 2 A^T (A x - b)
    ("norm(A @ x - b)**2", "x", "2 * A.T @ (A @ x - b)", SQ, "2 Aᵀ(A x - b)"),
    # d||Ax-b||^2/dA = 2 (A x - b) x^T
    ("norm(A @ x - b)**2", "A", "2 * outer(A @ x - b, x)", SQ, "2(A x - b) xᵀ"),
    # d||Ax-b||^2/db = -2 (A x - b)
    ("norm(A @ x - b)**2", "b", "-2 * (A @ x - b)", SQ, "-2(A x - b)"),
    # d(Wx+b)/dW = x^T ⊗ I
    ("W @ x + b", "W", "kron(x, diag(b ** 0))", {"W": (2, 3)}, "xᵀ ⊗ I"),
    # d(Wx+b)/dx = W
    ("W @ x + b", "x", "W", {"W": (2, 3)}, "W"),
    # d(Wx+b)/db = I
    ("W @ x + b", "b", "diag(b ** 0)", {"W": (2, 3)}, "I"),
    # dσ(Wx+b)/dW = x^T ⊗ diag(σ'(Wx+b))
    ("sigmoid(W @ x + b)", "W", f"kron(x, diag({DSIG}))", {"W": (2, 3)}, "xᵀ ⊗ diag(σ′(W x + b))"),
    # dσ(Wx+b)/dx = diag(σ'(Wx+b)) W
    ("sigmoid(W @ x + b)", "x", f"diag({DSIG}) @ W", {"W": (2, 3)}, "diag(σ′(W x + b)) W"),
    # dσ(Wx+b)/db = diag(σ'(Wx+b))
    ("sigmoid(W @ x + b)", "b", f"diag({DSIG})", {"W": (2, 3)}, "diag(σ′(W x + b))"),
    # d tanh(Wx+b)/dW = x^T ⊗ diag(1 - tanh^2(Wx+b))
    ("tanh(W @ x + b)", "W", f"kron(x, diag({DTANH}))", None, "xᵀ ⊗ diag(tanh′(W x + b))"),
    # d tanh(Wx+b)/dx = diag(1 - tanh^2(Wx+b)) W
    ("tanh(W @ x + b)", "x", f"diag({DTANH}) @ W", {"W": (2, 3)}, "diag(tanh′(W x + b)) W"),
    # d tanh(Wx+b)/db = diag(1 - tanh^2(Wx+b))
    ("tanh(W @ x + b)", "b", f"diag({DTANH})", None, None),
    # d relu(Wx+b)/dW = x^T ⊗ diag(step(Wx+b))
    ("relu(W @ x + b)", "W", "kron(x, diag(step(W @ x + b)))", None, None),
    # d relu(Wx+b)/dx = diag(step(Wx+b)) W
    ("relu(W @ x + b)", "x", "diag(step(W @ x + b)) @ W", {"W": (2, 3)}, None),
    # d relu(Wx+b)/db = diag(step(Wx+b))
    ("relu(W @ x + b)", "b", "diag(step(W @ x + b))", None, None),
    # d softplus(Wx+b)/dW = x^T ⊗ diag(σ(Wx+b))
    ("softplus(W @ x + b)", "W", f"kron(x, diag({SIG}))", None, None),
    # d softplus(Wx+b)/dx = diag(σ(Wx+b)) W
    ("softplus(W @ x + b)", "x", f"diag({SIG}) @ W", {"W": (2, 3)}, "diag(σ(W x + b)) W"),
    # d softplus(Wx+b)/db = diag(σ(Wx+b))
    ("softplus(W @ x + b)", "b", f"diag({SIG})", None, None),
    # MLP, h = tanh(W1 x + b1), r = W2 h + b2 - y: d||r||^2/dW1 = 2 ((W2^T r) ∘ (1 - h^2)) x^T
    (MLP, "W1", f"2 * outer({DH}, x)", None, None),
    # d||r||^2/db1 = 2 (W2^T r) ∘ (1 - h^2)
    (MLP, "b1", f"2 * {DH}", None, None),
    # d||r||^2/dW2 = 2 r h^T
    (MLP, "W2", f"2 * outer({R}, {H})", None, "2(W2 h + b2 - y) hᵀ, where h = tanh(W1 x + b1)"),
    # d||r||^2/db2 = 2 r
    (MLP, "b2", f"2 * {R}", None, "2(W2 tanh(W1 x + b1) + b2 - y)"),
    # d||r||^2/dx = 2 W1^T ((W2^T r) ∘ (1 - h^2))
    (MLP, "x", f"2 * W1.T @ ({DH})", None, None),
    # softmax cross-entropy, z = W x: d(-y^T log softmax(z))/dx = W^T (softmax(z) 1^T y - y)
    (CE, "x", f"W.T @ ({P})", {"W": (2, 3)}, None),
    # d(-y^T log softmax(W x))/dW = (softmax(z) 1^T y - y) x^T
    (CE, "W", f"outer({P}, x)", {"W": (2, 3)}, None),
    # d logsumexp(x)/dx = softmax(x)
    ("logsumexp(x)", "x", "softmax(x)", None, "softmax(x)"),
    # d logsumexp(Ax)/dx = A^T softmax(A x)
    ("logsumexp(A @ x)", "x", "A.T @ softmax(A @ x)", SQ, None),
    # Hessian: d^2||Ax-b||^2/dx^2 = 2 A^T A
    ("norm(A @ x - b)**2", ("x", "x"), "2 * A.T @ A", SQ, "2 Aᵀ A"),
    # Hessian: d^2 logsumexp(x)/dx^2 = diag(p) - p p^T, p = softmax(x)
    (
        "logsumexp(x)",
        ("x", "x"),
        "diag(softmax(x)) - outer(softmax(x), softmax(x))",
        None,
        "diag(p) - p pᵀ, where p = softmax(x)",
    ),
    # Hessian: d^2 sum(σ(Wx+b))/dx^2 = W^T diag(σ''(Wx+b)) W, σ'' = σ(1 - σ)(1 - 2σ)
    ("sum(sigmoid(W @ x + b))", ("x", "x"), f"W.T @ diag({D2SIG}) @ W", {"W": (2, 3)}, "Wᵀ diag(σ″(W x + b)) W"),
    # Hessian: d^2(x^T B x)/dx^2 = B + B^T
    ("x @ B @ x", ("x", "x"), "B + B.T", None, None),
]


def _ids(table):
    return [f"d({row[0]})/d{''.join(row[1])}" for row in table]


@pytest.mark.parametrize(("expr", "wrt", "claim", "shapes", "text"), CASES, ids=_ids(CASES))
def test_identity(expr, wrt, claim, shapes, text):
    c = check(expr, wrt, claim, shapes)
    assert c.ok, c.message
    d = derive(expr, wrt, shapes)
    assert d.proof.status == "proven", d.proof
    assert d.numeric.ok, d.numeric.error
    if text is not None:
        assert d.text == text


# (expression, wrt, wrong claim, shapes, the mistake it should be recognised as, or None)
WRONG = [
    # vector gradient without the factor 2
    ("norm(A @ x - b)**2", "x", "A.T @ (A @ x - b)", SQ, "a missing factor of 2"),
    # vector gradient with the sign flipped
    ("norm(A @ x - b)**2", "b", "2 * (A @ x - b)", SQ, "a flipped sign"),
    # matrix gradient transposed: b a^T for d(a^T X b)/dX
    ("a @ X @ b", "X", "outer(b, a)", {"X": (2, 3)}, "transpose"),
    # trace gradient transposed: B A for d tr(AXB)/dX
    ("trace(A @ X @ B)", "X", "B @ A", {"A": (2, 3), "X": (3, 4)}, "transpose"),
    # log det: X^-1 instead of X^-T
    ("log(det(X))", "X", "inv(X)", None, "transpose"),
    # Jacobian in the wrong layout: W^T diag(σ') instead of diag(σ') W
    ("sigmoid(W @ x + b)", "x", f"W.T @ diag({DSIG})", {"W": (2, 3)}, "transpose"),
    # Jacobian by a matrix with the Kronecker factors swapped (x ⊗ D is not x^T ⊗ D)
    ("tanh(W @ x + b)", "W", f"kron(diag({DTANH}), x)", None, None),
    # MLP output-bias gradient without the factor 2
    (MLP, "b2", R, None, "a missing factor of 2"),
    # softmax cross-entropy assuming sum(y) = 1, which is not given
    (CE, "x", "W.T @ (softmax(W @ x) - y)", {"W": (2, 3)}, None),
    # Hessian without the factor 2
    ("norm(A @ x - b)**2", ("x", "x"), "A.T @ A", SQ, "a missing factor of 2"),
    # logsumexp Hessian missing the rank-one term
    ("logsumexp(x)", ("x", "x"), "diag(softmax(x))", None, None),
]


@pytest.mark.parametrize(("expr", "wrt", "claim", "shapes", "mistake"), WRONG, ids=_ids(WRONG))
def test_wrong_claim_rejected(expr, wrt, claim, shapes, mistake):
    c = check(expr, wrt, claim, shapes)
    assert not c.ok
    if mistake is not None:
        assert c.mistake is not None and mistake in c.mistake, c.message
