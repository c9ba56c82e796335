"""Element-wise scalar functions: one table row each.

A row gives the function's SymPy meaning (for the exact proof), its
derivative as an expression (for the rules), and how it prints. ``fn``
nodes carry ``attr=(name, order)``: ``order`` counts derivatives taken, so
``("sigmoid", 1)`` is sigma'. Only functions whose derivatives people
write with a prime (sigmoid, tanh) keep ``order > 0``; every other
derivative is an ordinary expression (``exp' = exp``, ``log' = 1/x``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from .ir import Node, const, hadamard, node, power

# ----- SymPy functions that SymPy lacks -----


class _Named(sp.Function):
    """A scalar function printed in LaTeX as ``tex``, as in formulas."""

    tex = ""

    def _latex(self, printer: object, exp: object = None) -> str:
        base = self.tex + r"\left(" + printer._print(self.args[0]) + r"\right)"
        return base if exp is None else f"{base}^{{{exp}}}"


class sigmoid(_Named):  # noqa: N801 - named as in formulas
    """sigma(x) = 1 / (1 + exp(-x)); sigma' = sigma (1 - sigma)."""

    tex = r"\sigma"

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, x: sp.Expr, **kwargs: object) -> sp.Expr:
        return 1 / (1 + sp.exp(-x))

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return self.rewrite(sp.exp)._eval_evalf(prec)


class tanh(_Named):  # noqa: N801 - named as in formulas
    """tanh, with tanh' = 1 - tanh^2, left unevaluated: SymPy's own asks assumptions of
    its argument, which costs exponential time on nested tanh(tanh(...))."""

    tex = r"\tanh"

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return 1 - tanh(self.args[0]) ** 2

    def _eval_rewrite_as_exp(self, x: sp.Expr, **kwargs: object) -> sp.Expr:
        return (sp.exp(2 * x) - 1) / (sp.exp(2 * x) + 1)

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return sp.tanh(self.args[0])._eval_evalf(prec)


class step(_Named):  # noqa: N801 - named as in formulas
    """The derivative of relu: 1 for x > 0, else 0 (the subgradient 0 at x = 0)."""

    tex = r"\operatorname{step}"

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.S.Zero

    def _eval_evalf(self, prec: int) -> sp.Expr:
        x = self.args[0].evalf(prec)
        return sp.Float(1 if x > 0 else 0, prec) if x.is_number else None


class relu(_Named):  # noqa: N801 - named as in formulas
    """max(x, 0)."""

    tex = r"\operatorname{relu}"

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return step(self.args[0])

    def _eval_evalf(self, prec: int) -> sp.Expr:
        x = self.args[0].evalf(prec)
        return sp.Max(x, 0) if x.is_number else None


class softplus(_Named):  # noqa: N801 - named as in formulas
    """log(1 + exp(x)); softplus' = sigma."""

    tex = r"\operatorname{softplus}"

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x: sp.Expr, **kwargs: object) -> sp.Expr:
        return sp.log(1 + sp.exp(x))

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return self.rewrite(sp.exp)._eval_evalf(prec)


# ----- the table -----


@dataclass(frozen=True)
class Fn:
    """One element-wise function.

    ``deriv(a, order)`` is the derivative of the ``order``-th derivative at
    ``a``, as an expression of the same shape as ``a``; ``None`` means zero.
    ``sympy`` is the scalar function used for explicit entries.
    """

    name: str
    latex: str
    sympy: Callable[[sp.Expr], sp.Expr]
    deriv: Callable[[Node, int], Node | None]
    primes: bool = False  # derivatives written sigma', sigma'' rather than expanded


def fn(name: str, a: Node, order: int = 0) -> Node:
    return node("fn", a, attr=(name, order))


def _primed(name: str) -> Callable[[Node, int], Node]:
    return lambda a, k: fn(name, a, k + 1)


FUNCTIONS: dict[str, Fn] = {
    f.name: f
    for f in [
        Fn("exp", r"\exp", sp.exp, lambda a, k: fn("exp", a)),
        Fn("log", r"\log", sp.log, lambda a, k: power(a, -1)),
        Fn(
            "sqrt",
            r"\sqrt",
            sp.sqrt,
            lambda a, k: hadamard(const(sp.Rational(1, 2)), power(fn("sqrt", a), -1)),
        ),
        Fn("sin", r"\sin", sp.sin, lambda a, k: fn("cos", a)),
        Fn("cos", r"\cos", sp.cos, lambda a, k: hadamard(const(-1), fn("sin", a))),
        Fn("tanh", r"\tanh", tanh, _primed("tanh"), primes=True),
        Fn("sigmoid", r"\sigma", sigmoid, _primed("sigmoid"), primes=True),
        Fn("relu", r"\operatorname{relu}", relu, lambda a, k: fn("step", a)),
        Fn("step", r"\operatorname{step}", step, lambda a, k: None),
        Fn("softplus", r"\operatorname{softplus}", softplus, lambda a, k: fn("sigmoid", a)),
    ]
}


def sympy_value(name: str, order: int, x: sp.Expr) -> sp.Expr:
    """The ``order``-th derivative of function ``name`` at the scalar ``x``."""
    f = FUNCTIONS[name].sympy
    if order == 0:
        return f(x)
    t = sp.Dummy("t")
    return sp.diff(f(t), t, order).xreplace({t: x})


def expand_primes(name: str, order: int, a: Node) -> Node:
    """sigma' as sigma (1 - sigma), tanh' as 1 - tanh^2: the written-out forms."""
    f = fn(name, a)
    one_minus = lambda x: node("add", const(1), hadamard(const(-1), x))  # noqa: E731
    if (name, order) == ("sigmoid", 1):
        return hadamard(f, one_minus(f))
    if (name, order) == ("tanh", 1):
        return one_minus(power(f, 2))
    if (name, order) == ("sigmoid", 2):
        return hadamard(f, one_minus(f), one_minus(hadamard(const(2), f)))
    if (name, order) == ("tanh", 2):
        return hadamard(const(-2), f, one_minus(power(f, 2)))
    return fn(name, a, order)
