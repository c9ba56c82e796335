"""The benchmark's code paths at tiny sizes: it prints its tables and every variant agrees with careful numpy.

No timing is asserted. jax and autograd are optional: without them their rows are skipped.
"""

import importlib.util
import io
import sys
from pathlib import Path

import numpy as np
import pytest

RUN = Path(__file__).resolve().parent.parent / "bench" / "run.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("derive_bench_run", RUN)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


def test_smoke_run_prints_tables_and_every_variant_agrees(bench) -> None:
    out = io.StringIO()
    rep = bench.run("smoke", out=out)
    text = out.getvalue()
    assert text == rep.markdown + "\n"
    for heading in ("## 1a.", "## 1b.", "## 2a.", "## 2b.", "## 3.", "## 4.", "## 5. Targets"):
        assert heading in text
    assert "| variant | n=8 |" in text
    assert "| fact | value |" in text
    # every variant of every case was checked against careful numpy, and agrees
    assert rep.agreement
    assert all(ok for *_, ok, _ in rep.agreement), [a for a in rep.agreement if not a[3]]
    checked = {(case, variant) for case, _, variant, _, _ in rep.agreement}
    for case, variant in [
        ("grad", bench.DERIVE_GRAD),
        ("grad", bench.NAIVE_GRAD),
        ("grad", bench.LAMBDIFY),
        ("hess", bench.DERIVE_HESS),
        ("jac", bench.DERIVE_JAC),
        ("jac", bench.NAIVE_JAC),
        ("mlp", bench.DERIVE_MLP),
    ]:
        assert (case, variant) in checked
    for peer, row in (
        ("jax", bench.JAX_GRAD),
        ("autograd", bench.AUTOGRAD_GRAD),
        ("threadpoolctl", bench.DERIVE_GRAD_1),
    ):
        if importlib.util.find_spec(peer) is None:
            assert f"{peer} is not" in text
        else:
            assert ("grad", row) in checked


def test_missing_peers_are_skipped_with_a_line(bench, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jax", None)  # as if not installed: import raises ImportError
    monkeypatch.setitem(sys.modules, "autograd", None)
    out = io.StringIO()
    rep = bench.run("smoke", out=out, sections=["grad"])
    text = out.getvalue()
    assert "jax is not importable" in text
    assert "autograd is not importable" in text
    assert "jax.jit" not in text.split("## 1a.")[1].split("## 5.")[0]
    assert all(ok for *_, ok, _ in rep.agreement)


def test_hand_written_references_match_their_definitions(bench) -> None:
    rng = np.random.default_rng(1)
    W, x, b = rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal(3)
    s = 1 / (1 + np.exp(-(W @ x + b)))
    want = np.zeros((3, 3, 4))  # d sigma_i / d W_jk = [i == j] sigma'_i x_k
    for i in range(3):
        want[i, i, :] = s[i] * (1 - s[i]) * x
    assert np.allclose(bench.careful_sigmoid_jac(W, x, b), want)
    assert np.allclose(bench.naive_sigmoid_jac(W, x, b), want)
    assert bench.growth({8: 1.0, 16: 4.0, 32: 16.0}) == pytest.approx(2.0)
