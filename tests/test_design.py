"""The engine's design rules, checked: every op complete, no module-level mutable state, thread safety."""

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import threading
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType

import pytest
import sympy as sp

import derive
from derive import derive as run
from derive.ops import OPS
from derive.ops.base import PIECES, Gap
from derive.ops.functions import FUNCTIONS


def test_every_op_defines_every_piece_or_says_why_not() -> None:
    missing = [f"{name}.{piece}" for name, op in OPS.items() for piece in PIECES if getattr(op, piece) is None]
    assert missing == []
    for name, op in OPS.items():
        for piece in PIECES:
            value = getattr(op, piece)
            assert callable(value) or (isinstance(value, Gap) and len(value.reason) > 10), f"{name}.{piece}"
        if not isinstance(op.vjp, Gap) or not isinstance(op.jac, Gap):
            assert op.identity, f"{name} has rules but no identity"


def test_every_function_has_code_and_notation_for_its_value() -> None:
    for name, f in FUNCTIONS.items():
        assert f.numpy and f.numpy[0], name
        assert f.latex and f.text, name


def test_a_missing_piece_is_one_clear_error_not_a_key_error() -> None:
    d = run("sum(conv2d(X, K) * G)", "K", {"X": (4, 4), "K": (2, 2), "G": (3, 3)})
    with pytest.raises(derive.DeriveError, match="no SymPy matrix expression for 'conv2d_kernel_grad'"):
        d.matrix  # noqa: B018


def _modules() -> list:
    out = [derive]
    for info in pkgutil.walk_packages(derive.__path__, "derive."):
        if info.name.endswith("__main__"):
            continue
        out.append(importlib.import_module(info.name))
    return out


IMMUTABLE = (str, int, float, complex, bool, bytes, tuple, frozenset, type(None), MappingProxyType, range)


def test_no_module_level_mutable_state() -> None:
    # module globals are constants: numbers, strings, tuples, frozensets, read-only mappings,
    # functions, classes, modules, and the one ContextVar that carries the parser's unifier
    found = []
    for mod in _modules():
        for name, value in vars(mod).items():
            if name.startswith("__") or inspect.ismodule(value) or inspect.isclass(value) or callable(value):
                continue
            if type(value).__name__ in ("ContextVar", "_Feature", "Pattern", "PosixPath", "Logger"):
                continue  # a context variable (per thread), `from __future__`, patterns, paths, loggers
            if dataclasses.is_dataclass(value) and value.__dataclass_params__.frozen:
                continue
            if not isinstance(value, IMMUTABLE):
                found.append(f"{mod.__name__}.{name}: {type(value).__name__}")
        ours = [v for v in vars(mod).values() if inspect.isclass(v) and v.__module__ == mod.__name__]
        for cls in [c for c in ours if not issubclass(c, sp.Basic)]:  # SymPy's classes keep their own tables
            for name, value in vars(cls).items():
                if not name.startswith("_") and isinstance(value, list | dict | set):
                    found.append(f"{mod.__name__}.{cls.__name__}.{name}: {type(value).__name__}")
    assert found == []


def test_no_module_assigns_globals() -> None:
    offenders = []
    for mod in _modules():
        tree = ast.parse(inspect.getsource(mod))
        for n in ast.walk(tree):
            if isinstance(n, ast.Global):
                offenders.append(f"{mod.__name__}: {type(n).__name__} {n.names}")
    assert offenders == []


CASES = [
    ("norm(A @ x - b)**2", "x"),
    ("sigmoid(W @ x + b)", "W"),
    ("-(y @ log(softmax(W @ x)))", "W"),
    ("log(det(X))", "X"),
    ("inv(X)", "X"),
    ("sum(maxpool(relu(X), 2) * G)", "X"),
    ("sum(relu(W @ x))", "W"),
    ("trace(A @ inv(X) @ B)", "X"),
    ("(A @ x - b) / norm(A @ x - b)", "x"),
    ("logsumexp(x)", ("x", "x")),
    ("mean((X @ w - y)**2)", "w"),
    ("-sum(Y * log(softmax(X @ W, axis=1)))", "W"),
]


def _summary(expr, wrt):
    shapes = {"X": (4, 4), "G": (2, 2)} if "maxpool" in expr else None
    d = run(expr, wrt, shapes)
    return (d.text, d.proof.status, d.proof.shapes, d.numpy_source("f"), round(d.numeric.error, 6))


def test_derivations_in_threads_match_sequential_ones() -> None:
    sequential = [_summary(e, w) for e, w in CASES]
    barrier = threading.Barrier(4)

    def job(i: int):
        if i < 4:
            barrier.wait()  # start four at once
        return _summary(*CASES[i])

    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(job, range(len(CASES))))
    assert threaded == sequential
