"""The exact comparison itself: it must tell equal from unequal, on both paths."""

import numpy as np
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from derive import explicit
from derive.core import matrix_form
from derive.parse import parse
from derive.prove import prove

SYMS = sp.symbols("a b c d")
ENV = {"v": np.array(SYMS, dtype=object)}


def polynomials() -> st.SearchStrategy:
    leaf = st.sampled_from(SYMS) | st.integers(-3, 3).map(sp.Integer) | st.fractions(-2, 2).map(sp.Rational)
    return st.recursive(
        leaf,
        lambda inner: (
            st.tuples(inner, inner).map(lambda p: p[0] + p[1])
            | st.tuples(inner, inner).map(lambda p: p[0] * p[1])
            | st.tuples(inner, st.integers(0, 3)).map(lambda p: p[0] ** p[1])
        ),
        max_leaves=8,
    )


@settings(max_examples=200, deadline=None, derandomize=True)
@given(polynomials(), polynomials())
def test_sparse_polynomials_agree_with_sympy_expand(p: sp.Expr, q: sp.Expr) -> None:
    poly = explicit.Polynomials(ENV)
    assert (poly(p) == poly(q)) == (sp.expand(p - q) == 0)
    assert sp.expand(poly.expr(poly(p), list(SYMS)) - p) == 0


def evidence_and_env(text: str, shapes: dict, wrt: str):
    problem = parse(text, shapes)
    sizes = explicit.choose_sizes(problem.shapes)
    env = explicit.environment(problem.shapes, sizes)
    return problem, sizes, env, explicit.evidence(problem.expr, env, sizes, (wrt,))


def test_polynomial_path_proves_the_right_form_and_refutes_a_wrong_one() -> None:
    problem, sizes, env, ev = evidence_and_env("norm(A @ x - b)**2", {"A": (3, 2)}, "x")
    assert ev.poly is not None  # the fast path applied
    shapes = {"A": (3, 2)}
    right = explicit.evaluate(matrix_form(problem, ("x",), "gradient"), env, sizes)
    assert prove(ev, right, shapes, "it").status == "proven"
    wrong = explicit.evaluate(parse("A.T @ (A @ x - b)", {"A": (3, 2)}).expr, env, sizes)  # no factor 2
    proof = prove(ev, wrong, shapes, "it")
    assert proof.status == "refuted"
    m = proof.mismatches[0]
    assert sp.expand(m.expected - 2 * m.got) == 0


def test_sympy_path_refutes_a_wrong_form() -> None:
    _, sizes, env, ev = evidence_and_env("sigmoid(W @ x)", {"W": (2, 3)}, "x")
    assert ev.poly is None  # sigmoid is not a polynomial
    wrong = explicit.evaluate(parse("W", {"W": (2, 3)}).expr, env, sizes)  # forgot diag(sigma')
    assert prove(ev, wrong, {"W": (2, 3)}, "it").status == "refuted"


def test_chain_rule_path_agrees_with_sympy_diff() -> None:
    for text, wrt in [("norm(A @ x - b)**2", "x"), ("x @ A @ x", "A"), ("trace(A @ X @ B)", "X")]:
        problem, sizes, env, ev = evidence_and_env(text, {}, wrt)
        direct = explicit.elementwise_derivative(explicit.evaluate(problem.expr, env, sizes), env[wrt])
        fast = ev.sympy()
        assert all(sp.expand(a - b) == 0 for a, b in zip(direct.ravel(), fast.ravel(), strict=True))
