"""Side-by-side timing: every variant of a case in every round, each round in a fresh random order.

On a small shared machine absolute times mean little; a ratio taken within a round (both variants ran within
the same second or so) does. A case reports, per variant, the seconds per call in each round; ratios are the
median over rounds of the ratio within a round, with the quartiles of those ratios as the spread.
"""

from __future__ import annotations

import gc
import math
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np

from bench.variants import CAREFUL, DERIVE, Variant

RTOL = 1e-6  # np.allclose(got, careful, rtol=RTOL, atol=ATOL * max|careful|)
ATOL = 1e-9


@dataclass(frozen=True)
class Budget:
    """How long a case may take: rounds, the length of a sample and the time one variant may use."""

    max_rounds: int
    min_rounds: int
    case_seconds: float  # rounds = this ÷ the time of one round, clamped to [min_rounds, max_rounds]
    sample: float  # seconds: a sample repeats a fast call until it lasts about this long
    variant_seconds: float  # a variant slower than this over all rounds runs fewer rounds (derive, careful: all)


@dataclass
class Case:
    """One workload at one size: per variant label, seconds per call in each round (NaN where it did not run)."""

    times: dict[str, np.ndarray]
    calls: dict[str, int]  # calls per sample
    errors: dict[str, float]  # largest difference from the careful result, relative to its largest entry
    agrees: dict[str, bool]
    peak: dict[str, int]  # bytes: tracemalloc peak of one call

    def median(self, label: str) -> float:
        t = self.times.get(label)
        return float(np.nanmedian(t)) if t is not None and np.isfinite(t).any() else math.nan

    def rounds(self, label: str) -> int:
        t = self.times.get(label)
        return 0 if t is None else int(np.isfinite(t).sum())

    def _paired(self, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
        if a not in self.times or b not in self.times:
            return np.empty(0), np.empty(0)
        ta, tb = self.times[a], self.times[b]
        both = np.isfinite(ta) & np.isfinite(tb)
        return ta[both], tb[both]

    def ratio(self, a: str, b: str) -> tuple[float, float, float]:
        """time(a) ÷ time(b): (median, 25th, 75th percentile) of the ratios within rounds where both ran."""
        ta, tb = self._paired(a, b)
        if not ta.size:
            return math.nan, math.nan, math.nan
        q = np.percentile(ta / tb, [50, 25, 75])
        return float(q[0]), float(q[1]), float(q[2])

    def excess(self, a: str, b: str) -> float:
        """time(a) − time(b) in seconds: the median of the differences within rounds."""
        ta, tb = self._paired(a, b)
        return float(np.median(ta - tb)) if ta.size else math.nan


def as_numpy(out: Any) -> np.ndarray:
    """A result as a numpy array (jax arrays copied to host): outside the timed loop only."""
    return np.asarray(out, dtype=float)


def compare(got: np.ndarray, ref: np.ndarray) -> tuple[bool, float]:
    """(np.allclose with RTOL and ATOL scaled to the reference, the largest difference relative to max|ref|)."""
    if got.shape != ref.shape:
        return False, math.inf
    scale = float(np.max(np.abs(ref))) if ref.size else 1.0
    scale = scale or 1.0
    err = float(np.max(np.abs(got - ref))) / scale if ref.size else 0.0
    return bool(np.allclose(got, ref, rtol=RTOL, atol=ATOL * scale)), err


def peak_bytes(fn: Callable[[], Any]) -> int:
    """The tracemalloc peak of one call above what was allocated before it (numpy reports its buffers to it)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
        del out
    finally:
        tracemalloc.stop()
    return peak - base


def sample(fn: Callable[[], Any], calls: int) -> float:
    """Seconds per call over ``calls`` calls, the garbage collector off."""
    was = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - t0) / calls
    finally:
        if was:
            gc.enable()


def calibrate(fn: Callable[[], Any], target: float) -> tuple[float, int]:
    """(seconds per call, calls per sample so that a sample lasts about ``target``).

    The estimate is the best of a few calls: on a shared machine one call can stall for a scheduler tick, and a
    stalled estimate would leave a fast variant timed one call per sample.
    """
    t = sample(fn, 1)
    if t < 0.2:
        t = min(t, *(sample(fn, 1) for _ in range(4)))
        if t < 1e-4:  # too short for one reading: time a batch
            t = min(sample(fn, 100) for _ in range(3))
    return t, max(1, min(10_000, math.ceil(target / max(t, 1e-9))))


def _round_order(variants: Sequence[Variant], rng: np.random.Generator) -> list[Variant]:
    """A fresh random order in which derive and careful numpy of the same BLAS threads run back to back (in random
    order), so the ratio the targets read is taken between neighbouring samples."""
    units: dict[str, list[Variant]] = {}
    for v in variants:
        units.setdefault(v.threads if v.name in (DERIVE, CAREFUL) else v.label, []).append(v)
    groups = list(units.values())
    return [groups[i][j] for i in rng.permutation(len(groups)) for j in rng.permutation(len(groups[i]))]


def measure(
    variants: Sequence[Variant], reference: str, budget: Budget, seed: int = 0, log: TextIO = sys.stderr
) -> Case:
    """Warm every variant up (jax compiles there) and check it against ``reference``'s result; measure the peak
    memory of those that ask for it; then time the agreeing ones interleaved, in rounds (see ``_round_order``).
    A variant that disagrees is not timed. A sample of a call under 50 ms is preceded by one untimed call, so
    every variant is timed warm."""
    results, estimate, calls, peak = {}, {}, {}, {}
    for v in variants:
        with v.context():
            t0 = time.perf_counter()
            results[v.label] = as_numpy(v.fn())
            first = time.perf_counter() - t0
            if first > 1.0:  # a slow first call is its own estimate
                estimate[v.label], calls[v.label] = first, 1
            else:
                estimate[v.label], calls[v.label] = calibrate(v.fn, budget.sample)
            if v.memory:
                peak[v.label] = peak_bytes(v.fn)
    ref = results[reference]
    checks = {label: compare(got, ref) for label, got in results.items()}
    del results, ref
    timed = [v for v in variants if checks[v.label][0]]
    warm = {v.label: estimate[v.label] < 0.05 for v in timed}
    cost = {v.label: estimate[v.label] * (calls[v.label] + warm[v.label]) for v in timed}
    rounds = int(min(budget.max_rounds, max(budget.min_rounds, budget.case_seconds / max(sum(cost.values()), 1e-9))))
    always = {v.label for v in timed if v.name in (DERIVE, CAREFUL)}
    allowed = {
        label: rounds if label in always else max(1, min(rounds, int(budget.variant_seconds / c)))
        for label, c in cost.items()
    }
    print(f"    {len(timed)} of {len(variants)} variants timed, {rounds} rounds", file=log, flush=True)
    times = {v.label: np.full(rounds, math.nan) for v in timed}
    rng = np.random.default_rng(seed)
    for r in range(rounds):
        for v in _round_order(timed, rng):
            if r < allowed[v.label]:
                with v.context():
                    if warm[v.label]:
                        v.fn()
                    times[v.label][r] = sample(v.fn, calls[v.label])
    return Case(
        times=times,
        calls=calls,
        errors={k: e for k, (_, e) in checks.items()},
        agrees={k: ok for k, (ok, _) in checks.items()},
        peak=peak,
    )
