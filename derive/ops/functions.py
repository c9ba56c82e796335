"""Element-wise scalar functions: one :class:`Fn` each, with everything about it.

A function node is ``fn`` with ``attr=(name, order)``: ``order`` counts
derivatives taken, so ``("sigmoid", 1)`` is sigma'. A row gives how users
write the function, its meaning in terms of a few primitives (exp, log,
sqrt, sin, cos and the sign indicator ``step``; the exact proof
differentiates that meaning itself, independently of ``deriv``), its
derivative as an expression (for the rules), its written-out derivatives
(when primes are not wanted), its numpy code per order and its notation.
Adding a function means adding one row here, and its tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import sympy as sp

from ..ir import Node
from .build import const, fn, hadamard, minus, node, power

# ----- SymPy functions for showing entries (the write-up's element-wise steps) -----


class _Named(sp.Function):
    """A scalar function printed in LaTeX as ``tex``, as in formulas."""

    tex = ""

    def _latex(self, printer: Any, exp: object = None) -> str:
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
    """tanh, with tanh' = 1 - tanh^2, left unevaluated (SymPy's own asks costly assumptions)."""

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


class heaviside(_Named):  # noqa: N801 - named as in formulas
    """1 for x > 0, 0 for x < 0, 1/2 at 0: the derivative of max(x, y) by x."""

    tex = r"H"

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.S.Zero

    def _eval_evalf(self, prec: int) -> sp.Expr:
        x = self.args[0].evalf(prec)
        return sp.Float(1 if x > 0 else 0 if x < 0 else 0.5, prec) if x.is_number else None


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

Deriv = Callable[[Node, int], Node | None]


@dataclass(frozen=True)
class Fn:
    """One element-wise function.

    - ``meaning(s, x)``: the function in terms of the primitives of ``s``
      (``s.exp``, ``s.log``, ``s.sqrt``, ``s.sin``, ``s.cos``, ``s.step``) and
      arithmetic; the proof evaluates and differentiates this, entry by entry.
    - ``deriv(a, order)``: the derivative of the ``order``-th derivative at ``a``,
      an expression of ``a``'s shape; None means zero.
    - ``numpy``: code for each order (0, 1, 2, ...): ``"np.exp"`` is called,
      ``"_sigmoid"`` is a helper of :mod:`derive.numpy_helpers`, and a text with
      ``{}`` is filled with the operand; None where there is none.
    - ``written(a, order)``: the written-out form of a derivative (sigma (1 - sigma))
      for ``primes=False``; None keeps the prime.
    - ``calls``/``prefixes``: how users write it; ``note``: its convention, if any.
    - ``mask``: code (with ``{}``) for the value as a boolean array, used as a factor of a product with a
      float array (``g * (z > 0)``: numpy casts it; a pass cheaper than ``np.heaviside``).
    - ``nonnegative``: the orders whose values are ≥ 0 everywhere (σ and σ′, exp): generated code
      may take their square root (Aᵀ diag(s) A = SᵀS with S = diag(√s) A).
    """

    name: str
    meaning: Callable[[Any, Any], Any]
    deriv: Deriv
    numpy: tuple[str | None, ...]
    latex: str
    text: str
    display: Callable[[sp.Expr], sp.Expr]
    calls: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ("",)
    primes: bool = False
    written: Callable[[Node, int], Node | None] = lambda a, order: None
    note: str = ""
    nonnegative: tuple[int, ...] = ()
    mask: str = ""


def _primed(name: str) -> Deriv:
    return lambda a, k: fn(name, a, k + 1)


def _one_minus(x: Node) -> Node:
    return minus(const(1), x)


def _sigmoid_written(a: Node, order: int) -> Node | None:
    s = fn("sigmoid", a)
    if order == 1:
        return hadamard(s, _one_minus(s))
    if order == 2:
        return hadamard(s, _one_minus(s), _one_minus(hadamard(const(2), s)))
    return None


def _tanh_written(a: Node, order: int) -> Node | None:
    t = fn("tanh", a)
    if order == 1:
        return _one_minus(power(t, 2))
    if order == 2:
        return hadamard(const(-2), t, _one_minus(power(t, 2)))
    return None


NP = ("", "np.", "numpy.")

FUNCTIONS: MappingProxyType[str, Fn] = MappingProxyType(
    {
        f.name: f
        for f in (
            Fn("exp", lambda s, x: s.exp(x), lambda a, k: fn("exp", a), ("np.exp",), r"\exp", "exp", sp.exp,
               calls=("exp",), prefixes=NP, nonnegative=(0,)),
            Fn("log", lambda s, x: s.log(x), lambda a, k: power(a, -1), ("np.log",), r"\log", "log", sp.log,
               calls=("log",), prefixes=NP),
            Fn("log1p", lambda s, x: s.log(1 + x), lambda a, k: power(node("add", const(1), a), -1), ("np.log1p",),
               r"\operatorname{log1p}", "log1p", lambda x: sp.log(1 + x), calls=("log1p",), prefixes=NP),
            Fn("expm1", lambda s, x: s.exp(x) - 1, lambda a, k: fn("exp", a), ("np.expm1",),
               r"\operatorname{expm1}", "expm1", lambda x: sp.exp(x) - 1, calls=("expm1",), prefixes=NP),
            Fn("sqrt", lambda s, x: s.sqrt(x),
               lambda a, k: hadamard(const(sp.Rational(1, 2)), power(fn("sqrt", a), -1)), ("np.sqrt",),
               r"\sqrt", "sqrt", sp.sqrt, calls=("sqrt",), prefixes=NP, nonnegative=(0,)),
            Fn("sin", lambda s, x: s.sin(x), lambda a, k: fn("cos", a), ("np.sin",), r"\sin", "sin", sp.sin,
               calls=("sin",), prefixes=NP),
            Fn("cos", lambda s, x: s.cos(x), lambda a, k: hadamard(const(-1), fn("sin", a)), ("np.cos",),
               r"\cos", "cos", sp.cos, calls=("cos",), prefixes=NP),
            Fn("tanh", lambda s, x: 1 - 2 / (s.exp(2 * x) + 1), _primed("tanh"), ("np.tanh", "_dtanh", "_d2tanh"),
               r"\tanh", "tanh", tanh, calls=("tanh",), prefixes=NP, primes=True, written=_tanh_written,
               nonnegative=(1,)),
            Fn("sigmoid", lambda s, x: 1 / (1 + s.exp(-x)), _primed("sigmoid"),
               ("_sigmoid", "_dsigmoid", "_d2sigmoid"), r"\sigma", "σ", sigmoid,
               calls=("sigmoid", "expit"), prefixes=("", "scipy.special.", "special."), primes=True,
               written=_sigmoid_written, nonnegative=(0, 1)),
            Fn("softplus", lambda s, x: s.log(1 + s.exp(x)), lambda a, k: fn("sigmoid", a),
               ("_softplus",), r"\operatorname{softplus}", "softplus", softplus, calls=("softplus",),
               nonnegative=(0,)),
            Fn("relu", lambda s, x: s.step(x) * x, lambda a, k: fn("step", a), ("np.maximum({}, 0.0)",),
               r"\operatorname{relu}", "relu", relu, calls=("relu",), note="relu′(0) = 0 (the subgradient 0)",
               nonnegative=(0,)),
            Fn("step", lambda s, x: s.step(x), lambda a, k: None, ("np.heaviside({}, 0.0)",),
               r"\operatorname{step}", "step", step, calls=("step",), nonnegative=(0,),
               mask="({} > 0)"),
            Fn("heaviside", lambda s, x: s.step(x), lambda a, k: None, ("np.heaviside({}, 0.5)",), "H", "H",
               heaviside, nonnegative=(0,)),
            Fn("abs", lambda s, x: x * (2 * s.step(x) - 1), lambda a, k: fn("sign", a), ("np.abs",),
               r"\operatorname{abs}", "abs", sp.Abs, calls=("abs", "absolute"), prefixes=NP,
               note="abs′(0) = sign(0) = 0 (the subgradient 0)", nonnegative=(0,)),
            Fn("sign", lambda s, x: 2 * s.step(x) - 1, lambda a, k: None, ("np.sign",), r"\operatorname{sign}",
               "sign", sp.sign, calls=("sign",), prefixes=NP),
        )
    }
)  # fmt: skip


def display_value(name: str, order: int, x: sp.Expr) -> sp.Expr:
    """The ``order``-th derivative of function ``name`` at the SymPy scalar ``x``, for showing."""
    f = FUNCTIONS[name].display
    if order == 0:
        return f(x)
    t = sp.Dummy("t")
    return sp.diff(f(t), t, order).xreplace({t: x})


def written_out(name: str, order: int, a: Node) -> Node:
    """sigma' as sigma (1 - sigma), tanh' as 1 - tanh^2: the written-out forms; else the prime."""
    out = FUNCTIONS[name].written(a, order) if order else None
    return out if out is not None else fn(name, a, order)
