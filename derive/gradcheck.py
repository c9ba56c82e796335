"""Central differences along random directions: the numeric check.

Users call this on their own gradient functions too::

    >>> import numpy as np
    >>> from derive import check_grad
    >>> f = lambda x: float(x @ x)
    >>> g = lambda x: 2 * x
    >>> check_grad(f, g, [np.array([1.0, 2.0, 3.0])]) < 1e-8
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

TOLERANCE = 1e-6  # the relative error derive's numeric check accepts
ROUNDING = 64  # ulps of f's value that rounding may put in a difference (a sum of many terms loses a few)


def check_grad(
    f: Callable[..., object],
    df: Callable[..., object],
    args: Sequence[np.ndarray],
    wrt: int = 0,
    directions: int = 3,
    seed: int = 0,
    eps: float = 1e-6,
    direction: Callable[[np.ndarray], np.ndarray] | None = None,
) -> float:
    """Largest relative error of ``df`` against central differences of ``f``.

    ``df(*args)`` has shape ``f``'s output shape + ``args[wrt]``'s shape (the
    convention of ``jax.jacobian``). For each random unit direction v (passed
    through ``direction``, e.g. to make it symmetric), the difference
    (f(x + h v) - f(x - h v)) / 2h is compared with the contraction of ``df``
    with v; the error is relative to the larger of 1 and the size of the
    directional derivative. Each direction tries steps h from 1e-4 to 1e-7
    (times the size of x) and keeps the best, so a steep but correct
    derivative is not failed for truncation error; a wrong one is wrong at
    every step. A step whose disagreement is within what rounding f's value
    can put in a difference (``ROUNDING`` ulps of |f|, over 2h), where that is
    more than ``TOLERANCE`` of the derivative, gives no verdict; if every step
    of a direction is so, the result is nan (f is too large beside its change
    for the check to judge), never a pass.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(args[wrt], dtype=float)
    d = np.asarray(df(*args), dtype=float)
    worst = 0.0
    size = max(1.0, float(np.max(np.abs(x))) if x.size else 1.0)
    for _ in range(directions):
        v = rng.standard_normal(x.shape)
        if direction is not None:
            v = direction(v)
        v /= np.linalg.norm(v) or 1.0
        an = np.tensordot(d, v, axes=v.ndim) if v.ndim else d * v
        scale = max(1.0, float(np.max(np.abs(an))) if np.size(an) else 0.0)
        best = np.inf
        for step in (eps * 100, eps * 10, eps, eps / 10):  # the step that balances truncation and rounding
            h = step * size
            plus, minus = list(args), list(args)
            plus[wrt], minus[wrt] = x + h * v, x - h * v
            fp, fm = np.asarray(f(*plus), dtype=float), np.asarray(f(*minus), dtype=float)
            fd = (fp - fm) / (2 * h)
            # what rounding alone can put in the difference: f's last bits, divided by 2h
            floor = ROUNDING * np.finfo(float).eps * max(float(np.max(np.abs(fp), initial=0)),
                                                        float(np.max(np.abs(fm), initial=0))) / (2 * h)  # fmt: skip
            miss = float(np.max(np.abs(fd - an))) if np.size(an) else 0.0
            if miss <= floor and floor > TOLERANCE * scale:
                continue  # rounding explains the disagreement, and hides any below it: no verdict at this step
            best = min(best, miss / scale)
        if best == np.inf:
            return float("nan")  # every step drowned in rounding: the check cannot judge this point
        worst = max(worst, best)
    return worst
