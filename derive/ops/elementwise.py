"""Element-wise arithmetic: sums, products, powers, functions, maximum and minimum.

Operands have equal shapes, or one of them is a scalar (numpy broadcasting
of vectors against matrices is an explicit ``broadcast`` node, made by the
parser; see :mod:`derive.ops.shaping`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import sympy as sp
from sympy.matrices.expressions import HadamardPower, HadamardProduct, MatrixExpr, OneMatrix

from ..ir import Node, ShapeError
from ..prec import ADD, ATOM, HAD, MUL, POW, UNARY
from ..sympy_form import elementwise as sympy_elementwise
from .algebra import ONE, canonical, flatten_add, flatten_mul, product, scale, split_coef, total, zeros
from .base import NUMPY, Call, Gap, Op
from .build import const, diag_of, fn, hadamard, is_const, lin, mm, node, ones, plus, power
from .functions import FUNCTIONS, display_value
from .shaping import broadcast_axes

# ----- shapes -----


def _same_or_scalar(args, attr, eq):
    a, b = args
    if a.shape == () or a.shape == b.shape:
        return b.shape
    if b.shape == ():
        return a.shape
    if len(a.shape) == len(b.shape) and all([eq(x, y) for x, y in zip(a.shape, b.shape, strict=True)]):
        return a.shape
    raise ShapeError("element-wise operands need equal shapes, or one must be a scalar")


# ----- rules -----


def unbroadcast(g: Node, shape: tuple) -> Node:
    """The adjoint of a scalar that was broadcast: sum the adjoint."""
    return node("sum", g) if shape == () and g.shape != () else g


def scaled_jac(d: Node, j: Node | None) -> Node | None:
    """Jacobian of an element-wise map with derivative ``d`` applied to ``j``."""
    if j is None:
        return None
    return hadamard(d, j) if d.shape == () else mm(diag_of(d), j)


def _add_jac(e: Node, js: list[Node | None]) -> Node | None:
    return plus(*(_spread(x, j, e) for x, j in zip(e.args, js, strict=True)))


def _spread(x: Node, j: Node | None, e: Node) -> Node | None:
    """A scalar operand's Jacobian, repeated for every entry of the result."""
    if j is None or x.shape == e.shape:
        return j
    return mm(node("col", ones((e.size,))), j)


def _mul_vjp(e: Node, g: Node, i: int) -> Node:
    return unbroadcast(hadamard(g, e.args[1 - i]), e.args[i].shape)


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
        return mm(node("col", node("vec", other) if other.ndim > 1 else other), j)  # vec(other) dx
    return mm(diag_of(other), j)


class _Zero(Exception):
    """The derivative is identically zero (relu's step, say)."""


def _pow_deriv(e: Node) -> Node:
    a, p = e.args[0], e.attr
    return hadamard(const(p), power(a, p - 1))


def _fn_deriv(e: Node) -> Node:
    name, order = e.attr
    d = FUNCTIONS[name].deriv(e.args[0], order)
    if d is None:
        raise _Zero
    return d


def _chain(deriv):
    """The vjp and jac of an element-wise map whose derivative is ``deriv(e)``."""

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


def _extremum_parts(e: Node) -> tuple[Node, Node]:
    """d max(a, b) = H(a - b) da + H(b - a) db (H(0) = 1/2: a tie splits the gradient)."""
    a, b = e.args
    a_minus_b = node("add", a, node("mul", const(-1), b))
    b_minus_a = node("add", b, node("mul", const(-1), a))
    if e.op == "minimum":
        return fn("heaviside", b_minus_a), fn("heaviside", a_minus_b)
    return fn("heaviside", a_minus_b), fn("heaviside", b_minus_a)


def _extremum_vjp(e: Node, g: Node, i: int) -> Node:
    return unbroadcast(hadamard(g, _extremum_parts(e)[i]), e.args[i].shape)


def _extremum_jac(e: Node, js: list[Node | None]) -> Node | None:
    parts = _extremum_parts(e)
    # a scalar operand's Jacobian is spread over the result first: its part has the result's shape
    return plus(*(scaled_jac(p, _spread(x, j, e)) for x, p, j in zip(e.args, parts, js, strict=True)))


def _extremum_eval(k, e: Node, a, b):
    s = 1 if e.op == "maximum" else -1  # max(a, b) = b + relu(a - b); min(a, b) = b - relu(b - a)
    return b + s * k.fn("relu", 0, s * (a - b))


# ----- simplification -----


def _simplify_add(e: Node) -> Node:
    terms: dict[Node, sp.Expr] = {}
    first: dict[Node, Node] = {}  # a term's canonical key -> the term as first written
    for t in flatten_add(e):
        c, rest = split_coef(t)
        if c != 0:
            key = canonical(rest)  # (A B) C and A (B C) are one term
            first.setdefault(key, rest)
            terms[key] = terms.get(key, sp.Integer(0)) + c
    kept = [(c, first[t]) for t, c in terms.items() if c != 0]
    if not kept:
        return zeros(e.shape)
    kept.sort(key=lambda ct: ct[0].is_negative is True)  # positive terms first, else stable
    shared = _common_scalar(kept)
    if shared is not None:  # a/s + b/s^3 -> (a + b/s^2)/s
        base, k = shared
        inner = total([scale(c, _divide_out(t, base, k)) for c, t in kept])
        return node("mul", node("pow", base, attr=k), inner)
    common = _common_factor([c for c, _ in kept])
    parts = [scale(c / common, t) for c, t in kept]
    factored = _factor_matmul(parts)
    body = factored if factored is not None else total(parts)
    return scale(common, body)


def _powers(t: Node) -> dict[Node, sp.Expr]:
    """The scalar factors of a term as base -> exponent."""
    out: dict[Node, sp.Expr] = {}
    for f in flatten_mul(t) if t.op == "mul" else [t]:
        if f.shape == () and f.op != "const":
            base, k = (f.args[0], sp.S(f.attr)) if f.op == "pow" else (f, sp.Integer(1))
            out[base] = out.get(base, 0) + k
    return out


def _common_scalar(kept: list[tuple[sp.Expr, Node]]) -> tuple[Node, sp.Expr] | None:
    """A scalar every term of a sum of tensors has, to a power of one sign: (base, the smallest power)."""
    if len(kept) < 2 or any(t.shape == () for _, t in kept):
        return None
    powers = [_powers(t) for _, t in kept]
    for base in powers[0]:
        ks = [p.get(base) for p in powers]
        if any(k is None for k in ks) or not (all(k > 0 for k in ks) or all(k < 0 for k in ks)):
            continue
        return base, min(ks, key=abs)
    return None


def _divide_out(t: Node, base: Node, k: sp.Expr) -> Node:
    """t with base^k taken out of its factors."""
    return node("mul", node("pow", base, attr=-k), t)


def _common_factor(coefs: list[sp.Expr]) -> sp.Expr:
    """A number shared by all coefficients: 2a + 2b -> 2(a + b), -a - b -> -(a + b)."""
    if len(coefs) < 2 or not all(c.is_Rational for c in coefs):
        return sp.Integer(1)
    num, den = 0, 1
    for c in coefs:  # gcd(p1/q1, p2/q2) = gcd(p1, p2) / lcm(q1, q2), in integers (SymPy's gcd is slow)
        num, den = math.gcd(num, int(c.p)), math.lcm(den, int(c.q))
    sign = -1 if all(c.is_negative for c in coefs) else 1
    return sign * sp.Rational(num, den) if num != 0 else sp.Integer(1)


def _factor_matmul(parts: list[Node]) -> Node | None:
    """A L + B L -> (A + B) L and L A + L B -> L (A + B), when every term shares L."""
    if len(parts) < 2:
        return None
    cores = [split_coef(p) for p in parts]
    if not all(t.op == "matmul" for _, t in cores):
        return None
    for side in (1, 0):
        shared = cores[0][1].args[side]
        if all(t.args[side] == shared for _, t in cores):
            others = [scale(c, t.args[1 - side]) for c, t in cores]
            if len({o.shape for o in others}) != 1:
                return None
            inner = total(others)
            return node("matmul", inner, shared) if side == 1 else node("matmul", shared, inner)
    return None


def _appends_cleanly(e: Node) -> bool:
    """Whether e = L * f, with L an already simple product, is simple too: f is one new factor
    (not a number, not ones, no base L has, not a scalar after a tensor). Then nothing is rebuilt,
    so a chain of n factors simplifies in O(n^2) identity checks, not O(n^3) node constructions."""
    left, f = e.args
    if f.op in ("mul", "const", "ones") or left.op == "const" or (f.shape == () and left.shape != ()):
        return False
    base = f.args[0] if f.op == "pow" else f
    n = left
    while True:
        g = n.args[1] if n.op == "mul" else n
        if g.op in ("const", "ones") or (g.args[0] if g.op == "pow" else g) == base:
            return False
        if n.op != "mul":
            return True
        n = n.args[0]


def _scaling(e: Node) -> Node | None:
    """c 1^T ∘ M = diag(c) M and 1 v^T ∘ M = M diag(v): a repeated vector scales rows or columns."""
    if e.ndim != 2:
        return None
    factors = flatten_mul(e)
    for i, f in enumerate(factors):
        if f.op != "broadcast" or f.args[0].op == "ones":
            continue
        rest = [g for j, g in enumerate(factors) if j != i]
        if not rest or any(g.shape != e.shape for g in rest):
            continue
        x = f.args[0]
        repeats = broadcast_axes(x.shape, f.shape, lambda a, b: True)
        v = x.args[0] if x.op in ("col", "row") and x.args[0].ndim == 1 else node("vec", x) if x.ndim == 2 else x
        if repeats == (1,) and v.ndim == 1:  # a column repeated across: scale the rows
            return node("matmul", node("diag", v), product(rest))
        if repeats == (0,) and v.ndim == 1:  # a row repeated down: scale the columns
            return node("matmul", product(rest), node("diag", v))
    return None


def _simplify_mul(e: Node) -> Node:
    scaled = _scaling(e)
    if scaled is not None:
        return scaled
    if _appends_cleanly(e):
        return e
    c = sp.Integer(1)
    powers: dict[Node, sp.Expr] = {}
    for f in flatten_mul(e):
        fc, rest = split_coef(f)
        c *= fc
        if rest.op == "ones" or rest == ONE:
            continue
        base, p = (rest.args[0], rest.attr) if rest.op == "pow" else (rest, sp.Integer(1))
        powers[base] = powers.get(base, sp.Integer(0)) + p
    if c == 0:
        return zeros(e.shape)
    kept = [b if p == 1 else node("pow", b, attr=p) for b, p in powers.items() if p != 0]
    kept.sort(key=lambda f: f.shape != ())  # scalars in front of tensors
    if e.shape != () and all(f.shape == () for f in kept):
        kept.append(ones(e.shape))  # keep the shape: 2 * ones, not 2
    if not kept:
        return const(c)
    body = e if c == 1 else e.args[1] if is_const(e.args[0], c) else None
    if body is not None and _is_chain(body, kept):
        return e  # already c * ((f1 f2) f3 ...): no new nodes (a product of 500 factors stays quadratic)
    return scale(c, product(kept))


def _is_chain(e: Node, factors: list[Node]) -> bool:
    """Whether ``e`` is ``product(factors)``: the left-nested chain ((f1 f2) f3) ..., checked without building it."""
    for f in reversed(factors[1:]):
        if e.op != "mul" or e.args[1] != f:
            return False
        e = e.args[0]
    return e == factors[0]


FOLD_BITS = 4096  # a number's power is computed only if its exact value fits in this many bits


def _small_power(c: sp.Expr, p: sp.Expr) -> bool:
    """Whether c ** p (c rational, p rational) is cheap to compute exactly."""
    if c in (0, 1, -1) or not c.is_Rational or not p.is_Rational:
        return c in (0, 1, -1) and p.is_Rational
    return abs(float(p)) * max(int(c.p).bit_length(), int(c.q).bit_length()) <= FOLD_BITS


def _fold_power(e: Node) -> Node:
    """c ** p for a rational c as one number, when that is rational and not huge; else unchanged
    (2 ** 0.5 stays a power, which every domain evaluates; 3 ** 1000000000 is never expanded)."""
    c, p = sp.S(e.args[0].attr), sp.S(e.attr)
    if (c == 0 and p < 0) or not _small_power(c, p) or (c < 0 and not p.is_Integer):
        return e
    v = c**p
    return const(v) if v.is_Rational else e


def _simplify_pow(e: Node) -> Node:
    a, p = e.args[0], e.attr
    if p == 1:
        return a
    if p == 0:
        return ONE if e.shape == () else ones(e.shape)
    if is_const(a):
        return _fold_power(e)
    if a.op == "pow" and p.is_integer:
        return node("pow", a.args[0], attr=a.attr * p)
    c, rest = split_coef(a)
    if c != 1 and p.is_integer and _small_power(c, p):
        return scale(c**p, node("pow", rest, attr=p))
    if a.op == "mul" and p.is_integer:
        return product([node("pow", f, attr=p) for f in flatten_mul(a)])
    return e


# ----- printing: numpy -----


def _np_number(c: sp.Expr) -> str:
    from ..printing import number

    return number(c)


def _np_scaled(p, c: sp.Expr, rest: Node) -> tuple[str, int]:
    if c == 1:
        return p.prec(rest)
    if rest == ONE:
        return p.number_code(c)
    if c == 0 and rest.op == "ones":  # a zero derivative: zeros of its shape, not 0 * np.ones(...)
        return f"np.zeros({p.shape(rest.shape)})", ATOM
    if c == -1:
        return f"-{p.wrap(rest, UNARY)}", UNARY
    if rest.op == "outer" and rest not in p.names:  # scale the shorter vector, not the matrix
        a, b = rest.args
        return f"np.outer({p.number_code(c)[0]} * {p.wrap(a, MUL, strict=True)}, {p.doprint(b)})", ATOM
    return f"{p.number_code(c)[0]} * {p.wrap(rest, MUL, strict=True)}", MUL


def _np_mul(p, e: Node) -> tuple[str, int]:
    c, rest = split_coef(e)
    if c != 1:
        return _np_scaled(p, c, rest)
    factors = flatten_mul(e)
    return " * ".join(p.wrap(f, MUL, strict=i > 0) for i, f in enumerate(factors)), MUL


def _np_pow(p, e: Node) -> tuple[str, int]:
    a, k = e.args[0], e.attr
    if k == -1:
        return f"1 / {p.wrap(a, MUL, strict=True)}", MUL
    if k == sp.Rational(1, 2):
        return p.call("np.sqrt", a)
    if k == sp.Rational(-1, 2):
        return f"1 / {p.call('np.sqrt', a)[0]}", MUL
    if k == 2 and a.shape != ():
        return p.call("np.square", a)
    exponent = _np_number(k)
    exponent = f"({exponent})" if not sp.S(k).is_Integer or k < 0 else exponent
    return f"{p.wrap(a, POW, strict=True)} ** {exponent}", POW


def _np_fn(p, e: Node) -> tuple[str, int]:
    from ..printing import PrintError

    name, order = e.attr
    mask = FUNCTIONS[name].mask
    if mask and order == 0 and _float_factor(p.parent, e):
        return mask.format(p.doprint(e.args[0])), ATOM
    forms = FUNCTIONS[name].numpy
    f = forms[order] if order < len(forms) else None
    if f is None:
        raise PrintError(f"no numpy form for the derivative of order {order} of {name}")
    if "{}" in f:
        return f.format(p.doprint(e.args[0])), ATOM
    if f.startswith("_"):
        p.use(f)
    return p.call(f, e.args[0])


def _float_factor(parent: Node | None, e: Node) -> bool:
    """Whether ``e`` is a factor of a product with another factor that is a float array of its shape (not a
    constant: ``-1 * mask`` prints as ``-mask``, which numpy refuses for booleans), or a matrix scaled by a
    diagonal (which prints as a broadcast product)."""
    if parent is not None and parent.op == "matmul" and e.ndim == 2:
        return any(a.op == "diag" and a.args[0].ndim == 1 for a in parent.args)
    if parent is None or parent.op != "mul":
        return False
    others = [f for f in flatten_mul(parent) if f != e]
    return any(f.shape == e.shape and f.op != "const" and not (f.op == "fn" and FUNCTIONS[f.attr[0]].mask)
               for f in others)  # fmt: skip


def _np_extremum(p, e: Node) -> tuple[str, int]:
    return p.call(f"np.{e.op}", *e.args)


def _terms(p, e: Node, scaled: Callable, lead: int) -> tuple[str, int]:
    """A sum with subtraction for negative terms: x - (y - z), never x - y - z. ``scaled`` prints c * rest;
    a first term that is negated is parenthesised when its precedence is at most ``lead``."""
    parts: list[str] = []
    for i, t in enumerate(flatten_add(e)):
        c, rest = split_coef(t)
        negative = c.is_negative is True
        text, prec = scaled(p, -c if negative else c, rest)
        if negative and prec <= ADD:
            text, prec = p.paren(text), ATOM
        if i == 0:
            parts.append(("-" + (p.paren(text) if prec <= lead else text)) if negative else text)
        else:
            parts.append((" - " if negative else " + ") + text)
    return "".join(parts), ADD


def _np_terms(p, e: Node) -> tuple[str, int]:
    """A sum in numpy: -(a * b) keeps its parentheses, as Python's unary minus binds tighter than *."""
    return _terms(p, e, _np_scaled, UNARY)


# ----- printing: mathematics -----


def _math_terms(p, e: Node) -> tuple[str, int]:
    """A sum in mathematics: -a b needs no parentheses."""
    return _terms(p, e, _math_scaled, ADD)


def _is_hadamard(e: Node) -> bool:
    return e.op == "mul" and sum(f.shape != () for f in flatten_mul(e)) > 1


def _math_scaled(p, c: sp.Expr, rest: Node) -> tuple[str, int]:
    if c == 1:
        return p.prec(rest)
    if c == 0:
        return p.num(0), ATOM
    if rest == ONE:
        return p.number(c)
    if rest.op == "mul" and any(_reciprocal(f) for f in flatten_mul(rest)):
        return _math_product(p, c, flatten_mul(rest))
    if c == -1 and (rest.op == "kron" or p.prec(rest)[1] == HAD):  # -(A ⊗ B) = (-A) ⊗ B, -(a ∘ b) = (-a) ∘ b
        return "-" + p.doprint(rest), UNARY
    body = p.wrap(rest, MUL, strict=_is_hadamard(rest))
    if c == -1:
        return "-" + body, UNARY
    return p.join(p.number(c)[0], body), MUL


def _reciprocal(f: Node) -> bool:
    """A scalar to a negative power: a denominator, written under a fraction bar."""
    return f.op == "pow" and f.shape == () and sp.S(f.attr).is_negative is True


def _math_mul(p, e: Node) -> tuple[str, int]:
    c, rest = split_coef(e)
    if c != 1:
        return _math_scaled(p, c, rest)
    return _math_product(p, sp.Integer(1), flatten_mul(e))


def _math_product(p, c: sp.Expr, factors: list[Node]) -> tuple[str, int]:
    """c times the factors: scalars in front (denominators under one fraction: 2/n, or after the tensors
    when nothing else is on top: x xᵀ/‖x‖²), then the tensors (element-wise quotients with ⊘)."""
    # a symbolic coefficient (1/(m n) from a mean at undeclared sizes) shares no fraction with the factors
    dens = [f for f in factors if _reciprocal(f)] if sp.S(c).is_Rational else []
    scalars = [f for f in factors if f.shape == () and f not in dens]
    tensors = [f for f in factors if f.shape != () and f.op != "ones"] or [f for f in factors if f.shape != ()]
    sign = "-" if c < 0 else ""
    c = abs(c)
    den = [p.wrap(f.args[0], MUL, strict=True) if f.attr == -1 else
           p.prec(node("pow", f.args[0], attr=-f.attr))[0] for f in dens]  # fmt: skip
    if dens and c.q != 1:
        den.insert(0, p.num(c.q))
    body, prec = _tensor_text(p, tensors)
    if dens and c.p == 1 and not scalars and tensors:  # (I - x xᵀ/‖x‖²)/‖x‖
        if p.FRAC_PAREN:
            top = p.paren(body) if prec <= ADD or (len(den) > 1 and prec < MUL) else body
            return sign + top + "/" + (p.paren(p.join(*den)) if len(den) > 1 else den[0]), MUL
        return sign + p.frac(body, p.join(*den)), MUL
    text = []
    if dens:
        inner = (lambda f: p.wrap(f, MUL, strict=True)) if p.FRAC_PAREN else p.doprint
        num = [p.num(c.p) if c.p != 1 or not scalars else ""] + [inner(f) for f in scalars]
        frac = p.frac(p.join(*([t for t in num if t] or ["1"])), p.join(*den))
        text.append(p.paren(frac) if p.FRAC_PAREN and tensors else frac)
    else:
        if c != 1:
            text.append(p.number(c)[0])
        text += [p.wrap(f, MUL, strict=True) for f in scalars]
    if tensors:
        text.append(body if prec >= MUL or not text else p.paren(body))
    if not text:
        return sign + p.num(1), ATOM
    if len(text) == 1 and not sign and prec < MUL and tensors:
        return body, prec
    return (sign + p.join(*text), UNARY if sign else MUL)


def _tensor_text(p, tensors: list[Node]) -> tuple[str, int]:
    """A Hadamard product, with factors to negative powers after ⊘: exp(x) ⊘ (1 + exp(x))^∘2."""
    if not tensors:
        return "", ATOM
    below = [f.op == "pow" and sp.S(f.attr).is_negative is True for f in tensors]
    tops = [f for f, b in zip(tensors, below, strict=True) if not b]
    bottoms = [f for f, b in zip(tensors, below, strict=True) if b]  # by position: `f not in tops` was quadratic
    if not bottoms:
        if len(tops) == 1:
            return p.prec(tops[0])
        return p.HADAMARD.join(p.wrap(f, MUL, strict=True) for f in tops), HAD
    top = p.HADAMARD.join(p.wrap(f, MUL, strict=True) for f in tops) if tops else p.ONES
    under = [f.args[0] if f.attr == -1 else node("pow", f.args[0], attr=-f.attr) for f in bottoms]
    bottom = p.HADAMARD.join(p.wrap(f, MUL, strict=True) for f in under)
    if len(tops) > 1:
        top = p.paren(top)
    if len(under) > 1:
        bottom = p.paren(bottom)
    return f"{top}{p.OSLASH}{bottom}", HAD


def _math_pow(p, e: Node) -> tuple[str, int]:
    a, k = e.args[0], sp.S(e.attr)
    if k == -1 and a.shape == ():
        return p.frac(p.num(1), p.doprint(a)), MUL
    if k == sp.Rational(1, 2):
        return p.apply(p.op("sqrt"), p.doprint(a)), ATOM
    if a.op == "norm" and k == 2:
        return p.prec(a)[0] + p.SQUARED, POW
    if k.is_negative and a.shape != ():  # 1 ⊘ x^∘2, an element-wise quotient
        inner = a if k == -1 else node("pow", a, attr=-k)
        return f"{p.ONES}{p.OSLASH}{p.wrap(inner, MUL, strict=True)}", HAD
    exponent = p.num(k) if k.is_Integer else p.frac(p.num(k.p), p.num(k.q))
    return p.power(p.wrap(a, ATOM), exponent, a.shape != ()), POW


def _math_fn(p, e: Node) -> tuple[str, int]:
    name, order = e.attr
    return p.apply(p.fname(name, order), p.doprint(e.args[0])), ATOM


def _math_extremum(p, e: Node) -> tuple[str, int]:
    return p.apply(p.op("max" if e.op == "maximum" else "min"), ", ".join(p.doprint(a) for a in e.args)), ATOM


# ----- SymPy -----


def _sympy_add(e: Node, a, b):
    x, y = e.args
    if x.shape == () and y.shape != ():
        a = a * OneMatrix(*b.shape)
    if y.shape == () and x.shape != ():
        b = b * OneMatrix(*a.shape)
    return a + b


def _sympy_mul(e: Node, a, b):
    if isinstance(a, MatrixExpr) and isinstance(b, MatrixExpr):
        return HadamardProduct(a, b)
    return a * b


def _sympy_pow(e: Node, a):
    return HadamardPower(a, e.attr) if isinstance(a, MatrixExpr) else a**e.attr


# ----- transposes and fusions -----


def _t(x: Node) -> Node:
    return node("T", x) if x.ndim == 2 else x


def _fuse_pow(e: Node) -> Node:
    """||x||^2 -> x @ x (every way of writing a squared norm gives one answer)."""
    a = e.args[0]
    if e.attr == 2 and a.op == "norm":
        (x,) = a.args
        return node("matmul", x, x) if x.ndim == 1 else node("sum", hadamard(x, x))
    return e


def _fuse_fn(e: Node) -> Node:
    """log(det(X)) -> logdet(X), log(softmax(z)) -> logsoftmax(z), log(sigmoid(z)) -> -softplus(-z),
    log(sum(exp(z))) -> logsumexp(z): cleaner rules, and the stable forms the generated code uses."""
    a = e.args[0]
    if e.attr != ("log", 0):
        return e
    if a.op == "det":
        return node("logdet", a.args[0])
    if a.op == "softmax":
        return node("logsoftmax", a.args[0], attr=a.attr)
    if a.op == "fn" and a.attr == ("sigmoid", 0):
        return node("mul", const(-1), fn("softplus", node("mul", const(-1), a.args[0])))
    if a.op == "sum" and a.args[0].op == "fn" and a.args[0].attr == ("exp", 0) and a.args[0].ndim >= 1:
        inner = a.args[0].args[0]
        return node("logsumexp", inner, attr=None if a.attr is None or inner.ndim == 1 else a.attr)
    return e


def _fn_syntax() -> tuple[Call, ...]:
    out = []
    for f in FUNCTIONS.values():
        for name in f.calls:
            out.append(Call(name, lambda args, kw, n=f.name: fn(n, args[0]), prefixes=f.prefixes))
    out.append(Call("dsigmoid", lambda args, kw: fn("sigmoid", args[0], 1)))
    out.append(Call("dtanh", lambda args, kw: fn("tanh", args[0], 1)))
    return tuple(out)


def _logaddexp(args, kw) -> Node:
    """np.logaddexp(a, b) = log(exp(a) + exp(b)) = b + softplus(a - b); softplus(b) when a is 0."""
    a, b = args
    if a.op == "const" and a.attr == 0:
        return fn("softplus", b)
    if b.op == "const" and b.attr == 0:
        return fn("softplus", a)
    return node("add", b, fn("softplus", node("add", a, node("mul", const(-1), b))))


def _square(args, kw) -> Node:
    return node("pow", args[0], attr=sp.Integer(2))


def _extremum(name: str, identity: str) -> Op:
    return Op(
        name,
        shape=_same_or_scalar,
        identity=identity,
        vjp=_extremum_vjp,
        jac=_extremum_jac,
        eval=_extremum_eval,
        numpy=_np_extremum,
        math=_math_extremum,
        sympy=Gap("SymPy's Max is not a matrix expression"),
        syntax=(Call(name, lambda args, kw, n=name: node(n, *args), arity=(2,), prefixes=NUMPY),),
    )


_POW_VJP, _POW_JAC = _chain(_pow_deriv)
_FN_VJP, _FN_JAC = _chain(_fn_deriv)

DEFINITIONS = (
    Op(
        "add",
        shape=_same_or_scalar,
        identity="d(X + Y) = dX + dY",
        cookbook="(35)",
        vjp=lambda e, g, i: unbroadcast(g, e.args[i].shape),
        jac=_add_jac,
        eval=lambda k, e, a, b: k.add(a, b),
        simplify=_simplify_add,
        transpose=lambda a: total([_t(t) for t in flatten_add(a)]),
        numpy=lambda p, e: _np_terms(p, e),
        math=_math_terms,
        sympy=_sympy_add,
    ),
    Op(
        "mul",
        shape=_same_or_scalar,
        identity="d(X ∘ Y) = dX ∘ Y + X ∘ dY",
        cookbook="(38)",
        vjp=_mul_vjp,
        jac=_mul_jac,
        eval=lambda k, e, a, b: k.mul(a, b),
        simplify=_simplify_mul,
        transpose=lambda a: product([_t(f) for f in flatten_mul(a)]),
        numpy=_np_mul,
        math=_math_mul,
        sympy=_sympy_mul,
    ),
    Op(
        "pow",
        shape=lambda args, attr, eq: args[0].shape,
        identity="d(X^∘p) = p X^∘(p-1) ∘ dX",
        vjp=_POW_VJP,
        jac=_POW_JAC,
        eval=lambda k, e, a: k.pow(a, e.attr),
        simplify=_simplify_pow,
        transpose=lambda a: node("pow", a.args[0].args[0], attr=a.attr) if a.args[0].op == "T" else node("T", a),
        fuse=_fuse_pow,
        numpy=_np_pow,
        math=_math_pow,
        sympy=_sympy_pow,
        syntax=(Call("square", _square, prefixes=NUMPY),),
    ),
    Op(
        "fn",
        shape=lambda args, attr, eq: args[0].shape,
        identity="d f(X) = f'(X) ∘ dX",
        vjp=_FN_VJP,
        jac=_FN_JAC,
        eval=lambda k, e, a: k.fn(e.attr[0], e.attr[1], a),
        transpose=lambda a: node("fn", a.args[0].args[0], attr=a.attr) if a.args[0].op == "T" else node("T", a),
        fuse=_fuse_fn,
        numpy=_np_fn,
        math=_math_fn,
        sympy=lambda e, a: sympy_elementwise(lambda t: display_value(e.attr[0], e.attr[1], t), a),
        syntax=(*_fn_syntax(), Call("logaddexp", _logaddexp, arity=(2,), prefixes=NUMPY)),
    ),
    _extremum("maximum", "d max(X, Y) = H(X - Y) ∘ dX + H(Y - X) ∘ dY, H(0) = 1/2: a tie splits the gradient"),
    _extremum("minimum", "d min(X, Y) = H(Y - X) ∘ dX + H(X - Y) ∘ dY, H(0) = 1/2: a tie splits the gradient"),
)

__all__ = ["DEFINITIONS", "lin", "scaled_jac", "unbroadcast"]
