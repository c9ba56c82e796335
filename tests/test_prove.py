"""The comparison itself: each domain must tell equal from unequal, and the proof must say how sure it is."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from derive import derive
from derive.context import Budget
from derive.domains import ExactDomain, ModularDomain
from derive.explicit import Kit, concrete, entries, evaluate, jacobian_array, seeded, sympy_jacobian
from derive.layout import Kind, as_tensor
from derive.parse import parse
from derive.prove import Sides, _exact, _shared, prove

SYMS = sp.symbols("a b c d")
BACKENDS = ["flint", "sympy"]


def rationals() -> st.SearchStrategy:
    leaf = st.sampled_from(SYMS) | st.integers(-3, 3).map(sp.Integer) | st.fractions(-2, 2).map(sp.Rational)
    return st.recursive(
        leaf,
        lambda inner: (
            st.tuples(inner, inner).map(lambda p: p[0] + p[1])
            | st.tuples(inner, inner).map(lambda p: p[0] * p[1])
            | st.tuples(inner, st.integers(0, 3)).map(lambda p: p[0] ** p[1])
            | st.tuples(inner, inner).map(lambda p: p[0] / (p[1] ** 2 + 1))
        ),
        max_leaves=8,
    )


def in_domain(e: sp.Expr, dom):
    """Build e in a domain by its own arithmetic (never through SymPy's simplification)."""
    if e.is_Symbol:
        return dom.variable(str(e))
    if e.is_Rational:
        return dom.const(e)
    args = [in_domain(a, dom) for a in e.args]
    if e.is_Add:
        return sum(args[1:], args[0])
    if e.is_Mul:
        out = args[0]
        for a in args[1:]:
            out = out * a
        return out
    if e.is_Pow:
        k = int(e.exp)
        return args[0] ** k if k >= 0 else dom.const(1) / args[0] ** (-k)
    raise AssertionError(e)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=150, deadline=None, derandomize=True)
@given(p=rationals(), q=rationals())
def test_exact_domain_agrees_with_sympy(backend: str, p: sp.Expr, q: sp.Expr) -> None:
    dom = ExactDomain([str(s) for s in SYMS], 0, Budget(60), backend)
    try:
        diff = in_domain(p, dom) - in_domain(q, dom)
    except Exception:  # a division by zero for every value: SymPy says zoo
        assert not (sp.S(p).is_finite and sp.S(q).is_finite)
        return
    assert dom.is_zero(diff) == (sp.cancel(sp.together(p - q)) == 0)


def test_exact_domain_knows_square_roots_square() -> None:
    dom = ExactDomain(["a", "b"], 4, Budget(60))
    a, b = dom.variable("a"), dom.variable("b")
    s = dom.sqrt(a * a + b)
    assert dom.is_zero(s * s - (a * a + b))  # sqrt(u)^2 = u
    assert dom.is_zero(dom.sqrt(a * a * b * b) - a * b) or dom.is_zero(dom.sqrt(a * a * b * b) + a * b)
    assert not dom.is_zero(s - a)


def test_modular_values_separate_different_polynomials() -> None:
    for seed in range(5):
        dom = ModularDomain(seed)
        x, y = dom.point(), dom.point()
        assert ((x + y) ** 2).v == (x * x + 2 * x * y + y * y).v
        assert ((x + y) ** 2).v != (x * x + y * y).v
        e = dom.exp(x)
        assert (e * dom.exp(-x)).v == 1  # exp(-u) = 1/exp(u) holds exactly


def sides(text: str, shapes: dict, wrt: str, form_text: str) -> tuple[Sides, object]:
    problem = parse(text, shapes)
    sizes = {s: int(problem.sizes[s]) for s in problem.sizes}
    form = parse(form_text, problem.shapes).expr
    kind = Kind.GRADIENT if problem.expr.shape == () else Kind.JACOBIAN
    out = concrete(problem.expr.shape, sizes)
    var = concrete(problem.shapes[wrt], sizes)
    s = Sides(problem.expr, form, (wrt,), problem.shapes, sizes, {}, lambda m: as_tensor(m, kind, None, out, var))
    return s, entries(problem.shapes, sizes)


def test_right_form_is_proven_exactly_and_a_wrong_one_refuted() -> None:
    s, ents = sides("norm(A @ x - b)**2", {"A": (3, 2)}, "x", "2 * A.T @ (A @ x - b)")
    proof = prove(s, ents, Budget(60))
    assert proof.status == "proven" and proof.exact
    s, ents = sides("norm(A @ x - b)**2", {"A": (3, 2)}, "x", "A.T @ (A @ x - b)")  # no factor 2
    proof = prove(s, ents, Budget(60))
    assert proof.status == "refuted"
    m = proof.mismatches[0]
    assert sp.expand(m.expected - 2 * m.got) == 0


def test_shared_subexpressions_are_kept_as_symbols_and_the_proof_says_so() -> None:
    s, ents = sides("norm(A @ x - b)**2", {"A": (3, 2)}, "x", "2 * A.T @ (A @ x - b)")
    assert {str(n.op) for n in _shared(s)} >= {"matmul", "add"}  # A x and A x - b
    proof = prove(s, ents, Budget(60))
    assert proof.status == "proven" and proof.exact and "share as symbols" in proof.method
    # with the symbols kept, a wrong factor is still a difference
    s, ents = sides("norm(A @ x - b)**2", {"A": (3, 2)}, "x", "3 * A.T @ (A @ x - b)")
    assert _exact(s, ents, 8, Budget(60), _shared(s))[0] != []


def test_equal_only_once_multiplied_out_falls_back_from_the_symbols() -> None:
    # the extra term is (A x - b) - A x + b = 0, which independent symbols for A x - b and A x cannot see
    s, ents = sides("norm(A @ x - b)**2", {"A": (3, 2)}, "x", "2 * A.T @ (A @ x - b) + A.T @ ((A @ x - b) - A @ x + b)")
    assert len(_exact(s, ents, 8, Budget(60), _shared(s))[0]) == 2  # both entries differ in the symbols
    assert _exact(s, ents, 8, Budget(60))[0] == []
    proof = prove(s, ents, Budget(60))
    assert proof.status == "proven" and proof.exact and "symbols" not in proof.method


def test_a_form_that_forgets_the_derivative_of_sigmoid_is_refuted() -> None:
    s, ents = sides("sigmoid(W @ x)", {"W": (2, 3)}, "x", "W")  # forgot diag(sigma')
    assert prove(s, ents, Budget(60)).status == "refuted"


def test_an_identity_the_algebra_cannot_see_is_unproven_not_refuted() -> None:
    # d exp(2 x)/dx = 2 exp(2 x), written as 2 exp(x)^2: true, but exp(2u) and exp(u)^2 are different symbols
    s, ents = sides("exp(2 * x)", {"x": (2,)}, "x", "diag(2 * exp(x) ** 2)")
    proof = prove(s, ents, Budget(60))
    assert proof.status == "unproven"
    assert "agree numerically" in proof.method


def test_a_probabilistic_proof_says_so_with_its_bound() -> None:
    # x ** 100 is too large a power to expand exactly; the random-point check still proves it
    d = derive("sum(x ** 100)", "x")
    assert d.proof.status == "proven" and not d.proof.exact
    assert d.proof.bits >= 60 and "probability of error at most 2^-" in d.proof.method


@pytest.mark.parametrize(("text", "wrt"), [("norm(A @ x - b)**2", "x"), ("x @ A @ x", "A"),
                                         ("trace(inv(X) @ A)", "X"), ("(A @ x) / (x @ x)", "x")])  # fmt: skip
def test_dual_numbers_agree_with_sympy_diff(text: str, wrt: str) -> None:
    # the scalar chain rule through Dual numbers (the proof's side) against SymPy's diff of every entry
    problem = parse(text)
    sizes = {s: 2 + i for i, s in enumerate(sorted({d for sh in problem.shapes.values() for d in sh}, key=str))}
    ents = entries(problem.shapes, sizes)
    dom = ExactDomain(sorted({str(x) for lab in ents.labels.values() for x in lab.ravel()}), 8, Budget(60))
    values = {n: np.vectorize(dom.variable, otypes=[object])(lab) for n, lab in ents.labels.items()}
    duals = {n: v for n, v in seeded(values, ents, (wrt,), dom.const(1)).items()}
    ours = jacobian_array(evaluate(problem.expr, Kit(dom, sizes, duals)), ents, (wrt,), {}, dom.const(0))
    _, theirs = sympy_jacobian(problem.expr, problem.shapes, sizes, (wrt,))
    for a, b in zip(ours.ravel(), theirs.ravel(), strict=True):
        assert dom.is_zero(dom.const(a) - in_domain(sp.together(b), dom))


def test_time_budget_gives_not_finished() -> None:
    s, ents = sides("norm(A @ x - b)**2", {"A": (3, 2)}, "x", "2 * A.T @ (A @ x - b)")
    proof = prove(s, ents, Budget(-1.0))
    assert proof.status == "not finished"
