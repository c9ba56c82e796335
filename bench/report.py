"""Markdown: the summary table of every workload, one detail table per workload, and number formats."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bench.timing import ATOL, RTOL, Case
from bench.variants import AUTOGRAD, CAREFUL, DEFAULT, DERIVE, JAX, NAIVE, ONE, Generated, label
from bench.workloads import Size, Workload


@dataclass
class Result:
    """One workload measured at one size."""

    workload: Workload
    size: Size
    case: Case
    generated: Generated
    where: str = ""  # derive's largest operations (bench.profile.summary)


def fmt_time(s: float) -> str:
    if not math.isfinite(s):
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def fmt_ratio(r: float) -> str:
    if not math.isfinite(r):
        return "—"
    return f"{r:.2f}×" if r < 100 else f"{r:.0f}×"


def fmt_spread(q: tuple[float, float, float]) -> str:
    """'median× (25th–75th)'."""
    if not math.isfinite(q[0]):
        return "—"
    return f"{fmt_ratio(q[0])} ({q[1]:.2f}–{q[2]:.2f})"


def fmt_bytes(b: float) -> str:
    if b < 2**20:
        return f"{b / 2**10:.0f} KiB"
    return f"{b / 2**20:.1f} MiB"


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def reference(threads: str) -> str:
    """The careful numpy variant a variant is compared with: the same BLAS threads (the peers: default)."""
    return label(CAREFUL, threads)


def versus(c: Case, name: str, threads: str, other: str, other_threads: str) -> tuple[float, float, float]:
    return c.ratio(label(name, threads), label(other, other_threads))


def peak_cell(c: Case) -> str:
    d, k = c.peak.get(label(DERIVE, DEFAULT)), c.peak.get(label(CAREFUL, DEFAULT))
    if d is None or k is None:
        return "—"
    return f"{fmt_bytes(d)} / {fmt_bytes(k)} ({fmt_ratio(d / max(k, 1))})"


def agreement_cell(c: Case) -> str:
    bad = [k for k, ok in c.agrees.items() if not ok]
    if bad:
        return "**NO**: " + ", ".join(f"{k} ({c.errors[k]:.0e})" for k in bad)
    return f"yes ({max(c.errors.values()):.0e})"


def summary(results: Sequence[Result]) -> str:
    """One row per workload and size: derive against careful numpy and jax.jit in both thread settings, memory."""
    header = [
        "workload",
        "size",
        "careful numpy (1 thread)",
        "derive ÷ careful, 1 thread",
        "derive ÷ careful, default",
        "derive ÷ jax.jit, 1 thread",
        "derive ÷ jax.jit, default",
        "peak memory derive / careful",
        "all agree (max rel. diff.)",
    ]
    rows = []
    for r in results:
        c = r.case
        rows.append(
            [
                r.workload.title,
                r.size.label,
                fmt_time(c.median(label(CAREFUL, ONE))),
                fmt_spread(versus(c, DERIVE, ONE, CAREFUL, ONE)),
                fmt_spread(versus(c, DERIVE, DEFAULT, CAREFUL, DEFAULT)),
                fmt_spread(versus(c, DERIVE, ONE, JAX, DEFAULT)),
                fmt_spread(versus(c, DERIVE, DEFAULT, JAX, DEFAULT)),
                peak_cell(c),
                agreement_cell(c),
            ]
        )
    return table(header, rows)


def _variant_rows(w: Workload) -> list[tuple[str, str, str]]:
    """(row label, variant name, threads) in the detail table's order."""
    names = [(DERIVE, "derive (generated)"), (CAREFUL, "careful numpy")]
    if w.naive is not None:
        names.append((NAIVE, f"naive numpy {w.naive_label}"))
    rows = [(f"{text}, {t}", n, t) for t in (ONE, DEFAULT) for n, text in names]
    return rows + [("`jax.jit`, default threads", JAX, DEFAULT), ("`autograd`, default threads", AUTOGRAD, DEFAULT)]


def detail(w: Workload, results: Sequence[Result], careful_doc: str) -> list[str]:
    """A workload's table (variants × sizes, each cell: median time (÷ careful numpy in the same threads,
    quartiles)), the code measured and how it was proven."""
    rows = []
    for text, name, threads in _variant_rows(w):
        cells = []
        for r in results:
            c, lab = r.case, label(name, threads)
            if lab not in c.agrees:
                cells.append("—")
            elif not c.agrees[lab]:
                cells.append(f"**disagrees** ({c.errors[lab]:.0e}): not timed")
            else:
                k = c.rounds(lab)
                few = "" if k >= c.rounds(reference(threads)) else f", {k} round{'s' * (k != 1)}"
                cells.append(f"{fmt_time(c.median(lab))} ({fmt_spread(c.ratio(lab, reference(threads)))}{few})")
        if any(cell != "—" for cell in cells):
            rows.append([text, *cells])
    rounds = ", ".join(
        f"{r.size.label}: {r.case.rounds(reference(DEFAULT))} rounds × {r.case.calls[reference(DEFAULT)]} calls"
        for r in results
    )
    body = results[0].generated.body
    return [
        f"#### {w.title}: `{w.expr}`",
        "",
        table(["variant", *[r.size.label for r in results]], rows),
        "",
        f"Rounds: {rounds}. derive's proof: {results[0].generated.proof}.",
        "",
        f"- derive's generated `{w.kind}_f` body: `{body}`",
        f"- careful numpy: {careful_doc}",
        "- where derive's time goes (each operation of its body timed alone, BLAS on 1 thread; ≥ 5% shown): "
        + "; ".join(f"at {r.size.label}: {r.where}" for r in results),
        *[f"- {note}" for note in w.notes],
        "",
    ]


AGREEMENT = (
    f"Every variant's result is checked against careful numpy (default threads) before it is timed: "
    f"`np.allclose(got, careful, rtol={RTOL:g}, atol={ATOL:g} * max|careful|)`; one that disagrees is marked and "
    "not timed."
)
