"""Hostile and extreme input, run in child processes under CPU-time and memory limits.

    python -m tests.fuzz_hostile --n 20000 --cli 2000          # the full run (README: hostile input)
    python -m tests.fuzz_hostile --cases                       # issue 18's inputs, one by one
    python -m tests.fuzz_hostile --n 300 --cli 20 --seed 7     # a quick look

Every input goes through :func:`derive.derive` (in a pool of forked workers) or
through ``python -m derive`` (a fresh process each), with the time budget
``--budget`` (CPU seconds, ``Limits.seconds``) and, around it, a hard CPU-time
limit (``RLIMIT_CPU``, ``--kill-after`` times the budget plus the start-up) and
an address-space limit (``RLIMIT_AS``, ``--memory`` GB). Each outcome is one of:

* ``ok``: a Derivation (its proof never refuted, its numeric check never failed),
  or the command's exit 0 (or 1 for a failing ``--check`` claim);
* ``refused``: one :class:`DeriveError` line, or exit 2 with one line on stderr;
* ``escape``: any other exception, a traceback, a message of more than one line,
  another exit status, or a file written by a refused command;
* ``unbounded``: killed by the CPU-time limit, or out of memory;
* ``wrong``: a refuted proof or a failed numeric check (never expected);
* ``late``: ended, but used more CPU than the budget plus ``GRACE``.

The inputs are drawn from a seeded generator: valid expressions over every
op with random shapes, axis keywords and broadcasting; deep nesting; huge
exponents and literals; big declared sizes and proof sizes; long sums and
chains; odd names (underscores, digits, non-ASCII, LaTeX commands, long
names); and hostile or mangled text. The same seed gives the same inputs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GRACE = 5.0  # CPU seconds past the budget before an ended run counts as late
OUTCOMES = ("ok", "refused", "escape", "unbounded", "wrong", "late")


@dataclass(frozen=True)
class Case:
    """One input: an expression and its options, for ``derive()`` and for the command line."""

    expr: str
    wrt: str | tuple[str, ...]
    shapes: dict[str, tuple[int | str, ...]] | None = None
    proof_sizes: dict[str, int] | None = None
    limits: dict[str, float] = field(default_factory=dict)  # length, depth, entries
    numeric: bool = True
    writeup: bool = False  # also render the write-up and the code (the derive() side)
    tag: str = ""

    def argv(self) -> list[str]:
        """The same request as ``derive`` command-line arguments (after the expression)."""
        out = [a for w in ((self.wrt,) if isinstance(self.wrt, str) else self.wrt) for a in ("--wrt", w)]
        for n, s in (self.shapes or {}).items():
            out += ["--shape", f"{n}={','.join(map(str, s))}"]
        for k, v in (self.proof_sizes or {}).items():
            out += ["--prove-at", f"{k}={v}"]
        for k, v in self.limits.items():
            out += [f"--max-{k}", str(int(v))]
        return out


@dataclass
class Result:
    outcome: str
    detail: str = ""
    cpu: float = 0.0
    case: Case | None = None


# ----- running derive() in forked workers -----


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _vm_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def run_derive(case: Case, budget: float) -> Result:
    """One call of derive() in this process; the outcome, never an exception."""
    from derive import Derivation, DeriveError, derive
    from derive.context import Limits

    start = _cpu()
    try:
        limits = Limits(seconds=budget, **{k: int(v) for k, v in case.limits.items()})
        d = derive(case.expr, case.wrt, case.shapes, proof_sizes=case.proof_sizes, numeric=case.numeric,
                   limits=limits)  # fmt: skip
        assert isinstance(d, Derivation)
        detail = d.proof.status
        if d.proof.status == "refuted" or (d.numeric is not None and d.numeric.failed):
            return Result("wrong", f"{d.proof}; numeric {d.numeric}", _cpu() - start)
        if case.writeup and d.form is not None:
            from derive.context import Budget
            from derive.writeup import documents

            # the command gives its write-up what is left of the one budget; so does this
            files = documents(d, "f", sizes=None, budget=Budget(max(budget - (_cpu() - start), 0.1)))
            detail += f"; wrote {sum(map(len, files.values()))} characters"
        outcome = "ok"
    except DeriveError as e:
        text = str(e)
        outcome, detail = ("refused", text) if text and "\n" not in text and "\r" not in text else ("escape", text)
        if "\n" in text:
            detail = "a message of more than one line: " + text[:200]
    except MemoryError:
        outcome, detail = "unbounded", "MemoryError"
    except BaseException as e:  # everything else is what this fuzzer looks for
        tb = traceback.extract_tb(e.__traceback__)
        where = f"{tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else "?"
        outcome, detail = "escape", f"{type(e).__name__} at {where}: {str(e)[:160]}"
    cpu = _cpu() - start
    if outcome in ("ok", "refused") and cpu > budget + GRACE:
        outcome, detail = "late", f"{cpu:.1f} s CPU with a {budget:g} s budget; {detail}"
    return Result(outcome, detail, cpu)


def _worker(conn: Connection, budget: float, kill: float, memory: int) -> None:
    """Serve cases from ``conn`` until None; each under a fresh CPU-time limit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit = _vm_bytes() + memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    while True:
        case = conn.recv()
        if case is None:
            return
        resource.setrlimit(resource.RLIMIT_CPU, (int(_cpu() + kill) + 1, hard))
        result = run_derive(case, budget)
        conn.send((result.outcome, result.detail, result.cpu))


class Pool:
    """Forked workers (derive already imported), one case at a time each; a killed worker is replaced."""

    def __init__(self, workers: int, budget: float, kill: float, memory: int) -> None:
        import derive  # noqa: F401 - imported once, before forking

        self.args = (budget, kill, memory)
        self.ctx = mp.get_context("fork")
        self.slots: list[tuple[Any, Connection] | None] = [None] * workers

    def _spawn(self) -> tuple[Any, Connection]:
        parent, child = self.ctx.Pipe()
        p = self.ctx.Process(target=_worker, args=(child, *self.args), daemon=True)
        p.start()
        child.close()
        return p, parent

    def run(self, cases: Iterable[Case]) -> Iterator[Result]:
        todo = iter(cases)
        busy: dict[int, tuple[Case, float]] = {}
        for i in range(len(self.slots)):
            self.slots[i] = self._spawn()
        try:
            while True:
                for i, slot in enumerate(self.slots):
                    if i not in busy:
                        case = next(todo, None)
                        if case is None:
                            continue
                        slot[1].send(case)
                        busy[i] = (case, time.monotonic())
                if not busy:
                    return
                conns = {self.slots[i][1]: i for i in busy}
                sentinels = {self.slots[i][0].sentinel: i for i in busy}
                for ready in wait(list(conns) + list(sentinels)):
                    i = conns.get(ready, sentinels.get(ready))
                    if i not in busy:
                        continue
                    case, _ = busy.pop(i)
                    proc, conn = self.slots[i]
                    try:
                        outcome, detail, cpu = conn.recv()
                        yield Result(outcome, detail, cpu, case)
                        continue
                    except (EOFError, OSError):
                        pass
                    proc.join()
                    code = proc.exitcode
                    why = {-signal.SIGXCPU: "killed by the CPU-time limit", -signal.SIGKILL: "killed (memory?)"}
                    yield Result("unbounded", why.get(code, f"worker died with exit code {code}"), 0.0, case)
                    self.slots[i] = self._spawn()
        finally:
            for slot in self.slots:
                if slot is not None:
                    proc, conn = slot
                    with contextlib.suppress(OSError):
                        conn.send(None)
                    proc.join(timeout=5)
                    if proc.is_alive():
                        proc.kill()


# ----- running the command -----


def run_cli(case: Case, budget: float, kill: float, memory: int, tmp: Path) -> Result:
    """``python -m derive`` on the case in a fresh process; checks exit status, stderr and files."""
    out = Path(tempfile.mkdtemp(dir=tmp))
    argv = [sys.executable, "-m", "derive", "-o", str(out / "files"), "--max-seconds", str(budget), *case.argv(),
            "--", case.expr]  # fmt: skip
    argv = [a.split("\0", 1)[0] for a in argv]  # an argument is a C string: the command gets the text before a NUL
    cpu_limit = int(kill + 10)  # start-up (imports) included

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_limit, cpu_limit + 5))
        resource.setrlimit(resource.RLIMIT_AS, (memory + 2**30, memory + 2**30))

    env = os.environ | {"PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    with open(out / "stdout", "wb") as so, open(out / "stderr", "wb") as se:
        p = subprocess.Popen(argv, stdout=so, stderr=se, stdin=subprocess.DEVNULL, cwd=out, env=env,
                             preexec_fn=limit)  # fmt: skip
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    err = (out / "stderr").read_text(errors="replace")
    written = sorted(os.listdir(out / "files")) if (out / "files").exists() else []
    code = p.returncode
    shutil.rmtree(out, ignore_errors=True)
    lines = err.splitlines()
    if code < 0:
        what = "the CPU-time limit" if code == -signal.SIGXCPU else f"signal {-code}"
        return Result("unbounded", f"killed by {what}", cpu, case)
    if "Traceback" in err or "MemoryError" in err:
        return Result("escape", f"exit {code}: {err.strip().splitlines()[-1][:200]}", cpu, case)
    if code == 2:
        if len(lines) != 1 or not lines[0].startswith("derive: error:"):
            return Result("escape", f"exit 2 with stderr {err[:200]!r}", cpu, case)
        if written:
            return Result("escape", f"exit 2 but wrote {written}", cpu, case)
        outcome, detail = "refused", lines[0]
    elif code == 1:
        if written:
            return Result("escape", f"exit 1 but wrote {written}", cpu, case)
        outcome, detail = ("wrong", err.strip()[:200]) if "failed its own check" in err else ("ok", "exit 1")
    elif code == 0:
        outcome, detail = "ok", f"wrote {len(written)} files"
    else:
        return Result("escape", f"exit status {code}: {err[:200]!r}", cpu, case)
    if cpu > budget + GRACE + 3:  # the command's start-up is not in the budget
        outcome, detail = "late", f"{cpu:.1f} s CPU with a {budget:g} s budget; {detail}"
    return Result(outcome, detail, cpu, case)


def run_cli_all(cases: list[Case], workers: int, budget: float, kill: float, memory: int) -> Iterator[Result]:
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(workers) as ex:
        yield from ex.map(lambda c: run_cli(c, budget, kill, memory, Path(tmp)), cases)


# ----- issue 18's inputs -----


def _balanced(rng: random.Random, size: int) -> str:
    """A balanced tree of + - * over x, y and exp(x), about ``size`` characters."""
    parts = [rng.choice(["x", "y", "exp(x)", "sin(y)", "x"]) for _ in range(max(2, size // 9))]
    ops = "+-*"
    while len(parts) > 1:
        parts = [f"({a} {rng.choice(ops)} {b})" for a, b in zip(parts[::2], parts[1::2], strict=False)] + (
            [parts[-1]] if len(parts) % 2 else []
        )
    return parts[0]


def issue_cases() -> list[Case]:
    """Every input named in issue 18 (tags say which item)."""
    big = {"length": 200_000, "depth": 400}
    sq = lambda n: {"X": (n, n)}  # noqa: E731
    A4 = {"A": (2, 2), "B": (2, 2), "W": (2, 2)}
    out = [
        Case("sum(log(softmax(y)))", "y", tag="softmax TypeError"),
        Case("sum(log(softmax(b + y)))", "y", tag="softmax TypeError"),
        Case("sum(log(softmax(x)))", "x", tag="softmax TypeError"),
        Case("inv(B @ B @ (W.T @ A)) @ (B @ (B - B)) @ log(softmax(diag(B)))", "A", A4, tag="LinAlgError"),
        Case("inv(B @ B @ (W.T @ A)) @ (B @ (B - B)) @ log(softmax(diag(B)))", "A", tag="LinAlgError"),
        Case(_balanced(random.Random(0), 120_000), "x", limits=big, tag="120 KB balanced"),
        Case("exp(" * 150 + "c" + ")" * 150, "c", limits=big, tag="150 nested exp"),
        Case("sum(" + "exp(" * 150 + "x" + ")" * 150 + ")", "x", limits=big, tag="150 nested exp"),
        Case(" + ".join(f"a{i}" for i in range(500)), "a0", limits=big, tag="500-variable sum"),
        Case(" * ".join(f"a{i}" for i in range(500)), "a0", limits=big, tag="500-variable product"),
        Case("sum(" + " * ".join(f"a{i}" for i in range(500)) + ")", "a7", limits=big, tag="500-variable product"),
        Case("inv(X) @ X", "X", tag="inv(X) @ X"),
        Case("X @ inv(X)", "X", tag="inv(X) @ X"),
    ]
    for n in (6, 8):
        out += [
            Case("det(X)", "X", sq(n), tag=f"det {n}x{n}"),
            Case("log(det(X))", "X", sq(n), tag=f"logdet {n}x{n}"),
            Case("det(X)", "X", proof_sizes={"n": n}, tag=f"det {n}x{n} --prove-at"),
            Case("log(det(X))", "X", proof_sizes={"n": n}, tag=f"logdet {n}x{n} --prove-at"),
        ]
    out += [
        Case("inv(X)", "X", sq(5), tag="inv 5x5"),
        Case("inv(X)", "X", proof_sizes={"n": 5}, tag="inv 5x5 --prove-at"),
        Case("det(A @ A @ A)", "A", {"A": (6, 6)}, tag="det(A@A@A) 6x6"),
        Case("det(A @ A @ A)", "A", proof_sizes={"n": 6}, tag="det(A@A@A) 6x6 --prove-at"),
        Case("kron(A, B)", "A", {"A": (40, 40), "B": (40, 40)}, tag="kron 40x40"),
        Case("sum(kron(A, B))", "A", {"A": (40, 40), "B": (40, 40)}, tag="kron 40x40"),
        Case("kron(A, B)", "A", proof_sizes={"m": 40, "n": 40}, limits={"entries": 10**6}, tag="kron 40x40 --prove-at"),
        Case("sum(" + "kron(x, " * 7 + "x" + ")" * 7 + ")", "x", tag="kron nested 7"),
        Case("kron(x, " * 7 + "x" + ")" * 7, "x", tag="kron nested 7"),
        Case("sum(" + "kron(A, " * 6 + "A" + ")" * 6 + ")", "A", tag="kron nested 7"),
        Case("softmax(" * 8 + "x" + ")" * 8, "x", tag="8 softmaxes"),
        Case("sum(" + "softmax(" * 8 + "x" + ")" * 8 + ")", "x", tag="8 softmaxes"),
        Case(" @ ".join(["A"] * 30), "A", tag="30 products"),
        Case("sum(" + " @ ".join(f"A{i}" for i in range(30)) + ")", "A0", tag="30 products"),
        Case("sum(" + " @ ".join(["A"] * 30) + ")", "A", tag="30 products"),
        Case("x ** 1000000000", "x", tag="huge exponent"),
        Case("sum(x ** 1000000000)", "x", tag="huge exponent"),
        Case("norm(x) ** 1e9", "x", tag="huge exponent"),
        Case("sum(conv2d(X, K))", "K", {"X": (50, 50), "K": (25, 25)}, tag="conv2d 50/25"),
        Case("sum(conv2d(X, K))", "X", {"X": (50, 50), "K": (25, 25)}, tag="conv2d 50/25"),
        Case("conv2d(X, K)", "K", {"X": (50, 50), "K": (25, 25)}, tag="conv2d 50/25"),
        Case("conv2d(X, K)", "X", {"X": (50, 50), "K": (25, 25)}, tag="conv2d 50/25"),
        Case("det(B @ diag(x) @ W.T @ W)", "B", tag="det at a singular M"),
        Case("x * (0 - 0.5) ** 0.5", "x", tag="constant nan"),
        Case("x * (-1 * 0.5) ** 0.5", "x", tag="constant nan"),
        Case("x * (-0.5) ** 0.5", "x", tag="constant nan"),
        Case("x * sqrt(0 - 1)", "x", tag="constant nan"),
        Case("x * log(0 - 1)", "x", tag="constant nan"),
        Case("log(det(M))", "M", tag="logdet < 0"),
        Case("sum(x__)", "x__", writeup=True, tag="names"),
        Case("sum(ｘ)", "x", writeup=True, tag="names"),
        Case("sum(x_1_2 * frac)", "frac", writeup=True, tag="names"),
    ]
    return out


# ----- random inputs -----
# (see generate() below)


def summarize(results: list[Result]) -> Counter[str]:
    return Counter(r.outcome for r in results)


def report(label: str, results: list[Result], every: bool = False, out=sys.stdout) -> None:
    c = summarize(results)
    figures = ", ".join(f"{c[k]} {k}" for k in OUTCOMES)
    cpu = sorted(r.cpu for r in results)
    tail = f"; CPU per input: median {cpu[len(cpu) // 2]:.2f} s, max {cpu[-1]:.1f} s" if cpu else ""
    print(f"{label}: {len(results)} inputs: {figures}{tail}", file=out)
    shown = Counter()
    for r in results:
        if every or (r.outcome in ("escape", "unbounded", "wrong", "late") and shown[r.outcome] < 15):
            shown[r.outcome] += 1
            c = r.case
            where = f"{c.shapes or ''} {c.proof_sizes or ''} {c.limits or ''}"
            print(f"  {r.outcome} [{c.tag}] {r.cpu:.1f}s: {c.expr[:100]!r} by {c.wrt} {where}: {r.detail[:200]}",
                  file=out)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz_hostile", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="random inputs through derive() (default 2000)")
    ap.add_argument("--cli", type=int, default=200, help="random inputs through the command (default 200)")
    ap.add_argument("--cases", action="store_true", help="run issue 18's inputs instead (both ways)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=float, default=5.0, help="CPU seconds per input (Limits.seconds)")
    ap.add_argument("--kill-after", type=float, default=4.0, help="hard CPU limit, in budgets (default 4)")
    ap.add_argument("--memory", type=float, default=3.0, help="address space per input, GB past start-up")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)))
    ap.add_argument("--json", metavar="FILE", help="write every result here")
    args = ap.parse_args(argv)
    kill = args.budget * args.kill_after + GRACE
    memory = int(args.memory * 2**30)
    if args.cases:
        api_cases = cli_cases = issue_cases()
    else:
        api_cases, cli_cases = generate(args.seed, args.n), generate(args.seed + 1, args.cli)
    t = time.monotonic()
    api = list(Pool(args.workers, args.budget, kill, memory).run(api_cases)) if api_cases else []
    report("derive()", api, args.cases)
    cli = list(run_cli_all(cli_cases, args.workers, args.budget, kill, memory)) if cli_cases else []
    report("command", cli, args.cases)
    print(f"({time.monotonic() - t:.0f} s wall, {args.workers} workers, budget {args.budget:g} s)")
    if args.json:
        rows = [{"how": how, "outcome": r.outcome, "detail": r.detail, "cpu": round(r.cpu, 3),
                 "expr": r.case.expr, "wrt": r.case.wrt, "tag": r.case.tag}
                for how, rs in (("api", api), ("cli", cli)) for r in rs]  # fmt: skip
        Path(args.json).write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    bad = summarize(api) + summarize(cli)
    return 1 if bad["escape"] or bad["unbounded"] or bad["wrong"] else 0


FNS = ("exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "softplus", "abs", "square", "log1p",
       "expm1", "np.exp", "np.log", "numpy.tanh", "scipy.special.expit", "step", "sign")  # fmt: skip
ODD_NAMES = ("x__", "x_1_2", "W1_b", "x_", "frac", "alpha", "begin", "end", "mathbf", "left", "textbf", "par",
             "ｘ", "Ｗ", "é", "xé", "α", "_x", "x" * 31, "x" * 40, "W_out", "b2", "A12", "input", "lambda")  # fmt: skip
HOSTILE = (
    "__import__('os').system('true')", "x.__class__", "(lambda: 1)()", "open('/etc/passwd')", "x; y",
    "x if x else y", "[x for x in y]", "x[0]", "x[::-1]", "{x}", "'\\input{/etc/passwd}'", "x @", "@ x", "(((x)",
    "x))", "", " ", "\x00", "x\ny", "sum(x", "norm(x, 2, 3)", "np.linalg.norm(x, ord='fro')", "sum(x, axis=7)",
    "x ** x ** x ** x", "1e308 * x", "1e309 * x", "x / 0", "0 / 0 * x", "inf * x", "nan + x", "x ** -1e9",
    "exec('1')", "getattr(x, 'T')", "x.T.T.T.T.T.T.T", "globals()", "sum(x) # comment", "sum(x)\r\n",
    "sum(x, axis=None)", "kron()", "inv()", "det(x)", "softmax(x, axis=3)", "conv2d(x, x)", "maxpool(A, 0)",
)  # fmt: skip


class Gen:
    """Random expression text of a given shape over variables whose shapes it records."""

    def __init__(self, rng: random.Random, sizes: list[int]) -> None:
        self.rng = rng
        self.sizes = sizes
        self.vars: dict[str, tuple[int, ...]] = {}

    def var(self, shape: tuple[int, ...]) -> str:
        same = [v for v, s in self.vars.items() if s == shape]
        if same and self.rng.random() < 0.7:
            return self.rng.choice(same)
        prefix = {0: "c", 1: "x", 2: "A"}[len(shape)]
        name = f"{prefix}{len(self.vars)}"
        self.vars[name] = shape
        return name

    def leaf(self, shape: tuple[int, ...]) -> str:
        r = self.rng.random()
        if shape == () and r < 0.3:
            return self.rng.choice(["2", "0.5", "3", "1.5", "-1", "1e-3", "7"])
        if len(shape) == 2 and r < 0.15:
            return f"{self.var(shape[::-1])}.T"
        return self.var(shape)

    def expr(self, shape: tuple[int, ...], depth: int) -> str:
        rng = self.rng
        if depth <= 0 or rng.random() < 0.2:
            return self.leaf(shape)

        def sub(s: tuple[int, ...]) -> str:
            return self.expr(s, depth - 1)

        def w(s: tuple[int, ...]) -> str:
            t = sub(s)
            return t if t.replace("_", "").replace(".", "").isalnum() else f"({t})"

        k = rng.choice(self.sizes)
        arr = rng.choice([(k,), (k, rng.choice(self.sizes))])
        opts: list[Callable[[], str]] = [
            lambda: f"{rng.choice(FNS)}({sub(shape)})",
            lambda: f"{w(shape)} {rng.choice('+-*/')} {w(shape)}",
            lambda: f"{w(shape)} ** {rng.choice(['2', '3', '-1', '0.5', '-2', '1.5'])}",
            lambda: f"-{w(shape)}",
            lambda: f"{w(())} {rng.choice('+-*/')} {w(shape)}",
            lambda: f"maximum({sub(shape)}, {sub(shape)})",
        ]
        if shape == ():
            opts += [
                lambda: f"sum({sub(arr)})",
                lambda: f"mean({sub(arr)})",
                lambda: f"norm({sub(arr)})",
                lambda: f"trace({sub((k, k))})",
                lambda: f"logsumexp({sub((k,))})",
                lambda: f"{w((k,))} @ {w((k,))}",
                lambda: f"{w((k,))} @ {w((k, k))} @ {w((k,))}",
                lambda: f"det({sub((min(k, 3), min(k, 3)))})",
                lambda: f"log(det({sub((min(k, 3), min(k, 3)))}))",
                lambda: f"sum(log(softmax({sub((k,))})))",
            ]
        elif len(shape) == 1:
            (m,) = shape
            opts += [
                lambda: f"{w((m, k))} @ {w((k,))}",
                lambda: f"{w((k,))} @ {w((k, m))}",
                lambda: f"softmax({sub(shape)})",
                lambda: f"log_softmax({sub(shape)})",
                lambda: f"diag({sub((m, m))})",
                lambda: f"sum({sub((m, k))}, axis=1)",
                lambda: f"sum({sub((k, m))}, axis=0)",
                lambda: f"flatten({sub((m,))})",
            ]
            if m % k == 0:
                opts.append(lambda: f"kron({sub((k,))}, {sub((m // k,))})")
        else:
            r, c = shape
            opts += [
                lambda: f"{w((r, k))} @ {w((k, c))}",
                lambda: f"outer({sub((r,))}, {sub((c,))})",
                lambda: f"{w((c, r))}.T",
                lambda: f"softmax({sub(shape)}, axis={rng.choice([0, 1])})",
            ]
            if r == c:
                opts += [lambda: f"diag({sub((r,))})", lambda: f"inv({sub(shape)})"]
            if r % k == 0 and c % k == 0:
                opts.append(lambda: f"kron({sub((k, k))}, {sub((r // k, c // k))})")
        return rng.choice(opts)()


def _random_valid(rng: random.Random) -> Case:
    sizes = rng.sample([1, 2, 3, 4], rng.choice([1, 2, 2, 3]))
    g = Gen(rng, sizes)
    shape = rng.choice([(), (), (), (rng.choice(sizes),), (rng.choice(sizes), rng.choice(sizes))])
    text = g.expr(shape, rng.choice([1, 2, 3, 3, 4, 5]))
    names = list(g.vars) or ["c0"]
    if not g.vars:
        text, g.vars["c0"] = f"c0 * ({text})", ()
    wrt = rng.choice(names)
    if shape == () and rng.random() < 0.1:
        wrt = (wrt, rng.choice(names))
    shapes = dict(g.vars) if rng.random() < 0.6 else None
    return Case(text, wrt, shapes, numeric=rng.random() < 0.9, writeup=rng.random() < 0.1, tag="valid")


def _deep(rng: random.Random) -> Case:
    n = rng.choice([20, 50, 99, 100, 150, 300, 1000])
    f = rng.choice(["exp", "sin", "tanh", "-", "sum", "(", "sqrt", "relu", "softmax", "x * "])
    inner = {"-": ("-" * n, ""), "(": ("(" * n, ")" * n), "x * ": ("x * (" * n, ")" * n)}.get(f, (f"{f}(" * n, ")" * n))
    text = f"sum({inner[0]}x{inner[1]})"
    limits = rng.choice([{}, {"depth": 400, "length": 200_000}, {"depth": 5000, "length": 10**6}])
    return Case(text, "x", limits=limits, tag="deep")


def _huge(rng: random.Random) -> Case:
    p = rng.choice(["1000000000", "1e9", "999999999", "123456789.5", "-1000000000", "10**9", "2**30", "1e300", "1e400",
                    "0.000000001", "1e-320"])  # fmt: skip
    text = rng.choice([f"x ** {p}", f"sum(x ** {p})", f"norm(x) ** {p}", f"{p} * sum(x)", f"sum(exp({p} * x))",
                       f"(x @ x) ** {p}", f"c ** {p}", f"({p}) ** 0.5 * c", f"c * (-{p}) ** 0.5"])  # fmt: skip
    return Case(text, "c" if text.count("c") > text.count("x") else "x", tag="huge")


def _big_sizes(rng: random.Random) -> Case:
    n = rng.choice([4, 5, 6, 7, 8, 10, 20, 40, 60])
    text, v = rng.choice([("det(X)", "X"), ("log(det(X))", "X"), ("inv(X)", "X"), ("sum(inv(X))", "X"),
                          ("det(X @ X @ X)", "X"), ("kron(X, X)", "X"), ("sum(kron(X, X))", "X"), ("trace(X @ X)", "X"),
                          ("sum(conv2d(X, K))", "K"), ("sum(softmax(X @ X, axis=0))", "X")])  # fmt: skip
    shapes = {"X": (n, n)}
    if "K" in text:
        shapes = {"X": (n, n), "K": (max(1, n // 2), max(1, n // 2))}
    how = rng.random()
    if how < 0.5:
        return Case(text, v, shapes, tag="big sizes")
    return Case(text, v, proof_sizes={"n": min(n, 9)}, limits=rng.choice([{}, {"entries": 10**6}]), tag="big proof")


def _long(rng: random.Random) -> Case:
    n = rng.choice([30, 50, 100, 300, 600])
    kind = rng.randrange(5)
    if kind == 0:
        text, wrt = " + ".join(f"a{i}" for i in range(n)), "a0"
    elif kind == 1:
        text, wrt = " * ".join(f"a{i}" for i in range(n)), f"a{rng.randrange(n)}"
    elif kind == 2:
        text, wrt = "sum(" + " @ ".join(["A"] * min(n, 60)) + ")", "A"
    elif kind == 3:
        text, wrt = "sum(" + " * ".join(rng.choice(["x", "exp(x)", "sin(x)"]) for _ in range(n)) + ")", "x"
    else:
        text, wrt = "sum(" + "softmax(" * (n // 10) + "x" + ")" * (n // 10) + ")", "x"
    return Case(text, wrt, limits=rng.choice([{}, {"depth": 1000, "length": 200_000}]), tag="long")


def _odd_names(rng: random.Random) -> Case:
    a, b = rng.sample(ODD_NAMES, 2)
    text = rng.choice([f"sum({a})", f"sum({a} * {b})", f"{a} @ {b}", f"sum(exp({a}) + {b})", f"norm({a} - {b}) ** 2"])
    return Case(text, rng.choice([a, b]), numeric=True, writeup=True, tag="names")


def _hostile(rng: random.Random) -> Case:
    if rng.random() < 0.4:
        return Case(rng.choice(HOSTILE), rng.choice(["x", "y", "A"]), tag="hostile")
    base = _random_valid(rng)
    t = list(base.expr)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(t) + 1)
        op = rng.randrange(3)
        if op == 0 and t:
            del t[min(i, len(t) - 1)]
        elif op == 1:
            t.insert(i, rng.choice("()@*+-.,=_x0T[]'\"\\ \t\n\u00e9\uff58"))
        elif t:
            j = rng.randrange(len(t))
            t[i % len(t)], t[j] = t[j], t[i % len(t)]
    return Case("".join(t), base.wrt, base.shapes, tag="mangled")


def generate(seed: int, n: int) -> list[Case]:
    """``n`` inputs from ``seed``: mostly random valid expressions, then each kind of extreme input."""
    rng = random.Random(seed)
    kinds = [(_random_valid, 70), (_deep, 6), (_huge, 5), (_big_sizes, 5), (_long, 5), (_odd_names, 4), (_hostile, 5)]
    makers, weights = zip(*kinds, strict=True)
    return [rng.choices(makers, weights)[0](rng) for _ in range(n)]


if __name__ == "__main__":
    sys.exit(main())
