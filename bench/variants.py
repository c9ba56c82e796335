"""The competitors of one workload at one size: derive's generated function, careful and naive numpy, jax and
autograd, each as a zero-argument call, in the BLAS thread settings it is timed in.

derive's code: each workload is derived (and proven, at small sizes derive chooses) once; its generated module
reads every size from its arguments, so the same module runs at every size timed.
"""

from __future__ import annotations

import ast
import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from bench.workloads import Arrays, Ops, Workload
from derive import derive
from derive.numeric import load
from derive.prove import shapes_text

DERIVE = "derive"
CAREFUL = "careful numpy"
NAIVE = "naive numpy"
JAX = "jax.jit"
AUTOGRAD = "autograd"
ONE, DEFAULT = "1 thread", "default threads"


def label(name: str, threads: str) -> str:
    """A variant's key in a case: its name and BLAS threads."""
    return f"{name}, {threads}"


# ----- derive's generated code -----


@dataclass(frozen=True)
class Generated:
    """derive's module for one workload at one size, and how it was obtained."""

    module: Any
    source: str
    body: str  # the derivative function's body as one line: the code measured
    proof: str  # the proof's status and sizes


def function_bodies(src: str) -> dict[str, str]:
    """Each function of a generated module: its body without the docstring, as one line of source."""
    bodies = {}
    for fn in ast.parse(src).body:
        if isinstance(fn, ast.FunctionDef):
            stmts = fn.body[1:] if ast.get_docstring(fn) else fn.body
            bodies[fn.name] = "; ".join(ast.unparse(st) for st in stmts)
    return bodies


def _derivative_body(src: str, kind: str) -> str:
    return function_bodies(src)[f"{kind}_f"]


class Deriver:
    """Derives each workload once; its module holds no sizes, so it runs at every size timed.

    The proof runs at small sizes derive chooses; with ``prove`` False (the smoke run) it is not reported. The
    derivations are the run's, not timed.
    """

    def __init__(self, prove: bool = True) -> None:
        self.prove = prove
        self._derived: dict[str, tuple[str, str]] = {}

    def proven(self, w: Workload) -> tuple[str, str]:
        """(source, proof) of ``w``: derived with its shapes at its proof dimensions (or symbolic shapes)."""
        if w.key not in self._derived:
            shapes = w.shapes(w.proof) if w.shapes and w.proof else None
            d = derive(w.expr, w.wrt, shapes=shapes, numeric=False)
            p = d.proof
            proof = f"{p.status} at {shapes_text(p.shapes)} ({p.seconds:.2f} s)" if self.prove else "not run"
            self._derived[w.key] = (d.numpy_source("f"), proof)
        return self._derived[w.key]

    def at(self, w: Workload, dims: Mapping[str, int]) -> Generated:
        src, proof = self.proven(w)
        return Generated(load(src), src, _derivative_body(src, w.kind), proof)


# ----- the peers -----


@dataclass
class Peers:
    """jax and autograd when importable (else None), and a line for each one left out."""

    jax: Any = None
    autograd: Any = None
    notes: list[str] = field(default_factory=list)


def load_peers(disable: Iterable[str] = ()) -> Peers:
    """Import the optional peers; jax on the CPU in float64."""
    p, disable = Peers(), set(disable)
    hint = "its rows are skipped (pip install -e '.[bench]')"
    if "jax" in disable:
        p.notes.append("jax: disabled for this run; its rows are skipped.")
    else:
        try:
            os.environ.setdefault("JAX_PLATFORMS", "cpu")
            import jax

            jax.config.update("jax_enable_x64", True)
            p.jax = jax
        except ImportError as e:
            p.notes.append(f"jax is not importable ({e}); {hint}.")
    if "autograd" in disable:
        p.notes.append("autograd: disabled for this run; its rows are skipped.")
    else:
        try:
            import autograd

            p.autograd = autograd
        except ImportError as e:
            p.notes.append(f"autograd is not importable ({e}); {hint}.")
    return p


def numpy_ops() -> Ops:
    """The losses in plain numpy (for checking the careful references, not timed)."""

    def conv2d(X: np.ndarray, K: np.ndarray) -> np.ndarray:
        return np.einsum("chwij,fcij->fhw", sliding_window_view(X, K.shape[2:], axis=(1, 2)), K)

    return Ops(np, conv2d)


def jax_ops(jax: Any) -> Ops:
    def conv2d(X: Any, K: Any) -> Any:
        dims = ("NCHW", "OIHW", "NCHW")
        return jax.lax.conv_general_dilated(X[None], K, (1, 1), "VALID", dimension_numbers=dims)[0]

    return Ops(jax.numpy, conv2d)


def autograd_ops(autograd: Any) -> Ops:
    import autograd.numpy as anp
    from autograd.scipy.signal import convolve

    def conv2d(X: Any, K: Any) -> Any:  # convolve flips its kernel: flip K back for conv2d's cross-correlation
        return convolve(X, K[:, :, ::-1, ::-1], axes=([1, 2], [2, 3]), dot_axes=([0], [1]), mode="valid")

    return Ops(anp, conv2d)


def _transform(lib: Any, kind: str) -> Callable[..., Any]:
    return {"grad": lib.grad, "hess": lib.hessian, "jac": lib.jacobian}[kind]


# ----- the variants -----


def one_blas_thread() -> Callable[[], AbstractContextManager] | None:
    """A context running numpy's BLAS on one thread (threadpoolctl), or None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return lambda: threadpool_limits(1, user_api="blas")


@dataclass
class Variant:
    """One way of computing the result: ``fn()`` makes one call and returns the (ready) result."""

    name: str  # DERIVE, CAREFUL, NAIVE, JAX or AUTOGRAD
    threads: str  # ONE or DEFAULT
    fn: Callable[[], Any]
    context: Callable[[], AbstractContextManager] = nullcontext
    memory: bool = False  # its peak memory is measured (tracemalloc sees numpy, not XLA)

    @property
    def label(self) -> str:
        return label(self.name, self.threads)


def variants(w: Workload, a: Arrays, gen: Generated, peers: Peers, skip: Iterable[str] = ()) -> list[Variant]:
    """derive, careful and naive numpy with BLAS on one thread and with default threads; jax and autograd with
    their default threads (threadpoolctl does not reach XLA's thread pool); none of those named in ``skip``."""
    args = tuple(a[n] for n in w.args)
    fn = getattr(gen.module, f"{w.kind}_f")
    dargs = tuple(a[n] for n in inspect.signature(fn).parameters)  # positional, as careful numpy is called
    numpy_side = [(DERIVE, lambda: fn(*dargs)), (CAREFUL, lambda: w.careful(*args))]
    if w.naive is not None:
        numpy_side.append((NAIVE, lambda: w.naive(*args)))
    one = one_blas_thread()
    out = [Variant(name, DEFAULT, f, memory=True) for name, f in numpy_side]
    if one is not None:
        out += [Variant(name, ONE, f, one) for name, f in numpy_side]
    if peers.jax is not None and JAX not in skip:
        jax, jops = peers.jax, jax_ops(peers.jax)
        jf = jax.jit(_transform(jax, w.kind)(lambda *xs: w.loss(jops, *xs), argnums=w.argnum))
        ja = tuple(jax.device_put(x) for x in args)
        out.append(Variant(JAX, DEFAULT, lambda: jf(*ja).block_until_ready()))
    if peers.autograd is not None and AUTOGRAD not in skip:
        aops = autograd_ops(peers.autograd)
        af = _transform(peers.autograd, w.kind)(lambda *xs: w.loss(aops, *xs), w.argnum)
        out.append(Variant(AUTOGRAD, DEFAULT, lambda: af(*args)))
    return out
