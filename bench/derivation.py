"""What deriving costs: the article's three expressions through the whole of derive(), and the element-wise proof
of ‖Ax − b‖² as n grows, against plain SymPy doing the same check."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from sympy.core.cache import clear_cache

from bench.report import fmt_ratio, fmt_time, table
from derive import derive
from derive.prove import shapes_text

LSQ = "norm(A @ x - b)**2"
ARTICLE = ((LSQ, "x"), ("W @ x + b", "W"), ("sigmoid(W @ x + b)", "W"))
CNN = "-(y @ log(softmax(W @ flatten(maxpool(relu(conv2d(X, K)), 2)))))"
#: the derivations the proof-speed issue measured, with the time it quoted for each (seconds; None: unfinished)
ONCE_SLOW = (
    ("a @ inv(X) @ b", "X", {"X": (3, 3)}, 12.0),
    ("inv(X)", "X", {"X": (3, 3)}, 6.6),
    ("trace(inv(X) @ A)", "X", {"X": (3, 3)}, 13.0),
    ("inv(X) @ b", "X", {"X": (3, 3)}, 9.0),
    ("(A @ x - b) / norm(A @ x - b)", "x", {"A": (4, 3)}, 40.0),
    ("-(y @ log(softmax(W @ x)))", "W", None, 4.8),
    (CNN, "K", {"X": (1, 3, 3), "K": (2, 1, 2, 2), "y": (2,)}, 22.0),
    (CNN, "W", {"X": (2, 5, 5), "K": (3, 2, 2, 2), "W": (4, 12)}, None),
)
#: derive() with real, declared sizes: the proof at small sizes, the numeric check at (or near) these
DECLARED = (
    ("sum(softplus(-(y * (X @ w))))", "w", {"X": (10000, 100)}),
    ("sum(softplus(-(y * (X @ w))))", ("w", "w"), {"X": (10000, 100)}),
    ("norm(X @ w - y)**2", "w", {"X": (10000, 1000)}),
    ("-sum(Y * log(softmax(X @ W, axis=1)))", "W", {"X": (10000, 100), "W": (100, 10)}),
    ("mean((X @ w - y)**2)", "w", {"X": (10000, 1000)}),
)
ISSUE_SYMPY_SECONDS = {8: 0.12, 16: 1.0, 32: 7.6, 64: 60.0}  # plain SymPy, as quoted in the proof-speed issue


@dataclass
class Scaling:
    """Per n: derive() seconds, its proof's seconds and outcome; plain SymPy's seconds and outcome."""

    derive: dict[int, list[float]] = field(default_factory=dict)
    proof: dict[int, list[float]] = field(default_factory=dict)
    status: dict[int, str] = field(default_factory=dict)
    sympy: dict[int, list[float]] = field(default_factory=dict)
    equal: dict[int, bool] = field(default_factory=dict)

    def median(self, n: int) -> float:
        return float(np.median(self.derive[n]))


def plain_sympy_proof(n: int) -> bool:
    """The element-wise check with plain SymPy: expand(gradient − 2Aᵀ(Ax − b)) entry by entry, all written out."""
    A = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"a_{i}_{j}"))
    x = sp.Matrix(n, 1, lambda i, j: sp.Symbol(f"x_{i}"))
    b = sp.Matrix(n, 1, lambda i, j: sp.Symbol(f"b_{i}"))
    r = A * x - b
    f = (r.T * r)[0, 0]
    g = sp.Matrix([sp.diff(f, xi) for xi in x])
    return bool((g - 2 * A.T * r).expand().is_zero_matrix)


def growth(times: dict[int, float]) -> float:
    """The exponent p of time ∝ n^p, least squares on logs."""
    ns = sorted(times)
    slope, _ = np.polyfit(np.log(ns), np.log([times[n] for n in ns]), 1)
    return float(slope)


def _cold(fn: Callable[[], object]) -> tuple[float, object]:
    clear_cache()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def article_table(rounds: int) -> list[str]:
    """The article's three expressions, the full derive() (proof and numeric check), interleaved rounds."""
    names = [f"`derive({e!r}, {w!r})`" for e, w in ARTICLE]
    times: dict[str, list[float]] = {n: [] for n in names}
    proofs: dict[str, list[float]] = {n: [] for n in names}
    status = {}
    for e, w in ARTICLE:  # warm-up: imports, templates
        derive(e, w)
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        for i in rng.permutation(len(names)):
            (e, w), name = ARTICLE[i], names[i]
            t, d = _cold(lambda e=e, w=w: derive(e, w))
            times[name].append(t)
            proofs[name].append(d.proof.seconds)
            status[name] = d.proof.status
    rows = [[n, fmt_time(float(np.median(times[n]))), fmt_time(float(np.median(proofs[n]))), status[n]] for n in names]
    return [
        "#### The article's three expressions: `derive()` with proof and numeric check",
        "",
        table(["call", "median time", "of which `proof.seconds`", "proof"], rows),
        "",
        f"{rounds} interleaved round{'s' * (rounds != 1)}; SymPy's cache is cleared before every call (cold cost).",
        "",
    ]


def _cpu_call(fn: Callable[[], object]) -> tuple[float, object]:
    """CPU seconds of one cold call (this process, every thread): steady on a busy machine."""
    clear_cache()
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def once_slow_table(rounds: int) -> list[str]:
    """The derivations the proof-speed issue found slow, before (as it quoted them) and now."""
    rows = []
    for e, w, shapes, before in ONCE_SLOW:
        runs = [_cpu_call(lambda e=e, w=w, shapes=shapes: derive(e, w, shapes)) for _ in range(rounds)]
        d = runs[-1][1]
        exact = "exact" if d.proof.exact else f"probability ≥ 1 − 2^-{d.proof.bits}"
        shown = ", ".join(f"{n} {'×'.join(map(str, s))}" for n, s in (shapes or {}).items()) or "inferred"
        rows.append([f"`{e}` by {w}", shown, "not finished after 15 min" if before is None else f"{before:g} s",
                     fmt_time(float(np.median([t for t, _ in runs]))), f"{d.proof.status} ({exact})",
                     shapes_text(d.proof.shapes)])  # fmt: skip
    return [
        "#### The once-slow derivations: `derive()` whole (proof and numeric check), CPU time",
        "",
        table(["derivation", "declared shapes", "before (as quoted)", "now", "proof", "proven at"], rows),
        "",
        f"Median of {rounds} cold call{'s' * (rounds != 1)}, CPU seconds of this process.",
        "",
    ]


def declared_table(rounds: int) -> list[str]:
    """derive() with real sizes declared: the proof at small sizes, the numeric check at the declared ones."""
    rows = []
    for e, w, shapes in DECLARED:
        runs = [_cpu_call(lambda e=e, w=w, shapes=shapes: derive(e, w, shapes)) for _ in range(rounds)]
        d = runs[-1][1]
        shown = ", ".join(f"{n} {'×'.join(map(str, s))}" for n, s in shapes.items())
        by = " and ".join(w) if isinstance(w, tuple) else w
        near = "" if d.numeric.declared else " (near the declared)"
        proof = f"{d.proof.status} at {shapes_text(d.proof.shapes)}"
        rows.append([f"`{e}` by {by}", shown, fmt_time(float(np.median([t for t, _ in runs]))), proof,
                     shapes_text(d.numeric.shapes) + near])  # fmt: skip
    return [
        "#### Real sizes declared",
        "",
        table(["derivation", "declared", "derive() CPU time", "proof", "numeric check at"], rows),
        "",
    ]


def scaling(sizes: Sequence[int], sympy_sizes: Sequence[int], rounds: Callable[[int], int]) -> Scaling:
    """derive() and plain SymPy proving ‖Ax − b‖² at n×n, alternating which goes first."""
    s = Scaling()
    for n in sorted(set(sizes) | set(sympy_sizes)):
        jobs = [j for j, ns in (("derive", sizes), ("sympy", sympy_sizes)) if n in ns]
        k = rounds(n)
        for r in range(k):
            for job in jobs if r % 2 == 0 else jobs[::-1]:
                if job == "sympy" and n >= 64 and r > 0:
                    continue  # a minute a call
                if job == "derive":
                    t, d = _cold(lambda n=n: derive(LSQ, "x", proof_sizes={"m": n, "n": n}, numeric=False))
                    s.derive.setdefault(n, []).append(t)
                    s.proof.setdefault(n, []).append(d.proof.seconds)
                    s.status[n] = d.proof.status
                else:
                    t, ok = _cold(lambda n=n: plain_sympy_proof(n))
                    s.sympy.setdefault(n, []).append(t)
                    s.equal[n] = bool(ok)
        print(f"    n={n} done", file=sys.stderr, flush=True)
    return s


def scaling_table(s: Scaling) -> list[str]:
    rows = []
    for n in sorted(set(s.derive) | set(s.sympy)):
        d = f"{fmt_time(s.median(n))} ({len(s.derive[n])}, {s.status[n]})" if n in s.derive else "—"
        p = fmt_time(float(np.median(s.proof[n]))) if n in s.proof else "—"
        sym = np.median(s.sympy[n]) if n in s.sympy else float("nan")
        verdict = "equal" if s.equal.get(n) else "**not equal**"
        rows.append(
            [
                n,
                d,
                p,
                f"{fmt_time(sym)} ({len(s.sympy[n])}, {verdict})" if n in s.sympy else "—",
                fmt_ratio(sym / s.median(n)) if n in s.sympy and n in s.derive else "—",
                f"{ISSUE_SYMPY_SECONDS[n]} s" if n in ISSUE_SYMPY_SECONDS else "—",
            ]
        )
    header = ["n", "derive() total", "of which `proof.seconds`", "plain SymPy", "SymPy ÷ derive", "issue's quote"]
    out = [
        "#### ‖Ax − b‖² by x proven element-wise at n×n",
        "",
        f'`derive("{LSQ}", "x", proof_sizes={{"m": n, "n": n}}, numeric=False)` against plain SymPy (`expand` of '
        "the written-out gradient minus 2Aᵀ(Ax − b), entry by entry). Median (rounds, outcome).",
        "",
        table(header, rows),
        "",
    ]
    fits = []
    for name, per_n in (("derive()", s.derive), ("plain SymPy", s.sympy)):
        big = {n: float(np.median(v)) for n, v in per_n.items() if n >= 8}
        if len(big) >= 2:
            fits.append(f"- {name}: time ∝ n^{growth(big):.2f} (n = {', '.join(map(str, sorted(big)))})")
    return out + (["Growth exponents (least squares of log t on log n):", "", *fits, ""] if fits else [])
