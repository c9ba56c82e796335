"""Scalar domains for writing expressions out entry by entry.

An expression at concrete sizes is an array of scalars; a *domain* says what
a scalar is and how the few primitives (exp, log, sqrt, sin, cos and the
sign indicator ``step``) act on it. Every other function is defined from
these (see :mod:`derive.ops.functions`), and :class:`Dual` numbers carry
partial derivatives through them by the scalar chain rule, so the
element-wise Jacobian needs nothing from the matrix rules.

- :class:`SympyDomain`: SymPy expressions, for showing entries (a11 x1 + ...).
- :class:`FloatDomain`: numpy float64, the value numpy gives (the parser checks constants with it).
- :class:`MpDomain`: mpmath at 30 digits, at one point (to tell a real mismatch from a missed identity).
- :class:`SizeDomain`: bounds on the size and depth of what SymPy would build, before building it.
- :class:`ExactDomain`: rational functions with exact rational coefficients
  (python-flint when installed, else SymPy's sparse polynomials), in the
  entries and in one symbol per distinct exp(u), log(u), sqrt(u), sin(u),
  cos(u) and sign indicator. Equal rational functions are equal for every
  value of those symbols, so equality here is a proof; the converse can
  fail (an identity such as exp(2u) = exp(u)^2 is not seen), which only
  leaves a result unproven, never wrong. sqrt(u)^2 = u is applied.
- :class:`ModularDomain`: the same objects evaluated at one random point
  modulo the prime p = 2^61 - 1, the symbols of exp(u), ... given values by a
  seeded hash of u. Equal values are a probabilistic proof (Schwartz-Zippel:
  a non-zero rational function of degree d vanishes at a random point with
  probability at most d/p); each scalar tracks a bound on its degree.

Each domain instance belongs to one proof: its tables of symbols are the
proof's own state, never shared.
"""

from __future__ import annotations

import functools
import math
import operator
import random
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from .context import Budget

P = 2**61 - 1  # a Mersenne prime, 3 mod 4: square roots are one power away
SPARSE_FROM = 150  # variables beyond which the exact domain uses sparse monomials (flint's are dense)
_NUMBERS: tuple[type, ...] = (int, Fraction, sp.Rational)  # what a scalar combines with besides its own kind


class DomainError(Exception):
    """A value the domain cannot represent at this point (a zero denominator, a non-square)."""


SPARSE_WORK = 400_000  # the most term products one multiplication in pure Python may take (about a second)


class TooBig(Exception):
    """An exact computation grew past its size limit."""


# ----- dual numbers: the scalar chain rule -----


class Dual:
    """A value with its partial derivatives ``t`` (key -> derivative), over any scalar domain.

    Duals nest: a Dual whose entries are Duals carries second derivatives. A value may be given
    as ``later``, a function computing it when first asked: the root of a derivative's
    computation is never asked, so a sum of squares is never expanded just to be dropped.
    """

    __slots__ = ("_later", "_v", "t")

    def __init__(self, v: Any, t: dict, later: Callable[[], Any] | None = None) -> None:
        self._v = v
        self._later = later
        self.t = t

    @property
    def v(self) -> Any:
        if self._later is not None:
            self._v, self._later = self._later(), None
        return self._v

    def __add__(self, b: Any) -> Dual:
        if isinstance(b, np.ndarray):
            return NotImplemented
        if not isinstance(b, Dual):
            return Dual(self.v + b, self.t)
        t = dict(self.t)
        for k, x in b.t.items():
            t[k] = t[k] + x if k in t else x
        return Dual(None, t, lambda: self.v + b.v)

    __radd__ = __add__

    def __neg__(self) -> Dual:
        return Dual(-self.v, {k: -x for k, x in self.t.items()})

    def __sub__(self, b: Any) -> Dual:
        if isinstance(b, np.ndarray):
            return NotImplemented
        return self + (-b)

    def __rsub__(self, b: Any) -> Dual:
        return (-self) + b

    def __mul__(self, b: Any) -> Dual:
        if isinstance(b, np.ndarray):
            return NotImplemented
        if not isinstance(b, Dual):
            return Dual(self.v * b, {k: x * b for k, x in self.t.items()})
        t = {k: x * b.v for k, x in self.t.items()}
        for k, x in b.t.items():
            y = self.v * x
            t[k] = t[k] + y if k in t else y
        return Dual(None, t, lambda: self.v * b.v)

    __rmul__ = __mul__

    def reciprocal(self) -> Dual:
        r = 1 / self.v
        d = -(r * r)
        return Dual(r, {k: x * d for k, x in self.t.items()})

    def __truediv__(self, b: Any) -> Dual:
        if isinstance(b, np.ndarray):
            return NotImplemented
        return self * (b.reciprocal() if isinstance(b, Dual) else 1 / b)

    def __rtruediv__(self, b: Any) -> Dual:
        return self.reciprocal() * b

    def __pow__(self, n: int) -> Dual:
        if n == 0:
            return Dual(self.v**0, {})
        vn1 = self.v ** (n - 1)
        d = vn1 * n
        return Dual(vn1 * self.v, {k: x * d for k, x in self.t.items()})


class Primitives:
    """exp, log, sqrt, sin, cos and step on the domain's scalars and on Duals over them."""

    def exp(self, x: Any) -> Any:
        if isinstance(x, Dual):
            v = self.exp(x.v)
            return Dual(v, {k: t * v for k, t in x.t.items()})
        return self._exp(x)

    def log(self, x: Any) -> Any:
        if isinstance(x, Dual):
            r = 1 / x.v
            return Dual(self.log(x.v), {k: t * r for k, t in x.t.items()})
        return self._log(x)

    def sqrt(self, x: Any) -> Any:
        if isinstance(x, Dual):
            s = self.sqrt(x.v)
            h = 1 / (2 * s)
            return Dual(s, {k: t * h for k, t in x.t.items()})
        return self._sqrt(x)

    def sin(self, x: Any) -> Any:
        if isinstance(x, Dual):
            c = self.cos(x.v)
            return Dual(self.sin(x.v), {k: t * c for k, t in x.t.items()})
        return self._sin(x)

    def cos(self, x: Any) -> Any:
        if isinstance(x, Dual):
            s = -self.sin(x.v)
            return Dual(self.cos(x.v), {k: t * s for k, t in x.t.items()})
        return self._cos(x)

    def step(self, x: Any) -> Any:
        """1 where x > 0, 0 where x < 0: constant on each region, so its derivative is zero."""
        if isinstance(x, Dual):
            return Dual(self.step(x.v), {})
        return self._step(x)

    def choice(self, xs: list[Any]) -> list[Any]:
        """Indicators of which of ``xs`` is largest (one of them is 1 on each region)."""
        base = [x.v if isinstance(x, Dual) else x for x in xs]
        while any(isinstance(b, Dual) for b in base):
            base = [b.v if isinstance(b, Dual) else b for b in base]
        return self._choice(base)

    def const(self, q: Any) -> Any:
        raise NotImplementedError

    def add_all(self, terms: Iterable[Any]) -> Any:
        """The sum of ``terms`` at once: each partial derivative summed in one go, the value only if asked."""
        terms = list(terms)
        if not terms:
            return self.const(0)
        if any(isinstance(x, Dual) for x in terms):
            parts: dict = {}
            for x in terms:
                if isinstance(x, Dual):
                    for k, v in x.t.items():
                        parts.setdefault(k, []).append(v)
            values = lambda: self.add_all([x.v if isinstance(x, Dual) else x for x in terms])  # noqa: E731
            return Dual(None, {k: self.add_all(vs) for k, vs in parts.items()}, values)
        return self._sum(terms)

    def _sum(self, terms: list[Any]) -> Any:
        return functools.reduce(operator.add, terms)

    def _exp(self, x: Any) -> Any:
        raise NotImplementedError

    def _log(self, x: Any) -> Any:
        raise NotImplementedError

    def _sqrt(self, x: Any) -> Any:
        raise NotImplementedError

    def _sin(self, x: Any) -> Any:
        raise NotImplementedError

    def _cos(self, x: Any) -> Any:
        raise NotImplementedError

    def _step(self, x: Any) -> Any:
        raise NotImplementedError

    def _choice(self, xs: list[Any]) -> list[Any]:
        raise NotImplementedError


# ----- SymPy: for showing entries -----


class SympyDomain(Primitives):
    """SymPy expressions; a max-pooling window's choice is named delta_..., numbered in order."""

    name = "sympy"

    def __init__(self) -> None:
        self.windows: dict[tuple, list[sp.Symbol]] = {}

    def const(self, q: Any) -> sp.Expr:
        return sp.S(q)

    def add_all(self, terms: Iterable[Any]) -> Any:
        return sp.Add(*terms)

    def _exp(self, x: sp.Expr) -> sp.Expr:
        return sp.exp(x)

    def _log(self, x: sp.Expr) -> sp.Expr:
        return sp.log(x)

    def _sqrt(self, x: sp.Expr) -> sp.Expr:
        return sp.sqrt(x)

    def _sin(self, x: sp.Expr) -> sp.Expr:
        return sp.sin(x)

    def _cos(self, x: sp.Expr) -> sp.Expr:
        return sp.cos(x)

    def _step(self, x: sp.Expr) -> sp.Expr:
        from .ops.functions import step

        return step(x)

    def _choice(self, xs: list[Any]) -> list[Any]:
        key = tuple(xs)
        if key not in self.windows:
            n = len(self.windows) + 1
            self.windows[key] = [sp.Symbol(f"delta_{n}_{r + 1}") for r in range(len(xs))]
        return self.windows[key]


# ----- floats: what numpy computes -----


class FloatDomain(Primitives):
    """numpy float64 scalars: the value numpy gives (nan, inf and all), for checking constants."""

    name = "float"

    def const(self, q: Any) -> np.float64:
        return np.float64(float(q))

    def _exp(self, x: Any) -> np.float64:
        return np.exp(x)

    def _log(self, x: Any) -> np.float64:
        return np.log(x)

    def _sqrt(self, x: Any) -> np.float64:
        return np.sqrt(x)

    def _sin(self, x: Any) -> np.float64:
        return np.sin(x)

    def _cos(self, x: Any) -> np.float64:
        return np.cos(x)

    def _step(self, x: Any) -> np.float64:
        return np.heaviside(x, 0.5)

    def _choice(self, xs: list[Any]) -> list[Any]:
        best = int(np.argmax(xs))
        return [np.float64(i == best) for i in range(len(xs))]


# ----- mpmath: many digits, at a point -----


class MpDomain(Primitives):
    """mpmath numbers with ``digits`` significant digits, in a context of this domain's own.

    For telling a real mismatch from an identity the exact algebra missed: both sides at a
    random point. A value that is not a finite real number makes the point unusable
    (:class:`DomainError`), as does one too large for mpmath (an exponential of an exponential).
    """

    name = "mpmath"

    def __init__(self, digits: int = 30) -> None:
        import mpmath

        self.mp = mpmath.MPContext()
        self.mp.dps = digits

    def const(self, q: Any) -> Any:
        q = sp.S(q) if not isinstance(q, int | Fraction) else q
        if isinstance(q, int | Fraction) or q.is_Rational:
            f = Fraction(q) if isinstance(q, int | Fraction) else Fraction(int(q.p), int(q.q))
            return self.mp.mpf(f.numerator) / f.denominator
        return self._real(lambda: self.mp.mpf(str(sp.N(q, self.mp.dps + 5))))

    def _real(self, f: Callable[[], Any]) -> Any:
        try:
            v = f()
        except (MemoryError, OverflowError, ZeroDivisionError, ValueError) as e:
            raise DomainError(f"not a number at this point ({type(e).__name__})") from None
        if not isinstance(v, self.mp.mpf) or not self.mp.isfinite(v):
            raise DomainError("not a finite real number at this point")
        return v

    def _exp(self, x: Any) -> Any:
        return self._real(lambda: self.mp.exp(x))

    def _log(self, x: Any) -> Any:
        return self._real(lambda: self.mp.log(x))

    def _sqrt(self, x: Any) -> Any:
        return self._real(lambda: self.mp.sqrt(x))

    def _sin(self, x: Any) -> Any:
        return self._real(lambda: self.mp.sin(x))

    def _cos(self, x: Any) -> Any:
        return self._real(lambda: self.mp.cos(x))

    def _step(self, x: Any) -> Any:
        return self.mp.mpf(1 if x > 0 else 0 if x < 0 else 0.5)

    def _choice(self, xs: list[Any]) -> list[Any]:
        best = max(range(len(xs)), key=lambda i: xs[i])
        return [self.mp.mpf(int(i == best)) for i in range(len(xs))]


# ----- sizes: how large SymPy's entries would be -----


class Size:
    """A bound on the tree size ``n`` and depth ``d`` of the SymPy expression a computation builds.

    ``kind`` is "add", "mul" or "" (SymPy flattens a sum of sums, a product of products).
    Used to refuse writing out entries too large (or too deep) for SymPy before building them.
    """

    __slots__ = ("d", "kind", "n")
    CAP = 10**12

    def __init__(self, n: int = 1, d: int = 1, kind: str = "") -> None:
        self.n = min(n, self.CAP)
        self.d = d
        self.kind = kind

    @staticmethod
    def of(x: Any) -> Size:
        return x if isinstance(x, Size) else Size()

    def _join(self, b: Any, kind: str) -> Size:
        if isinstance(b, np.ndarray) or not isinstance(b, (Size, *_NUMBERS)):
            return NotImplemented
        b = Size.of(b)
        inner = max(x.d - (x.kind == kind) for x in (self, b))
        return Size(self.n + b.n + 1, inner + 1, kind)

    def __add__(self, b: Any) -> Size:
        return self._join(b, "add")

    __radd__ = __sub__ = __rsub__ = __add__

    def __mul__(self, b: Any) -> Size:
        return self._join(b, "mul")

    __rmul__ = __mul__

    def __truediv__(self, b: Any) -> Size:
        return self._join(Size.of(b) ** -1 if isinstance(b, Size) else b, "mul")

    def __rtruediv__(self, b: Any) -> Size:
        return (self**-1)._join(b, "mul")

    def __neg__(self) -> Size:
        return self._join(1, "mul")

    def __pow__(self, k: int) -> Size:
        return Size(self.n + 2, self.d + 1)


class SizeDomain(Primitives):
    """:class:`Size` bounds: what writing entries out in SymPy would build, computed without SymPy."""

    name = "size"

    def const(self, q: Any) -> Size:
        return Size()

    def _fn(self, x: Any) -> Size:
        x = Size.of(x)
        return Size(x.n + 1, x.d + 1)

    _exp = _log = _sqrt = _sin = _cos = _step = _fn

    def _choice(self, xs: list[Any]) -> list[Any]:
        return [Size() for _ in xs]


# ----- modular: a random point mod p -----


def _mix(x: int) -> int:
    """splitmix64: a fixed, well-spread hash of a 64-bit integer."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


class Fp:
    """A value mod P with bounds (dn, dd) on the degrees of a numerator and denominator it came from."""

    __slots__ = ("dd", "dn", "v")

    def __init__(self, v: int, dn: int = 0, dd: int = 0) -> None:
        self.v = v % P
        self.dn = dn
        self.dd = dd

    @staticmethod
    def of(x: Any) -> Fp:
        if isinstance(x, Fp):
            return x
        if isinstance(x, int):
            return Fp(x)
        q = Fraction(x) if not isinstance(x, sp.Basic) else Fraction(int(x.p), int(x.q))
        if q.denominator % P == 0:
            raise DomainError("a constant's denominator is a multiple of the modulus")
        return Fp(q.numerator * pow(q.denominator, -1, P))

    def __add__(self, b: Any) -> Fp:
        if not isinstance(b, (Fp, *_NUMBERS)):
            return NotImplemented
        b = Fp.of(b)
        return Fp(self.v + b.v, max(self.dn + b.dd, b.dn + self.dd), self.dd + b.dd)

    __radd__ = __add__

    def __neg__(self) -> Fp:
        return Fp(-self.v, self.dn, self.dd)

    def __sub__(self, b: Any) -> Fp:
        if not isinstance(b, (Fp, *_NUMBERS)):
            return NotImplemented
        return self + (-Fp.of(b))

    def __rsub__(self, b: Any) -> Fp:
        return Fp.of(b) + (-self)

    def __mul__(self, b: Any) -> Fp:
        if not isinstance(b, (Fp, *_NUMBERS)):
            return NotImplemented
        b = Fp.of(b)
        return Fp(self.v * b.v, self.dn + b.dn, self.dd + b.dd)

    __rmul__ = __mul__

    def __truediv__(self, b: Any) -> Fp:
        if not isinstance(b, (Fp, *_NUMBERS)):
            return NotImplemented
        b = Fp.of(b)
        if b.v == 0:
            raise DomainError("a denominator is zero at the sample point")
        return Fp(self.v * pow(b.v, -1, P), self.dn + b.dd, self.dd + b.dn)

    def __rtruediv__(self, b: Any) -> Fp:
        return Fp.of(b) / self

    def __pow__(self, n: int) -> Fp:
        if n < 0:
            return Fp(1) / (self ** (-n))
        return Fp(pow(self.v, n, P), self.dn * n, self.dd * n)

    def __eq__(self, b: object) -> bool:
        return isinstance(b, Fp | int) and self.v == Fp.of(b).v

    def __hash__(self) -> int:
        return self.v


class ModularDomain(Primitives):
    """Values mod P at a random point; function values are a seeded hash of their argument.

    ``exp(u)`` is R(u)/R(-u) for a hash R, so exp(-u) = 1/exp(u) holds exactly; ``log(u)`` is
    L(u) - L(1/u), so log(1/u) = -log(u); a square root is the even root of a square (a
    non-square makes the point unusable). ``sqrt_count`` counts distinct square roots,
    which the error bound needs.
    """

    name = "modular"

    def __init__(self, seed: int) -> None:
        self.seed = _mix(seed * 0x9E3779B1 + 12345)
        self.rng = random.Random(seed)
        self.roots: set[int] = set()
        self.seen: set[tuple[int, int]] = set()

    def point(self) -> Fp:
        """A fresh random entry value (a variable of degree 1)."""
        return Fp(self.rng.randrange(1, P), 1, 0)

    def _hash(self, kind: int, v: int) -> int:
        self.seen.add((kind, v))
        return _mix(self.seed ^ _mix(kind * P + v)) % P or 1

    @property
    def atoms(self) -> int:
        """How many distinct function values were met (an upper bound for the exact domain's symbols)."""
        return len(self.seen)

    def const(self, q: Any) -> Fp:
        return Fp.of(q)

    def _exp(self, x: Fp) -> Fp:
        return Fp(self._hash(1, x.v) * pow(self._hash(1, -x.v % P), -1, P), 1, 1)

    def _log(self, x: Fp) -> Fp:
        if x.v == 0:
            raise DomainError("log of zero at the sample point")
        return Fp(self._hash(2, x.v) - self._hash(2, pow(x.v, -1, P)), 1, 0)

    def _sqrt(self, x: Fp) -> Fp:
        r = pow(x.v, (P + 1) // 4, P)
        if r * r % P != x.v:
            raise DomainError("not a square at the sample point")
        r = min(r, P - r)
        self.roots.add(x.v)
        self.seen.add((0, x.v))
        return Fp(r, x.dn + x.dd, x.dd)

    def _sin(self, x: Fp) -> Fp:
        return Fp(self._hash(3, x.v), 1, 0)

    def _cos(self, x: Fp) -> Fp:
        return Fp(self._hash(4, x.v), 1, 0)

    def _step(self, x: Fp) -> Fp:
        """(1 + R(u) - R(-u))/2 for a hash R, so step(-u) = 1 - step(u) holds exactly."""
        half = pow(2, -1, P)
        return Fp((1 + self._hash(5, x.v) - self._hash(5, -x.v % P)) * half, 1, 0)

    def _choice(self, xs: list[Any]) -> list[Any]:
        key = 0
        for x in xs:
            key = _mix(key ^ Fp.of(x).v)
        return [Fp(self._hash(6 + r, key), 1, 0) for r in range(len(xs))]


# ----- exact: rational functions -----


class _Ring:
    """What the polynomial rings share: a polynomial's size in terms, its split by one variable's exponent,
    a sum of many, and a text key."""

    def size(self, a: Any) -> int:
        return len(a)

    def split(self, a: Any, index: int) -> dict[int, Any]:
        return _split(self, a, index)

    def total(self, parts: list[Any]) -> Any:
        return functools.reduce(operator.add, parts)

    def key(self, a: Any) -> str:
        return str(a)


class _FlintRing(_Ring):
    """Polynomials over Q in the given variables, by python-flint."""

    name = "python-flint"

    def __init__(self, names: list[str]) -> None:
        import flint

        self.flint = flint
        self.ctx = flint.fmpq_mpoly_ctx.get(tuple(names), "deglex")
        self.gens = list(self.ctx.gens())
        self.zero = self.ctx.constant(0)
        self.one = self.ctx.constant(1)

    def const(self, q: Fraction) -> Any:
        return self.ctx.constant(self.flint.fmpq(q.numerator, q.denominator))

    def gcd(self, a: Any, b: Any) -> Any:
        return a.gcd(b)

    def exquo(self, a: Any, b: Any) -> Any:
        return a / b

    def lc(self, a: Any) -> Fraction:
        c = a.leading_coefficient()
        return Fraction(int(c.p), int(c.q))

    def scale(self, a: Any, q: Fraction) -> Any:
        return a * self.flint.fmpq(q.numerator, q.denominator)

    def terms(self, a: Any) -> dict:
        return a.to_dict()

    def from_terms(self, d: dict) -> Any:
        return self.ctx.from_dict(d) if d else self.zero

    def sqrt(self, a: Any) -> Any | None:
        try:
            return a.sqrt()
        except Exception:  # flint raises DomainError for a non-square
            return None

    def is_constant(self, a: Any) -> bool:
        return a.is_constant()


def _split(ring: Any, a: Any, index: int) -> dict[int, Any]:
    """a as {e: the coefficient of s^e}, s the generator at ``index`` (dense exponent vectors)."""
    parts: dict[int, dict] = {}
    for exps, c in ring.terms(a).items():
        rest = tuple(0 if i == index else x for i, x in enumerate(exps))
        parts.setdefault(exps[index], {})[rest] = c
    return {e: ring.from_terms(d) for e, d in parts.items()}


class _SympyRing(_Ring):
    """Polynomials over Q in the given variables, by SymPy's sparse polynomials (pure Python)."""

    name = "SymPy's sparse polynomials"

    def __init__(self, names: list[str]) -> None:
        from sympy import QQ
        from sympy.polys.rings import ring

        self.qq = QQ
        self.ring, *gens = ring(",".join(names), QQ)
        self.gens = list(gens)
        self.zero = self.ring.zero
        self.one = self.ring.one

    def const(self, q: Fraction) -> Any:
        return self.ring(self.qq(q.numerator, q.denominator))

    def gcd(self, a: Any, b: Any) -> Any:
        return a.gcd(b)

    def exquo(self, a: Any, b: Any) -> Any:
        return a.exquo(b)

    def lc(self, a: Any) -> Fraction:
        c = a.LC
        return Fraction(int(c.numerator), int(c.denominator))

    def scale(self, a: Any, q: Fraction) -> Any:
        return a * self.qq(q.numerator, q.denominator)

    def terms(self, a: Any) -> dict:
        return dict(a)

    def from_terms(self, d: dict) -> Any:
        return self.ring.from_dict(d) if d else self.zero

    def sqrt(self, a: Any) -> Any | None:
        if a.is_ground:
            return None
        r = a.sqrt() if hasattr(a, "sqrt") else None
        return r if r is not None and r * r == a else None

    def is_constant(self, a: Any) -> bool:
        return a.is_ground


class _Sparse:
    """A polynomial as {monomial: coefficient}, a monomial the sorted tuple of its variables' numbers
    (repeated for powers): its cost is its degree, not the number of variables (thousands here)."""

    __slots__ = ("d",)

    def __init__(self, d: dict) -> None:
        self.d = d

    def __add__(self, b: _Sparse) -> _Sparse:
        out = dict(self.d)
        for m, c in b.d.items():
            v = out.get(m, 0) + c
            if v:
                out[m] = v
            else:
                out.pop(m, None)
        return _Sparse(out)

    def __neg__(self) -> _Sparse:
        return _Sparse({m: -c for m, c in self.d.items()})

    def __sub__(self, b: _Sparse) -> _Sparse:
        return self + (-b)

    def __mul__(self, b: _Sparse) -> _Sparse:
        p, q = (self.d, b.d) if len(self.d) <= len(b.d) else (b.d, self.d)
        if len(p) * len(q) > SPARSE_WORK:  # one product is not interrupted by the budget: bound it first
            raise TooBig("an entry grew past the exact proof's size limit")
        out: dict = {}
        get = out.get
        for m1, c1 in p.items():
            for m2, c2 in q.items():
                m = tuple(sorted(m1 + m2)) if m1 and m2 else m1 or m2
                out[m] = get(m, 0) + c1 * c2
        return _Sparse({m: c for m, c in out.items() if c})

    def __pow__(self, k: int) -> _Sparse:
        out = _Sparse({(): 1})
        for _ in range(k):
            out = out * self
        return out

    def __eq__(self, b: object) -> bool:
        return isinstance(b, _Sparse) and self.d == b.d

    __hash__ = None  # type: ignore[assignment]

    def __len__(self) -> int:
        return len(self.d)


class _SparseRing:
    """Sparse polynomials over Q in pure Python, for proofs with many entries (no gcd: fractions stay as built)."""

    name = "sparse polynomials"

    def __init__(self, names: list[str]) -> None:
        self.gens = [_Sparse({(i,): 1}) for i in range(len(names))]
        self.zero = _Sparse({})
        self.one = _Sparse({(): 1})

    def const(self, q: Fraction) -> _Sparse:
        q = q.numerator if q.denominator == 1 else q
        return _Sparse({(): q} if q else {})

    def gcd(self, a: _Sparse, b: _Sparse) -> _Sparse:
        return self.one

    def exquo(self, a: _Sparse, b: _Sparse) -> _Sparse:
        return a

    def lc(self, a: _Sparse) -> Fraction:
        m = max(a.d, key=lambda m: (len(m), m))
        return Fraction(a.d[m])

    def scale(self, a: _Sparse, q: Fraction) -> _Sparse:
        q = q.numerator if q.denominator == 1 else q
        return _Sparse({m: c * q for m, c in a.d.items()})

    def split(self, a: _Sparse, index: int) -> dict[int, _Sparse]:
        out: dict[int, dict] = {}
        for m, c in a.d.items():
            e = m.count(index)
            out.setdefault(e, {})[tuple(i for i in m if i != index)] = c
        return {e: _Sparse(d) for e, d in out.items()}

    def size(self, a: _Sparse) -> int:
        return len(a.d)

    def key(self, a: _Sparse) -> str:
        return repr(sorted(a.d.items()))

    def sqrt(self, a: _Sparse) -> None:
        return None

    def is_constant(self, a: _Sparse) -> bool:
        return all(not m for m in a.d)

    def total(self, parts: list[_Sparse]) -> _Sparse:
        out: dict = {}
        get = out.get
        for p in parts:
            for m, c in p.d.items():
                out[m] = get(m, 0) + c
        return _Sparse({m: c for m, c in out.items() if c})


def exact_backend() -> str:
    """The library the exact domain uses: python-flint when it is installed."""
    try:
        import flint  # noqa: F401
    except ImportError:
        return "sympy"
    return "flint"


class RF:
    """A rational function n/d in lowest terms with a monic denominator, in an ExactDomain."""

    __slots__ = ("d", "dom", "n")

    def __init__(self, dom: ExactDomain, n: Any, d: Any) -> None:
        self.dom = dom
        self.n = n
        self.d = d

    def _lift(self, b: Any) -> RF:
        return b if isinstance(b, RF) else self.dom.const(b)

    def __add__(self, b: Any) -> RF:
        if not isinstance(b, (RF, *_NUMBERS)):
            return NotImplemented
        b = self._lift(b)
        if self.d == b.d:
            return self.dom.make(self.n + b.n, self.d)
        return self.dom.make(self.n * b.d + b.n * self.d, self.d * b.d)

    __radd__ = __add__

    def __neg__(self) -> RF:
        return RF(self.dom, -self.n, self.d)

    def __sub__(self, b: Any) -> RF:
        if not isinstance(b, (RF, *_NUMBERS)):
            return NotImplemented
        return self + (-self._lift(b))

    def __rsub__(self, b: Any) -> RF:
        return self._lift(b) + (-self)

    def __mul__(self, b: Any) -> RF:
        if not isinstance(b, (RF, *_NUMBERS)):
            return NotImplemented
        b = self._lift(b)
        return self.dom.make(self.n * b.n, self.d * b.d)

    __rmul__ = __mul__

    def __truediv__(self, b: Any) -> RF:
        if not isinstance(b, (RF, *_NUMBERS)):
            return NotImplemented
        b = self._lift(b)
        if b.is_zero():
            raise DomainError("division by an expression that is zero for every value")
        return self.dom.make(self.n * b.d, self.d * b.n)

    def __rtruediv__(self, b: Any) -> RF:
        return self._lift(b) / self

    def __pow__(self, k: int) -> RF:
        if k < 0:
            return self.dom.const(1) / (self ** (-k))
        if k > 64:
            raise TooBig(f"a power {k} is too large to expand exactly")
        return self.dom.make(self.n**k, self.d**k)

    def is_zero(self) -> bool:
        return self.dom.ring.size(self.n) == 0

    def key(self) -> tuple[str, str]:
        return (self.dom.ring.key(self.n), self.dom.ring.key(self.d))

    def constant(self) -> Fraction | None:
        r = self.dom.ring
        if r.is_constant(self.n) and r.is_constant(self.d):
            return r.lc(self.n) / r.lc(self.d) if r.size(self.n) else Fraction(0)
        return None


class ExactDomain(Primitives):
    """Rational functions over Q in ``names`` and in up to ``atoms`` symbols for function values.

    ``budget`` is checked every few operations; a polynomial past ``max_terms`` terms
    raises :class:`TooBig`.
    """

    name = "exact"

    def __init__(self, names: list[str], atoms: int, budget: Budget, backend: str | None = None,
                 max_terms: int = 20000) -> None:  # fmt: skip
        backend = backend or ("sparse" if len(names) + atoms > SPARSE_FROM else exact_backend())
        cls = {"flint": _FlintRing, "sympy": _SympyRing, "sparse": _SparseRing}[backend]
        self.ring = cls(list(names) + [f"_u{i}" for i in range(atoms)])
        self.variables = {n: self.ring.gens[i] for i, n in enumerate(names)}
        self.free = self.ring.gens[len(names) :]
        self.table: dict[tuple, RF] = {}
        self.index: dict[tuple, int] = {}
        self.relations: list[tuple[int, RF]] = []  # (generator index, u) with s^2 = u
        self.exp_of: dict[str, RF] = {}  # an exp symbol's key -> its argument
        self.budget = budget
        self.max_terms = max_terms
        self.ops = 0

    # ----- making values -----

    def variable(self, name: str) -> RF:
        return RF(self, self.variables[name], self.ring.one)

    def const(self, q: Any) -> RF:
        if isinstance(q, RF):
            return q
        f = Fraction(q) if not isinstance(q, sp.Basic) else Fraction(int(sp.S(q).p), int(sp.S(q).q))
        return RF(self, self.ring.const(f), self.ring.one)

    def make(self, n: Any, d: Any) -> RF:
        self.ops += 1
        if self.ops % 64 == 0:
            self.budget.check()
        r = self.ring
        if r.size(n) > self.max_terms or r.size(d) > self.max_terms:
            raise TooBig("an entry grew past the exact proof's size limit")
        if r.size(n) == 0:
            return RF(self, r.zero, r.one)
        if not r.is_constant(d):
            g = r.gcd(n, d)
            if not r.is_constant(g):
                n, d = r.exquo(n, g), r.exquo(d, g)
        c = r.lc(d)
        if c != 1:
            n, d = r.scale(n, 1 / c), r.scale(d, 1 / c)
        return RF(self, n, d)

    def _symbol(self, kind: str, *key: str) -> RF:
        """The symbol standing for one function value, made on first use."""
        if (kind, *key) not in self.table:
            i = len(self.table)
            if i >= len(self.free):
                raise TooBig("more function values than the exact proof allowed for")
            self.table[(kind, *key)] = RF(self, self.free[i], self.ring.one)
            self.index[(kind, *key)] = len(self.variables) + i
        return self.table[(kind, *key)]

    def _canonical(self, u: RF) -> tuple[RF, bool]:
        """u or -u, whichever has a positive leading coefficient; and whether it was negated."""
        if u.is_zero() or self.ring.lc(u.n) > 0:
            return u, False
        return -u, True

    # ----- primitives -----

    def _exp(self, u: RF) -> RF:
        if u.is_zero():
            return self.const(1)
        v, negated = self._canonical(u)
        e = self._symbol("exp", *v.key())
        self.exp_of[self.ring.key(e.n)] = v
        return self.const(1) / e if negated else e

    def _log(self, u: RF) -> RF:
        if u.is_zero():
            raise DomainError("log of an expression that is zero for every value")
        c = u.constant()
        if c == 1:
            return self.const(0)
        inside = self.exp_of.get(self.ring.key(u.n)) if self.ring.is_constant(u.d) else None
        if inside is not None and u.d == self.ring.one:
            return inside  # log(exp(v)) = v
        flipped = RF(self, u.d, u.n)
        if u.key() > flipped.key():
            return -self._symbol("log", *flipped.key())
        return self._symbol("log", *u.key())

    def _sqrt(self, u: RF) -> RF:
        rn, rd = self.ring.sqrt(u.n), self.ring.sqrt(u.d)
        if rn is not None and (rd is not None or (self.ring.is_constant(u.d) and u.d == self.ring.one)):
            return self.make(rn, rd if rd is not None else self.ring.one)
        known = ("sqrt", *u.key()) in self.table
        s = self._symbol("sqrt", *u.key())
        if not known:
            self.relations.append((self.index[("sqrt", *u.key())], u))
        return s

    def _sin(self, u: RF) -> RF:
        return self._symbol("sin", *u.key())

    def _cos(self, u: RF) -> RF:
        return self._symbol("cos", *u.key())

    def _step(self, u: RF) -> RF:
        v, negated = self._canonical(u)
        s = self._symbol("step", *v.key())
        return self.const(1) - s if negated else s

    def _choice(self, xs: list[Any]) -> list[Any]:
        tag = "|".join(repr(self.const(x).key()) for x in xs)
        return [self._symbol("choice", tag, str(r)) for r in range(len(xs))]

    # ----- comparing -----

    def is_zero(self, x: RF) -> bool:
        """Whether x is zero, with s^2 = u applied for every square root s = sqrt(u)."""
        if x.is_zero():
            return True
        n = x.n
        for index, u in self.relations:
            n = self._reduce(n, index, u)
            if self.ring.size(n) == 0:
                return True
        return self.ring.size(n) == 0

    def _reduce(self, n: Any, index: int, u: RF) -> Any:
        """n with s^2 replaced by u = p/q (s the generator at ``index``), cleared of q."""
        r = self.ring
        parts = r.split(n, index)
        top = max(parts) // 2
        out = r.zero
        s = r.gens[index]
        for e, coef in parts.items():
            term = coef * (u.n ** (e // 2)) * (u.d ** (top - e // 2))
            out = out + (term * s if e % 2 else term)
        return out

    def _sum(self, terms: list[Any]) -> Any:
        """Many rational functions with one denominator (the usual case) summed in one go."""
        rfs = [self.const(x) for x in terms]
        if all(x.d == rfs[0].d for x in rfs):
            return self.make(self.ring.total([x.n for x in rfs]), rfs[0].d)
        return super()._sum(rfs)


def log2_bound(degree: int, sqrt_count: int, entries: int) -> float:
    """log2 of the Schwartz-Zippel bound on a false 'equal' over ``entries`` comparisons."""
    return math.log2(max(degree, 1)) + sqrt_count + math.log2(max(entries, 1)) - math.log2(P)


Scalar = Any
Fn1 = Callable[[Any], Any]
