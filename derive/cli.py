"""The ``derive`` command: print the matrix form, write the files.

Exit status: 0 success (or a claim that holds), 1 a claim that fails,
2 bad input (one line on stderr, nothing written), 130 interrupted.
``derive serve`` starts the local web page instead (:mod:`derive.web.serve`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .check import check
from .context import Limits, Progress
from .core import derive
from .errors import DeriveError
from .render import GENERATED_MARK
from .writeup import FORMATS, documents

USAGE = (
    "derive EXPR --wrt VAR [--wrt VAR] [--shape NAME=DIMS]... [--layout numerator|denominator]\n"
    "              [--name NAME] [-o DIR] [--format tex,md,py] [--check CLAIM] [options]\n"
    "       derive serve [--host 127.0.0.1] [--port 8000] [--workers N] [--budget SECONDS]"
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise DeriveError(message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="derive", usage=USAGE, description="Matrix calculus, derived as on paper and proven.")
    p.add_argument("expr", help="the expression, in numpy syntax, e.g. 'norm(A @ x - b)**2'")
    p.add_argument("--wrt", action="append", required=True, help="variable; give it twice for a second derivative")
    p.add_argument("--shape", action="append", default=[], metavar="NAME=DIMS", help="e.g. A=4,3 or A=m,n or c=")
    p.add_argument("--layout", choices=["numerator", "denominator"], default=None)
    p.add_argument("--name", default=None, help="base name of the files and functions (default from EXPR)")
    p.add_argument("-o", "--output", default="output", metavar="DIR", help="where to write (default: output)")
    p.add_argument("--format", default=",".join(FORMATS), help="comma-separated: tex, md, py (default all)")
    p.add_argument("--check", metavar="CLAIM", help="check a claimed derivative instead of writing files")
    p.add_argument("--size", action="append", default=[], metavar="DIM=N", help="sizes for the write-up's expansion")
    p.add_argument(
        "--prove-at",
        action="append",
        default=[],
        metavar="DIM=N",
        help="prove at these sizes (default: small distinct sizes that fit the expression)",
    )
    p.add_argument("--transpose", choices=["top", "T"], default="top", help="write transposes as ^\\top or ^T")
    p.add_argument("--expanded", action="store_true", help="write sigma' as sigma (1 - sigma), tanh' as 1 - tanh^2")
    p.add_argument("--force", action="store_true", help="overwrite files that derive did not make")
    p.add_argument("--vec-form", action="store_true", help="generated code returns the Kronecker/vec matrix")
    p.add_argument("--max-length", type=int, metavar="N", help=f"longest expression (default {Limits.length})")
    p.add_argument("--max-depth", type=int, metavar="N", help=f"deepest nesting (default {Limits.depth})")
    p.add_argument("--max-entries", type=int, metavar="N", help=f"largest proof (default {Limits.entries} entries)")
    p.add_argument(
        "--max-seconds",
        type=float,
        metavar="S",
        help=f"CPU seconds for the proof (default {Limits.seconds:g}); past it the proof is 'not finished'",
    )
    return p


def parse_shape(text: str) -> tuple[str, tuple[int | str, ...]]:
    """NAME=DIMS: ``A=4,3``, ``A=m,n``, ``c=`` (a scalar)."""
    name, eq, dims = text.partition("=")
    if not eq or not name.strip():
        raise DeriveError(f"--shape {text!r}: expected NAME=DIMS, e.g. A=4,3")
    parts = [d.strip() for d in dims.split(",")] if dims.strip() else []
    out: list[int | str] = []
    for d in parts:
        if re.fullmatch(r"\d+", d):
            out.append(int(d))
        elif re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", d):
            out.append(d)
        else:
            raise DeriveError(f"--shape {text!r}: {d!r} is neither a size nor a dimension name")
    return name.strip(), tuple(out)


def parse_size(text: str, option: str = "--size", largest: int = 99) -> tuple[str, int]:
    name, eq, n = text.partition("=")
    n = n.strip()
    if not eq or not re.fullmatch(r"[1-9]\d{0,5}", n) or int(n) > largest:
        raise DeriveError(f"{option} {text[:40]!r}: expected DIM=N with N from 1 to {largest}, e.g. n=3")
    return name.strip(), int(n)


def default_name(expr: str, wrt: Sequence[str]) -> str:
    """A file and function name from the expression: 'norm(A@x-b)**2' by x -> 'norm_A_x_b_2_by_x'."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", expr).strip("_")[:40].strip("_") or "f"
    slug = slug if slug[0].isalpha() else "f_" + slug
    return f"{slug}_by_{'_'.join(wrt)}"


def _formats(text: str) -> tuple[str, ...]:
    wanted = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in wanted if f not in FORMATS]
    if bad or not wanted:
        raise DeriveError(f"--format: unknown format {bad[0] if bad else text!r}; choose from {', '.join(FORMATS)}")
    return wanted


def write_all(files: dict[str, str], directory: Path, force: bool) -> list[Path]:
    """Write every file atomically (temporary file, then rename); all or nothing.

    Refuses a directory it cannot write and, without ``force``, a file that
    exists and was not made by derive.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DeriveError(f"cannot create the output directory {str(directory)!r}: {e.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise DeriveError(f"cannot write to the output directory {str(directory)!r}")
    targets = [directory / n for n in files]
    for t in targets:
        if t.exists() and not force and GENERATED_MARK not in t.read_text(errors="replace")[:400]:
            raise DeriveError(f"{str(t)!r} exists and was not made by derive; use --force to overwrite it")
    temps: list[tuple[str, Path]] = []
    try:
        for t in targets:
            fd, tmp = tempfile.mkstemp(prefix=f".{t.name}.", suffix=".tmp", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(files[t.name])
            temps.append((tmp, t))
        for tmp, t in temps:
            os.replace(tmp, t)
    except OSError as e:
        raise DeriveError(f"cannot write to {str(directory)!r}: {e.strerror}") from None
    finally:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return targets


def run(argv: Sequence[str]) -> int:
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
    progress = Progress(enabled=sys.stderr.isatty(), delay=float(os.environ.get("DERIVE_PROGRESS_DELAY", "2.0")))
    if len(args.wrt) > 2:
        raise DeriveError("--wrt may be given at most twice (a second derivative)")
    shapes = dict(parse_shape(s) for s in args.shape)
    wrt = args.wrt[0] if len(args.wrt) == 1 else tuple(args.wrt)
    if args.check is not None:
        verdict = check(args.expr, wrt, args.check, shapes, layout=args.layout, limits=limits)
        print(verdict.message)
        return 0 if verdict.ok else 1
    formats = _formats(args.format)
    sizes = dict(parse_size(s) for s in args.size)
    name = args.name or default_name(args.expr, args.wrt)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,60}", name):
        raise DeriveError(f"--name {name!r} must be a Python identifier")
    proof_sizes = dict(parse_size(s, "--prove-at", 1000) for s in args.prove_at)
    d = derive(args.expr, wrt, shapes, layout=args.layout, primes=not args.expanded, limits=limits,
               progress=progress, proof_sizes=proof_sizes)  # fmt: skip
    print(d)
    if d.form is None:
        return 0
    if d.proof.status == "refuted" or (d.numeric is not None and d.numeric.failed):
        print("derive: the matrix form failed its own check; nothing written", file=sys.stderr)
        return 1
    files = documents(d, name, formats, sizes, args.transpose, vec_form=args.vec_form)
    for path in write_all(files, Path(args.output), args.force):
        print(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``derive`` command; ``derive serve ...`` (without --wrt) serves the web page."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"] and "--wrt" not in argv:
        from .web.serve import main as serve

        return serve(argv[1:])
    try:
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
