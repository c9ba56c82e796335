"""The differentiation rules: one table row per op.

Each row states the differential identity it encodes (with its Matrix
Cookbook equation number where it has one) and gives it in the two forms
the engine needs:

- ``vjp(e, G, i)``: the adjoint of ``e.args[i]`` given the adjoint ``G`` of
  ``e`` (reverse mode). A scalar's gradient comes out in the shape of the
  variable: df = tr(G^T dX) => df/dX = G.
- ``jac(e, Js)``: the Jacobian of ``vec(e)`` given those of its operands
  (forward mode, numerator layout, column-major vec). Vector- and
  matrix-valued derivatives come out as Kronecker/vec matrices:
  vec(A dX B) = (B^T (x) A) vec(dX).

A missing rule raises :class:`NoRule` once, here, naming the op; the caller
then falls back to the element-wise form and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from . import ir
from .functions import FUNCTIONS, fn
from .ir import Node, hadamard, node, power

Vjp = Callable[[Node, Node, int], Node | None]
Jac = Callable[[Node, list[Node | None]], Node | None]


class NoRule(Exception):
    """No rule differentiates this op (in this direction)."""


@dataclass(frozen=True)
class Rule:
    identity: str
    cookbook: str | None
    vjp: Vjp | None
    jac: Jac | None


# ----- small constructors -----


def mm(a: Node, b: Node) -> Node:
    return node("matmul", a, b)


def neg(a: Node) -> Node:
    return node("mul", ir.MINUS_ONE, a)


def T(a: Node) -> Node:
    return node("T", a)


def vec(a: Node) -> Node:
    return a if a.ndim <= 1 else node("vec", a)


def diag_of(a: Node) -> Node:
    """diag(vec(a)): the Jacobian of an element-wise op with derivative ``a``."""
    return node("diag", vec(a))


def inv_T(x: Node) -> Node:
    return T(node("inv", x))


def lin(m: Node, j: Node | None) -> Node | None:
    """``m @ j``, or zero (None) when ``j`` is zero."""
    return None if j is None else mm(m, j)


def plus(*js: Node | None) -> Node | None:
    kept = [j for j in js if j is not None]
    if not kept:
        return None
    out = kept[0]
    for j in kept[1:]:
        out = node("add", out, j)
    return out


def unbroadcast(g: Node, shape: ir.Shape) -> Node:
    """The adjoint of a scalar that was broadcast: sum the adjoint."""
    return node("sum", g) if shape == () and g.shape != () else g


def scaled_jac(d: Node, j: Node | None) -> Node | None:
    """Jacobian of an element-wise map with derivative ``d`` applied to ``j``."""
    if j is None:
        return None
    return hadamard(d, j) if d.shape == () else mm(diag_of(d), j)


# ----- element-wise -----


def _add_jac(e: Node, js: list[Node | None]) -> Node | None:
    (a, b), (ja, jb) = e.args, js
    return plus(*(_broadcast_jac(x, j, e) for x, j in ((a, ja), (b, jb))))


def _broadcast_jac(x: Node, j: Node | None, e: Node) -> Node | None:
    if j is None or x.shape == e.shape:
        return j
    return mm(node("col", ir.ones((e.size,))), j)


def _mul_vjp(e: Node, g: Node, i: int) -> Node:
    other = e.args[1 - i]
    return unbroadcast(hadamard(g, other), e.args[i].shape)


def _mul_jac(e: Node, js: list[Node | None]) -> Node | None:
    (a, b), (ja, jb) = e.args, js
    return plus(_mul_term(a, b, ja), _mul_term(b, a, jb))


def _mul_term(x: Node, other: Node, j: Node | None) -> Node | None:
    """The part of d(x (.) other) that comes from dx, given x's Jacobian j."""
    if j is None:
        return None
    if other.shape == ():
        return hadamard(other, j)
    if x.shape == ():
        return mm(node("col", vec(other)), j)  # a scalar times a tensor: vec(other) dx
    return mm(diag_of(other), j)


def _pow_deriv(e: Node) -> Node:
    a, p = e.args[0], e.attr
    return hadamard(ir.const(p), power(a, p - 1))


def _fn_deriv(e: Node) -> Node:
    name, order = e.attr
    d = FUNCTIONS[name].deriv(e.args[0], order)
    if d is None:
        raise _Zero
    return d


class _Zero(Exception):
    """The derivative is identically zero (relu's step, say)."""


def _elementwise(deriv: Callable[[Node], Node]) -> tuple[Vjp, Jac]:
    def vjp(e: Node, g: Node, i: int) -> Node | None:
        try:
            return hadamard(g, deriv(e))
        except _Zero:
            return None

    def jac(e: Node, js: list[Node | None]) -> Node | None:
        try:
            return scaled_jac(deriv(e), js[0])
        except _Zero:
            return None

    return vjp, jac


# ----- matrix products -----


def _matmul_vjp(e: Node, g: Node, i: int) -> Node:
    a, b = e.args
    if a.ndim == 1 and b.ndim == 1:  # x @ y, a scalar
        return hadamard(g, b if i == 0 else a)
    if b.ndim == 1:  # A @ x
        return node("outer", g, b) if i == 0 else mm(T(a), g)
    if a.ndim == 1:  # x @ A, that is A^T x
        return mm(b, g) if i == 0 else node("outer", a, g)
    return mm(g, T(b)) if i == 0 else mm(T(a), g)


def _matmul_jac(e: Node, js: list[Node | None]) -> Node | None:
    (a, b), (ja, jb) = e.args, js
    if a.ndim == 1 and b.ndim == 1:
        return plus(lin(node("row", b), ja), lin(node("row", a), jb))
    if b.ndim == 1:  # vec(dA x) = (x^T (x) I) vec(dA)
        m = a.shape[0]
        return plus(lin(node("kron", node("row", b), ir.eye(m)), ja), lin(a, jb))
    if a.ndim == 1:  # vec(x^T dA) = (I (x) x^T) vec(dA)
        n = b.shape[1]
        return plus(lin(T(b), ja), lin(node("kron", ir.eye(n), node("row", a)), jb))
    m, n = a.shape[0], b.shape[1]
    return plus(lin(node("kron", T(b), ir.eye(m)), ja), lin(node("kron", ir.eye(n), a), jb))


def _outer_jac(e: Node, js: list[Node | None]) -> Node | None:
    (a, b), (ja, jb) = e.args, js
    m, n = e.shape
    return plus(
        lin(node("kron", node("col", b), ir.eye(m)), ja),
        lin(node("kron", ir.eye(n), node("col", a)), jb),
    )


def _transpose_jac(e: Node, js: list[Node | None]) -> Node | None:
    (a,) = e.args
    if a.ndim < 2:
        return js[0]
    return lin(ir.commutation(*a.shape), js[0])


# ----- determinants, inverses, traces, norms -----


def _scalar_jac(grad: Callable[[Node], Node]) -> Jac:
    """Jacobian of a scalar of one argument X with gradient ``grad(e)``: vec(G)^T J."""
    return lambda e, js: lin(node("row", vec(grad(e))), js[0])


def _eye_like(e: Node) -> Node:
    """I of the size of e's (square) operand."""
    return ir.eye(e.args[0].shape[0])


def _softmax(e: Node) -> Node:
    return node("softmax", e.args[0])


RULES: dict[str, Rule] = {}


def rule(op: str, identity: str, cookbook: str | None, vjp: Vjp | None, jac: Jac | None) -> None:
    """Register one op's rule: its identity, Cookbook number, and both forms."""
    RULES[op] = Rule(identity, cookbook, vjp, jac)


# ----- Linear and element-wise -----
rule("add", "d(X + Y) = dX + dY", "(35)", lambda e, g, i: unbroadcast(g, e.args[i].shape), _add_jac)
rule("mul", "d(X ∘ Y) = dX ∘ Y + X ∘ dY", "(38)", _mul_vjp, _mul_jac)
rule("pow", "d(X^∘p) = p X^∘(p-1) ∘ dX", None, *_elementwise(_pow_deriv))
rule("fn", "d f(X) = f'(X) ∘ dX", None, *_elementwise(_fn_deriv))
rule("sum", "d sum(X) = sum(dX) = 1^T vec(dX)", None,
     lambda e, g, i: hadamard(g, ir.ones(e.args[0].shape)),
     _scalar_jac(lambda e: ir.ones(e.args[0].shape)))  # fmt: skip
rule("T", "d(X^T) = (dX)^T", "(44)", lambda e, g, i: T(g), _transpose_jac)
# ----- Products -----
rule("matmul", "d(XY) = dX Y + X dY", "(37)", _matmul_vjp, _matmul_jac)
rule("outer", "d(x y^T) = dx y^T + x dy^T", "(37)",
     lambda e, g, i: mm(g, e.args[1]) if i == 0 else mm(T(g), e.args[0]), _outer_jac)  # fmt: skip
# ----- Inverses, determinants, traces -----
rule("inv", "d(X^-1) = -X^-1 dX X^-1", "(40)",
     lambda e, g, i: neg(mm(mm(inv_T(e.args[0]), g), inv_T(e.args[0]))),
     lambda e, js: lin(neg(node("kron", inv_T(e.args[0]), node("inv", e.args[0]))), js[0]))  # fmt: skip
rule("det", "d det(X) = det(X) tr(X^-1 dX)", "(42)",
     lambda e, g, i: hadamard(g, e, inv_T(e.args[0])),
     lambda e, js: lin(hadamard(e, node("row", vec(inv_T(e.args[0])))), js[0]))  # fmt: skip
rule("logdet", "d log det(X) = tr(X^-1 dX)", "(43)",
     lambda e, g, i: hadamard(g, inv_T(e.args[0])), _scalar_jac(lambda e: inv_T(e.args[0])))  # fmt: skip
rule("trace", "d tr(X) = tr(dX)", "(36)",
     lambda e, g, i: hadamard(g, _eye_like(e)), _scalar_jac(_eye_like))  # fmt: skip
rule("norm", "d ||x|| = x^T dx / ||x||", None,
     lambda e, g, i: hadamard(g, e.args[0], power(e, -1)),
     _scalar_jac(lambda e: hadamard(e.args[0], power(e, -1))))  # fmt: skip
# ----- Softmax family (p = softmax(z)) -----
rule("softmax", "d softmax(z) = (diag(p) - p p^T) dz", None,
     lambda e, g, i: mm(node("add", node("diag", e), neg(node("outer", e, e))), g),
     lambda e, js: lin(node("add", node("diag", e), neg(node("outer", e, e))), js[0]))  # fmt: skip
rule("logsoftmax", "d log softmax(z) = (I - 1 p^T) dz", None,
     lambda e, g, i: node("add", g, neg(hadamard(node("sum", g), _softmax(e)))),
     lambda e, js: lin(node("add", ir.eye(e.shape[0]),
                            neg(node("outer", ir.ones(e.shape), _softmax(e)))), js[0]))  # fmt: skip
rule("logsumexp", "d logsumexp(z) = softmax(z)^T dz", None,
     lambda e, g, i: hadamard(g, _softmax(e)), _scalar_jac(_softmax))  # fmt: skip
# ----- Diagonals -----
rule("diag", "d diag(x) = diag(dx); d diag(X) = diag(dX)", None,
     lambda e, g, i: node("diag", g), None)  # fmt: skip


# ----- Convolution and pooling (vec-form Jacobians are left to the element-wise form) -----
rule("conv2d", "d(X ⋆ K + c) = dX ⋆ K + X ⋆ dK + dc: dL/dK = X ⋆ G, dL/dX = pad(G) ⋆ rot180(K)", None,
     lambda e, g, i: _conv_vjp(e, g, i), lambda e, js: _conv_jac(e, js))  # fmt: skip
rule("maxpool", "d maxpool(X) routes dX at each window's maximum (the first, as argmax picks it)", None,
     lambda e, g, i: node("maxpool_grad", e.args[0], g, attr=e.attr), None)  # fmt: skip
rule("flatten", "d flatten(X) = flatten(dX)", None, lambda e, g, i: node("unflatten", g, attr=e.args[0].shape), None)
rule("unflatten", "d reshape(x) = reshape(dx)", None, lambda e, g, i: node("flatten", g), None)


def _conv_jac(e: Node, js: list[Node | None]) -> Node | None:
    """vec(X ⋆ K + c) = toeplitz(K) vec(X) + im2col(X) vec(K) + (1 (x) I) c: the matrix view."""
    x, k = e.args[0], e.args[1]
    terms = [lin(node("toeplitz", k, attr=x.shape), js[0]), lin(node("im2col", x, attr=k.shape), js[1])]
    if len(e.args) == 3:
        spread = node("kron", node("col", ir.ones((e.size / e.shape[0],))), ir.eye(e.shape[0]))
        terms.append(lin(spread, js[2]))
    return plus(*terms)


def _conv_vjp(e: Node, g: Node, i: int) -> Node:
    x, k = e.args[0], e.args[1]
    if i == 0:
        return node("conv2d_input_grad", g, k, attr=x.shape)
    if i == 1:
        return node("conv2d_kernel_grad", x, g, attr=k.shape)
    return node("spatial_sum", g)


def rule_for(op: str, direction: str) -> Callable:
    """The ``vjp`` or ``jac`` of ``op``; raises NoRule, naming the op, if there is none."""
    r = RULES.get(op)
    f = getattr(r, direction, None) if r else None
    if f is None:
        mode = "gradient" if direction == "vjp" else "Jacobian"
        raise NoRule(f"no {mode} rule for '{op}'")
    return f


# ----- the two modes -----


def normalize(e: Node) -> Node:
    """Fuse compositions that have a cleaner rule than their parts.

    ||x||^2 -> x @ x (so every way of writing a squared norm gives one
    answer), log(det(X)) -> logdet(X), log(softmax(z)) -> logsoftmax(z),
    log(sigmoid(z)) -> -softplus(-z), log(sum(exp(z))) -> logsumexp(z). The
    fused forms are also the numerically stable ones the generated code uses.
    """
    memo: dict[Node, Node] = {}

    def go(n: Node) -> Node:
        if n in memo:
            return memo[n]
        args = tuple(go(a) for a in n.args)
        out = node(n.op, *args, attr=n.attr) if args != n.args else n
        if out.op == "pow" and out.attr == 2 and args[0].op == "norm":
            (x,) = args[0].args
            out = mm(x, x) if x.ndim == 1 else node("sum", hadamard(x, x))
        elif out.op == "fn" and out.attr == ("log", 0) and args[0].op in ("det", "softmax"):
            out = node("logdet" if args[0].op == "det" else "logsoftmax", args[0].args[0])
        elif out.op == "fn" and out.attr == ("log", 0) and args[0].op == "fn" and args[0].attr == ("sigmoid", 0):
            out = neg(fn("softplus", neg(args[0].args[0])))  # log sigma(z) = -softplus(-z), finite for any z
        elif out.op == "fn" and out.attr == ("log", 0) and args[0].op == "sum" and _is_exp(args[0].args[0]):
            out = node("logsumexp", args[0].args[0].args[0])
        elif out.op == "T" and args[0].ndim < 2:
            out = args[0]
        memo[n] = out
        return out

    return go(e)


def _is_exp(e: Node) -> bool:
    return e.op == "fn" and e.attr == ("exp", 0) and e.args[0].ndim == 1


def gradient(e: Node, name: str) -> Node | None:
    """Reverse mode: the gradient of the scalar ``e`` by ``name``, in its shape.

    None means the gradient is zero (``e`` does not depend on ``name``).
    """
    if e.shape != ():
        raise ValueError("gradient needs a scalar expression")
    memo: dict = {}
    order = [n for n in ir.topo(e) if ir.depends(n, name, memo)]
    adjoint: dict[Node, list[Node]] = {e: [ir.ONE]}
    result = None
    for n in reversed(order):
        parts = adjoint.pop(n, [])
        if not parts:
            continue
        g = parts[0] if len(parts) == 1 else plus(*parts)
        if n.op == "var":
            result = g
            continue
        vjp = rule_for(n.op, "vjp")
        for i, a in enumerate(n.args):
            if ir.depends(a, name, memo):
                contribution = vjp(n, g, i)
                if contribution is not None:
                    adjoint.setdefault(a, []).append(contribution)
    return result


def jacobian(e: Node, name: str, shape: ir.Shape) -> Node | None:
    """Forward mode: d vec(e) / d vec(name), a (size(e) x size(name)) matrix.

    None means the Jacobian is zero.
    """
    memo: dict = {}
    js: dict[Node, Node | None] = {}
    for n in ir.topo(e):
        if not ir.depends(n, name, memo):
            js[n] = None
        elif n.op == "var":
            js[n] = ir.eye(sp.Mul(*shape) if shape else 1)
        else:
            js[n] = rule_for(n.op, "jac")(n, [js[a] for a in n.args])
    return js[e]
