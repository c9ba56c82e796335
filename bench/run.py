"""Benchmarks of derive: its generated numpy code against hand-written numpy, jax, autograd and SymPy;
the cost of deriving; the memory-bandwidth floor; and the project's targets as a checklist.

    python bench/run.py            # the full run (a few minutes)
    python bench/run.py --quick    # fewer rounds and sizes (about a minute or two)
    python bench/run.py --smoke    # tiny sizes, one round: checks the code paths, not the speed

Markdown goes to stdout, progress to stderr. These machines are small (2 cores) and shared, so
absolute times mean little: the variants of one case are run interleaved (A B C, C A B, ... for
many rounds, each round in a new random order so no variant always follows the same one), and the
tables report medians and, above all, ratios (the median over rounds of the ratio within a round).

jax and autograd are optional peers (``pip install -e '.[bench]'``); without them their rows are
skipped and a line says so.
"""

from __future__ import annotations

import argparse
import ast
import gc
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import sympy as sp
from numpy.lib.stride_tricks import sliding_window_view
from sympy.core.cache import clear_cache

from derive import derive
from derive.core import load

ROOT = Path(__file__).resolve().parent.parent
LSQ = "norm(A @ x - b)**2"
SIGMOID = "sigmoid(W @ x + b)"
MLP = "norm(W2 @ tanh(W1 @ x + b1) + b2 - y)**2"
CONV = "sum(conv2d(X, K)**2)"
ARTICLE = ((LSQ, "x"), ("W @ x + b", "W"), (SIGMOID, "W"))
LAMBDIFY_MAX = 32  # sympy.lambdify of the element-wise gradient: O(n^3) Python-level terms beyond this
ISSUE_SYMPY_SECONDS = {8: 0.12, 16: 1.0, 32: 7.6, 64: 60.0}  # plain SymPy, as quoted in the issue
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "XLA_FLAGS")
SECTIONS = ("grad", "hess", "jac", "conv", "derive", "bandwidth")
BLAS_NOTE = (
    "Rows marked *BLAS on 1 thread* run the same code inside `threadpoolctl.threadpool_limits(1)`, in the same "
    "rounds: a 2-thread BLAS call waits whenever the other core is busy, one thread does not."
)


# ----- configuration -----


@dataclass(frozen=True)
class Config:
    """Sizes, rounds and time budgets of one mode (full, quick or smoke)."""

    mode: str
    grad_sizes: tuple[int, ...]
    hess_sizes: tuple[int, ...]
    sigmoid_sizes: tuple[int, ...]
    mlp: tuple[int, int, int]  # output, hidden, input
    conv: tuple[int, int, int, int]  # channels C, height = width H, filters F, kernel height = width k
    elementwise_sizes: tuple[int, ...]
    sympy_sizes: tuple[int, ...]  # plain SymPy baseline of the element-wise proof
    rounds: Callable[[str, int], int]  # (case, size) -> rounds
    sample: float  # seconds: a sample repeats a fast call until it lasts about this long
    variant_budget: float  # seconds one variant may take in one case; slower ones run fewer rounds
    bandwidth_mb: int
    jax_hessian_max: int  # largest n for jax.hessian (one call at 4000 is ~10 s here)
    autograd_hessian_max: int  # autograd.hessian does n reverse passes


def _rounds_full(case: str, n: int) -> int:
    if case == "derive":
        return 3 if n >= 32 else 5
    if case == "hess":
        return 7 if n >= 4000 else 15 if n >= 1000 else 21
    if case == "jac":
        return 9 if n >= 300 else 21
    return 15 if n >= 4000 else 31


def _rounds_quick(case: str, n: int) -> int:
    if case == "derive":
        return 1 if n >= 32 else 3
    return max(1, _rounds_full(case, n) // 3)


FULL = Config(
    mode="full",
    grad_sizes=(32, 100, 1000, 4000),
    hess_sizes=(100, 1000, 4000),
    sigmoid_sizes=(100, 300),
    mlp=(10, 256, 784),
    conv=(3, 32, 8, 3),
    elementwise_sizes=(2, 4, 8, 16, 32, 64),
    sympy_sizes=(8, 16, 32, 64),
    rounds=_rounds_full,
    sample=0.01,
    variant_budget=30.0,
    bandwidth_mb=256,
    jax_hessian_max=4000,
    autograd_hessian_max=1000,
)
QUICK = Config(
    mode="quick",
    grad_sizes=(32, 100, 1000, 4000),
    hess_sizes=(100, 1000),
    sigmoid_sizes=(100, 300),
    mlp=(10, 256, 784),
    conv=(3, 32, 8, 3),
    elementwise_sizes=(2, 4, 8, 16, 32, 64),
    sympy_sizes=(8, 16, 32),
    rounds=_rounds_quick,
    sample=0.005,
    variant_budget=8.0,
    bandwidth_mb=256,
    jax_hessian_max=1000,
    autograd_hessian_max=1000,
)
SMOKE = Config(
    mode="smoke",
    grad_sizes=(8,),
    hess_sizes=(8,),
    sigmoid_sizes=(8,),
    mlp=(3, 8, 12),
    conv=(2, 5, 3, 2),
    elementwise_sizes=(2, 4),
    sympy_sizes=(2, 4),
    rounds=lambda case, n: 1,
    sample=0.0005,
    variant_budget=2.0,
    bandwidth_mb=8,
    jax_hessian_max=8,
    autograd_hessian_max=8,
)
MODES = {"full": FULL, "quick": QUICK, "smoke": SMOKE}


# ----- optional peers -----


@dataclass
class Peers:
    """jax and autograd when importable (else None), and a line for each one skipped."""

    jax: Any = None
    jnp: Any = None
    autograd: Any = None
    anp: Any = None
    notes: list[str] = field(default_factory=list)


def load_peers(disable: Iterable[str] = ()) -> Peers:
    p = Peers()
    disable = set(disable)
    if "jax" in disable:
        p.notes.append("jax: disabled for this run; its rows are skipped.")
    else:
        try:
            os.environ.setdefault("JAX_PLATFORMS", "cpu")
            import jax
            import jax.numpy as jnp

            jax.config.update("jax_enable_x64", True)  # float64, as numpy
            p.jax, p.jnp = jax, jnp
        except ImportError as e:
            p.notes.append(f"jax is not importable ({e}); its rows are skipped (pip install -e '.[bench]').")
    if "autograd" in disable:
        p.notes.append("autograd: disabled for this run; its rows are skipped.")
    else:
        try:
            import autograd
            import autograd.numpy as anp

            p.autograd, p.anp = autograd, anp
        except ImportError as e:
            p.notes.append(f"autograd is not importable ({e}); its rows are skipped (pip install -e '.[bench]').")
    return p


# ----- timing -----


@dataclass
class Variant:
    """One way of computing the case's result: ``fn()`` makes one call and returns the (ready) result."""

    name: str
    fn: Callable[[], Any]
    context: Callable[[], AbstractContextManager] = nullcontext  # entered around each sample (BLAS threads)


@dataclass
class Case:
    """A case's samples: per variant, the seconds per call in each round (NaN where it did not run)."""

    title: str
    size: int
    times: dict[str, np.ndarray]
    calls: dict[str, int]  # calls per sample
    errors: dict[str, float]  # largest relative difference from the reference variant
    agrees: dict[str, bool]
    skipped: dict[str, str]  # variant -> why

    def median(self, name: str) -> float:
        t = self.times.get(name)
        return float(np.nanmedian(t)) if t is not None and np.any(np.isfinite(t)) else math.nan

    def rounds(self, name: str) -> int:
        t = self.times.get(name)
        return 0 if t is None else int(np.sum(np.isfinite(t)))

    def ratio(self, a: str, b: str) -> float:
        """time(a) / time(b): the median of the ratios within rounds where both ran."""
        if a not in self.times or b not in self.times:
            return math.nan
        ta, tb = self.times[a], self.times[b]
        both = np.isfinite(ta) & np.isfinite(tb)
        if both.any():
            return float(np.median(ta[both] / tb[both]))
        return self.median(a) / self.median(b)


def _result(out: Any) -> Any:
    """A result as numpy (jax arrays are copied to host) — only outside the timed loop."""
    if isinstance(out, tuple):
        return tuple(_result(o) for o in out)
    return out if isinstance(out, (float, int)) else np.asarray(out)


def _compare(got: Any, ref: np.ndarray) -> tuple[bool, float]:
    got = np.asarray(got, dtype=float)
    if got.shape != ref.shape:
        return False, math.inf
    scale = float(np.max(np.abs(ref))) if ref.size else 1.0
    scale = scale or 1.0
    err = float(np.max(np.abs(got - ref))) / scale if ref.size else 0.0
    return bool(np.allclose(got, ref, rtol=1e-6, atol=1e-9 * scale)), err


def _sample(fn: Callable[[], Any], calls: int) -> float:
    gc_was = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - t0) / calls
    finally:
        if gc_was:
            gc.enable()


def calibrate(fn: Callable[[], Any], target: float) -> tuple[float, int]:
    """(seconds per call, calls per sample so that a sample lasts about ``target``).

    The estimate is the best of a few calls: on a shared machine one call can stall for a scheduler
    tick, and a stalled estimate would leave a fast variant timed one call per sample.
    """
    t = _sample(fn, 1)
    if t < 0.2:
        t = min(t, *(_sample(fn, 1) for _ in range(4)))
        if t < 1e-4:  # too short for one reading: time a batch
            t = min(_sample(fn, 100) for _ in range(3))
    return t, max(1, min(10_000, math.ceil(target / max(t, 1e-9))))


def measure(
    title: str,
    size: int,
    variants: Sequence[Variant],
    reference: str,
    rounds: int,
    cfg: Config,
    skipped: dict[str, str] | None = None,
    seed: int = 0,
    log: TextIO = sys.stderr,
) -> Case:
    """Warm every variant up (jit compiles there), check it against ``reference``, then time them interleaved.

    Each round runs every variant once, in a freshly shuffled order (so no variant always follows the
    same one: a predecessor can leave caches or idle threads behind). A sample of a fast variant
    (under 50 ms a call) is preceded by one untimed call, so every variant is timed warm.
    """
    print(f"  {title}, n={size}: {len(variants)} variants, up to {rounds} rounds", file=log, flush=True)
    results: dict[str, Any] = {}
    estimate: dict[str, float] = {}
    calls: dict[str, int] = {}
    for v in variants:
        with v.context():
            t0 = time.perf_counter()
            results[v.name] = _result(v.fn())
            first = time.perf_counter() - t0
            if first > 1.0:  # a slow first call is its own estimate
                estimate[v.name], calls[v.name] = first, 1
            else:
                estimate[v.name], calls[v.name] = calibrate(v.fn, cfg.sample)
    ref = results[reference]
    errors, agrees = {}, {}
    for name, got in results.items():
        agrees[name], errors[name] = _compare(got, ref)
    del results, ref
    warm = {n: e < 0.05 for n, e in estimate.items()}
    allowed = {n: max(1, min(rounds, int(cfg.variant_budget / (estimate[n] * (calls[n] + warm[n]))))) for n in estimate}
    allowed[reference] = allowed[variants[0].name] = rounds  # the reference and derive (listed first) always
    times = {v.name: np.full(rounds, math.nan) for v in variants}
    rng = np.random.default_rng(seed)
    for r in range(rounds):
        for i in rng.permutation(len(variants)):
            v = variants[i]
            if r < allowed[v.name]:
                with v.context():
                    if warm[v.name]:
                        v.fn()
                    times[v.name][r] = _sample(v.fn, calls[v.name])
    return Case(title, size, times, calls, errors, agrees, dict(skipped or {}))


# ----- formatting -----


def fmt_time(s: float) -> str:
    if not math.isfinite(s):
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_ratio(r: float) -> str:
    if not math.isfinite(r):
        return "—"
    return f"{r:.2f}×" if r < 100 else f"{r:.0f}×"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def case_table(cases: Sequence[Case], names: Sequence[str], reference: str, labels: Sequence[str] | None = None) -> str:
    """Rows: variants; columns: sizes (or ``labels``), each cell 'median (ratio to the reference)'; then agreement."""
    labels = labels or [f"n={c.size}" for c in cases]
    header = ["variant", *labels, "agrees with reference (max rel. diff.)"]
    rows = []
    for name in names:
        cells, errs, ok = [], [], True
        for c in cases:
            if name in c.skipped:
                cells.append(c.skipped[name])
                continue
            if name not in c.times:
                cells.append("—")
                continue
            rounds = c.rounds(name)
            extra = "" if rounds >= c.rounds(reference) else f", {rounds} round{'s' * (rounds != 1)}"
            cells.append(f"{fmt_time(c.median(name))} ({fmt_ratio(c.ratio(name, reference))}{extra})")
            errs.append(c.errors[name])
            ok = ok and c.agrees[name]
        agree = "—" if not errs else ("yes" if ok else "**NO**") + f" ({max(errs):.0e})"
        rows.append([name, *cells, agree])
    return table(header, rows)


def rounds_line(cases: Sequence[Case], reference: str, labels: Sequence[str] | None = None) -> str:
    parts = []
    for c, label in zip(cases, labels or [f"n={c.size}" for c in cases], strict=True):
        k = c.rounds(reference)
        parts.append(f"{label}: {k} round{'s' * (k != 1)} × {c.calls.get(reference, 1)} call(s) per sample")
    return "Rounds (reference variant): " + "; ".join(parts) + "."


# ----- machine facts -----


def machine_facts(peers: Peers) -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    l3 = _read("/sys/devices/system/cpu/cpu0/cache/index3/size")
    facts = [
        (
            "CPU",
            f"{cpu} ({platform.machine()}), {os.cpu_count()} logical CPUs, {usable} usable"
            + (f", L3 {l3}" if l3 else ""),
        ),
        ("Python", platform.python_version()),
        ("numpy", f"{np.__version__}; BLAS: {blas_info()}"),
        ("sympy", sp.__version__),
        ("jax", _jax_version(peers)),
        ("autograd", _version("autograd") if peers.autograd else "not available"),
        ("derive", _git_head()),
        ("load average at start", " ".join(f"{x:.2f}" for x in os.getloadavg())),
        ("CPU busy with other work at start", busy_text()),
    ]
    facts += [(v, os.environ.get(v, "(unset)")) for v in ENV_VARS]
    return table(["fact", "value"], facts)


def cpu_busy(seconds: float = 0.5) -> float:
    """The fraction of all CPUs busy over ``seconds`` while this process sleeps (NaN where /proc/stat is missing)."""

    def snap() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    try:
        idle0, total0 = snap()
        time.sleep(seconds)
        idle1, total1 = snap()
    except (OSError, ValueError, IndexError):
        return math.nan
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def busy_text() -> str:
    busy = cpu_busy()
    if not math.isfinite(busy):
        return "unknown"
    text = f"{busy:.0%} of all cores (measured over 0.5 s while the benchmark slept)"
    if busy > 0.2:
        text += (
            " — **another process is using the CPUs**: a 2-thread BLAS call can then wait for a scheduler tick "
            "(4 ms at HZ=250) and times of threaded calls grow in steps of it: read the ratios, rerun when idle"
        )
    return text


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def _jax_version(peers: Peers) -> str:
    if peers.jax is None:
        return "not available"
    try:
        devices = ", ".join(str(d) for d in peers.jax.devices())
    except Exception as e:  # the version is still worth printing
        devices = f"devices unknown: {e}"
    return f"{peers.jax.__version__} (jaxlib {_version('jaxlib')}; {devices}; x64 enabled)"


def blas_info() -> str:
    """The BLAS numpy really uses (threadpoolctl), else what numpy was built with."""
    try:
        from threadpoolctl import threadpool_info

        found = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if found:
            return "; ".join(
                f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, "
                f"{i.get('num_threads')} threads, {i.get('threading_layer')})"
                for i in found
            )
    except ImportError:
        pass
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')} (from np.show_config; threadpoolctl not installed)"
    except Exception:
        return "unknown"


def _git_head() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        head = out.stdout.strip() or "unknown"
        changed = [line[3:] for line in dirty.stdout.splitlines() if line[3:]]
        return head + (f" + uncommitted changes to {', '.join(changed)}" if changed else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ----- the variants -----


def generated(expr: str, wrt: str | tuple[str, str]) -> tuple[Any, str]:
    """derive's generated module for ``expr`` (derived once per run; the derivation is timed in section 3),
    and the body of its derivative function as one line, to print under the table: the code measured."""
    src = derive(expr, wrt, numeric=False).numpy_source("f")
    return load(src), code_line(src)


def function_bodies(src: str) -> dict[str, str]:
    """Each function of a generated module: its body without the docstring, as source."""
    bodies = {}
    for fn in ast.parse(src).body:
        if isinstance(fn, ast.FunctionDef):
            stmts = fn.body[1:] if ast.get_docstring(fn) else fn.body
            bodies[fn.name] = "; ".join(ast.unparse(st) for st in stmts)
    return bodies


def code_line(src: str) -> str:
    """The body of the module's derivative function as one line, to print under the table."""
    name, body = "?", ""
    for fn, text in function_bodies(src).items():
        if fn in ("grad_f", "jac_f", "hess_f"):
            name, body = fn, text
    return f"derive's generated `{name}` body: `{body}`"


_ELEMENTWISE: dict[int, tuple[list, list, list, list]] = {}
LAMBDIFY_BUILD: dict[int, float] = {}  # seconds to build the element-wise gradient and lambdify it, per n


def sympy_elementwise_gradient(n: int) -> tuple[list, list, list, list]:
    """The gradient of ||Ax - b||^2 by x written out with symbols a_i_j, x_i, b_i: (A, x, b, gradient)."""
    if n not in _ELEMENTWISE:
        A = [[sp.Symbol(f"a_{i}_{j}") for j in range(n)] for i in range(n)]
        x = [sp.Symbol(f"x_{i}") for i in range(n)]
        b = [sp.Symbol(f"b_{i}") for i in range(n)]
        r = [sp.Add(*[A[i][j] * x[j] for j in range(n)]) - b[i] for i in range(n)]
        f = sp.Add(*[ri**2 for ri in r])
        _ELEMENTWISE[n] = (A, x, b, [sp.diff(f, xk) for xk in x])
    return _ELEMENTWISE[n]


def plain_sympy_proof(n: int) -> bool:
    """The element-wise check with plain SymPy: expand(gradient - 2 Aᵀ(Ax - b)) entry by entry, all written out."""
    A = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"a_{i}_{j}"))
    x = sp.Matrix(n, 1, lambda i, j: sp.Symbol(f"x_{i}"))
    b = sp.Matrix(n, 1, lambda i, j: sp.Symbol(f"b_{i}"))
    r = A * x - b
    f = (r.T * r)[0, 0]
    g = sp.Matrix([sp.diff(f, xi) for xi in x])
    return bool((g - 2 * A.T * r).expand().is_zero_matrix)


def lsq_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n)), rng.standard_normal(n), rng.standard_normal(n)


CAREFUL_GRAD = "careful numpy `2*(A.T@(A@x-b))`"
NAIVE_GRAD = "naive numpy `2*A.T@(A@x-b)`"
DERIVE_GRAD = "derive `grad_f` (generated)"
JAX_GRAD = "`jax.jit(jax.grad(f))`"
AUTOGRAD_GRAD = "`autograd.grad(f)`"
LAMBDIFY = "`sympy.lambdify` (element-wise)"
DERIVE_GRAD_1 = "derive `grad_f`, BLAS on 1 thread"
CAREFUL_GRAD_1 = "careful numpy, BLAS on 1 thread"
CAREFUL_HESS = "careful numpy `2*(A.T@A)`"
NAIVE_HESS = "naive numpy `2*A.T@A`"
DERIVE_HESS = "derive `hess_f` (generated)"
JAX_HESS = "`jax.jit(jax.hessian(f))`"
AUTOGRAD_HESS = "`autograd.hessian(f)`"
DERIVE_HESS_1 = "derive `hess_f`, BLAS on 1 thread"
CAREFUL_HESS_1 = "careful numpy, BLAS on 1 thread"


def one_blas_thread() -> Callable[[], AbstractContextManager] | None:
    """A context that runs numpy's BLAS on one thread (threadpoolctl), or None without threadpoolctl.

    On a shared 2-core machine a 2-thread BLAS call waits whenever the other core is busy; one thread
    does not, so these rows tell the code's speed from the machine's noise."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return lambda: threadpool_limits(1, user_api="blas")


def single_thread_rows(n: int, cfg: Config) -> bool:
    return n >= 1000 or cfg.mode == "smoke"


def grad_variants(n: int, seed: int, peers: Peers, mod: Any, cfg: Config) -> tuple[list[Variant], dict[str, str]]:
    A, x, b = lsq_data(n, seed)
    vs = [
        Variant(DERIVE_GRAD, lambda: mod.grad_f(A, x, b)),
        Variant(CAREFUL_GRAD, lambda: 2 * (A.T @ (A @ x - b))),
        Variant(NAIVE_GRAD, lambda: 2 * A.T @ (A @ x - b)),
    ]
    one = one_blas_thread()
    if one is not None and single_thread_rows(n, cfg):
        vs.append(Variant(DERIVE_GRAD_1, lambda: mod.grad_f(A, x, b), one))
        vs.append(Variant(CAREFUL_GRAD_1, lambda: 2 * (A.T @ (A @ x - b)), one))
    skipped: dict[str, str] = {}
    if peers.jax is not None:
        jax, jnp = peers.jax, peers.jnp
        g = jax.jit(jax.grad(lambda A, x, b: jnp.sum((A @ x - b) ** 2), argnums=1))
        Aj, xj, bj = (jax.device_put(v) for v in (A, x, b))
        vs.append(Variant(JAX_GRAD, lambda: g(Aj, xj, bj).block_until_ready()))
    if peers.autograd is not None:
        anp = peers.anp
        ga = peers.autograd.grad(lambda A, x, b: anp.sum((anp.dot(A, x) - b) ** 2), 1)
        vs.append(Variant(AUTOGRAD_GRAD, lambda: ga(A, x, b)))
    if n <= LAMBDIFY_MAX:
        t0 = time.perf_counter()
        As, xs, bs, grad = sympy_elementwise_gradient(n)
        fl = sp.lambdify([[a for row in As for a in row], xs, bs], grad, modules="numpy")
        LAMBDIFY_BUILD[n] = time.perf_counter() - t0
        vs.append(Variant(LAMBDIFY, lambda: np.array(fl(A.ravel().tolist(), x.tolist(), b.tolist()))))
    else:
        skipped[LAMBDIFY] = f"infeasible beyond n={LAMBDIFY_MAX}"
    return vs, skipped


def hess_variants(n: int, seed: int, peers: Peers, mod: Any, cfg: Config) -> tuple[list[Variant], dict[str, str]]:
    A, x, b = lsq_data(n, seed)
    vs = [
        Variant(DERIVE_HESS, lambda: mod.hess_f(A, x, b)),
        Variant(CAREFUL_HESS, lambda: 2 * (A.T @ A)),
        Variant(NAIVE_HESS, lambda: 2 * A.T @ A),
    ]
    one = one_blas_thread()
    if one is not None and single_thread_rows(n, cfg) and n < 4000:
        vs.append(Variant(DERIVE_HESS_1, lambda: mod.hess_f(A, x, b), one))
        vs.append(Variant(CAREFUL_HESS_1, lambda: 2 * (A.T @ A), one))
    skipped: dict[str, str] = {}
    if peers.jax is not None:
        if n <= cfg.jax_hessian_max:
            jax, jnp = peers.jax, peers.jnp
            h = jax.jit(jax.hessian(lambda A, x, b: jnp.sum((A @ x - b) ** 2), argnums=1))
            Aj, xj, bj = (jax.device_put(v) for v in (A, x, b))
            vs.append(Variant(JAX_HESS, lambda: h(Aj, xj, bj).block_until_ready()))
        else:
            skipped[JAX_HESS] = f"skipped in --{cfg.mode} (~10 s a call at 4000 here)"
    if peers.autograd is not None:
        if n <= cfg.autograd_hessian_max:
            anp = peers.anp
            ha = peers.autograd.hessian(lambda A, x, b: anp.sum((anp.dot(A, x) - b) ** 2), 1)
            vs.append(Variant(AUTOGRAD_HESS, lambda: ha(A, x, b)))
        else:
            skipped[AUTOGRAD_HESS] = f"skipped: n={n} reverse passes (minutes a call)"
    return vs, skipped


CAREFUL_JAC = "careful numpy (zeros + diagonal `outer(σ′, x)`)"
NAIVE_JAC = "naive numpy `kron(xᵀ, diag(σ′))` reshaped"
DERIVE_JAC = "derive `jac_f` (generated)"
JAX_JAC = "`jax.jit(jax.jacobian(f))`"
AUTOGRAD_JAC = "`autograd.jacobian(f)`"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow


def careful_sigmoid_jac(W: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """J[i, i, :] = σ′(Wx + b)_i x, every other entry 0: shape (m, m, n)."""
    s = _sigmoid(W @ x + b)
    m, n = W.shape
    J = np.zeros((m, m, n))
    i = np.arange(m)
    J[i, i] = np.outer(s * (1 - s), x)
    return J


def naive_sigmoid_jac(W: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The article's xᵀ ⊗ diag(σ′) as a dense Kronecker product, reshaped (column-major vec) to (m, m, n)."""
    s = _sigmoid(W @ x + b)
    m, n = W.shape
    return np.kron(x[None, :], np.diag(s * (1 - s))).reshape(m, m, n, order="F")


def jac_variants(m: int, seed: int, peers: Peers, mod: Any) -> list[Variant]:
    rng = np.random.default_rng(seed)
    W, x, b = rng.standard_normal((m, m)) / math.sqrt(m), rng.standard_normal(m), rng.standard_normal(m)
    vs = [
        Variant(DERIVE_JAC, lambda: mod.jac_f(W, x, b)),
        Variant(CAREFUL_JAC, lambda: careful_sigmoid_jac(W, x, b)),
        Variant(NAIVE_JAC, lambda: naive_sigmoid_jac(W, x, b)),
    ]
    if peers.jax is not None:
        jax = peers.jax
        j = jax.jit(jax.jacobian(lambda W, x, b: jax.nn.sigmoid(W @ x + b), argnums=0))
        Wj, xj, bj = (jax.device_put(v) for v in (W, x, b))
        vs.append(Variant(JAX_JAC, lambda: j(Wj, xj, bj).block_until_ready()))
    if peers.autograd is not None:
        anp = peers.anp
        ja = peers.autograd.jacobian(lambda W, x, b: 0.5 * (1.0 + anp.tanh(0.5 * (anp.dot(W, x) + b))), 0)
        vs.append(Variant(AUTOGRAD_JAC, lambda: ja(W, x, b)))
    return vs


CAREFUL_MLP = "careful numpy (shared tanh, 2 on the vector)"
DERIVE_MLP = "derive `grad_f` (generated)"
JAX_MLP = "`jax.jit(jax.grad(f))`"
AUTOGRAD_MLP = "`autograd.grad(f)`"


def careful_mlp_grad(W2, W1, x, b1, b2, y):
    h = np.tanh(W1 @ x + b1)
    r = W2 @ h + b2 - y
    return np.outer((2 * (W2.T @ r)) * (1 - h * h), x)


def mlp_variants(dims: tuple[int, int, int], seed: int, peers: Peers, mod: Any) -> list[Variant]:
    out, hidden, inp = dims
    rng = np.random.default_rng(seed)
    args = (
        rng.standard_normal((out, hidden)) / math.sqrt(hidden),
        rng.standard_normal((hidden, inp)) / math.sqrt(inp),
        rng.standard_normal(inp),
        rng.standard_normal(hidden),
        rng.standard_normal(out),
        rng.standard_normal(out),
    )
    vs = [
        Variant(DERIVE_MLP, lambda: mod.grad_f(*args)),
        Variant(CAREFUL_MLP, lambda: careful_mlp_grad(*args)),
    ]
    if peers.jax is not None:
        jax, jnp = peers.jax, peers.jnp
        g = jax.jit(jax.grad(lambda W2, W1, x, b1, b2, y: jnp.sum((W2 @ jnp.tanh(W1 @ x + b1) + b2 - y) ** 2), 1))
        jargs = tuple(jax.device_put(a) for a in args)
        vs.append(Variant(JAX_MLP, lambda: g(*jargs).block_until_ready()))
    if peers.autograd is not None:
        anp = peers.anp
        ga = peers.autograd.grad(
            lambda W2, W1, x, b1, b2, y: anp.sum((anp.dot(W2, anp.tanh(anp.dot(W1, x) + b1)) + b2 - y) ** 2), 1
        )
        vs.append(Variant(AUTOGRAD_MLP, lambda: ga(*args)))
    return vs


CAREFUL_CONV = "careful numpy im2col (one GEMM each)"
DERIVE_CONV = "derive `grad_f` (generated)"
JAX_CONV = "`jax.jit(jax.grad(f))`, `lax.conv_general_dilated`"
AUTOGRAD_CONV = "`autograd.grad(f)`, `autograd.scipy.signal.convolve`"


def im2col(X: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """X (C, H, W) as the (C·kh·kw, Ho·Wo) matrix of its windows, rows in K's (c, i, j) order: one copy."""
    C = X.shape[0]
    return sliding_window_view(X, (kh, kw), axis=(1, 2)).transpose(0, 3, 4, 1, 2).reshape(C * kh * kw, -1)


def careful_conv_grad_K(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    """d/dK sum(conv2d(X, K)**2) = 2 Y colsᵀ with Y = K cols: the im2col matrix built once, two GEMMs."""
    F, _, kh, kw = K.shape
    cols = im2col(X, kh, kw)
    Y = K.reshape(F, -1) @ cols
    return (2 * (Y @ cols.T)).reshape(K.shape)


def careful_conv_grad_X(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    """d/dX sum(conv2d(X, K)**2): Y = K cols, the window gradients Kᵀ Y in one GEMM, then col2im: kh·kw
    vectorised strided adds (faster here than a GEMM on the im2col matrix of the zero-padded Y)."""
    F, C, kh, kw = K.shape
    Ho, Wo = X.shape[1] - kh + 1, X.shape[2] - kw + 1
    Km = K.reshape(F, -1)
    dcols = (Km.T @ (Km @ im2col(X, kh, kw))).reshape(C, kh, kw, Ho, Wo)
    dX = np.zeros_like(X)
    for i in range(kh):
        for j in range(kw):
            dX[:, i : i + Ho, j : j + Wo] += dcols[:, i, j]
    return 2 * dX


def conv_variants(
    wrt: str, dims: tuple[int, int, int, int], seed: int, peers: Peers, mod: Any, generic: bool
) -> list[Variant]:
    """The gradient of sum(conv2d(X, K)**2) by ``wrt`` ("K" or "X"). Without ``generic`` (derive's code holds the
    sizes it was derived at) derive's row calls the module's shape-generic helpers the way its ``grad_f`` does."""
    c, h, f, k = dims
    rng = np.random.default_rng(seed)
    X, K = rng.standard_normal((c, h, h)), rng.standard_normal((f, c, k, k)) / math.sqrt(c * k * k)
    by_k = wrt == "K"
    if generic:
        derived = lambda: mod.grad_f(X, K)  # noqa: E731
    elif by_k:
        derived = lambda: 2 * mod._conv2d_kernel_grad(X, mod._conv2d(X, K))  # noqa: E731
    else:
        derived = lambda: 2 * mod._conv2d_input_grad(mod._conv2d(X, K), K)  # noqa: E731
    careful = careful_conv_grad_K if by_k else careful_conv_grad_X
    vs = [Variant(DERIVE_CONV, derived), Variant(CAREFUL_CONV, lambda: careful(X, K))]
    if peers.jax is not None:
        jax, jnp = peers.jax, peers.jnp

        def loss(X, K):
            y = jax.lax.conv_general_dilated(X[None], K, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW"))
            return jnp.sum(y**2)

        g = jax.jit(jax.grad(loss, argnums=1 if by_k else 0))
        Xj, Kj = jax.device_put(X), jax.device_put(K)
        vs.append(Variant(JAX_CONV, lambda: g(Xj, Kj).block_until_ready()))
    if peers.autograd is not None:
        anp = peers.anp
        from autograd.scipy.signal import convolve

        def aloss(X, K):  # convolve flips its kernel: flip K back for conv2d's cross-correlation
            y = convolve(X, K[:, :, ::-1, ::-1], axes=([1, 2], [2, 3]), dot_axes=([0], [1]), mode="valid")
            return anp.sum(y**2)

        ga = peers.autograd.grad(aloss, 1 if by_k else 0)
        vs.append(Variant(AUTOGRAD_CONV, lambda: ga(X, K)))
    return vs


# ----- the sections -----


@dataclass
class Report:
    """What a run measured: the Markdown, each agreement check, and the numbers the targets need."""

    text: list[str] = field(default_factory=list)
    agreement: list[tuple[str, int, str, bool, float]] = field(default_factory=list)  # (case, n, variant, ok, err)
    cases: dict[tuple[str, int], Case] = field(default_factory=dict)
    derive_times: dict[int, float] = field(default_factory=dict)  # element-wise ||Ax-b||^2, derive() seconds
    bandwidth: float = math.nan  # bytes/s, read + written

    def emit(self, out: TextIO, *parts: str) -> None:
        for p in parts:
            self.text.append(p)
            print(p, file=out, flush=True)

    def add(self, key: str, case: Case) -> None:
        self.cases[(key, case.size)] = case
        for name in case.times:
            self.agreement.append((key, case.size, name, case.agrees[name], case.errors[name]))

    @property
    def markdown(self) -> str:
        return "\n".join(self.text)


def blas_note(cases: Sequence[Case]) -> str:
    if any(DERIVE_GRAD_1 in c.times or DERIVE_HESS_1 in c.times for c in cases):
        return BLAS_NOTE
    if one_blas_thread() is None:
        return "threadpoolctl is not installed: no rows with BLAS on 1 thread (pip install -e '.[bench]')."
    return ""


def section_grad(cfg: Config, peers: Peers, rep: Report, out: TextIO, seed: int) -> None:
    mod, code = generated(LSQ, "x")
    cases = []
    for n in cfg.grad_sizes:
        vs, skipped = grad_variants(n, seed, peers, mod, cfg)
        case = measure("gradient of ||Ax-b||^2", n, vs, CAREFUL_GRAD, cfg.rounds("grad", n), cfg, skipped, seed + n)
        rep.add("grad", case)
        cases.append(case)
    names = [DERIVE_GRAD, CAREFUL_GRAD, NAIVE_GRAD, JAX_GRAD, AUTOGRAD_GRAD, LAMBDIFY, DERIVE_GRAD_1, CAREFUL_GRAD_1]
    build = ", ".join(f"{fmt_time(LAMBDIFY_BUILD[n])} at n={n}" for n in cfg.grad_sizes if n in LAMBDIFY_BUILD) or "—"
    names = [nm for nm in names if any(nm in c.times or nm in c.skipped for c in cases)]
    rep.emit(
        out,
        "## 1a. Gradient of ‖Ax − b‖² by x, float64 (A n×n)",
        "",
        "Each cell: median time per call (time ÷ careful numpy, the median of the ratios within a round).",
        "",
        case_table(cases, names, CAREFUL_GRAD),
        "",
        rounds_line(cases, CAREFUL_GRAD),
        code + ".",
        f"The peers differentiate `sum((A@x - b)**2)`; jax gets device arrays and is timed with "
        f"`.block_until_ready()` after a warm-up call (compilation excluded). `sympy.lambdify` calls the "
        f"element-wise gradient (symbols a_i_j, x_i, b_i; O(n³) scalar terms); building it (SymPy `diff` + "
        f"`lambdify`) took {build}. Beyond n={LAMBDIFY_MAX} it is infeasible: the expression grows as n³.",
        blas_note(cases),
        "",
    )


def section_hess(cfg: Config, peers: Peers, rep: Report, out: TextIO, seed: int) -> None:
    mod, code = generated(LSQ, ("x", "x"))
    cases = []
    for n in cfg.hess_sizes:
        vs, skipped = hess_variants(n, seed, peers, mod, cfg)
        case = measure("Hessian of ||Ax-b||^2", n, vs, CAREFUL_HESS, cfg.rounds("hess", n), cfg, skipped, seed + n)
        rep.add("hess", case)
        cases.append(case)
    names = [DERIVE_HESS, CAREFUL_HESS, NAIVE_HESS, JAX_HESS, AUTOGRAD_HESS, DERIVE_HESS_1, CAREFUL_HESS_1]
    names = [nm for nm in names if any(nm in c.times or nm in c.skipped for c in cases)]
    missing = [n for n in FULL.hess_sizes if n not in cfg.hess_sizes]
    rep.emit(
        out,
        "## 1b. Hessian of ‖Ax − b‖² by x, float64",
        "",
        case_table(cases, names, CAREFUL_HESS),
        "",
        rounds_line(cases, CAREFUL_HESS),
        code + ".",
        "`2*(A.T@A)` lets numpy see Aᵀ and A share a buffer and use a symmetric rank-k product (half the flops); "
        "`2*A.T@A` multiplies the copy `2*A.T` by A, a general product.",
        blas_note(cases),
    )
    if missing:
        rep.emit(out, f"Not measured in --{cfg.mode}: n = {', '.join(map(str, missing))} (the Hessian is n³ flops).")
    rep.emit(out, "")


def section_jac(cfg: Config, peers: Peers, rep: Report, out: TextIO, seed: int) -> None:
    mod, code = generated(SIGMOID, "W")
    cases = []
    for m in cfg.sigmoid_sizes:
        case = measure(
            "Jacobian of sigmoid(Wx+b) by W",
            m,
            jac_variants(m, seed, peers, mod),
            CAREFUL_JAC,
            cfg.rounds("jac", m),
            cfg,
            seed=seed + m,
        )
        rep.add("jac", case)
        cases.append(case)
    names = [DERIVE_JAC, CAREFUL_JAC, NAIVE_JAC, JAX_JAC, AUTOGRAD_JAC]
    names = [nm for nm in names if any(nm in c.times for c in cases)]
    rep.emit(
        out,
        "## 2a. Jacobian of σ(Wx + b) by W, float64 (W m×n, m = n; result m×m×n)",
        "",
        case_table(cases, names, CAREFUL_JAC),
        "",
        rounds_line(cases, CAREFUL_JAC),
        code + ".",
        "Every variant returns the dense m×m×n array (jax.jacobian's layout); at m = 300 that is 216 MB. "
        "The careful version writes only the m nonzero rows into `np.zeros` (the rest stays untouched zero pages).",
        "",
    )
    out_dim, hidden, inp = cfg.mlp
    mod, code = generated(MLP, "W1")
    case = measure(
        "MLP loss gradient by W1",
        hidden,
        mlp_variants(cfg.mlp, seed, peers, mod),
        CAREFUL_MLP,
        cfg.rounds("mlp", hidden),
        cfg,
        seed=seed + 1,
    )
    rep.add("mlp", case)
    names = [nm for nm in (DERIVE_MLP, CAREFUL_MLP, JAX_MLP, AUTOGRAD_MLP) if nm in case.times]
    rep.emit(
        out,
        f"## 2b. Two-layer MLP: gradient of `{MLP}` by W1 (input {inp}, hidden {hidden}, output {out_dim}; float64)",
        "",
        case_table([case], names, CAREFUL_MLP).replace(f"n={hidden}", f"{out_dim}←{hidden}←{inp}"),
        "",
        rounds_line([case], CAREFUL_MLP).replace(f"n={hidden}", "MLP"),
        code + ".",
        "Careful numpy: `h = tanh(W1@x + b1); r = W2@h + b2 - y; outer((2*(W2.T@r))*(1 - h*h), x)`.",
        "",
    )


def section_conv(cfg: Config, peers: Peers, rep: Report, out: TextIO, seed: int) -> None:
    c, h, f, k = cfg.conv
    # derive's exact element-wise proof is slow at 32×32 (about 85 s by K here): derive at two small sizes of the same
    # structure and run its grad_f at full size only if its functions read the same at both (then they hold no sizes).
    small = min(h, k + 3)

    def shapes(s: int) -> dict[str, tuple[int, ...]]:
        return {"X": (c, s, s), "K": (f, c, k, k)}

    cases, codes, generic_all, status = [], [], True, set()
    for wrt in ("K", "X"):
        ds = {s: derive(CONV, wrt, shapes=shapes(s), numeric=False) for s in (small, small + 1)}
        src = {s: d.numpy_source("f") for s, d in ds.items()}
        generic = function_bodies(src[small]) == function_bodies(src[small + 1])
        generic_all = generic_all and generic
        status |= {d.proof.status for d in ds.values()}
        codes.append(f"By {wrt}: " + code_line(src[small]))
        vs = conv_variants(wrt, cfg.conv, seed, peers, load(src[small]), generic)
        case = measure(
            f"gradient of {CONV} by {wrt}", h, vs, CAREFUL_CONV, cfg.rounds("conv", h), cfg, seed=seed + h + len(cases)
        )
        rep.add(f"conv by {wrt}", case)
        cases.append(case)
    names = [nm for nm in (DERIVE_CONV, CAREFUL_CONV, JAX_CONV, AUTOGRAD_CONV) if any(nm in cs.times for cs in cases)]
    labels = [f"by K (result {f}×{c}×{k}×{k})", f"by X (result {c}×{h}×{h})"]
    if generic_all:
        how = (
            "its functions read the same (docstrings aside) when derived at both sizes, so they hold no sizes and "
            "the generated `grad_f` runs as it is"
        )
    else:
        how = (
            "**its code differs between the two sizes (sizes written in)**, so derive's row calls the module's "
            "shape-generic helpers `_conv2d`, `_conv2d_kernel_grad`, `_conv2d_input_grad` the way `grad_f` does"
        )
    rep.emit(
        out,
        f"## 2c. Gradient of `{CONV}` by K and by X, float64 (X {c}×{h}×{h}, K {f}×{c}×{k}×{k}: "
        f"C={c}, H=W={h}, F={f}, {k}×{k} kernels)",
        "",
        case_table(cases, names, CAREFUL_CONV, labels),
        "",
        rounds_line(cases, CAREFUL_CONV, ["by K", "by X"]),
        *[line + "." for line in codes],
        (f"derive's exact element-wise proof is slow at {h}×{h} (over a minute here): the" if h > small else "The")
        + f" code is derived at X {c}×{small}×{small} and {c}×{small + 1}×{small + 1} "
        f"(proof: {', '.join(sorted(status))}); {how}.",
        "Careful numpy builds the im2col matrix `cols` once (`sliding_window_view`, one copy) and does one GEMM for "
        "the forward pass, `Y = K·cols`, and one for the gradient: by K `2·Y·colsᵀ`; by X `Kᵀ·Y`, then col2im "
        f"({k}·{k} strided adds into zeros, ×2), which was faster at 32×32 here than a GEMM of the kernel turned 180° "
        "with the im2col matrix of the zero-padded Y.",
        "jax differentiates `sum(lax.conv_general_dilated(X[None], K, (1, 1), 'VALID', "
        "dimension_numbers=('NCHW', 'OIHW', 'NCHW'))**2)` (a cross-correlation, as conv2d), on device arrays, timed "
        "with `.block_until_ready()` after a warm-up call (compilation excluded). autograd has no conv2d but its "
        "`autograd.scipy.signal.convolve` is a primitive with its own gradient (einsum over strided views, no Python "
        "loop): `convolve(X, K[:, :, ::-1, ::-1], axes=([1, 2], [2, 3]), dot_axes=([0], [1]), mode='valid')` (a true "
        "convolution, so the kernel is flipped back).",
        "",
    )


def section_derive(cfg: Config, rep: Report, out: TextIO) -> None:
    # The article's three expressions, the full derive() (proof and numeric check), SymPy's cache cleared each call.
    names = [f"`derive({e!r}, {w!r})`" for e, w in ARTICLE]
    fns = [(lambda e=e, w=w: derive(e, w)) for e, w in ARTICLE]
    rounds = {"full": 9, "quick": 5}.get(cfg.mode, 1)
    times = {n: [] for n in names}
    proofs = {n: [] for n in names}
    status = {}
    for f in fns:  # warm-up: imports, templates
        f()
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        for i in rng.permutation(len(names)):
            name, f = names[i], fns[i]
            clear_cache()
            t0 = time.perf_counter()
            d = f()
            times[name].append(time.perf_counter() - t0)
            proofs[name].append(d.proof.seconds)
            status[name] = d.proof.status
    rows = [[n, fmt_time(float(np.median(times[n]))), fmt_time(float(np.median(proofs[n]))), status[n]] for n in names]
    rep.emit(
        out,
        "## 3. Derivation cost",
        "",
        "### The article's three expressions: `derive()` with proof and numeric check",
        "",
        table(["call", "median time", "of which `proof.seconds`", "proof"], rows),
        "",
        f"{rounds} interleaved round{'s' * (rounds != 1)}; SymPy's cache is cleared before every call (cold cost).",
        "",
    )

    # ||Ax - b||^2 proven element-wise at n x n, against plain SymPy.
    print("  element-wise proof of ||Ax-b||^2", file=sys.stderr, flush=True)
    sizes = sorted(set(cfg.elementwise_sizes) | set(cfg.sympy_sizes))
    d_t: dict[int, list[float]] = {}
    d_p: dict[int, list[float]] = {}
    s_t: dict[int, list[float]] = {}
    status: dict[int, str] = {}
    s_ok: dict[int, bool] = {}
    for n in sizes:
        rounds = cfg.rounds("derive", n)
        d_rounds = rounds if n < 64 else max(1, rounds - 1)
        s_rounds = rounds if n < 64 else 1
        jobs = []
        if n in cfg.elementwise_sizes:
            jobs.append(("derive", d_rounds))
        if n in cfg.sympy_sizes:
            jobs.append(("sympy", s_rounds))
        for r in range(rounds):
            order = jobs if r % 2 == 0 else jobs[::-1]
            for kind, k in order:
                if r >= k:
                    continue
                clear_cache()
                t0 = time.perf_counter()
                if kind == "derive":
                    d = derive(LSQ, "x", shapes={"A": (n, n)}, numeric=False)
                    d_t.setdefault(n, []).append(time.perf_counter() - t0)
                    d_p.setdefault(n, []).append(d.proof.seconds)
                    status[n] = d.proof.status
                else:
                    ok = plain_sympy_proof(n)
                    s_t.setdefault(n, []).append(time.perf_counter() - t0)
                    s_ok[n] = ok
        print(f"    n={n} done", file=sys.stderr, flush=True)
    med = {n: float(np.median(v)) for n, v in d_t.items()}
    smed = {n: float(np.median(v)) for n, v in s_t.items()}
    rep.derive_times.update(med)
    rows = []
    for n in sizes:
        quote = ISSUE_SYMPY_SECONDS.get(n)
        rows.append(
            [
                n,
                fmt_time(med[n]) + f" ({len(d_t[n])}, {status[n]})" if n in med else "—",
                fmt_time(float(np.median(d_p[n]))) if n in d_p else "—",
                fmt_time(smed[n]) + f" ({len(s_t[n])}, {'equal' if s_ok[n] else '**not equal**'})"
                if n in smed
                else ("skipped in --quick" if n == 64 else "—"),
                fmt_ratio(smed[n] / med[n]) if n in smed and n in med else "—",
                f"{quote} s" if quote else "—",
            ]
        )
    rep.emit(
        out,
        "### ‖Ax − b‖² by x proven element-wise at n×n",
        "",
        '`derive("norm(A @ x - b)**2", "x", shapes={"A": (n, n)}, numeric=False)` against plain SymPy '
        "(`expand` of the written-out gradient minus 2Aᵀ(Ax − b), entry by entry). Median (rounds, outcome).",
        "",
        table(
            [
                "n",
                "derive() total",
                "of which `proof.seconds`",
                "plain SymPy",
                "SymPy ÷ derive",
                "issue's quote for plain SymPy",
            ],
            rows,
        ),
        "",
    )
    lines = []
    for label, m in (("derive()", med), ("plain SymPy", smed)):
        big = {n: t for n, t in m.items() if n >= 8}
        if len(big) >= 2:
            lines.append(
                f"- {label}: time ∝ n^{growth(big):.2f} (least squares of log t on log n, n = "
                f"{', '.join(map(str, sorted(big)))})"
            )
    if len(med) >= 2:
        lines.append(f"- derive() over all n = {', '.join(map(str, sorted(med)))}: n^{growth(med):.2f}")
    if lines:
        rep.emit(out, "Growth exponents:", "", *lines, "")


def growth(times: dict[int, float]) -> float:
    ns = sorted(times)
    slope, _ = np.polyfit(np.log(ns), np.log([times[n] for n in ns]), 1)
    return float(slope)


def measure_bandwidth(cfg: Config, rounds: int) -> tuple[float, float, float]:
    """(best, 1-thread median, 2-thread median) bytes per second of np.copyto, counting bytes read + written."""
    n = cfg.bandwidth_mb * 2**20 // 8
    src = np.ones(n)
    dst = np.zeros(n)
    np.copyto(dst, src)
    half = n // 2
    pool = ThreadPoolExecutor(2)

    def one() -> None:
        np.copyto(dst, src)

    def two() -> None:  # numpy releases the GIL while copying: two cores, two halves
        list(pool.map(lambda s: np.copyto(dst[s], src[s]), (slice(0, half), slice(half, n))))

    t1, t2 = [], []
    for r in range(rounds):
        for f, ts in ((one, t1), (two, t2)) if r % 2 == 0 else ((two, t2), (one, t1)):
            ts.append(_sample(f, 1))
    pool.shutdown()
    moved = 2 * src.nbytes
    bw1, bw2 = moved / float(np.median(t1)), moved / float(np.median(t2))
    return max(bw1, bw2), bw1, bw2


def section_bandwidth(cfg: Config, rep: Report, out: TextIO, rounds: int) -> None:
    bw, bw1, bw2 = measure_bandwidth(cfg, rounds)
    rep.bandwidth = bw
    rep.emit(
        out,
        "## 4. The physical limit: memory bandwidth",
        "",
        f"`np.copyto` of a {cfg.bandwidth_mb} MB float64 array, bytes read + written ÷ time, median of {rounds}: "
        f"{bw1 / 1e9:.1f} GB/s on one thread, {bw2 / 1e9:.1f} GB/s on two (halves in two threads). "
        f"Floor below: n²·8 bytes ÷ {bw / 1e9:.1f} GB/s (the gradient must read A at least once; numpy reads it "
        "twice).",
        "",
    )
    ns = [n for n in cfg.grad_sizes if n >= 1000 and ("grad", n) in rep.cases]
    if not ns:
        rep.emit(out, "No gradient measured at n ≥ 1000 in this mode.", "")
        return
    names = [DERIVE_GRAD, CAREFUL_GRAD, NAIVE_GRAD, JAX_GRAD, AUTOGRAD_GRAD, DERIVE_GRAD_1, CAREFUL_GRAD_1]
    floors = {n: n * n * 8 / bw for n in ns}
    rows = [["floor (one read of A)", *[fmt_time(floors[n]) for n in ns]]]
    for name in names:
        cells = []
        for n in ns:
            c = rep.cases[("grad", n)]
            cells.append(f"{c.median(name) / floors[n]:.2f}× floor" if name in c.times else "—")
        if any(x != "—" for x in cells):
            rows.append([name, *cells])
    l3 = _read("/sys/devices/system/cpu/cpu0/cache/index3/size")
    rep.emit(
        out,
        table(["gradient variant", *[f"n={n} (A is {n * n * 8 / 1e6:.0f} MB)" for n in ns]], rows),
        "",
        f"Where A fits in the last-level cache ({l3 or 'size unknown'}) a variant can beat the DRAM floor.",
        "",
    )


# ----- targets -----


def targets(cfg: Config, rep: Report) -> list[tuple[str, str, str]]:
    """(target, measured, PASS / MISS / not measured). The verdict is on the default configuration;
    where the same comparison was also made with numpy's BLAS on one thread, that ratio follows as context."""
    rows: list[tuple[str, str, str]] = []

    def ratio(key: str, n: int, a: str, b: str) -> float:
        c = rep.cases.get((key, n))
        return c.ratio(a, b) if c and a in c.times and b in c.times else math.nan

    def check(text: str, value: float, ok: Callable[[float], bool], shown: str, one: float = math.nan) -> None:
        if not math.isfinite(value):
            rows.append((text, "—", "not measured"))
            return
        measured = shown.format(value)
        if math.isfinite(one):
            measured += f" (BLAS on 1 thread: {shown.format(one)})"
        rows.append((text, measured, "PASS" if ok(value) else "MISS"))

    def within(v: float) -> bool:
        return v <= 1.05

    for n in (1000, 4000):
        check(
            f"gradient within 1.05× of careful numpy, n={n}",
            ratio("grad", n, DERIVE_GRAD, CAREFUL_GRAD),
            within,
            "{:.3f}×",
            ratio("grad", n, DERIVE_GRAD_1, CAREFUL_GRAD_1),
        )
    for n in (1000, 4000):
        check(
            f"gradient ≥ 3× faster than naive numpy, n={n}",
            ratio("grad", n, NAIVE_GRAD, DERIVE_GRAD),
            lambda v: v >= 3,
            "{:.2f}× faster",
        )
    check(
        "gradient ≥ 2× faster than jax.jit(grad), n=1000",
        ratio("grad", 1000, JAX_GRAD, DERIVE_GRAD),
        lambda v: v >= 2,
        "{:.2f}× faster",
        ratio("grad", 1000, JAX_GRAD, DERIVE_GRAD_1),
    )
    for n in (1000, 4000):
        check(
            f"Hessian within 1.05× of careful `2*(A.T@A)`, n={n}",
            ratio("hess", n, DERIVE_HESS, CAREFUL_HESS),
            within,
            "{:.3f}×",
            ratio("hess", n, DERIVE_HESS_1, CAREFUL_HESS_1),
        )
    check(
        "Hessian ≥ 5× faster than jax.hessian, n=1000",
        ratio("hess", 1000, JAX_HESS, DERIVE_HESS),
        lambda v: v >= 5,
        "{:.2f}× faster",
        ratio("hess", 1000, JAX_HESS, DERIVE_HESS_1),
    )
    check("element-wise proof at n=32 under 1 s", rep.derive_times.get(32, math.nan), lambda v: v < 1, "{:.2f} s")
    check("element-wise proof at n=64 under 5 s", rep.derive_times.get(64, math.nan), lambda v: v < 5, "{:.2f} s")
    return rows


# ----- the run -----


def run(
    mode: str = "full",
    out: TextIO = sys.stdout,
    sections: Sequence[str] = SECTIONS,
    disable: Iterable[str] = (),
    seed: int = 0,
) -> Report:
    """Run the benchmark in ``mode`` (full, quick or smoke), print Markdown to ``out`` and return the report."""
    cfg = MODES[mode]
    start = time.perf_counter()
    peers = load_peers(disable)
    rep = Report()
    rep.emit(out, f"# derive benchmarks ({cfg.mode} run)", "", machine_facts(peers), "")
    for note in peers.notes:
        rep.emit(out, f"- {note}")
    if peers.notes:
        rep.emit(out, "")
    print(f"benchmark ({cfg.mode})", file=sys.stderr, flush=True)
    bw_rounds = 9 if cfg.mode == "full" else 5 if cfg.mode == "quick" else 1
    if "grad" in sections:
        section_grad(cfg, peers, rep, out, seed)
    if "hess" in sections:
        section_hess(cfg, peers, rep, out, seed)
    if "jac" in sections:
        section_jac(cfg, peers, rep, out, seed)
    if "conv" in sections:
        section_conv(cfg, peers, rep, out, seed)
    if "derive" in sections:
        section_derive(cfg, rep, out)
    if "bandwidth" in sections:
        section_bandwidth(cfg, rep, out, bw_rounds)
    rows = targets(cfg, rep)
    box = {"PASS": "[x]", "MISS": "[ ]", "not measured": "[ ]"}
    rep.emit(out, "## 5. Targets", "")
    rep.emit(out, *[f"- {box[s]} **{s}** — {t}: {v}" for t, v, s in rows])
    bad = [a for a in rep.agreement if not a[3]]
    rep.emit(
        out,
        "",
        f"Agreement: {len(rep.agreement) - len(bad)} of {len(rep.agreement)} variant results match the careful "
        "numpy one (np.allclose, rtol 1e-6)."
        + ("" if not bad else " Mismatches: " + "; ".join(f"{k} n={n} {v} ({e:.1e})" for k, n, v, _, e in bad)),
        f"Load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; CPU busy with other work at the "
        f"end: {busy_text()}. "
        f"Whole run: {time.perf_counter() - start:.0f} s.",
    )
    return rep


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="fewer rounds, no Hessian at n=4000, no SymPy at n=64")
    g.add_argument("--smoke", action="store_true", help="tiny sizes, one round: the code paths only")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--without", default="", help="peers to leave out, e.g. jax,autograd")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections: {', '.join(sorted(unknown))}")
    mode = "quick" if args.quick else "smoke" if args.smoke else "full"
    without = [s.strip() for s in args.without.split(",") if s.strip()]
    rep = run(mode, sys.stdout, sections, without, args.seed)
    return 0 if all(a[3] for a in rep.agreement) else 1


if __name__ == "__main__":
    sys.exit(main())
