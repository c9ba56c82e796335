"""The ``derive`` command: print the matrix form, write the files.

Exit status: 0 success (or a claim that holds), 1 a claim that fails,
2 bad input (one line on stderr, nothing written), 130 interrupted.

This module imports only the standard library and derive's light modules
at the top. numpy, SymPy and Jinja load inside :func:`main`, after its
handlers are in place, so Ctrl-C while they load still exits 130 with one
line, and ``derive --version`` answers at once. ``derive serve`` starts the
local web page instead (:mod:`derive.web.serve`).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from . import __version__
from .context import Budget, Limits, Progress
from .errors import DeriveError

if TYPE_CHECKING:
    from .derivation import Derivation
    from .parse import Problem

FORMATS = ("tex", "md", "py")  # the same as derive.writeup.FORMATS, which loads SymPy
USAGE = (
    "derive EXPR --wrt VAR [--wrt VAR] [--shape NAME=DIMS]... [--layout numerator|denominator]\n"
    "              [--name NAME] [-o DIR] [--format tex,md,py] [--check CLAIM] [options]\n"
    "       derive serve [--host 127.0.0.1] [--port 8000] [--workers N] [--budget SECONDS]"
)
EPILOG = """\
examples:
  derive "norm(A @ x - b)**2" --wrt x --name least_squares -o output
      the gradient 2 Aᵀ(A x - b), proven; writes least_squares.tex, .fragment.tex, .md and .py
  derive "sigmoid(W @ x + b)" --wrt W --shape W=3,2 --format md
      a Jacobian by a matrix (vec/Kronecker form), W declared 3×2, the Markdown write-up only
  derive "norm(A @ x - b)**2" --wrt x --wrt x
      the Hessian 2 AᵀA
  derive "sum(conv2d(X, K) * G)" --wrt K --shape X=28,28 --shape K=3,3
      a convolution's gradient by its kernel, with the sizes declared
  derive "norm(A @ x - b)**2" --wrt x --check "2 * A.T @ (A @ x - b)"
      check a derivation by hand instead of writing files
  derive "A @ x - b" --check "[a11*x1 + a12*x2 - b1, a21*x1 + a22*x2 - b2]"
      check an expansion, entry by entry (no --wrt)
  derive "log(det(S))" --wrt S --symmetric S
      S symmetric: the gradient S⁻¹ of the symmetric convention
  derive serve
      the local web page, at http://127.0.0.1:8000

exit status:
  0    success, or a claim that holds
  1    a claim that fails (the smallest counterexample is printed)
  2    bad input: one line on stderr, nothing written
  130  interrupted (Ctrl-C): one line on stderr, nothing written
"""

#: operators spelled out in default file names, so that x * y and x @ y do not collide
SPELLED = MappingProxyType({"**": "pow", "*": "times", "@": "matmul", "+": "plus", "-": "minus", "/": "div", ".T": "T"})
_TOKEN = re.compile(r"\*\*|\.T(?![A-Za-z0-9_])|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|[-+*/@]|\S")
NAME_LENGTH = 61  # longest file and function name


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise DeriveError(message)


def parser() -> argparse.ArgumentParser:
    """The command's options, each with its help text."""
    p = _Parser(
        prog="derive",
        usage=USAGE,
        description="Matrix calculus, derived as on paper and proven.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("expr", help="the expression, in numpy syntax, e.g. 'norm(A @ x - b)**2'")
    p.add_argument("--wrt", action="append", default=[], metavar="VAR",
                   help="the variable to differentiate by; twice for a second derivative "
                        "(required, except with --check of an expansion)")  # fmt: skip
    p.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS", help="e.g. A=4,3 or A=m,n or c=")
    p.add_argument("--layout", choices=["numerator", "denominator"], default=None,
                   help="numerator: a row per output entry (a scalar's derivative by a vector is a row); "
                        "denominator: the transpose (a gradient shaped like the variable). Default: "
                        "gradients shaped like the variable, Jacobians in numerator layout")  # fmt: skip
    p.add_argument("--name", default=None, help="base name of the files and functions (default from EXPR)")
    p.add_argument("-o", "--output", default="output", metavar="DIR", help="where to write (default: output)")
    p.add_argument("--format", default=",".join(FORMATS), help="comma-separated: tex, md, py (default all)")
    p.add_argument("--check", metavar="CLAIM", help="check a claimed derivative instead of writing files")
    p.add_argument("--size", action="append", default=[], metavar="DIM=N",
                   help="a dimension's size (at most 4) in the write-up's expansion (default 2), e.g. n=3")  # fmt: skip
    p.add_argument("--symmetric", action="append", default=[], metavar="S",
                   help="S is a symmetric matrix (repeat for more); its gradient is (G + Gᵀ)/2")  # fmt: skip
    p.add_argument("--diagonal", action="append", default=[], metavar="D",
                   help="D is a diagonal matrix (repeat for more); its gradient is diag(diag(G))")  # fmt: skip
    p.add_argument("--prove-at", action="append", default=[], metavar="DIM=N",
                   help="prove at these sizes (default: small distinct sizes that fit the expression)")  # fmt: skip
    p.add_argument("--transpose", choices=["top", "T"], default="top", help="write transposes as ^\\top or ^T")
    p.add_argument("--expanded", action="store_true", help="write sigma' as sigma (1 - sigma), tanh' as 1 - tanh^2")
    p.add_argument("--force", action="store_true", help="overwrite files that derive did not make")
    p.add_argument("--vec-form", action="store_true", help="generated code returns the Kronecker/vec matrix")
    p.add_argument("--max-length", type=int, metavar="N", help=f"longest expression (default {Limits.length})")
    p.add_argument("--max-depth", type=int, metavar="N", help=f"deepest nesting (default {Limits.depth})")
    p.add_argument("--max-entries", type=int, metavar="N", help=f"largest proof (default {Limits.entries} entries)")
    p.add_argument("--max-seconds", type=float, metavar="S",
                   help=f"CPU seconds for the derivation (default {Limits.seconds:g}); past it the proof is "
                        "'not finished'")  # fmt: skip
    p.add_argument("--version", action="version", version=f"derive {__version__}", help="print the version and exit")
    return p


def _short(text: str, limit: int = 40) -> str:
    """User text for a message: quoted, and cut when long."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def parse_shape(text: str) -> tuple[str, tuple[int | str, ...]]:
    """NAME=DIMS: ``A=4,3``, ``A=m,n``, ``c=`` (a scalar)."""
    name, eq, dims = text.partition("=")
    if not eq or not name.strip():
        raise DeriveError(f"--shape {_short(text)}: expected NAME=DIMS, e.g. A=4,3")
    parts = [d.strip() for d in dims.split(",")] if dims.strip() else []
    out: list[int | str] = []
    for d in parts:
        if re.fullmatch(r"\d{1,9}", d):
            out.append(int(d))
        elif re.fullmatch(r"\d+", d):
            raise DeriveError(f"--shape {_short(text)}: the size {_short(d, 12)} is out of range")
        elif re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", d):
            out.append(d)
        else:
            raise DeriveError(f"--shape {_short(text)}: {_short(d, 20)} is neither a size nor a dimension name")
    return name.strip(), tuple(out)


def parse_size(text: str, option: str = "--size", largest: int = 99) -> tuple[str, int]:
    """DIM=N with N from 1 to ``largest``."""
    name, eq, n = text.partition("=")
    n = n.strip()
    if not eq or not re.fullmatch(r"[1-9]\d{0,5}", n) or int(n) > largest:
        raise DeriveError(f"{option} {_short(text)}: expected DIM=N with N from 1 to {largest}, e.g. n=3")
    return name.strip(), int(n)


def _slug(expr: str) -> tuple[str, bool]:
    """Expression text as a name, operators spelled; and whether the name tells the expression exactly.

    It does when the text is a flat chain of plain names, whole numbers and
    operators: then the order of operators fixes the tree. Parentheses,
    calls, underscores and other characters lose something.
    """
    words, exact = [], True
    for tok in _TOKEN.findall(expr):
        if tok in SPELLED:
            words.append(SPELLED[tok])
        elif re.fullmatch(r"[A-Za-z0-9]+", tok):
            words.append(tok)
            exact = exact and tok not in SPELLED.values()
        else:
            exact = False
            cleaned = re.sub(r"[^A-Za-z0-9]+", "_", tok).strip("_")
            if cleaned:
                words.append(cleaned)
    return "_".join(words), exact


def _canonical(expr: str) -> str:
    """The expression as Python writes it back (parsed, never evaluated), so ``x*y`` and ``(x * y)`` agree."""
    import ast

    from .parse import python_ast

    try:
        return ast.unparse(python_ast(expr.strip()))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return " ".join(expr.split())


def default_name(expr: str, wrt: Sequence[str]) -> str:
    """A file and function name from the expression, distinct for distinct expressions.

    Operators are spelled: ``x * y`` by x -> ``x_times_y_by_x``, ``x @ y`` ->
    ``x_matmul_y_by_x``. Where the name cannot tell the expression exactly
    (parentheses, calls, a cut), a short hash of the expression follows:
    ``norm(A @ x - b)**2`` by x -> ``norm_A_matmul_x_minus_b_pow_2_<hash>_by_x``.
    """
    canonical = _canonical(expr)
    slug, exact = _slug(canonical)
    slug = slug if slug[:1].isalpha() else f"f_{slug}".rstrip("_")
    suffix = f"_by_{'_'.join(wrt)}" if wrt else ""
    if exact and len(slug) <= 40 and len(slug + suffix) <= NAME_LENGTH:
        return slug + suffix
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:6]
    room = min(40, NAME_LENGTH - len(suffix) - len(digest) - 1)
    if room < 1:
        return f"f_{digest}"
    head = slug[:room].rstrip("_") or "f"
    return f"{head}_{digest}{suffix}"


def _formats(text: str) -> tuple[str, ...]:
    wanted = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in wanted if f not in FORMATS]
    if bad or not wanted:
        raise DeriveError(
            f"--format: unknown format {_short(bad[0] if bad else text)}; choose from {', '.join(FORMATS)}"
        )
    return wanted


def file_names(name: str, formats: Sequence[str]) -> list[str]:
    """The files the formats make: tex gives a document and a fragment."""
    names = {"tex": [f"{name}.tex", f"{name}.fragment.tex"], "md": [f"{name}.md"], "py": [f"{name}.py"]}
    return [n for f in FORMATS if f in formats for n in names[f]]


def _check_sizes(sizes: dict[str, int], problem: Problem) -> None:
    """--size must name a symbolic dimension of the problem."""
    dims = sorted({str(s) for shape in problem.shapes.values() for d in shape for s in d.free_symbols})
    for name in sizes:
        if name in dims:
            continue
        if not dims:
            raise DeriveError(f"--size {name}: every shape here is a number, so there is no dimension to size")
        raise DeriveError(f"--size {_short(name, 20)}: no dimension of that name; the dimensions are {', '.join(dims)}")


def run(argv: Sequence[str]) -> int:
    """The command on ``argv``; DeriveError for bad input."""
    return _run(parser().parse_args(argv))


def limits_from(args: argparse.Namespace) -> Limits:
    """The limits the options ask for (defaults elsewhere)."""
    given = {}
    for field in ("length", "depth", "entries", "seconds"):
        value = getattr(args, f"max_{field}")
        if value is not None:
            if not value > 0 or value != value:
                raise DeriveError(f"--max-{field} must be a positive number, got {value}")
            given[field] = value
    return dataclasses.replace(Limits(), **given)


def _run(args: argparse.Namespace) -> int:
    limits = limits_from(args)
    budget = Budget(limits.seconds)  # the whole run's CPU time: derive() keeps within it, the write-up uses the rest
    progress = Progress(enabled=sys.stderr.isatty(), delay=float(os.environ.get("DERIVE_PROGRESS_DELAY", "2.0")))
    if len(args.wrt) > 2:
        raise DeriveError("--wrt may be given at most twice (a second derivative)")
    if not args.wrt and args.check is None:
        raise DeriveError("--wrt is required: the variable to differentiate by (only --check may go without it)")
    shapes = dict(parse_shape(s) for s in args.shape)
    wrt: str | tuple[str, ...] | None = None
    if args.wrt:
        wrt = args.wrt[0] if len(args.wrt) == 1 else tuple(args.wrt)
    if args.check is not None:
        from .claims import check

        verdict = check(args.expr, wrt, args.check, shapes, layout=args.layout, limits=limits,
                        symmetric=args.symmetric, diagonal=args.diagonal)  # fmt: skip
        print(verdict.message)
        return 0 if verdict.ok else 1
    formats = _formats(args.format)
    from .writeup import LARGEST_SIZE

    sizes = dict(parse_size(s, "--size", LARGEST_SIZE) for s in args.size)
    proof_sizes = dict(parse_size(s, "--prove-at", 1000) for s in args.prove_at)
    name = args.name or default_name(args.expr, args.wrt)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,60}", name):
        raise DeriveError(f"--name {_short(name)} must be a Python identifier of at most {NAME_LENGTH} characters")

    from .core import _wrt
    from .files import check_targets, write_all
    from .parse import parse, parse_structure

    structure = parse_structure(args.symmetric, args.diagonal)
    problem = parse(args.expr, shapes, structure=structure, limits=limits)  # bad input is reported first
    _wrt(wrt, problem)
    _check_sizes(sizes, problem)
    directory = Path(args.output)
    check_targets(directory, file_names(name, formats), args.force)  # before minutes of work, not after

    from .core import derive
    from .writeup import documents

    d = derive(args.expr, wrt, shapes, layout=args.layout, primes=not args.expanded, limits=limits,
               progress=progress, proof_sizes=proof_sizes, symmetric=args.symmetric,
               diagonal=args.diagonal)  # fmt: skip
    print(d)
    if d.proof.status == "refuted" or (d.numeric is not None and d.numeric.failed):
        print("derive: the matrix form failed its own check; nothing written", file=sys.stderr)
        return 1
    if d.form is None:
        print(_elementwise(d))
        if "py" in formats:
            formats = tuple(f for f in formats if f != "py")
            if not formats:
                raise DeriveError("no numpy module without a matrix form; ask for the write-up: --format tex,md")
            print(f"not written: {name}.py (numpy code needs a matrix form)")
    files = documents(d, name, formats, sizes, args.transpose, vec_form=args.vec_form, budget=budget)
    for path in write_all(files, directory, args.force):
        print(f"wrote {path}")
    return 0


ELEMENTWISE_CHARS = 4000  # longest element-wise derivative printed; the write-up has all of it


def _elementwise(d: Derivation) -> str:
    """The element-wise derivative at the proof's sizes, as text."""
    import numpy as np

    from .prove import shapes_text

    text = np.array2string(d.elementwise, separator=", ", formatter={"all": str}, max_line_width=100)
    if len(text) > ELEMENTWISE_CHARS:
        text = text[:ELEMENTWISE_CHARS] + " ... (the rest is in the write-up)"
    body = "\n".join(f"    {line}" for line in text.splitlines())
    return f"  element-wise, entry by entry at {shapes_text(d.proof.shapes)}:\n{body}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``derive`` command; ``derive serve ...`` (without --wrt) serves the web page."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["serve"] and "--wrt" not in argv:
            from .web.serve import main as serve

            return serve(argv[1:])
        return run(argv)
    except DeriveError as e:
        print(f"derive: error: {e}", file=sys.stderr)
        return 2
    except RecursionError:  # a safety net: every pass is iterative or bounded by --max-depth
        print("derive: error: the expression is nested too deeply to handle", file=sys.stderr)
        return 2
    except MemoryError:  # nothing is written before everything is computed
        print("derive: error: out of memory (ask for smaller sizes: --shape, --prove-at, --max-entries)",
              file=sys.stderr)  # fmt: skip
        return 2
    except KeyboardInterrupt:
        print("derive: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (derive ... | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
