"""Element-wise algebra, tidied as scalar algebra: one fraction, and sigma where it hides.

Entry by entry, a tree of element-wise sums, products, powers and functions is ordinary scalar
algebra, so SymPy can put it over one denominator and factor it:
((1 + exp(x))^-1 - exp(x) (1 + exp(x))^-2) exp(x) is exp(x)^2 / (1 + exp(x))^2, which is
sigma(x)^2, and exp(x) / (1 + exp(x))^2 is sigma'(x). A subtree is rewritten only when it has a
quotient in it and the tidy form is shorter; the proof checks the result like any other form.
"""

from __future__ import annotations

import sympy as sp

from .ir import Node, topo
from .ops.build import const, fn, node
from .ops.functions import sigmoid
from .printing import TextPrinter

ELEMENTWISE = frozenset({"add", "mul", "pow", "fn"})
_KNOWN = ("exp", "log", "sigmoid")


def tidy(e: Node) -> Node:
    """``e`` with each element-wise part that has a quotient in it written over one denominator."""
    memo: dict[Node, Node] = {}
    for n in topo(e):
        args = tuple(memo[a] for a in n.args)
        m = n if args == n.args else node(n.op, *args, attr=n.attr)
        memo[n] = m
    roots = _roots(memo[e])
    if not roots:
        return memo[e]
    mapping = {}
    for r in roots:
        better = _tidy_one(r)
        if better is not None:
            mapping[r] = better
    return _replace(memo[e], mapping) if mapping else memo[e]


def _roots(e: Node) -> list[Node]:
    """Maximal element-wise subtrees that contain a negative power of a non-scalar."""
    out: list[Node] = []
    parents: dict[Node, set[str]] = {}
    for n in topo(e):
        for a in n.args:
            parents.setdefault(a, set()).add(n.op)
    for n in topo(e):
        if n.op not in ELEMENTWISE:
            continue
        if parents.get(n, set()) & ELEMENTWISE:  # not maximal
            continue
        quotients = [m for m in topo(n) if m.op == "pow" and sp.S(m.attr).is_negative]
        if any(m.ndim > 0 for m in quotients) or len(quotients) > 1:
            out.append(n)
    return out


def _tidy_one(e: Node) -> Node | None:
    atoms: dict[Node, sp.Symbol] = {}
    expr = _to_sympy(e, atoms)
    if expr is None:
        return None
    try:
        better = sp.factor(sp.cancel(sp.together(expr)))
        better = _sigmoids(better)
    except (sp.PolynomialError, ValueError, TypeError):
        return None
    back = {s: n for n, s in atoms.items()}
    out = _from_sympy(better, back, e.shape)
    if out is None or out.shape != e.shape:
        return None
    p = TextPrinter()
    try:
        return out if len(p.doprint(out)) < len(p.doprint(e)) else None
    except Exception:  # a form the printer cannot show is no improvement
        return None


def _to_sympy(e: Node, atoms: dict[Node, sp.Symbol]) -> sp.Expr | None:
    memo: dict[Node, sp.Expr] = {}
    for n in topo(e):
        if n.op in ELEMENTWISE and (n.op != "fn" or (n.attr[0] in _KNOWN and n.attr[1] == 0)) and n is not None:
            args = [memo[a] for a in n.args]
            if n.op == "add":
                memo[n] = args[0] + args[1]
            elif n.op == "mul":
                memo[n] = args[0] * args[1]
            elif n.op == "pow":
                memo[n] = args[0] ** sp.S(n.attr)
            else:
                memo[n] = {"exp": sp.exp, "log": sp.log, "sigmoid": sigmoid}[n.attr[0]](args[0])
        elif n.op == "const":
            memo[n] = sp.S(n.attr)
        else:
            atoms.setdefault(n, sp.Symbol(f"a{len(atoms)}", real=True))
            memo[n] = atoms[n]
    return memo[e]


def _sigmoids(r: sp.Expr) -> sp.Expr:
    """Replace t/(1 + t) by sigma(u), 1/(1 + t) by sigma(-u) and t/(1 + t)^2 by sigma'(u), t = exp(u)."""
    for ex in sorted(r.atoms(sp.exp), key=str):
        u = ex.args[0]
        t = sp.Dummy("t", positive=True)
        r_t = r.replace(lambda q, u=u: isinstance(q, sp.exp) and q.args[0] in (u, -u),
                        lambda q, u=u, t=t: t if q.args[0] == u else 1 / t)  # fmt: skip
        for cand, value in ((t**2 / (1 + t) ** 2, sigmoid(u) ** 2), (t / (1 + t) ** 2, _dsig(u)),
                            (t / (1 + t), sigmoid(u)), (1 / (1 + t), sigmoid(-u))):  # fmt: skip
            rest = sp.cancel(r_t / cand)
            if not rest.has(t):
                r = rest * value
                break
    return r


def _dsig(u: sp.Expr) -> sp.Expr:
    return sp.Function("dsigmoid")(u)


def _from_sympy(r: sp.Expr, back: dict[sp.Symbol, Node], shape: tuple) -> Node | None:
    if r in back:
        return back[r]
    if r.is_Number:
        if not r.is_Rational:
            return None
        return const(r)
    if r.is_Add or r.is_Mul:
        parts = [_from_sympy(a, back, shape) for a in r.as_ordered_terms()] if r.is_Add else \
            [_from_sympy(a, back, shape) for a in r.as_ordered_factors()]  # fmt: skip
        if any(p is None for p in parts):
            return None
        parts.sort(key=lambda p: p.shape != ())  # numbers and scalars first
        out = parts[0]
        for p in parts[1:]:
            out = node("add" if r.is_Add else "mul", out, p)
        return out
    if r.is_Pow:
        base = _from_sympy(r.base, back, shape)
        return None if base is None or not r.exp.is_Rational else node("pow", base, attr=r.exp)
    if r.func in (sp.exp, sp.log, sigmoid) or (isinstance(r, sp.Function) and str(r.func) == "dsigmoid"):
        inner = _from_sympy(r.args[0], back, shape)
        if inner is None:
            return None
        name, order = {"exp": ("exp", 0), "log": ("log", 0), "sigmoid": ("sigmoid", 0)}.get(str(r.func), ("sigmoid", 1))
        return fn(name, inner, order)
    return None


def _replace(e: Node, mapping: dict[Node, Node]) -> Node:
    memo: dict[Node, Node] = {}
    for n in topo(e):
        if n in mapping:
            memo[n] = mapping[n]
            continue
        args = tuple(memo[a] for a in n.args)
        memo[n] = n if args == n.args else node(n.op, *args, attr=n.attr)
    return memo[e]
