"""Printers: numpy code, LaTeX and plain text, one ``_print_<op>`` per op.

Every printer walks the same tree with :meth:`Printer.doprint`, which
dispatches on the op name; an op a printer does not know is an error that
names it, never a silent fallback. Each method returns the text and its
precedence, so parentheses appear only where they are needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

import sympy as sp
from sympy.printing.latex import LatexPrinter as SympyLatexPrinter

from .functions import FUNCTIONS
from .ir import Node
from .simplify import flatten_add, flatten_mul, split_coef

ATOM, POSTFIX, POW, UNARY, MUL, HAD, ADD = 100, 90, 60, 50, 40, 35, 30


class PrintError(Exception):
    """A printer met an op it cannot print."""


class Printer:
    """Base: dispatch on ``node.op``; ``names`` maps subexpressions to short names."""

    def __init__(self, names: Mapping[Node, str] | None = None) -> None:
        self.names = dict(names or {})

    def doprint(self, e: Node) -> str:
        return self.prec(e)[0]

    def prec(self, e: Node) -> tuple[str, int]:
        if e in self.names:
            return self.names[e], ATOM
        method = getattr(self, f"_print_{e.op}", None)
        if method is None:
            raise PrintError(f"{type(self).__name__} cannot print '{e.op}'")
        return method(e)

    def wrap(self, e: Node, above: int, strict: bool = False) -> str:
        """``e`` printed, in parentheses if it binds looser than ``above``."""
        s, p = self.prec(e)
        return self.paren(s) if p < above or (strict and p == above) else s

    def paren(self, s: str) -> str:
        return f"({s})"

    def terms(self, e: Node) -> tuple[str, int]:
        """A sum, with subtraction for negative terms."""
        parts: list[str] = []
        for i, t in enumerate(flatten_add(e)):
            c, rest = split_coef(t)
            negative = c.is_negative is True
            text, prec = self.scaled(-c if negative else c, rest)
            if negative and prec <= ADD:  # x - (y - z), never x - y - z
                text, prec = self.paren(text), ATOM
            if i == 0:
                parts.append(("-" + self.wrap_neg((text, prec))) if negative else text)
            else:
                parts.append((" - " if negative else " + ") + text)
        return "".join(parts), ADD

    def wrap_neg(self, body: tuple[str, int]) -> str:
        s, p = body
        return self.paren(s) if p <= ADD else s

    def scaled(self, c: sp.Expr, rest: Node) -> tuple[str, int]:
        raise NotImplementedError


# ----- numpy -----

#: Helpers the generated modules define, only where used. Stable forms:
#: softmax and logsumexp subtract the maximum; sigmoid and its derivatives
#: go through logaddexp, so they stay finite and accurate for large |z|.
NUMPY_HELPERS: dict[str, str] = {
    "_sigmoid": '''def _sigmoid(z):
    """1 / (1 + exp(-z)), without overflow."""
    return np.exp(-np.logaddexp(0.0, -z))''',
    "_dsigmoid": '''def _dsigmoid(z):
    """sigma'(z) = sigma(z) (1 - sigma(z)), accurate in both tails."""
    return np.exp(-np.logaddexp(0.0, z) - np.logaddexp(0.0, -z))''',
    "_d2sigmoid": '''def _d2sigmoid(z):
    """sigma''(z) = sigma'(z) (1 - 2 sigma(z))."""
    return _dsigmoid(z) * np.tanh(-z / 2)''',
    "_dtanh": '''def _dtanh(z):
    """tanh'(z) = 1 - tanh(z)^2 = sech(z)^2, accurate where tanh(z) rounds to 1."""
    t = np.exp(-2 * np.abs(z))
    return 4 * t / (1 + t) ** 2''',
    "_d2tanh": '''def _d2tanh(z):
    """tanh''(z) = -2 tanh(z) tanh'(z)."""
    return -2 * np.tanh(z) * _dtanh(z)''',
    "_softmax": '''def _softmax(z):
    """exp(z) / sum(exp(z)), shifted by max(z) so nothing overflows."""
    e = np.exp(z - np.max(z))
    return e / np.sum(e)''',
    "_log_softmax": '''def _log_softmax(z):
    """log(softmax(z)) = z - logsumexp(z)."""
    return z - _logsumexp(z)''',
    "_logsumexp": '''def _logsumexp(z):
    """log(sum(exp(z))), shifted by max(z)."""
    m = np.max(z)
    return m + np.log(np.sum(np.exp(z - m)))''',
    "_conv2d": '''def _conv2d(x, k, c=None):
    """Valid cross-correlation, stride 1: X (H, W) with K (kh, kw), or X (C, H, W) with K (F, C, kh, kw)."""
    if x.ndim == 2:
        return np.tensordot(sliding_window_view(x, k.shape), k, axes=([2, 3], [0, 1]))
    windows = sliding_window_view(x, k.shape[2:], axis=(1, 2))  # (C, H', W', kh, kw), no copy
    y = np.tensordot(k, windows, axes=([1, 2, 3], [0, 3, 4]))  # one GEMM, as im2col would do
    return y if c is None else y + c[:, None, None]''',
    "_conv2d_kernel_grad": '''def _conv2d_kernel_grad(x, g):
    """dL/dK: X cross-correlated with the upstream gradient G (the shape of K)."""
    if x.ndim == 2:
        return np.tensordot(sliding_window_view(x, g.shape), g, axes=([2, 3], [0, 1]))
    windows = sliding_window_view(x, g.shape[1:], axis=(1, 2))  # (C, kh, kw, H', W')
    return np.tensordot(g, windows, axes=([1, 2], [3, 4]))''',
    "_conv2d_input_grad": '''def _conv2d_input_grad(g, k):
    """dL/dX: the full convolution of the upstream gradient with the kernel, one kernel offset at a time."""
    kh, kw = k.shape[-2:]
    h, w = g.shape[-2:]
    if k.ndim == 2:
        dx = np.zeros((h + kh - 1, w + kw - 1))
        for a in range(kh):
            for b in range(kw):
                dx[a : a + h, b : b + w] += k[a, b] * g
        return dx
    dx = np.zeros((k.shape[1], h + kh - 1, w + kw - 1))
    for a in range(kh):
        for b in range(kw):
            dx[:, a : a + h, b : b + w] += np.tensordot(k[:, :, a, b], g, axes=([0], [0]))
    return dx''',
    "_maxpool": '''def _maxpool(x, k):
    """The maximum of each k x k window of the last two axes."""
    *lead, h, w = x.shape
    return x.reshape(*lead, h // k, k, w // k, k).max(axis=(-3, -1))''',
    "_maxpool_grad": '''def _maxpool_grad(x, g, k):
    """Each window's gradient g, routed to the window's first maximum (numpy's argmax picks the first)."""
    *lead, h, w = x.shape
    windows = x.reshape(*lead, h // k, k, w // k, k).swapaxes(-3, -2).reshape(*lead, h // k, w // k, k * k)
    routed = (np.arange(k * k) == windows.argmax(axis=-1)[..., None]) * g[..., None]
    return routed.reshape(*lead, h // k, w // k, k, k).swapaxes(-3, -2).reshape(x.shape)''',
    "_conv_index": '''def _conv_index(xshape, kshape):
    """For every product X[p] K[q] in X ⋆ K: its output row, kernel column and input column (column-major)."""
    x3 = tuple(xshape) if len(xshape) == 3 else (1, *xshape)
    nf, nc, kh, kw = tuple(kshape) if len(kshape) == 4 else (1, 1, *kshape)
    h, w = x3[1] - kh + 1, x3[2] - kw + 1
    f, i, j, c, a, b = np.meshgrid(*map(np.arange, (nf, h, w, nc, kh, kw)), indexing="ij")
    flat = len(xshape) == 2
    rows = np.ravel_multi_index((i, j) if flat else (f, i, j), (h, w) if flat else (nf, h, w), order="F")
    kcols = np.ravel_multi_index((a, b) if flat else (f, c, a, b), kshape, order="F")
    xcols = np.ravel_multi_index((i + a, j + b) if flat else (c, i + a, j + b), xshape, order="F")
    return rows.ravel(), kcols.ravel(), xcols.ravel(), nf * h * w''',
    "_im2col": '''def _im2col(x, kshape):
    """d vec(X ⋆ K) / d vec(K): X's patches, one row per output entry."""
    rows, kcols, xcols, n = _conv_index(x.shape, kshape)
    m = np.zeros((n, int(np.prod(kshape))))
    m[rows, kcols] = np.ravel(x, order="F")[xcols]
    return m''',
    "_toeplitz": '''def _toeplitz(k, xshape):
    """d vec(X ⋆ K) / d vec(X): the kernel placed at every output position."""
    rows, kcols, xcols, n = _conv_index(xshape, k.shape)
    m = np.zeros((n, int(np.prod(xshape))))
    m[rows, xcols] = np.ravel(k, order="F")[kcols]
    return m''',
    "_kron_diag": '''def _kron_diag(s, x):
    """x^T (x) diag(s) as an (m, m, n) array: zero but for [i, i, :] = s[i] x."""
    out = np.zeros((s.shape[0], s.shape[0], x.shape[0]))
    out[np.arange(s.shape[0]), np.arange(s.shape[0])] = np.outer(s, x)
    return out''',
    "_commutation": '''def _commutation(m, n):
    """K with K @ vec(A) = vec(A.T) for A of shape (m, n), column-major vec."""
    k = np.zeros((m * n, m * n))
    i, j = np.meshgrid(np.arange(m), np.arange(n), indexing="ij")
    k[(i * n + j).ravel(), (j * m + i).ravel()] = 1.0
    return k''',
}

#: what a helper needs imported besides numpy
HELPER_IMPORTS = {
    h: ["from numpy.lib.stride_tricks import sliding_window_view"]
    for h in ("_conv2d", "_conv2d_kernel_grad", "_conv2d_input_grad")
}

_HELPER_NEEDS = {
    "_log_softmax": ["_logsumexp"],
    "_d2sigmoid": ["_dsigmoid"],
    "_d2tanh": ["_dtanh"],
    "_im2col": ["_conv_index"],
    "_toeplitz": ["_conv_index"],
}

_NP_FN = {
    ("exp", 0): "np.exp",
    ("log", 0): "np.log",
    ("sqrt", 0): "np.sqrt",
    ("sin", 0): "np.sin",
    ("cos", 0): "np.cos",
    ("tanh", 0): "np.tanh",
    ("sigmoid", 0): "_sigmoid",
    ("sigmoid", 1): "_dsigmoid",
    ("sigmoid", 2): "_d2sigmoid",
    ("tanh", 2): "_d2tanh",
    ("softplus", 0): "np.logaddexp(0.0, {})",
    ("relu", 0): "np.maximum({}, 0.0)",
    ("step", 0): "np.heaviside({}, 0.0)",
    ("tanh", 1): "_dtanh",
}


def number(c: sp.Expr) -> str:
    """A number as Python source: 2, 0.5, 1 / 3."""
    c = sp.S(c)
    if c.is_Integer:
        return str(int(c))
    if c.is_Rational:
        f = float(c)
        return repr(f) if sp.Rational(repr(f)) == c else f"{c.p} / {c.q}"
    return repr(float(c))


class NumpyPrinter(Printer):
    """numpy source for an expression; ``dims`` maps dimensions to code (``A.shape[0]``)."""

    def __init__(self, dims: Mapping[sp.Expr, str], names: Mapping[Node, str] | None = None) -> None:
        super().__init__(names)
        self.dims = dict(dims)
        self.helpers: list[str] = []

    def use(self, helper: str) -> str:
        for h in _HELPER_NEEDS.get(helper, []) + [helper]:
            if h not in self.helpers:
                self.helpers.append(h)
        return helper

    def dim(self, d: sp.Expr) -> str:
        d = sp.S(d)
        if d.is_Integer:
            return str(int(d))
        if d in self.dims:
            return self.dims[d]
        if d.is_Mul:
            return " * ".join(self.dim(f) for f in d.args)
        raise PrintError(f"no variable carries the dimension {d}")

    def shape(self, shape: tuple) -> str:
        inner = ", ".join(self.dim(d) for d in shape)
        return f"({inner},)" if len(shape) == 1 else f"({inner})"

    def call(self, f: str, *args: Node) -> tuple[str, int]:
        return f"{f}({', '.join(self.doprint(a) for a in args)})", ATOM

    def _print_var(self, e: Node) -> tuple[str, int]:
        return e.attr[0], ATOM

    def _print_const(self, e: Node) -> tuple[str, int]:
        s = number(e.attr)
        return s, (UNARY if s.startswith("-") else MUL if "/" in s else ATOM)

    def _print_eye(self, e: Node) -> tuple[str, int]:
        return f"np.eye({self.dim(e.attr[0])})", ATOM

    def _print_ones(self, e: Node) -> tuple[str, int]:
        return f"np.ones({self.shape(e.shape)})", ATOM

    def _print_commutation(self, e: Node) -> tuple[str, int]:
        m, n = e.attr
        return f"{self.use('_commutation')}({self.dim(m)}, {self.dim(n)})", ATOM

    def _print_add(self, e: Node) -> tuple[str, int]:
        return self.terms(e)

    def scaled(self, c: sp.Expr, rest: Node) -> tuple[str, int]:
        if c == 1:
            return self.prec(rest)
        if rest.op == "const" and rest.attr == 1:
            return number(c), ATOM
        if c == -1:
            return f"-{self.wrap(rest, UNARY)}", UNARY
        if rest.op == "outer" and rest not in self.names:  # scale the shorter vector, not the matrix
            a, b = rest.args
            return f"np.outer({number(c)} * {self.wrap(a, MUL, strict=True)}, {self.doprint(b)})", ATOM
        return f"{number(c)} * {self.wrap(rest, MUL, strict=True)}", MUL

    def _print_mul(self, e: Node) -> tuple[str, int]:
        c, rest = split_coef(e)
        if c != 1:
            return self.scaled(c, rest)
        factors = flatten_mul(e)
        text = [self.wrap(f, MUL, strict=i > 0) for i, f in enumerate(factors)]
        return " * ".join(text), MUL

    def _print_pow(self, e: Node) -> tuple[str, int]:
        a, p = e.args[0], e.attr
        if p == -1:
            return f"1 / {self.wrap(a, MUL, strict=True)}", MUL
        if p == sp.Rational(1, 2):
            return self.call("np.sqrt", a)
        if p == sp.Rational(-1, 2):
            return f"1 / {self.call('np.sqrt', a)[0]}", MUL
        exponent = number(p)
        exponent = f"({exponent})" if not sp.S(p).is_Integer or p < 0 else exponent
        return f"{self.wrap(a, POW, strict=True)} ** {exponent}", POW

    def _print_fn(self, e: Node) -> tuple[str, int]:
        name, order = e.attr
        f = _NP_FN.get((name, order))
        if f is None:
            raise PrintError(f"no numpy form for the derivative of order {order} of {name}")
        if "{}" in f:
            return f.format(self.doprint(e.args[0])), ATOM
        if f.startswith("_"):
            self.use(f)
        return self.call(f, e.args[0])

    def _print_matmul(self, e: Node) -> tuple[str, int]:
        chain = _chain(e)
        inner_vector = any(f.ndim < 2 for f in chain[1:-1])  # x @ A @ x is not associative in shape
        if len(chain) > 2 and not inner_vector and not any(f in self.names for f in _inner_products(e)):
            return self.pair(_cheapest(chain, self.size_hint))
        return self.pair(e)

    def size_hint(self, d: sp.Expr) -> int:
        """A dimension's size for ordering products: its value, or 1000 when symbolic."""
        d = sp.S(d)
        return int(d) if d.is_Integer else 1000

    def pair(self, e: Node) -> tuple[str, int]:
        if e.op != "matmul":
            return self.prec(e)
        a, b = e.args
        if a.op == "diag" and a.args[0].ndim == 1:  # diag(v) @ M: scale rows, build no diagonal
            v = self.wrap(a.args[0], POSTFIX)
            rows = f"{v}[:, None]" if b.ndim == 2 else v
            return f"{rows} * {self.wrap(b, MUL, strict=True)}", MUL
        if b.op == "diag" and b.args[0].ndim == 1 and a.ndim == 2:  # M @ diag(v): scale columns
            return f"{self.wrap(a, MUL)} * {self.wrap(b.args[0], MUL, strict=True)}", MUL
        return f"{self.sub(a, MUL)} @ {self.sub(b, MUL, strict=True)}", MUL

    def sub(self, e: Node, above: int, strict: bool = False) -> str:
        """An operand of a product, keeping the order chosen for the chain."""
        if e.op != "matmul" or e in self.names:
            return self.wrap(e, above, strict)
        s, p = self.pair(e)
        return self.paren(s) if p < above or (strict and p == above) else s

    def _print_unvec(self, e: Node) -> tuple[str, int]:
        """A vec Jacobian as the array jax.jacobian returns (value shape + variable shape).

        A Kronecker product A (x) B whose factors line up with those axes is built by
        broadcasting, A[i, j] B[k, l] at [k, i, l, j], never as a dense Kronecker matrix.
        """
        (j,) = e.args
        out, tail = e.attr
        c, core = split_coef(j)
        if core.op == "kron" and core not in self.names and _diagonal_kron(core, out, tail):
            a, b = core.args  # x^T (x) diag(s): only the diagonal rows are non-zero
            s_text = self.doprint(b.args[0]) if b.op == "diag" else f"np.ones({self.dim(b.shape[0])})"
            body = f"{self.use('_kron_diag')}({s_text}, {self.doprint(a)})"
            return (body, ATOM) if c == 1 else (f"{number(c)} * {body}", MUL)
        if core.op == "kron" and core not in self.names and core.args[1].ndim == 2:
            a, b = core.args  # (A (x) B)[(i, k), (j, l)] = A[i, j] B[k, l]: lay it out directly
            if a.op in ("col", "row") and a.args[0].ndim == 1:
                a_text, a_sub = self.doprint(a.args[0]), "i" if a.op == "col" else "j"
            else:
                a_text, a_sub = self.doprint(a), "j" if a.ndim == 1 else "ij"
            rows_a = a.shape[0] if a.ndim == 2 else sp.Integer(1)
            cols_a = a.shape[-1]
            if _splits(out, b.shape[0], rows_a) and _splits(tail, b.shape[1], cols_a):
                target = "k" + ("i" if rows_a != 1 else "") + "l" + ("j" if cols_a != 1 else "")
                body = f'np.einsum("kl,{a_sub}->{target}", {self.doprint(b)}, {a_text})'
                if c == 1:
                    return body, ATOM
                return (f"-{body}", UNARY) if c == -1 else (f"{number(c)} * {body}", MUL)
        target = ", ".join(self.dim(d) for d in tuple(out) + tuple(tail))
        return f'np.reshape({self.doprint(j)}, ({target}), order="F")', ATOM

    def _print_T(self, e: Node) -> tuple[str, int]:
        return f"{self.wrap(e.args[0], POSTFIX)}.T", POSTFIX

    def _print_inv(self, e: Node) -> tuple[str, int]:
        return self.call("np.linalg.inv", e.args[0])

    def _print_det(self, e: Node) -> tuple[str, int]:
        return self.call("np.linalg.det", e.args[0])

    def _print_logdet(self, e: Node) -> tuple[str, int]:
        return f"np.linalg.slogdet({self.doprint(e.args[0])})[1]", ATOM

    def _print_trace(self, e: Node) -> tuple[str, int]:
        return self.call("np.trace", e.args[0])

    def _print_sum(self, e: Node) -> tuple[str, int]:
        return self.call("np.sum", e.args[0])

    def _print_norm(self, e: Node) -> tuple[str, int]:
        return self.call("np.linalg.norm", e.args[0])

    def _print_softmax(self, e: Node) -> tuple[str, int]:
        return self.call(self.use("_softmax"), e.args[0])

    def _print_logsoftmax(self, e: Node) -> tuple[str, int]:
        return self.call(self.use("_log_softmax"), e.args[0])

    def _print_logsumexp(self, e: Node) -> tuple[str, int]:
        return self.call(self.use("_logsumexp"), e.args[0])

    def _print_diag(self, e: Node) -> tuple[str, int]:
        return self.call("np.diag", e.args[0])

    def _print_outer(self, e: Node) -> tuple[str, int]:
        return self.call("np.outer", *e.args)

    def _print_kron(self, e: Node) -> tuple[str, int]:
        return self.call("np.kron", *e.args)

    def _print_row(self, e: Node) -> tuple[str, int]:
        (a,) = e.args
        if a.ndim == 1:
            return f"{self.wrap(a, POSTFIX)}[None, :]", POSTFIX
        return f'np.ravel({self.doprint(a)}, order="F")[None, :]', POSTFIX

    def _print_col(self, e: Node) -> tuple[str, int]:
        (a,) = e.args
        if a.ndim == 1:
            return f"{self.wrap(a, POSTFIX)}[:, None]", POSTFIX
        return f'np.ravel({self.doprint(a)}, order="F")[:, None]', POSTFIX

    def _print_vec(self, e: Node) -> tuple[str, int]:
        return f'np.ravel({self.doprint(e.args[0])}, order="F")', ATOM

    def _print_conv2d(self, e: Node) -> tuple[str, int]:
        return self.call(self.use("_conv2d"), *e.args)

    def _print_conv2d_kernel_grad(self, e: Node) -> tuple[str, int]:
        return self.call(self.use("_conv2d_kernel_grad"), *e.args)

    def _print_conv2d_input_grad(self, e: Node) -> tuple[str, int]:
        return self.call(self.use("_conv2d_input_grad"), *e.args)

    def _print_spatial_sum(self, e: Node) -> tuple[str, int]:
        return f"np.sum({self.doprint(e.args[0])}, axis=(-2, -1))", ATOM

    def _print_im2col(self, e: Node) -> tuple[str, int]:
        return f"{self.use('_im2col')}({self.doprint(e.args[0])}, {self.shape(e.attr)})", ATOM

    def _print_toeplitz(self, e: Node) -> tuple[str, int]:
        return f"{self.use('_toeplitz')}({self.doprint(e.args[0])}, {self.shape(e.attr)})", ATOM

    def _print_maxpool(self, e: Node) -> tuple[str, int]:
        return f"{self.use('_maxpool')}({self.doprint(e.args[0])}, {e.attr})", ATOM

    def _print_maxpool_grad(self, e: Node) -> tuple[str, int]:
        x, g = (self.doprint(a) for a in e.args)
        return f"{self.use('_maxpool_grad')}({x}, {g}, {e.attr})", ATOM

    def _print_flatten(self, e: Node) -> tuple[str, int]:
        return self.call("np.ravel", e.args[0])

    def _print_unflatten(self, e: Node) -> tuple[str, int]:
        return f"np.reshape({self.doprint(e.args[0])}, {self.shape(e.shape)})", ATOM


def _diagonal_kron(k: Node, out: tuple, tail: tuple) -> bool:
    """x^T (x) diag(s) or x^T (x) I, whose jax-layout array is zero off the diagonal (i, i, :)."""
    a, b = k.args
    diagonal = (b.op == "diag" and b.args[0].ndim == 1) or b.op == "eye"
    return diagonal and a.ndim == 1 and len(out) == 1 and _splits(tail, b.shape[1], a.shape[0])


def _splits(axes: tuple, inner: sp.Expr, outer: sp.Expr) -> bool:
    """Whether column-major ``axes`` are (inner, outer), an outer of size 1 dropped."""
    if outer == 1:
        return len(axes) == 1 and axes[0] == inner
    return len(axes) == 2 and axes[0] == inner and axes[1] == outer


def _chain(e: Node) -> list[Node]:
    """The factors of a product of products: A @ (B @ x) -> [A, B, x]."""
    if e.op != "matmul":
        return [e]
    return _chain(e.args[0]) + _chain(e.args[1])


def _inner_products(e: Node) -> list[Node]:
    """The sub-products inside a chain (shared ones must keep their grouping)."""
    if e.op != "matmul":
        return []
    return [a for a in e.args if a.op == "matmul"] + [x for a in e.args for x in _inner_products(a)]


def _cheapest(factors: list[Node], size: Callable[[sp.Expr], int]) -> Node:
    """The product of ``factors`` grouped for the fewest multiplications (matrix-chain order)."""
    dims = []
    for i, f in enumerate(factors):
        if f.ndim == 1:
            dims.append((1, f.shape[0]) if i == 0 else (f.shape[0], 1))
        else:
            dims.append(f.shape)
    n = len(factors)
    p = [size(dims[0][0])] + [size(d[1]) for d in dims]
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(2, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            cost[i][j], split[i][j] = min(
                (cost[i][k] + cost[k + 1][j] + p[i] * p[k + 1] * p[j + 1], k) for k in range(i, j)
            )

    def build(i: int, j: int) -> Node:
        if i == j:
            return factors[i]
        left, right = build(i, split[i][j]), build(split[i][j] + 1, j)
        return Node("matmul", (left, right), None, _product_shape(left, right))

    return build(0, n - 1)


def _product_shape(a: Node, b: Node) -> tuple:
    return a.shape[:-1] + b.shape[1:]


# ----- mathematics: LaTeX and plain text -----


class MathPrinter(Printer):
    """Formulas as a person writes them; subclasses supply the notation.

    Vectors are columns: ``x @ A`` prints as x^T A, ``x @ y`` as x^T y.
    """

    T = "ᵀ"
    INV = "⁻¹"
    INV_T = "⁻ᵀ"
    HADAMARD = " ∘ "
    KRON = " ⊗ "
    TIMES = " "
    ONES = "𝟏"
    EYE = "I"
    SQUARED = "²"
    STAR = " ⋆ "
    SPATIAL_SUM = "Σᵢⱼ"

    def __init__(self, names: Mapping[Node, str] | None = None) -> None:
        super().__init__(names)

    # ----- notation hooks -----
    def name(self, e: Node) -> str:
        return e.attr[0]

    def fname(self, name: str, order: int) -> str:
        return name + "′" * order

    def op(self, name: str) -> str:
        return name

    def apply(self, f: str, inner: str) -> str:
        return f"{f}({inner})"

    def power(self, base: str, p: str, hadamard: bool) -> str:
        return f"{base}^{'∘' if hadamard else ''}{p}"

    def norm_text(self, inner: str) -> str:
        return f"‖{inner}‖"

    def frac(self, num: str, den: str) -> str:
        return f"{num}/{den}"

    def num(self, c: sp.Expr) -> str:
        return str(c)

    def commutation(self, m: str, n: str) -> str:
        return f"K({m},{n})"

    def dimtext(self, d: sp.Expr) -> str:
        return str(d)

    def join(self, left: str, right: str) -> str:
        """Juxtaposition: a product written without a sign."""
        return left + self.TIMES + right

    # ----- structure -----
    def _print_var(self, e: Node) -> tuple[str, int]:
        return self.name(e), ATOM

    def _print_const(self, e: Node) -> tuple[str, int]:
        return self.number(sp.S(e.attr))

    def number(self, c: sp.Expr) -> tuple[str, int]:
        if c.is_Rational and not c.is_Integer:
            s = self.frac(self.num(abs(c.p)), self.num(c.q))
            return ("-" + s, UNARY) if c < 0 else (s, MUL)
        s = self.num(c)
        return s, (UNARY if s.startswith("-") else ATOM)

    def _print_eye(self, e: Node) -> tuple[str, int]:
        return self.EYE, ATOM

    def _print_ones(self, e: Node) -> tuple[str, int]:
        return self.ONES, ATOM

    def _print_commutation(self, e: Node) -> tuple[str, int]:
        m, n = e.attr
        return self.commutation(self.dimtext(m), self.dimtext(n)), ATOM

    def _print_add(self, e: Node) -> tuple[str, int]:
        return self.terms(e)

    def scaled(self, c: sp.Expr, rest: Node) -> tuple[str, int]:
        if c == 1:
            return self.prec(rest)
        if rest.op == "const" and rest.attr == 1:
            return self.number(c)
        body = self.wrap(rest, MUL, strict=_is_hadamard(rest))
        if c == -1:
            return "-" + body, UNARY
        return self.join(self.number(c)[0], body), MUL

    def _print_mul(self, e: Node) -> tuple[str, int]:
        c, rest = split_coef(e)
        if c != 1:
            return self.scaled(c, rest)
        factors = flatten_mul(e)
        scalars = [f for f in factors if f.shape == ()]
        tensors = [f for f in factors if f.shape != ()]
        text = [self.wrap(f, MUL, strict=True) for f in scalars]
        if len(tensors) == 1:
            text.append(self.wrap(tensors[0], MUL))
        elif tensors:
            hadamard = self.HADAMARD.join(self.wrap(f, MUL, strict=True) for f in tensors)
            if not scalars:
                return hadamard, HAD
            text.append(self.paren(hadamard))
        out = text[0]
        for t in text[1:]:
            out = self.join(out, t)
        return out, MUL

    def _print_pow(self, e: Node) -> tuple[str, int]:
        a, p = e.args[0], sp.S(e.attr)
        if p == -1 and a.shape == ():
            return self.frac(self.num(1), self.doprint(a)), MUL
        if p == sp.Rational(1, 2):
            return self.apply(self.op("sqrt"), self.doprint(a)), ATOM
        if a.op == "norm" and p == 2:
            return self.prec(a)[0] + self.SQUARED, POW
        exponent = self.num(p) if p.is_Integer else self.frac(self.num(p.p), self.num(p.q))
        return self.power(self.wrap(a, ATOM), exponent, a.shape != ()), POW

    def _print_fn(self, e: Node) -> tuple[str, int]:
        name, order = e.attr
        return self.apply(self.fname(name, order), self.doprint(e.args[0])), ATOM

    def _print_matmul(self, e: Node) -> tuple[str, int]:
        a, b = e.args
        left = self.row(a) if a.ndim == 1 else self.wrap(a, MUL)
        return self.join(left, self.wrap(b, MUL)), MUL

    def row(self, v: Node) -> str:
        """A 1-D vector written as a row: x -> x^T, A y -> y^T A^T, 2 A y -> 2 y^T A^T."""
        c, rest = split_coef(v)
        if c != 1 and rest.ndim == 1:
            body = self.row(rest)
            return "-" + body if c == -1 else self.join(self.number(c)[0], body)
        if v.op == "matmul" and v.args[0].ndim == 2 and v.args[1].ndim == 1:
            return self.join(self.row(v.args[1]), self.wrap(_transposed(v.args[0]), MUL))
        return self.wrap(v, POSTFIX, strict=True) + self.T

    def _print_T(self, e: Node) -> tuple[str, int]:
        a = e.args[0]
        if a.op == "inv":
            return self.wrap(a.args[0], POSTFIX, strict=True) + self.INV_T, POSTFIX
        return self.wrap(a, POSTFIX, strict=True) + self.T, POSTFIX

    def _print_inv(self, e: Node) -> tuple[str, int]:
        return self.wrap(e.args[0], POSTFIX, strict=True) + self.INV, POSTFIX

    def _print_det(self, e: Node) -> tuple[str, int]:
        return self.apply(self.op("det"), self.doprint(e.args[0])), ATOM

    def _print_logdet(self, e: Node) -> tuple[str, int]:
        return self.apply(self.op("log") + " " + self.op("det"), self.doprint(e.args[0])), ATOM

    def _print_trace(self, e: Node) -> tuple[str, int]:
        return self.apply(self.op("tr"), self.doprint(e.args[0])), ATOM

    def _print_sum(self, e: Node) -> tuple[str, int]:
        a = e.args[0]
        text = self.join(self.ONES + self.T, self.wrap(a, MUL, strict=True))
        return (self.join(text, self.ONES) if a.ndim == 2 else text), MUL

    def _print_norm(self, e: Node) -> tuple[str, int]:
        return self.norm_text(self.doprint(e.args[0])), ATOM

    def _print_softmax(self, e: Node) -> tuple[str, int]:
        return self.apply(self.op("softmax"), self.doprint(e.args[0])), ATOM

    def _print_logsoftmax(self, e: Node) -> tuple[str, int]:
        return self.apply(self.op("log") + " " + self.op("softmax"), self.doprint(e.args[0])), ATOM

    def _print_logsumexp(self, e: Node) -> tuple[str, int]:
        return self.apply(self.op("logsumexp"), self.doprint(e.args[0])), ATOM

    def _print_diag(self, e: Node) -> tuple[str, int]:
        return self.apply(self.op("diag"), self.doprint(e.args[0])), ATOM

    def _print_outer(self, e: Node) -> tuple[str, int]:
        a, b = e.args
        return self.join(self.wrap(a, MUL), self.row(b)), MUL

    def _print_kron(self, e: Node) -> tuple[str, int]:
        a, b = e.args
        left = self.row(a) if a.ndim == 1 else self.wrap(a, MUL, strict=True)
        return left + self.KRON + self.wrap(b, MUL, strict=True), HAD

    def _print_row(self, e: Node) -> tuple[str, int]:
        a = e.args[0]
        if a.ndim == 1:
            return self.row(a), POSTFIX
        return self._print_vec(e)[0] + self.T, POSTFIX

    def _print_col(self, e: Node) -> tuple[str, int]:
        a = e.args[0]
        return self.prec(a) if a.ndim == 1 else self._print_vec(e)

    def _print_vec(self, e: Node) -> tuple[str, int]:
        return self.apply(self.op("vec"), self.doprint(e.args[0])), ATOM

    # convolution and pooling: X ⋆ K is the valid cross-correlation
    def _print_conv2d(self, e: Node) -> tuple[str, int]:
        x, k = (self.wrap(a, MUL, strict=True) for a in e.args[:2])
        text = f"{x}{self.STAR}{k}"
        return (text + " + " + self.doprint(e.args[2]), ADD) if len(e.args) == 3 else (text, HAD)

    def _print_conv2d_kernel_grad(self, e: Node) -> tuple[str, int]:
        x, g = (self.wrap(a, MUL, strict=True) for a in e.args)
        return f"{x}{self.STAR}{g}", HAD

    def _print_conv2d_input_grad(self, e: Node) -> tuple[str, int]:
        g, k = (self.doprint(a) for a in e.args)
        return f"{self.apply(self.op('pad'), g)}{self.STAR}{self.apply(self.op('rot180'), k)}", HAD

    def _print_spatial_sum(self, e: Node) -> tuple[str, int]:
        return self.join(self.SPATIAL_SUM, self.wrap(e.args[0], MUL, strict=True)), MUL

    def _print_maxpool(self, e: Node) -> tuple[str, int]:
        return self.apply(self.sub_op("maxpool", e.attr), self.doprint(e.args[0])), ATOM

    def _print_maxpool_grad(self, e: Node) -> tuple[str, int]:
        x, g = (self.doprint(a) for a in e.args)
        return self.apply(self.sub_op("unpool", e.attr), f"{g}; {x}"), ATOM

    def _print_flatten(self, e: Node) -> tuple[str, int]:
        return self.apply(self.op("flatten"), self.doprint(e.args[0])), ATOM

    def _print_im2col(self, e: Node) -> tuple[str, int]:
        return self.apply(self.op("im2col"), self.doprint(e.args[0])), ATOM

    def _print_toeplitz(self, e: Node) -> tuple[str, int]:
        return self.apply(self.op("toeplitz"), self.doprint(e.args[0])), ATOM

    def _print_unflatten(self, e: Node) -> tuple[str, int]:
        return self.apply(self.op("reshape"), self.doprint(e.args[0])), ATOM

    def sub_op(self, name: str, k: int) -> str:
        return f"{name}{''.join('₀₁₂₃₄₅₆₇₈₉'[int(c)] for c in str(k))}"


def _is_hadamard(e: Node) -> bool:
    return e.op == "mul" and sum(f.shape != () for f in flatten_mul(e)) > 1


def _transposed(a: Node) -> Node:
    from .simplify import simplify  # deferred: simplify does not need printing

    return simplify(Node("T", (a,), None, tuple(reversed(a.shape))))


class TextPrinter(MathPrinter):
    """Plain Unicode for a terminal: 2 Aᵀ(A x - b)."""

    SYMBOLS: ClassVar[dict[str, str]] = {"sigmoid": "σ"}
    PRIMES = ("", "′", "″", "‴")

    def fname(self, name: str, order: int) -> str:
        return self.SYMBOLS.get(name, name) + (self.PRIMES[order] if order < 4 else f"^({order})")

    def join(self, left: str, right: str) -> str:
        return left + ("" if right.startswith("(") else self.TIMES) + right


class LatexPrinter(MathPrinter):
    """LaTeX with amsmath: bold vectors, \\odot, \\otimes, \\operatorname{diag}.

    ``transpose`` is ``"top"`` (A^{\\top}, the default) or ``"T"`` (A^T).
    """

    HADAMARD = " \\odot "
    KRON = " \\otimes "
    TIMES = " "
    ONES = "\\mathbf{1}"
    EYE = "I"
    INV = "^{-1}"
    SQUARED = "^{2}"
    STAR = " \\star "
    SPATIAL_SUM = "\\sum_{i,j}"

    def sub_op(self, name: str, k: int) -> str:
        return f"\\operatorname{{{name}}}_{{{k}}}"

    def __init__(self, names: Mapping[Node, str] | None = None, transpose: str = "top") -> None:
        super().__init__(names)
        if transpose not in ("top", "T"):
            raise ValueError(f"transpose must be 'top' or 'T', got {transpose!r}")
        mark = "\\top" if transpose == "top" else "T"
        self.T = f"^{{{mark}}}"
        self.INV_T = f"^{{-{mark}}}"

    def name(self, e: Node) -> str:
        return latex_name(e.attr[0], vector=len(e.attr[1]) == 1)

    def fname(self, name: str, order: int) -> str:
        base = FUNCTIONS[name].latex
        return base + "'" * order if order < 3 else f"{base}^{{({order})}}"

    def op(self, name: str) -> str:
        known = {"det": "\\det", "log": "\\log", "sqrt": "\\sqrt", "tr": "\\operatorname{tr}"}
        return known.get(name, f"\\operatorname{{{name}}}")

    def apply(self, f: str, inner: str) -> str:
        if f == "\\sqrt":
            return f"\\sqrt{{{inner}}}"
        return f"{f}\\left({inner}\\right)"

    def power(self, base: str, p: str, hadamard: bool) -> str:
        mark = "\\circ " if hadamard else ""
        return f"{base}^{{{mark}{p}}}"

    def norm_text(self, inner: str) -> str:
        return f"\\left\\| {inner} \\right\\|_2"

    def frac(self, num: str, den: str) -> str:
        return f"\\frac{{{num}}}{{{den}}}"

    def paren(self, s: str) -> str:
        return f"\\left({s}\\right)"

    def commutation(self, m: str, n: str) -> str:
        return f"K_{{{m}{n}}}"

    def dimtext(self, d: sp.Expr) -> str:
        return sp.latex(d)


def latex_name(name: str, vector: bool) -> str:
    """W1 -> W_{1}, x -> \\mathbf{x}, b_out -> \\mathbf{b}_{\\mathrm{out}}."""
    base, _, sub = name.partition("_")
    digits = ""
    while len(base) > 1 and base[-1].isdigit():
        digits = base[-1] + digits
        base = base[:-1]
    sub = sub or digits
    core = f"\\mathbf{{{base}}}" if vector else base
    if sub:
        sub = sub if sub.isdigit() else f"\\mathrm{{{sub}}}"
        return f"{core}_{{{sub}}}"
    return core


class EntryLatexPrinter(SympyLatexPrinter):
    """SymPy's LaTeX for scalar entries, except that an unknown object is an error.

    SymPy's own printer writes an object it does not know as
    ``\\mathtt{\\text{...}}``, which would put an internal dump in a paper.
    """

    def emptyPrinter(self, expr: object) -> str:
        raise PrintError(f"no LaTeX form for {type(expr).__name__}")
