"""The numeric check: the generated numpy code against central differences of itself.

It runs at the declared sizes, or near them when those are too large for a
dense check, on random seeded inputs; symmetric and diagonal variables get
symmetric (diagonal) inputs and directions, and square matrices a diagonal
shift so inverses and log-determinants exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from .context import Budget
from .gradcheck import TOLERANCE, check_grad
from .prove import shapes_text

SAMPLES: tuple[tuple[float, float] | None, ...] = (None, (0.5, 1.5), (1.5, 3.0), (-1.5, -0.5))
MAX_INPUT = 25_000_000  # entries of all inputs together
MAX_DERIVATIVE = 4_000_000  # entries of the derivative array


@dataclass(frozen=True)
class NumericCheck:
    """The generated derivative against central differences of the generated value."""

    error: float  # nan when no sample point had a finite value and derivative
    directions: int
    shapes: dict[str, tuple[int, ...]]  # each variable's shape in the check
    seed: int
    declared: bool = True  # whether the shapes are the declared ones (else near them)
    symmetric_ok: bool = True  # a gradient by a symmetric (diagonal) variable came out so
    reason: str = ""  # why it did not run, when that is not the sample points

    @property
    def ran(self) -> bool:
        return not np.isnan(self.error)

    @property
    def ok(self) -> bool:
        return self.ran and self.error < TOLERANCE and self.symmetric_ok

    @property
    def failed(self) -> bool:
        return self.ran and not self.ok

    def __str__(self) -> str:
        at = shapes_text(self.shapes)
        if not self.ran:
            return f"not run: {self.reason or f'no sample point ({at}) where the value and derivative are finite'}"
        text = (
            f"central differences along {self.directions} random directions (seed {self.seed}, {at}): "
            f"largest relative error {self.error:.1e}"
        )
        if not self.symmetric_ok:
            text += "; the gradient by a symmetric (diagonal) variable is not symmetric (diagonal)"
        return text


def load(source: str, name: str = "derive_generated") -> ModuleType:
    """Import generated source (derive's own output, never user text) as a module."""
    mod = ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), mod.__dict__)
    return mod


def project(a: np.ndarray, structure: str) -> np.ndarray:
    """A symmetric (diagonal) matrix from any square one; others unchanged."""
    if structure == "symmetric":
        return (a + a.T) / 2
    if structure == "diagonal":
        return np.diag(np.diag(a))
    return a


def sample(shapes: Mapping[str, tuple[int, ...]], structure: Mapping[str, str], seed: int,
           spread: tuple[float, float] | None) -> dict[str, np.ndarray]:  # fmt: skip
    """Random inputs, standard normal or uniform in ``spread``; square matrices get a diagonal shift."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, s in shapes.items():
        a = rng.uniform(*spread, s) if spread else rng.standard_normal(s)
        if len(s) == 2 and s[0] == s[1]:
            a = a + s[0] * np.eye(s[0])
        out[name] = project(a, structure.get(name, ""))
    return out


def fits(shapes: Mapping[str, tuple[int, ...]], out: tuple[int, ...], wrt: tuple[str, ...]) -> bool:
    inputs = sum(int(np.prod(s)) for s in shapes.values())
    deriv = int(np.prod(out)) * int(np.prod([int(np.prod(shapes[n])) for n in wrt]))
    return inputs <= MAX_INPUT and deriv <= MAX_DERIVATIVE


def check(f, df, names: list[str], wrt: str, shapes: Mapping[str, tuple[int, ...]], structure: Mapping[str, str],
          declared: bool, seed: int = 0, directions: int = 3,
          budget: Budget | None = None) -> NumericCheck:  # fmt: skip
    """``df`` (the derivative of ``f`` by ``wrt``, value shape + variable shape) against central differences.

    ``budget`` is checked before every call of ``f`` or ``df`` (OutOfTime past it).
    """
    if budget is not None:
        f, df = _metered(f, budget), _metered(df, budget)
    error = np.nan
    kind = structure.get(wrt, "")
    sym_ok, drowned = True, False
    for spread in SAMPLES:  # normal first; then positive ranges, for log, sqrt and log(log)
        args = sample(shapes, structure, seed, spread)
        vals = [args[n] for n in names]
        with np.errstate(all="ignore"):
            try:
                if not np.all(np.isfinite(f(*vals))):
                    continue
                d = np.asarray(df(*vals), dtype=float)
                if not np.all(np.isfinite(d)):
                    continue
                error = check_grad(f, df, vals, wrt=names.index(wrt), directions=directions, seed=seed,
                                   direction=(lambda v: project(v, kind)) if kind else None)  # fmt: skip
                drowned = drowned or np.isnan(error)
            except (np.linalg.LinAlgError, ZeroDivisionError, FloatingPointError, OverflowError):
                continue
        if kind and d.ndim >= 2:
            sym_ok = bool(np.allclose(d, project(d, kind) if d.ndim == 2 else d, atol=1e-9))
        if np.isfinite(error):
            break
    if not np.isfinite(error):
        error = np.nan  # no sample point gave a usable difference: the check did not run
        if drowned:
            why = ("at every sample point the value is too large beside its change for central differences to judge"
                   " the derivative (rounding of the value drowns them)")  # fmt: skip
            return NumericCheck(float(error), directions, dict(shapes), seed, declared, sym_ok, reason=why)
    return NumericCheck(float(error), directions, dict(shapes), seed, declared, sym_ok)


def _metered(f, budget: Budget):
    """``f``, checking ``budget`` before each call."""

    def call(*args):
        budget.check()
        return f(*args)

    return call
