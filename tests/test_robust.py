"""Hostile conditions: extreme values, zero norms, interrupts, slow proofs on a terminal."""

import os
import pty
import re
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import mpmath as mp
import numpy as np
import pytest

from derive import derive
from derive.core import load

mp.mp.dps = 50
Z = np.array([-1000.0, -30.0, -1.0, 0.0, 1.0, 30.0, 1000.0])


def generated(expr: str, wrt: str = "z"):
    d = derive(expr, wrt, shapes={"z": (len(Z),)} if "z" in expr else None)
    assert d.proof.status == "proven"
    mod = load(d.numpy_source("f"))
    return mod.f, getattr(mod, f"{ {'gradient': 'grad', 'jacobian': 'jac', 'hessian': 'hess'}[d.kind] }_f".strip())


def close(got: float, want: mp.mpf) -> bool:
    """Relative agreement to 1e-12 where the true value is a normal double; else ~0."""
    if abs(want) < mp.mpf("1e-300"):
        return abs(got) < 1e-300
    return abs(mp.mpf(got) - want) <= mp.mpf("1e-12") * abs(want)


def sigmoid(z: mp.mpf) -> mp.mpf:
    return 1 / (1 + mp.exp(-z))


CASES = [
    # expression, true value, true derivative (per entry)
    ("sum(sigmoid(z))", lambda z: sum(sigmoid(v) for v in z), lambda z: [sigmoid(v) * (1 - sigmoid(v)) for v in z]),
    ("sum(softplus(z))", lambda z: sum(mp.log(1 + mp.exp(v)) for v in z), lambda z: [sigmoid(v) for v in z]),
    ("sum(log(sigmoid(z)))", lambda z: sum(mp.log(sigmoid(v)) for v in z), lambda z: [sigmoid(-v) for v in z]),
    ("sum(tanh(z))", lambda z: sum(mp.tanh(v) for v in z), lambda z: [1 / mp.cosh(v) ** 2 for v in z]),
    ("logsumexp(z)", lambda z: mp.log(sum(mp.exp(v) for v in z)),
     lambda z: [mp.exp(v) / sum(mp.exp(u) for u in z) for v in z]),
]  # fmt: skip


@pytest.mark.parametrize(("expr", "value", "derivative"), CASES, ids=[c[0] for c in CASES])
def test_stable_at_extreme_values(expr: str, value, derivative) -> None:
    f, df = generated(expr)
    zs = [mp.mpf(v) for v in Z]
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        got_value, got_grad = f(Z.copy()), df(Z.copy())
    assert close(float(got_value), value(zs))
    for g, w in zip(got_grad, derivative(zs), strict=True):
        assert close(float(g), w), (g, w)


def test_softmax_jacobian_is_stable() -> None:
    _, jac = generated("softmax(z)")
    z = np.array([1000.0, 0.0, -1000.0, 999.0, 1.0, -1.0, 0.5])
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        J = jac(z)
    zs = [mp.mpf(v) for v in z]
    total = sum(mp.exp(v) for v in zs)
    p = [mp.exp(v) / total for v in zs]
    for i in range(len(z)):
        for j in range(len(z)):
            want = p[i] * ((1 if i == j else 0) - p[j])
            assert close(float(J[i, j]), want) or abs(float(J[i, j]) - float(want)) < 1e-300


def test_norm_at_zero_is_nan_with_a_warning() -> None:
    # d||r||/dr = r / ||r|| is undefined at r = 0: the documented policy is nan and numpy's warning.
    _, grad = generated("norm(x)", "x")
    with pytest.warns(RuntimeWarning):
        g = grad(np.zeros(3))
    assert np.isnan(g).all()


def read_until(fd: int, pattern: bytes, seen: bytes = b"") -> bytes:
    """``seen`` and what the child writes to ``fd`` until the whole text matches ``pattern`` (or the output ends)."""
    while not re.search(pattern, seen):
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # the child closed its end: a pty reports EIO
            break
        if not chunk:
            break
        seen += chunk
    return seen


def ctrl_c_default() -> None:
    """In the child: Ctrl-C does what it does at a terminal, even if this run inherited it ignored (cmd &)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupt_exits_130_without_traceback_or_files(tmp_path: Path) -> None:
    # The ready signal: with stderr on a terminal and no delay, each stage announces itself as it starts;
    # the interrupt is sent once the child says it is proving the matrix form (seconds of work at 80x80).
    out = tmp_path / "out"
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "derive", "norm(A @ x - b)**2", "--wrt", "x", "--prove-at", "m=80", "--prove-at", "n=80",
         "--max-entries", "7000", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=follower, env=os.environ | {"DERIVE_PROGRESS_DELAY": "0"},
        preexec_fn=ctrl_c_default,
    )  # fmt: skip
    os.close(follower)
    text = read_until(leader, rb"proving the matrix form[^\n]*\n")  # the whole line
    assert b"proving the matrix form" in text, text
    proc.send_signal(signal.SIGINT)
    text = read_until(leader, rb"\0", text)  # the rest, to the end
    proc.wait()
    os.close(leader)
    lines = text.decode().replace("\r", "").splitlines()
    assert proc.returncode == 130, lines
    assert "Traceback" not in text.decode()
    assert lines[-1] == "derive: interrupted"
    assert all(ln.startswith("derive: ") and ln.endswith("...") for ln in lines[:-1]), lines  # progress only
    assert not out.exists() or not any(out.iterdir())


def test_slow_work_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "derive", "norm(A @ x - b)**2", "--wrt", "x", "--prove-at", "m=40", "--prove-at", "n=40",
         "--format", "py", "-o", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=follower, env=os.environ | {"DERIVE_PROGRESS_DELAY": "0.05"},
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 1024)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=120)
    os.close(leader)
    text = b"".join(chunks).decode()
    assert proc.returncode == 0
    assert "derive: " in text and "..." in text


def test_gradient_checker_catches_a_wrong_gradient() -> None:
    from derive import check_grad

    x = np.array([1.0, -2.0, 3.0])
    assert check_grad(lambda v: v @ v, lambda v: 2 * v, [x]) < 1e-8
    assert check_grad(lambda v: v @ v, lambda v: v, [x]) > 0.1  # the factor 2 is missing


@pytest.mark.parametrize("in_place", [False, True], ids=["new array", "in place"])
def test_sigmoid_helper_is_accurate_everywhere_and_in_place(in_place: bool) -> None:
    from derive.numpy_helpers import _sigmoid

    # both tails, the overflow edge of exp(-z) near -709.78, subnormal results, and infinities
    z = np.array([-np.inf, -1000.0, -745.0, -730.0, -709.9, -708.5, -708.0, -707.9, -300.0, -37.0, -30.0,
                  -1e-300, 0.0, 1e-300, 0.5, 20.0, 37.0, 709.9, 1000.0, np.inf])  # fmt: skip
    given = z.copy()
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        got = _sigmoid(given, out=given) if in_place else _sigmoid(given)
    assert (got is given) == in_place and (in_place or np.array_equal(given, z))  # z untouched unless out=z
    for g, v in zip(got, z, strict=True):
        want = sigmoid(mp.mpf(v)) if np.isfinite(v) else mp.mpf(int(v > 0))
        if want < mp.mpf(np.finfo(float).tiny):  # a subnormal result: within one subnormal step of the truth
            assert abs(mp.mpf(g) - want) <= mp.mpf(2.0**-1074), (v, g)
        else:
            assert close(float(g), want), (v, g, want)
