"""Leaves: variables, numbers, dimensions used as numbers, identities, ones, the commutation matrix.

Leaves have no operands, so they have no rules: the drivers give a
variable's derivative directly and every other leaf is constant.
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions import Identity, MatrixSymbol, OneMatrix

from ..prec import ATOM, MUL, UNARY
from ..sympy_form import Commutation, as_column_shape
from .base import LEAF, Gap, Op
from .build import node


def _var_shape(args, attr, eq):
    return tuple(attr[1])


def _var_sympy(e):
    name, shape = e.attr[0], e.attr[1]
    return sp.Symbol(name) if not shape else MatrixSymbol(name, *as_column_shape(shape))


def _const_math(p, e):
    return p.number(sp.S(e.attr))


def _stack_shape(args, attr, eq):
    return (sp.Integer(len(args)),) + args[0].shape


DEFINITIONS = (
    Op(
        "var",
        shape=_var_shape,
        eval=lambda k, e: k.variable(e),
        transpose=lambda a: a if a.attr[2] in ("symmetric", "diagonal") else node("T", a),
        numpy=lambda p, e: (e.attr[0], ATOM),
        math=lambda p, e: (p.name(e), ATOM),
        sympy=_var_sympy,
        vjp=LEAF,
        jac=LEAF,
    ),
    Op(
        "const",
        shape=lambda args, attr, eq: (),
        eval=lambda k, e: k.const(e.attr),
        numpy=lambda p, e: p.number_code(e.attr),
        math=_const_math,
        sympy=lambda e: e.attr,
        vjp=LEAF,
        jac=LEAF,
    ),
    Op(
        "size",  # a dimension as a number: the n in mean's 1/n
        shape=lambda args, attr, eq: (),
        eval=lambda k, e: k.const(k.dim(e.attr)),
        numpy=lambda p, e: (p.dim(e.attr), ATOM if sp.S(e.attr).is_Atom else MUL),
        math=lambda p, e: (p.dimtext(e.attr), ATOM if sp.S(e.attr).is_Atom else MUL),
        sympy=lambda e: e.attr,
        vjp=LEAF,
        jac=LEAF,
    ),
    Op(
        "eye",
        shape=lambda args, attr, eq: (attr[0], attr[0]),
        eval=lambda k, e: k.eye(k.dim(e.attr[0])),
        transpose=lambda a: a,
        numpy=lambda p, e: (f"np.eye({p.dim(e.attr[0])})", ATOM),
        math=lambda p, e: (p.EYE, ATOM),
        sympy=lambda e: Identity(e.attr[0]),
        vjp=LEAF,
        jac=LEAF,
    ),
    Op(
        "ones",
        shape=lambda args, attr, eq: tuple(attr[0]),
        eval=lambda k, e: k.ones(k.shape(e)),
        transpose=lambda a: node("ones", attr=(tuple(reversed(a.shape)),)),
        numpy=lambda p, e: (f"np.ones({p.shape(e.shape)})", ATOM),
        math=lambda p, e: (p.ONES, ATOM),
        sympy=lambda e: OneMatrix(*as_column_shape(e.shape)),
        vjp=LEAF,
        jac=LEAF,
    ),
    Op(
        "commutation",
        shape=lambda args, attr, eq: (attr[0] * attr[1], attr[0] * attr[1]),
        eval=lambda k, e: k.commutation(k.dim(e.attr[0]), k.dim(e.attr[1])),
        transpose=lambda a: node("commutation", attr=(a.attr[1], a.attr[0])),
        numpy=lambda p, e: (f"{p.use('_commutation')}({p.dim(e.attr[0])}, {p.dim(e.attr[1])})", ATOM),
        math=lambda p, e: (p.commutation(p.dimtext(e.attr[0]), p.dimtext(e.attr[1])), ATOM),
        sympy=lambda e: Commutation(*e.attr),
        vjp=LEAF,
        jac=LEAF,
    ),
    Op(
        "entry",  # one entry written by name in a claim (a11, x2)
        shape=lambda args, attr, eq: (),
        eval=lambda k, e: k.entry(e.attr),
        numpy=Gap("entries named one by one exist only in claims"),
        math=lambda p, e: (str(e.attr), ATOM),
        sympy=lambda e: e.attr,
        vjp=LEAF,
        jac=LEAF,
    ),
    Op(
        "stack",  # a claim's list literal [row, row, ...]
        shape=_stack_shape,
        eval=lambda k, e, *rows: k.stack(rows),
        numpy=Gap("list literals exist only in claims"),
        math=lambda p, e: ("[" + ", ".join(p.doprint(a) for a in e.args) + "]", ATOM),
        sympy=Gap("list literals exist only in claims"),
        vjp=Gap("claims are compared, not differentiated"),
        jac=Gap("claims are compared, not differentiated"),
    ),
)

__all__ = ["DEFINITIONS", "MUL", "UNARY"]
