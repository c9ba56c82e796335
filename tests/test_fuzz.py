"""Property-based fuzzing of the parser, the pipeline and the command.

Three properties, each over inputs hypothesis draws from a fixed seed:

* valid expressions (shape-correct by construction, now and then not) either
  derive with a proof that is never "refuted" and a numeric check that passes,
  or are refused with a one-line :class:`DeriveError`;
* garbage (mutated expressions, random text, very long or deeply nested
  strings, hostile Python) is answered or refused with one line, never with
  any other exception;
* the command exits 0, 1 or 2; on 2 it says one line and writes nothing (on 1
  it writes nothing either).

No single call may use more than CPU_LIMIT seconds of CPU time: every example
is built to take well under a second, so a call that does not finish is a
finding, not a wait. The budget is CPU time (a profiling timer), not wall-clock
time, so other work on the machine does not make a call look slow. Every call
is counted, each property checks its own figures (every example tried, both
answers and refusals among them) and records them as a line for the end of
the run's report (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import string
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from derive import Derivation, DeriveError, derive
from derive.cli import main

ALLOWED = ("proven", "unproven", "no matrix form")
CPU_LIMIT = 10.0  # CPU seconds for one call (examples are built to take well under 1 s; the slowest seen took 5)

SETTINGS = {
    "deadline": None,
    "derandomize": True,  # a fixed seed: CI sees the same inputs every run
    "database": None,
    "report_multiple_bugs": False,  # shrink one failure, not each distinct one: keeps a failing run short
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
}

Record = Callable[[str, object], None]  # pytest's record_property fixture

NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)  # for the slow properties

# Examples per property: a sample in the suite (a few seconds each); tests/fuzz_hostile.py makes the long runs
VALID_EXAMPLES, GARBAGE_EXAMPLES, COMMAND_EXAMPLES = 300, 400, 100


class Slow(Exception):
    """A single call used more than CPU_LIMIT seconds of CPU time."""


@contextlib.contextmanager
def cpu_limit(seconds: float = CPU_LIMIT) -> Iterator[None]:
    """Raise :class:`Slow` inside the call once it has used ``seconds`` of CPU time.

    A profiling timer (ITIMER_PROF: user and system time of this process) rings
    the alarm, so waiting for a busy CPU does not count; time.process_time()
    measures the same clock afterwards, where the timer does not exist.
    """
    start = time.process_time()
    if not hasattr(signal, "setitimer"):
        yield
        if time.process_time() - start > seconds:
            raise Slow(f"used more than {seconds:g} s of CPU time")
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise Slow(f"used more than {seconds:g} s of CPU time")

    old = signal.signal(signal.SIGPROF, on_alarm)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


def one_line(message: str) -> bool:
    return bool(message) and "\n" not in message and "\r" not in message and len(message.splitlines()) == 1


@dataclass
class Tally:
    """One property's figures: calls tried; clean (a one-line DeriveError, or exit 2), ok (a sound answer),
    escapes (any other exception), bad (a wrong or too slow answer); the most CPU time one call used."""

    counts: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0

    def attempt(self, call: Callable[[], object]) -> object:
        """Run ``call``, count the outcome; return the result or the DeriveError, re-raise anything else."""
        self.counts["tried"] += 1
        start = time.process_time()
        try:
            with cpu_limit():
                result = call()
        except DeriveError as e:
            if not one_line(str(e)):
                self.counts["bad"] += 1
                raise AssertionError(f"DeriveError message is not one line: {str(e)!r}") from e
            self.counts["clean"] += 1
            return e
        except Slow as e:
            self.counts["bad"] += 1
            e.__context__ = None  # whatever SymPy was handling when the alarm rang is noise (and splits one bug)
            raise
        except Exception:
            self.counts["escapes"] += 1
            raise
        finally:
            self.slowest = max(self.slowest, time.process_time() - start)
        return result

    def sound(self, d: object) -> None:
        """A Derivation must never be refuted, and its numeric check must not fail.

        A check that could not run (no sample point where the value is finite) says
        so in ``d.numeric``; that is an honest answer, not a wrong one.
        """
        assert isinstance(d, Derivation), f"derive returned {type(d).__name__}, not a Derivation"
        try:
            assert d.proof.status != "refuted", f"refuted proof: {d.proof}; mismatches {d.proof.mismatches[:2]}"
            assert d.proof.status in ALLOWED, f"unknown proof status {d.proof.status!r}"
            if d.numeric is not None:
                assert not d.numeric.failed, f"numeric check failed: {d.numeric}"
        except AssertionError:
            self.counts["bad"] += 1
            raise
        self.counts["ok"] += 1

    def check(self, examples: int, answered: float, refused: float, record_property: Record) -> None:
        """Every example was tried, at least the share ``answered`` of them answered and ``refused`` refused (the
        strategy reaches both sides), none escaped or was wrong; the figures go to the end of the run's report."""
        c = self.counts
        record_property(
            "fuzz",
            f"{c['tried']} inputs tried, {c['clean']} clean refusals, {c['ok']} successes, {c['escapes']} escapes, "
            f"{c['bad']} wrong or slow answers; the slowest call used {self.slowest:.2f} s of CPU",
        )
        assert c["tried"] >= examples, f"hypothesis ran {c['tried']} of {examples} examples"
        assert c["escapes"] == c["bad"] == 0 and c["clean"] + c["ok"] == c["tried"], c
        assert c["ok"] >= answered * c["tried"] and c["clean"] >= refused * c["tried"], c
        assert self.slowest < CPU_LIMIT


# ----- valid grammar -----

VARIABLES = ("A", "B", "W", "x", "b", "y", "c")
ELEMENTWISE = (
    "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "softplus",
    "np.exp", "np.log", "np.sqrt", "np.sin", "numpy.cos", "np.tanh", "abs", "np.abs", "np.square",
)  # fmt: skip
NORMS = ("norm", "np.linalg.norm", "numpy.linalg.norm")
OPERATORS = ("+", "-", "*", "/")
POWERS = ("2", "3", "-1", "0.5")
NUMBERS = ("2", "0.5", "3", "1.5", "1")
INTERNAL = re.compile(r"(?<![\w.])_[A-Za-z]\w*\d")  # a placeholder dimension (_A0), never shown to a user
_VAR_RE = re.compile(r"(?<![\w.])(A|B|W|x|b|y|c)(?!\w)")


def chance(draw: st.DrawFn, p: float) -> bool:
    """True with probability about p (st.integers would favour its ends)."""
    return draw(st.sampled_from(range(100))) < round(p * 100)


@st.composite
def declared_shapes(draw: st.DrawFn) -> dict[str, tuple[int, ...]]:
    """Small random sizes: A (m, n), x (n,), b (m,), the rest drawn to fit or not."""
    m = draw(st.sampled_from([2, 1, 3]))  # the first is what a failure shrinks to: keep it small and fast
    n = draw(st.sampled_from([2, 3, 1]))
    return {
        "A": (m, n),
        "B": draw(st.sampled_from([(n, n), (m, m), (m, n), (n, m)])),
        "W": draw(st.sampled_from([(n, m), (m, m), (n, n), (m, n)])),
        "x": (n,),
        "b": (m,),
        "y": draw(st.sampled_from([(n,), (m,)])),
        "c": (),
    }


class Grammar:
    """Builds expression text of a requested shape from the declared variables."""

    def __init__(self, draw: st.DrawFn, shapes: dict[str, tuple[int, ...]]) -> None:
        self.draw = draw
        self.shapes = shapes
        self.sizes = sorted({d for s in shapes.values() for d in s})
        self.vectors = [(k,) for k in self.sizes]
        self.matrices = [(r, s) for r in self.sizes for s in self.sizes]

    def pick(self, options: list | tuple) -> object:
        return self.draw(st.sampled_from(list(options)))

    def chance(self, p: float) -> bool:
        return chance(self.draw, p)

    def wrap(self, text: str) -> str:
        """Parenthesize a composite operand (almost always; dropping them changes the tree, which is fine)."""
        if re.fullmatch(r"[A-Za-z0-9_.]+", text) or self.chance(0.05):
            return text
        return f"({text})"

    def leaf(self, shape: tuple[int, ...]) -> str:
        if shape == ():
            return self.pick(["c", "c", *NUMBERS])
        names = [v for v in VARIABLES if self.shapes[v] == shape]
        if len(shape) == 2:
            names += [f"{v}.T" for v in VARIABLES if self.shapes[v] == shape[::-1]]
            if not names or self.chance(0.1):
                names.append(f"outer({self.leaf(shape[:1])}, {self.leaf(shape[1:])})")
        return self.pick(names)

    def expr(self, shape: tuple[int, ...], depth: int) -> str:
        """Text of an expression of ``shape``, at most ``depth`` operations deep."""
        if self.chance(0.04):  # now and then the wrong shape: a shape conflict to be reported
            shape = self.pick([(), *self.vectors, *[m for m in self.matrices if max(m) <= 2]])
        if depth <= 0 or self.chance(0.25):
            return self.leaf(shape)
        pick, sizes = self.pick, self.sizes

        def sub(s: tuple[int, ...]) -> str:
            return self.expr(s, depth - 1)

        def w(s: tuple[int, ...]) -> str:
            return self.wrap(sub(s))

        def any_array() -> tuple[int, ...]:
            return pick(self.vectors + self.matrices)

        def square() -> str:
            k = pick(sizes)
            return sub((k, k))

        def small_square() -> str:  # det and inv of 3 x 3 take seconds to prove
            k = pick([k for k in sizes if k <= 2])
            return sub((k, k))

        def through(k: int, left: bool) -> str:  # a matrix-vector product of length k
            j = pick(sizes)
            return f"{w((k, j))} @ {w((j,))}" if left else f"{w((j,))} @ {w((j, k))}"

        def quadratic_form() -> str:
            j, k = pick(sizes), pick(sizes)
            return f"{w((j,))} @ {w((j, k))} @ {w((k,))}"

        def dot() -> str:
            v = pick(self.vectors)
            return f"{w(v)} @ {w(v)}"

        choices: list[Callable[[], str]] = [
            lambda: f"{pick(ELEMENTWISE)}({sub(shape)})",
            lambda: f"{w(shape)} {pick(OPERATORS)} {w(shape)}",
            lambda: f"{w(shape)} ** {pick(POWERS)}",
            lambda: f"-{w(shape)}",
        ]
        if shape == ():
            choices += [
                lambda: f"{pick(['sum', 'np.sum'])}({sub(any_array())})",
                lambda: f"{pick(NORMS)}({sub(any_array())})",
                lambda: f"{pick(['trace', 'np.trace'])}({square()})",
                lambda: f"logsumexp({sub(pick(self.vectors))})",
                dot,
                quadratic_form,
                lambda: f"sum(kron({sub(any_array())}, {sub(pick(self.vectors))}))",
                lambda: f"sum(outer({sub(pick(self.vectors))}, {sub(pick(self.vectors))}))",
                lambda: f"{pick(['mean', 'np.mean'])}({sub(any_array())})",
                lambda: f"{w(any_array())}.{pick(['sum', 'mean'])}()",
            ]
            if any(k <= 2 for k in sizes):
                choices.append(lambda: f"{pick(['det', 'np.linalg.det'])}({small_square()})")
        else:
            choices += [
                lambda: f"{w(())} {pick(OPERATORS)} {w(shape)}",
                lambda: f"{w(shape)} {pick(OPERATORS)} {w(())}",
                lambda: f"{w(shape[::-1])}.T",
            ]
        if len(shape) == 1:
            (k,) = shape
            choices += [
                lambda: through(k, left=True),
                lambda: through(k, left=False),
                lambda: f"softmax({sub(shape)})",
                lambda: f"{pick(['diag', 'np.diag'])}({sub((k, k))})",
                lambda: f"{pick(['sum', 'np.mean', 'mean'])}({sub((k, pick(sizes)))}, axis={pick(['1', '-1'])})",
                lambda: f"{w((pick(sizes), k))}.{pick(['sum', 'mean'])}(axis=0)",
                lambda: f"np.maximum({w(shape)}, {pick(['0', w(shape)])})",
            ]
            pairs = [((a,), (k // a,)) for a in sizes if k % a == 0 and k // a in sizes]
            if pairs:
                choices.append(lambda: "kron({}, {})".format(*map(sub, pick(pairs))))
        if len(shape) == 2:
            r, c = shape
            choices += [
                lambda: (lambda j: f"{w((r, j))} @ {w((j, c))}")(pick(sizes)),
                lambda: f"{pick(['outer', 'np.outer'])}({sub((r,))}, {sub((c,))})",
                lambda: f"{w(shape)} {pick(OPERATORS)} {w((c,))}",  # numpy broadcasts the vector over rows
                lambda: f"{w(shape)} - {w(shape)}.mean(axis=0)",
                lambda: f"softmax({sub(shape)}, axis={pick(['0', '1', '-1'])})",
            ]
            if r == c:
                choices.append(lambda: f"{pick(['diag', 'np.diag'])}({sub((r,))})")
            if r == c <= 2:
                choices.append(lambda: f"{pick(['inv', 'np.linalg.inv'])}({sub(shape)})")
            quads = [
                ((a, b), (r // a, c // b))
                for a in sizes
                for b in sizes
                if r % a == 0 and c % b == 0 and r // a in sizes and c // b in sizes
            ]
            if quads:
                choices.append(lambda: "np.kron({}, {})".format(*map(sub, pick(quads))))
        return pick(choices)()


@st.composite
def valid_problems(draw: st.DrawFn) -> tuple[str, object, dict[str, tuple[int, ...]], str | None, bool]:
    """(expression, wrt, declared shapes, layout, primes)."""
    shapes = draw(declared_shapes())
    g = Grammar(draw, shapes)
    top = draw(st.sampled_from([(), (), (), *g.vectors, *g.matrices]))
    depth = draw(st.integers(1, 4))
    text = g.expr(top, depth)
    present = list(dict.fromkeys(_VAR_RE.findall(text))) or ["x"]
    wrt: object = draw(st.sampled_from(present))
    if top == () and depth <= 2 and chance(draw, 0.1):  # now and then a (small) Hessian
        wrt = (wrt, draw(st.sampled_from(present)))
    layout = draw(st.sampled_from([None, None, "numerator", "denominator"]))
    return text, wrt, shapes, layout, draw(st.booleans())


@pytest.mark.slow
def test_valid_expressions_derive_soundly_or_refuse_in_one_line(record_property: Record) -> None:
    tally = Tally()

    @settings(max_examples=VALID_EXAMPLES, **SETTINGS)
    @given(valid_problems())
    def prop(problem: tuple) -> None:
        text, wrt, shapes, layout, primes = problem
        result = tally.attempt(lambda: derive(text, wrt, shapes, layout=layout, primes=primes))
        if isinstance(result, DeriveError):
            assert not INTERNAL.search(str(result)), f"an internal dimension name in {str(result)!r}"
        else:
            tally.sound(result)

    prop()
    tally.check(VALID_EXAMPLES, 0.5, 0.02, record_property)  # 93% answered


# ----- garbage -----

ODD = "()[]{}.,:;@*+-/%~^&|'\"\\`$#!?=<>"
ALPHABET = ODD + string.ascii_letters + string.digits + " \t\n\r\x0b\x0c" + "é∑λ😀" + "\x00" + "\u2028\x85\ufeff"
SEEDS = (
    "norm(A @ x - b)**2",
    "sum(softmax(W @ b) * y)",
    "logsumexp(A @ x)",
    "trace(inv(B) @ B.T)",
    "np.linalg.norm(np.tanh(W @ x + b))",
    "sigmoid(x) @ outer(x, y) @ relu(y)",
    "det(B) * c ** -1",
    "sum(kron(A, diag(x)))",
    "-x.T @ x / 2 + softplus(c)",
    "sqrt(x ** 2 + 0.5) @ x",
)
HOSTILE = (
    "__import__('os').system('true')",
    "__import__",
    "open('/etc/passwd')",
    "open",
    "getattr(x, '__class__')",
    "getattr",
    "eval('x')",
    "exec('x = 1')",
    "lambda: x",
    "(lambda: x)()",
    "(lambda x: x)(x)",
    "f'{x}'",
    "f\"{open('f')}\"",
    "x.__class__",
    "x.__class__.__base__.__subclasses__()",
    "__builtins__",
    "__class__",
    "__x__",
    "np.__dict__",
    "sum.__globals__",
    "np.linalg.norm.__call__(x)",
    "().__class__",
    "[c for c in x]",
    "x if x else x",
    "(x := 1)",
    "x[0]",
    "x[::2]",
    "*x",
    "{**x}",
    "{x}",
    "{'a': x}",
    "None",
    "True",
    "...",
    "1j * x",
    "b'x'",
    "'x'",
    "x = 1",
    "import os",
    "await x",
    "yield x",
    "breakpoint()",
    "globals()",
    "vars(x)",
    "compile('1', '', 'eval')",
    "sum(x, axis=0)",
    "sum(x, axis=7)",
    "sum(x, dtype=x)",
    "x.sum(axis=x)",
    "(1).mean()",
    "sum(x, keepdims=x)",
    "mean(x, axis=0, axis=0)",
    "x.mean(keepdims=True).sum(axis=-1)",
    "np.maximum(x)",
    "x.max()",
    "norm(x, 2)",
    "exp(*x)",
    "exp(**x)",
    "x.T(x)",
    "__debug__",
    "x ** x",
    "x ** 1e999",
    "x / 0",
    "x / 0.0",
    "x ** -1 @ 0 ** -1",
    "1e400 * x",
    "0x10 * x",
    "1_000 * x",
    "x @ 10000000000",
)


@st.composite
def valid_text(draw: st.DrawFn, shapes: dict[str, tuple[int, ...]] | None = None) -> str:
    g = Grammar(draw, shapes or draw(declared_shapes()))
    return g.expr(draw(st.sampled_from([(), *g.vectors])), draw(st.integers(1, 3)))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A valid or hostile string with a few characters deleted, inserted, replaced or doubled."""
    s = draw(st.one_of(st.sampled_from(SEEDS), st.sampled_from(HOSTILE), valid_text()))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "double"]))
        i = draw(st.integers(0, len(s)))
        ch = draw(st.sampled_from(ALPHABET))
        if kind == "delete":
            s = s[:i] + s[i + 1 :]
        elif kind == "insert":
            s = s[:i] + ch + s[i:]
        elif kind == "replace":
            s = s[:i] + ch + s[i + 1 :]
        else:
            j = draw(st.integers(i, len(s)))
            s = s[:j] + s[i:j] + s[j:]
    return s


@st.composite
def long_strings(draw: st.DrawFn) -> str:
    piece = draw(
        st.one_of(
            st.sampled_from(["x+", "x + ", "(", ")", "exp(", "A@", "-", "x", " ", "é", "sum(x)+", "1", "[", "\x00"]),
            st.text(min_size=1, max_size=8),
        )
    )
    n = 5001 // len(piece) + draw(st.integers(1, 50))
    return draw(st.sampled_from(["", "x + ", "sum(x) * "])) + piece * n + draw(st.sampled_from(["", "x", ")"]))


@st.composite
def nested(draw: st.DrawFn) -> str:
    """Deep nesting: calls, parentheses, unary minus, transposes, lists, powers."""
    n = draw(st.one_of(st.integers(100, 300), st.integers(25, 70)))
    opener, closer = draw(
        st.sampled_from(
            [
                ("exp(", ")"),
                ("np.tanh(", ")"),
                ("(", ")"),
                ("((", "))"),
                ("[", "]"),
                ("-", ""),
                ("- ", ""),
                ("sum(", ")"),
                ("x @ (", ")"),
                ("x * (", ")"),
                ("x + (", ")"),
                ("np.linalg.norm(", ")"),
                ("outer(x, ", ")"),
                ("{", "}"),
                ("lambda: ", ""),
                ("not ", ""),
            ]
        )
    )
    core = draw(st.sampled_from(["x", "x.T", "sum(x)", "", "x" + ".T" * 3]))
    return opener * n + core + closer * draw(st.sampled_from([n, n, n - 1, n + 1]))


@st.composite
def chains(draw: st.DrawFn) -> str:
    """Long flat chains: transposes, powers, attributes (each a level of the tree)."""
    n = draw(st.one_of(st.integers(40, 80), st.integers(100, 300)))
    link = draw(st.sampled_from([".T", " ** 1", ".__class__", " + x", " @ x", " * 1"]))
    return "x" + link * n


dunder_names = st.from_regex(r"\A_{1,2}[a-z]{1,10}_{0,2}\Z").map(lambda s: f"{s} + x")

garbage = st.one_of(
    mutated(),
    st.text(),
    st.text(alphabet=ALPHABET, max_size=40),
    long_strings(),
    nested(),
    chains(),
    st.sampled_from(HOSTILE),
    st.tuples(st.sampled_from(SEEDS), st.sampled_from(HOSTILE)).map(" + ".join),
    dunder_names,
)


# Not shrunk: a garbage string is short already, and shrinking a slow one re-runs it dozens of times.
@pytest.mark.slow
def test_garbage_is_answered_or_refused_in_one_line(record_property: Record) -> None:
    tally = Tally()

    @settings(max_examples=GARBAGE_EXAMPLES, phases=NO_SHRINK, **SETTINGS)
    @given(garbage)
    def prop(text: str) -> None:
        result = tally.attempt(lambda: derive(text, "x"))
        assert isinstance(result, Derivation | DeriveError), f"derive returned {type(result).__name__}"
        if isinstance(result, Derivation):
            tally.counts["ok" if result.proof.status in ALLOWED else "bad"] += 1
            assert result.proof.status in ALLOWED, f"garbage derived to a {result.proof.status} proof: {result.proof}"

    prop()
    tally.check(GARBAGE_EXAMPLES, 0.02, 0.5, record_property)  # 94% refused


# ----- the command -----


@st.composite
def shape_options(draw: st.DrawFn, shapes: dict[str, tuple[int, ...]], sane: bool) -> list[str]:
    out = [f"{name}={','.join(map(str, dims))}" for name, dims in shapes.items() if chance(draw, 0.9)]
    if not sane:
        bad = ["A=4x3", "=3", "A", "A=,", "A=0", "A=-1", "x=1.5", "A=2,3,4,5,6", "é=2", "A=99999999", "x=n,,m", "c=()"]
        out.append(draw(st.sampled_from(bad)))
    return [a for s in out for a in ("--shape", s)]


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """Mostly well-formed options around a valid or garbage expression; now and then a malformed option."""
    sane = chance(draw, 0.8)
    shapes = draw(declared_shapes())
    good = valid_text(shapes)
    kind = draw(st.sampled_from(["valid", "valid", "valid", "valid", "mutated", "hostile", "text"]))
    other = {"mutated": mutated(), "hostile": st.sampled_from(HOSTILE), "text": st.text(max_size=30)}
    expr = draw(good if kind == "valid" else other[kind])
    present = list(dict.fromkeys(_VAR_RE.findall(expr))) or ["x"]
    args = ["--wrt", draw(st.sampled_from(present))]
    if chance(draw, 0.1):
        args += ["--wrt", draw(st.sampled_from(present))]
    args += draw(shape_options(shapes, sane))
    formats = ["py", "md", "tex", "tex,md,py", "py,md"] + ([] if sane else ["pdf", "", ",", "py,,"])
    args += ["--format", draw(st.sampled_from(formats))]
    if draw(st.booleans()):
        args += ["--layout", draw(st.sampled_from(["numerator", "denominator"] + ([] if sane else ["sideways"])))]
    if chance(draw, 0.2):
        args += ["--name", draw(st.sampled_from(["f", "my_grad"] + ([] if sane else ["1bad", "a-b", "é", "x" * 70])))]
    if chance(draw, 0.2):
        args += ["--size", draw(st.sampled_from(["n=3", "m=2"] + ([] if sane else ["n=0", "n=100", "n", "=3"])))]
    if chance(draw, 0.15):
        claims = st.one_of(st.sampled_from(["2 * A.T @ (A @ x - b)", "x", "0", "[x1, x2]", "c * x"]), mutated())
        args += ["--check", draw(claims)]
    if chance(draw, 0.2):
        extra = ["--expanded", "--force", "--transpose=T"] + ([] if sane else ["--bogus", "--transpose=X", "--wrt"])
        args += [draw(st.sampled_from(extra))]
    # the expression first, or after "--" so that a leading '-' is not taken for an option
    return [expr, *args] if draw(st.booleans()) else [*args, "--", expr]


# Not shrunk: each example runs the whole command, and shrinking a failing argv takes minutes; the engine failures
# behind it are shrunk by the first property.
@pytest.mark.slow
def test_command_exits_0_1_or_2_and_refuses_in_one_line_writing_nothing(record_property: Record) -> None:
    tally = Tally()

    @settings(max_examples=COMMAND_EXAMPLES, phases=NO_SHRINK, **SETTINGS)
    @given(command_lines())
    def prop(argv: list[str]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            out, err = io.StringIO(), io.StringIO()

            def run() -> int:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    try:
                        return main(["-o", tmp, *argv])
                    except SystemExit as e:  # argparse's --help: what the process would exit with
                        return e.code if isinstance(e.code, int) else 1

            status = tally.attempt(run)
            stderr = err.getvalue()
            assert status in (0, 1, 2), f"exit status {status!r}; stderr {stderr!r}"
            assert "Traceback" not in stderr
            if status == 2:
                lines = stderr.splitlines()
                assert len(lines) == 1 and lines[0].startswith("derive: error:"), f"stderr {stderr!r}"
            if status in (1, 2):
                assert os.listdir(tmp) == [], f"exit {status} but wrote {os.listdir(tmp)}"
            tally.counts["clean" if status == 2 else "ok"] += 1  # 2 is a refusal; 0 and 1 are answers

    prop()
    tally.check(COMMAND_EXAMPLES, 0.03, 0.5, record_property)  # 91% refused
