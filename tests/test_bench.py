"""The benchmark's code paths at tiny sizes: its tables print, every variant agrees with careful numpy, and the
careful references agree with central differences of the loss they differentiate.

No timing is asserted: the smoke run is held to a CPU-time budget only. jax and autograd are optional.
"""

import gc
import importlib.util
import io
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # bench/ is not part of the installed package

from bench import profile, targets  # noqa: E402
from bench import run as bench_run  # noqa: E402
from bench.variants import AUTOGRAD, CAREFUL, DERIVE, JAX, NAIVE, ONE, numpy_ops  # noqa: E402
from bench.workloads import WORKLOADS, Workload  # noqa: E402

SMOKE_CPU_SECONDS = 120  # the whole smoke run, all threads: about 15 s here


@pytest.fixture(scope="module")
def smoke() -> tuple[bench_run.Run, str, float]:
    out = io.StringIO()
    # The objects this process holds already (SymPy's, jax's, earlier tests') are frozen out of the collector's
    # way: the gc.collect() before each peak-memory reading then scans what the run makes, not the whole heap.
    gc.freeze()
    try:
        t0 = time.process_time()
        r = bench_run.run("smoke", out=out)
        return r, out.getvalue(), time.process_time() - t0
    finally:
        gc.unfreeze()


def test_smoke_run_prints_its_tables_within_its_cpu_budget(smoke) -> None:
    r, text, cpu = smoke
    assert text == r.markdown + "\n"
    for heading in ("### Machine", "### Targets", "### derive against careful numpy", "### Derivation cost",
                    "### The physical limit", "| fact | value |", "BLAS (threadpoolctl)"):  # fmt: skip
        assert heading in text
    assert "**Targets:" in text and " pass**" in text
    for w in WORKLOADS:
        assert f"| {w.title} | {w.smoke.label} |" in text  # a summary row
        assert f"### {w.title}: `{w.expr}`" in text  # its detail table
    assert cpu < SMOKE_CPU_SECONDS


def test_every_variant_of_every_workload_agrees_with_careful_numpy(smoke) -> None:
    r, _, _ = smoke
    assert [res.workload.key for res in r.results] == [w.key for w in WORKLOADS]
    assert not r.disagreements
    for res in r.results:
        checked = set(res.case.agrees)
        assert {f"{DERIVE}, {ONE}", f"{CAREFUL}, {ONE}"} <= checked or importlib.util.find_spec("threadpoolctl") is None
        if res.workload.naive is not None:
            assert any(k.startswith(NAIVE) for k in checked)
        for peer, name in (("jax", JAX), ("autograd", AUTOGRAD)):
            assert (importlib.util.find_spec(peer) is None) != any(k.startswith(name) for k in checked)


def test_every_target_is_reported(smoke) -> None:
    r, text, _ = smoke
    small = sum(w.smoke.small for w in WORKLOADS)
    # per workload and size: careful numpy and peak memory, jax.jit for the issue's table (not MLP, softmax
    # cross-entropy, log det, the ‖Ax − b‖² Hessian, the σ Jacobian); and the per-call overhead at small n
    table = sum(res.workload.key in targets.JAX_TARGET for res in r.results)
    assert 0 < table < len(r.results)
    assert len(targets.issue_15(r.results)) == 2 * len(r.results) + table + small
    # the cost of deriving: each article expression, each once-slow and each declared-size derivation, the
    # 64×64 proof and its growth (identities: full and quick runs only)
    cost = [t for t in r.targets if t.text.startswith(("`derive()` of the article", "once slow", "declared sizes"))]
    assert len(cost) == 3 + 8 + 5
    assert any(t.text.startswith("‖Ax − b‖² proven at 64×64") for t in r.targets)
    assert all(t.verdict in ("PASS", "MISS", "not measured") for t in r.targets)
    assert text.count("** — ") == len(r.targets)


def test_missing_peers_are_skipped_with_a_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jax", None)  # as if not installed: import raises ImportError
    monkeypatch.setitem(sys.modules, "autograd", None)
    out = io.StringIO()
    r = bench_run.run("smoke", out=out, sections=["lsq-grad"])
    text = out.getvalue()
    assert "jax is not importable" in text and "autograd is not importable" in text
    assert "`jax.jit`" not in text
    assert not r.disagreements


def _numeric_derivative(f, args: list[np.ndarray], i: int, h: float = 1e-6) -> np.ndarray:
    """Central differences of f by args[i], entry by entry: shape f's value + args[i]'s."""
    x = args[i]
    cols = []
    for k in range(x.size):
        e = np.zeros(x.size)
        e[k] = h
        up = [*args[:i], x + e.reshape(x.shape), *args[i + 1 :]]
        down = [*args[:i], x - e.reshape(x.shape), *args[i + 1 :]]
        cols.append((np.asarray(f(*up)) - np.asarray(f(*down))) / (2 * h))
    d = np.stack(cols, axis=-1)
    return d.reshape(np.shape(f(*args)) + x.shape)


def _first_derivative(w: Workload):
    """The careful gradient this workload's Hessian differentiates, or the loss itself."""
    if w.kind != "hess":
        return lambda *a: w.loss(numpy_ops(), *a)
    return next(v.careful for v in WORKLOADS if v.expr == w.expr and v.wrt == w.wrt[0])


@pytest.mark.parametrize("w", WORKLOADS, ids=lambda w: w.key)
def test_careful_reference_matches_central_differences(w: Workload) -> None:
    # the careful numpy against an independent computation: central differences of the loss written in numpy
    # (for a Hessian: of the careful gradient, itself checked here)
    a = w.inputs(w.smoke.dims, np.random.default_rng(3))
    args = [a[n] for n in w.args]
    want = _numeric_derivative(_first_derivative(w), args, w.argnum)
    assert np.allclose(w.careful(*args), want, rtol=1e-5, atol=1e-6)
    if w.naive is not None:
        assert np.allclose(w.naive(*args), want, rtol=1e-5, atol=1e-6)


def test_profile_times_each_operation_of_a_function_alone() -> None:
    src = 'def g(A, x):\n    """doc"""\n    t1 = A @ x\n    return 2 * (A.T @ np.tanh(t1))\n'
    A, x = np.ones((3, 3)), np.ones(3)
    steps = profile.profile(src, "g", {"np": np}, {"A": A, "x": x})
    assert [s.text for s in steps] == ["A @ x", "np.tanh(t1)", "A.T @ np.tanh(…)", "2 * …"]
    assert all(s.seconds > 0 for s in steps)
    assert "`A @ x`" in profile.summary(steps, share=0.0)
    src = "def h(X):\n    return np.linalg.inv(X).T, np.tanh(X)[:, 0]\n"
    texts = [s.text for s in profile.profile(src, "h", {"np": np}, {"X": np.eye(2)})]
    assert texts == ["np.linalg.inv(X)", "np.tanh(X)"]
