"""The write-ups as documents: each defect class of a paper written by hand, named and checked.

Every generated document (the golden ones in output/ and the write-ups of every identity in
tests/test_identities.py, the tiny CNN, the README's softmax cross-entropy and declared large
sizes) compiles without an overfull line, and its Markdown renders in KaTeX; the element-wise
steps stay at 2x2 whatever the declared sizes; notation is defined before it is used; named
results never take a variable's letter and are defined before they appear; rows of fractions
get room; the update step has no redundant parentheses; ∂F/∂x keeps one orientation.
"""

import importlib.util
import json
import random
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sympy as sp

from derive import DeriveError, derive
from derive.article import CNN
from derive.explicit import sympy_jacobian
from derive.printing import latex_name
from derive.typeset import TooWide, parse, rows, source, terms, width
from derive.writeup import ROOM, Eq, documents, expansion, sections, typeset

ROOT = Path(__file__).resolve().parent.parent


def _identities():
    """tests/test_identities.py, for its table of identities (pytest imports test files by path)."""
    spec = importlib.util.spec_from_file_location("identities", Path(__file__).with_name("test_identities.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CASES, CE, MLP = _identities().CASES, _identities().CE, _identities().MLP
GOLDEN = ROOT / "output"
PDFLATEX = shutil.which("pdflatex")
NODE = shutil.which("node")
KATEX = ROOT / "derive" / "web" / "static" / "vendor" / "katex" / "katex.min.js"
RENDER = Path(__file__).resolve().parent / "js" / "katex_render.js"
OVERFULL = re.compile(r"Overfull \\hbox \((\d+(?:\.\d+)?)pt too wide\)[^\n]*")
TOO_LONG = "too long to print"

# (name, expression, variable(s), declared shapes): every identity, then the cases the issue names
WRITEUPS = [(f"identity_{k:02d}", e, w, s) for k, (e, w, _claim, s, _text) in enumerate(CASES)] + [
    ("tiny_cnn_by_K", CNN, "K", {"X": (1, 3, 3), "K": (2, 1, 2, 2), "y": (2,)}),
    ("cross_entropy_by_W", CE, "W", None),  # the README's example, at default sizes
    ("cross_entropy_by_x", CE, "x", None),
    ("mlp_by_W1_at_12x12", MLP, "W1", {"W1": (12, 12), "W2": (12, 12)}),
    ("least_squares_at_40x40", "norm(A @ x - b)**2", "x", {"A": (40, 40)}),
    ("letters_of_the_names", "norm(V @ tanh(U @ h + z) + s - q)**2", "U", None),  # variables take u, v, h, z, s, q
]
DOCUMENTS = sorted(p.stem for p in GOLDEN.glob("*.tex") if not p.name.endswith(".fragment.tex"))
ALL = [f"output/{n}" for n in DOCUMENTS] + [f"test/{w[0]}" for w in WRITEUPS]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test write-ups (tex and md), next to copies of the golden ones."""
    out = tmp_path_factory.mktemp("writeups")
    for name, expr, wrt, shapes in WRITEUPS:
        d = derive(expr, wrt, shapes, numeric=False)
        for file, text in documents(d, name, ("tex", "md")).items():
            (out / "test").mkdir(exist_ok=True)
            (out / "test" / file).write_text(text)
    shutil.copytree(GOLDEN, out / "output")
    return out


def _pdflatex(tex: Path) -> str:
    """Compile ``tex`` in a directory of its own; the log."""
    work = tex.parent / f"build_{tex.stem}"
    work.mkdir(exist_ok=True)
    shutil.copy(tex, work / tex.name)
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name], cwd=work,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    log = (work / f"{tex.stem}.log").read_text(errors="replace")
    return log if run.returncode == 0 else "FAILED TO COMPILE\n" + log[-3000:]


@pytest.fixture(scope="module")
def logs(written: Path) -> dict[str, str]:
    """pdflatex's log of every document, two at a time."""
    if PDFLATEX is None:
        pytest.skip("pdflatex is not installed (.ci/run installs it)")
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = pool.map(lambda n: (n, _pdflatex(written / f"{n}.tex")), ALL)
        return dict(done)


# ----- no equation runs off the page -----


@pytest.mark.parametrize("name", ALL)
def test_no_line_runs_off_the_page(logs: dict[str, str], name: str) -> None:
    log = logs[name]
    assert not log.startswith("FAILED"), log
    over = [m.group(0) for m in OVERFULL.finditer(log) if float(m.group(1)) > 1.0]
    assert over == [], f"{name}: {over}"


def test_the_overfull_check_sees_an_overfull_line(tmp_path: Path) -> None:
    # The check above must be able to fail: a formula wider than the page is reported.
    if PDFLATEX is None:
        pytest.skip("pdflatex is not installed")
    wide = " + ".join(f"x_{{{k}}}" for k in range(80))
    (tmp_path / "wide.tex").write_text(
        "\\documentclass{article}\\usepackage{amsmath}\\begin{document}\\begin{align*}F &= "
        + wide
        + "\\end{align*}\\end{document}"
    )
    assert max(float(m.group(1)) for m in OVERFULL.finditer(_pdflatex(tmp_path / "wide.tex"))) > 100


def test_every_row_is_within_the_estimated_width(written: Path) -> None:
    # What the breaks rely on: each row of every display, its left side included, fits ROOM em.
    for md in sorted(written.glob("*/*.md")):
        for block in re.findall(r"\\begin\{aligned\}\n(.*?)\n\\end\{aligned\}", md.read_text(), flags=re.S):
            rows_ = block.split(" \\\\\n")
            left = max(width(r.partition("&")[0]) for r in rows_)
            for row in rows_:
                assert left + width(row.partition("&")[2]) <= ROOM + 0.5, (md.name, row[:200])


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed")
def test_width_estimate_follows_pdflatex(tmp_path: Path) -> None:
    # The estimate is within a few per cent of what pdflatex measures, and never far below it.
    formulas = [
        r"F = \left(a_{11} x_{1} + a_{12} x_{2} - b_{1}\right)^{2} + \left(a_{21} x_{1} - b_{2}\right)^{2}",
        r"\frac{\partial F}{\partial w_{11}} = x_{1} \left(1 - \sigma\left(b_{1} + w_{11} x_{1}\right)\right)",
        r"\nabla_{W} F = \begin{bmatrix} \dfrac{\partial F}{\partial w_{11}} & \dfrac{\partial F}{\partial w_{12}}"
        r" \end{bmatrix}",
        r"\mathbf{x}^{\top} \otimes \operatorname{diag}\left(\sigma'\left(W \mathbf{x} + \mathbf{b}\right)\right)",
        "\\frac{x_{1} \\left(- y_{1} e^{u_{2}} + y_{2} e^{u_{1}}\\right)}{e^{u_{1}} + e^{u_{2}}}",
    ]
    boxes = "".join(
        f"\\setbox0=\\hbox{{$\\displaystyle {f}$}}\\typeout{{W{k}=\\the\\wd0}}" for k, f in enumerate(formulas)
    )
    (tmp_path / "w.tex").write_text(f"\\documentclass[11pt]{{article}}\\usepackage{{amsmath,amssymb}}"
                                    f"\\begin{{document}}{boxes}\\end{{document}}")  # fmt: skip
    log = _pdflatex(tmp_path / "w.tex").replace("\n", "")
    measured = {int(k): float(v) / 11 for k, v in re.findall(r"W(\d+)=([0-9.]+)pt", log)}  # em at 11 pt
    for k, f in enumerate(formulas):
        assert 0.9 <= width(f) / measured[k] <= 1.15, (f, width(f), measured[k])


# ----- breaking long equations -----

LONG_SUM = " + ".join(
    f"w_{{{k}}} \\sigma\\left(b_{{{k}}} + w_{{{k}1}} x_{{1}} + w_{{{k}2}} x_{{2}}\\right)" for k in range(9)
)


def _balanced(row: str) -> bool:
    return len(re.findall(r"\\left\W", row)) == len(re.findall(r"\\right\W", row)) and row.count("{") == row.count("}")


def test_a_long_sum_breaks_before_its_operators() -> None:
    # F = w_0 σ(...) + ... + w_8 σ(...): every row fits, the continued rows start with "+".
    out = rows("F", LONG_SUM, 30.0)
    assert len(out) > 2
    assert out[0].startswith("F &= ")
    assert all(r.startswith("&\\quad {} + ") for r in out[1:])
    assert all(width(r.partition("&")[2]) <= 30.0 + 1 for r in out)
    assert all(_balanced(r) for r in out)
    assert " ".join(r.partition("= ")[2] if k == 0 else r.partition("{} ")[2] for k, r in enumerate(out)).split() == (
        LONG_SUM.split()
    )


def test_a_parenthesis_wider_than_a_row_opens_into_sized_delimiters() -> None:
    # 2 x_1 (long sum): the \left( ... \right) pair, which cannot span rows, becomes \bigl( ... \bigr).
    out = rows("F", f"2 x_{{1}} \\left({LONG_SUM}\\right)", 30.0)
    assert len(out) > 2 and all(_balanced(r) for r in out)
    assert "\\bigl(" in out[0] or "\\Bigl(" in out[0]
    assert out[-1].rstrip().endswith(("\\bigr)", "\\Bigr)"))


def test_a_fraction_wider_than_a_row_becomes_one_over_its_denominator() -> None:
    # a/b -> (1/b) a, and a breaks: no fraction can be split across rows.
    out = rows("F", f"\\frac{{2 \\left({LONG_SUM}\\right)}}{{e^{{u_{{1}}}} + e^{{u_{{2}}}}}}", 30.0)
    assert out[0].startswith("F &= \\frac{1}{e^{u_{1}} + e^{u_{2}}}")
    assert len(out) > 2 and all(_balanced(r) for r in out)


def test_a_product_continues_with_a_times() -> None:
    factor = "\\left(a_{1} + a_{2} + a_{3} + a_{4} + a_{5} + a_{6}\\right)"
    out = rows("F", " ".join([factor] * 6), 30.0)
    assert len(out) > 1 and all(r.startswith("&\\quad {} \\times ") for r in out[1:])


def test_what_cannot_break_is_refused_and_said_too_long() -> None:
    long_word = "\\operatorname{" + "a" * 120 + "}"
    with pytest.raises(TooWide):
        rows("F", long_word, 30.0)
    block = typeset([Eq("F", long_word)])
    assert block.rows == [f"F &= \\cdots \\quad \\text{{({TOO_LONG}: one long term)}}"]
    assert "Derivation" not in block.rows[0]


@pytest.mark.parametrize(
    "formula",
    [
        "\\sqrt{B} + \\sqrt[3]{x_{1}}",
        "\\sigma'\\left(\\xi\\right) \\tanh''\\left(u\\right)^{2}",
        "\\operatorname*{max}_{i} \\left.\\frac{a}{b}\\right|_{0} + \\mathbf{x}^{\\top} A^{-\\top}",
        "\\begin{bmatrix} \\dfrac{a}{b} & c \\\\[10pt] d & \\begin{bmatrix} e \\end{bmatrix} \\end{bmatrix}",
        "e^{- w_{11} x_{1}} \\cdot 2 \\, \\text{(too long)} \\quad \\bigl( x \\bigr)",
    ],
)
def test_reading_loses_nothing(formula: str) -> None:
    # Whatever the breaks do, they only put back the pieces they read.
    assert "".join(source(parse(formula)).split()) == "".join(formula.split())
    assert "".join(rows("F", formula, 40.0)[0].partition("&= ")[2].split()) == "".join(formula.split())


def test_terms_split_at_binary_operators_not_signs() -> None:
    assert [len(t) for t in terms(parse("-a + b - c"))] == [2, 2, 2]
    assert [len(t) for t in terms(parse("a \\odot -b"))] == [1, 3]


# ----- the element-wise steps are small -----


def _section(secs, title: str):
    return next(s for s in secs if s.title == title)


def _math(section) -> list[str]:
    return [r for b in section.blocks if b.math for r in b.rows]


def test_declared_sizes_stay_out_of_the_element_wise_steps() -> None:
    # ||Ax - b||^2 declared 40x40: the entries and partial derivatives are those at 2x2, written in
    # the same CPU time; 40x40 is in the problem statement and the numeric check.
    small = sections(derive("norm(A @ x - b)**2", "x"))
    t = time.process_time()
    d = derive("norm(A @ x - b)**2", "x", {"A": (40, 40)})
    big = sections(d)
    assert time.process_time() - t < 20  # the numeric check at 40x40 included; the write-up is a fraction
    for title in ("Element by element", "Partial derivatives"):
        assert _math(_section(big, title)) == _math(_section(small, title))
    text = "\n".join(documents(d, "lsq", ("md",))["lsq.md"].splitlines())
    assert "a_{22}" in text and "a_{33}" not in text
    assert "A \\in \\mathbb{R}^{40 \\times 40}" in text
    assert "at a small size ($m = 2$, $n = 2$)" in text
    assert "$A$ of size $40 \\times 40$" in text  # the numeric check ran at the declared sizes
    assert TOO_LONG not in text and "Derivation.elementwise" not in text


def test_the_write_up_takes_as_long_at_40x40_as_at_2x2() -> None:
    d2, d40 = derive(CE, "W", numeric=False), derive(CE, "W", {"W": (40, 40)}, numeric=False)
    t = time.process_time()
    documents(d2, "ce", ("tex", "md"))
    at2 = time.process_time() - t
    t = time.process_time()
    documents(d40, "ce", ("tex", "md"))
    at40 = time.process_time() - t
    assert at40 < 3 * at2 + 0.5, (at2, at40)


def test_expansion_sizes_above_four_are_refused() -> None:
    d = derive("norm(A @ x - b)**2", "x", numeric=False)
    with pytest.raises(DeriveError, match="at most 4"):
        sections(d, {"n": 12})


def test_no_entry_is_too_long_to_print(written: Path) -> None:
    # The tiny CNN's entries are long even at its small sizes: named intermediate results keep
    # every entry printable (it used to say "(25650 characters: see Derivation.elementwise)").
    for md in sorted(written.glob("*/*.md")):
        text = md.read_text()
        assert TOO_LONG not in text and "Derivation.elementwise" not in text, md.name
    cnn = (written / "output" / "tiny_cnn_by_K.md").read_text()
    assert "name the intermediate results" in cnn


NAMED_STEPS = [
    ("norm(W2 @ tanh(W1 @ x + b1) + b2 - y)**2", "x", None),  # h = tanh(W1 x + b1), r = W2 h + b2 - y
    ("-(y @ log(softmax(W @ x)))", "W", None),  # u = W x
    (CNN, "K", {"X": (1, 3, 3), "K": (2, 1, 2, 2), "y": (2,)}),  # the convolution, the pooled and the logits
    ("sum(sigmoid(W @ x + b))", ("x", "x"), {"W": (2, 3)}),  # a Hessian through u = W x + b
]


@pytest.mark.parametrize(("expr", "wrt", "shapes"), NAMED_STEPS, ids=[f"{n[0][:30]} by {n[1]}" for n in NAMED_STEPS])
def test_partials_through_named_results_equal_the_element_wise_jacobian(expr: str, wrt, shapes) -> None:
    # The write-up's partial derivatives go through the named results by the chain rule; with
    # the names written out again they equal SymPy's derivatives of the written-out entries.
    d = derive(expr, wrt, shapes, numeric=False)
    ex = expansion(d)
    assert ex.steps, "no named results"
    want = sympy_jacobian(d.problem.expr, d.shapes, ex.sizes, d.wrt, d.structure)[1]
    rng = random.Random(7)
    for got, ref in zip(ex.full.ravel(), want.ravel(), strict=True):
        got, ref = ex.written_out(got), sp.S(ref)
        point = {s: sp.Float(rng.uniform(-2, 2)) for s in got.free_symbols | ref.free_symbols}
        a, b = complex(got.xreplace(point).evalf()), complex(ref.xreplace(point).evalf())
        assert abs(a - b) <= 1e-9 * (1 + abs(b)), (got, ref)


def test_tensors_are_shown_slice_by_slice() -> None:
    secs = sections(derive(CNN, "K", {"X": (1, 3, 3), "K": (2, 1, 2, 2), "y": (2,)}, numeric=False))
    rows_ = _math(_section(secs, "Element by element"))
    assert any(
        r.startswith("K_{2,1,:,:} &= \\begin{bmatrix} k_{2111} & k_{2112} \\\\ k_{2121} & k_{2122}") for r in rows_
    )


# ----- layout -----


def test_each_lead_in_sentence_shares_a_paragraph_with_its_display(written: Path) -> None:
    # No blank line between a sentence and the display it introduces, so TeX never breaks the page
    # between them (\predisplaypenalty), and the document keeps sentences whole.
    for tex in sorted(written.glob("*/*.tex")):
        lines = tex.read_text().splitlines()
        for k, line in enumerate(lines):
            if line == "\\begin{align*}":
                assert lines[k - 1].strip(), f"{tex.name}:{k + 1}: a display with no sentence before it"
    head = (written / "output" / "least_squares.tex").read_text()
    assert "\\displaywidowpenalty=10000" in head and "\\interlinepenalty=10000" in head


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
def test_no_page_ends_with_a_lead_in_sentence(logs: dict[str, str], written: Path) -> None:
    # Each lead-in ends with a colon; the page that holds it holds the start of its display.
    for name in ALL:
        pdf = written / (name.replace("/", "/build_") + "/" + name.split("/")[1] + ".pdf")
        pages = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True).stdout
        assert pdf.exists() and pages.count("\f") >= 1, name
        for k, page in enumerate(pages.split("\f")[:-1]):
            lines = [line for line in page.splitlines() if line.strip() and not line.strip().isdigit()]
            assert not lines[-1].rstrip().endswith(":"), f"{name}, page {k + 1}: {lines[-1].strip()}"


def test_multi_row_steps_align_on_the_equals_sign() -> None:
    # u = W x, then "= [entries]" on the next row, aligned under the first "=".
    secs = sections(derive(CE, "W", numeric=False))
    rows_ = _math(_section(secs, "Element by element"))
    k = rows_.index("\\mathbf{u} &= W \\mathbf{x}")
    assert rows_[k + 1].startswith("&= \\begin{bmatrix} w_{11} x_{1} + w_{12} x_{2}")


def test_rows_of_fractions_get_room() -> None:
    # d sigma(Wx + b)/dW assembled from \dfrac entries; d log det X / dX with fractions as entries.
    secs = sections(derive("sigmoid(W @ x + b)", "W", numeric=False))
    assembled = _math(_section(secs, "Partial derivatives"))[-1]
    assert "\\dfrac" in assembled and assembled.count("\\\\[10pt]") == 1  # two rows, one gap
    secs = sections(derive("sum(log(X))", "X", numeric=False))  # ∂F/∂x_ij = 1/x_ij
    assembled = _math(_section(secs, "Partial derivatives"))[-1]
    assert "\\frac{1}{x_{11}}" in assembled and assembled.count("\\\\[4pt]") == 1


def test_every_matrix_of_fractions_in_every_write_up_has_row_space(written: Path) -> None:
    for md in sorted(written.glob("*/*.md")):
        for m in re.findall(r"\\begin\{bmatrix\}(.*?)\\end\{bmatrix\}", md.read_text()):
            if "\\dfrac" in m and "\\\\" in m:
                assert "\\\\ " not in m.replace("\\\\[10pt]", ""), (md.name, m[:120])


# ----- notation -----

PRIMED = [
    ("sigmoid(W @ x + b)", "x", "\\sigma'"),  # σ′ in the chain rule
    ("tanh(W @ x + b)", "W", "\\tanh'"),
    ("sum(sigmoid(W @ x + b))", ("x", "x"), "\\sigma''"),  # σ″ in the Hessian's matrix form
    ("relu(W @ x + b)", "x", "\\operatorname{step}"),
    (MLP, "W1", "\\tanh'"),
]


@pytest.mark.parametrize(("expr", "wrt", "mark"), PRIMED, ids=[f"{p[2]} in {p[0]}" for p in PRIMED])
def test_primes_are_defined_before_they_are_used(expr: str, wrt, mark: str) -> None:
    d = derive(expr, wrt, numeric=False)
    for text in documents(d, "f", ("tex", "md")).values():
        used = re.search(re.escape(mark) + r"(?!')", text)
        assert used is not None, mark
        defined = re.search(re.escape(mark) + r"\(\\xi\)", text)
        assert defined is not None and defined.start() == used.start(), (mark, text[used.start() - 200 : used.end()])
        assert "Notation: " in text[defined.start() - 200 : defined.start()]


def test_sigma_prime_is_written_out_where_it_is_defined() -> None:
    md = documents(derive("sigmoid(W @ x + b)", "x", numeric=False), "f", ("md",))["f.md"]
    assert (
        "$\\sigma'(\\xi) = \\sigma\\left(\\xi\\right) \\left(1 - \\sigma\\left(\\xi\\right)\\right)$, the derivative "
        "of $\\sigma$" in md
    )


NAME = r"\\mathbf\{[a-z]\}(?:_\{\d+\})?|[A-Za-z](?:_\{\d+\})?"  # u, U, bold u, u_{2}: a named result


def _letter(name: str) -> str:
    return re.sub(r"\\mathbf\{(\w)\}", r"\1", name)[0].lower()


def _math_of(block) -> list[str]:
    """A block's formulas: its display rows, or its sentences' $inline$ pieces."""
    return list(block.rows) if block.math else [m for line in block.lines for m in line.split("$")[1::2]]


NAMED = [
    ("norm(V @ tanh(U @ h + z) + s - q)**2", "U", None),  # the variables take the first letters names use
    ("-(y @ log(softmax(W @ x)))", "W", None),
    (MLP, "x", None),
    (CNN, "K", {"X": (1, 3, 3), "K": (2, 1, 2, 2), "y": (2,)}),
]


def _definitions(secs, d) -> list[tuple[int, str, str]]:
    """(position in the document's formulas, name, section) of each row defining a named result."""
    values = {"F", "\\mathbf{f}"} | {latex_name(n, vector=len(s) == 1) for n, s in d.shapes.items()}
    out, k = [], 0
    for s in secs:
        for b in s.blocks:
            for f in _math_of(b):
                lhs = f.partition(" &= ")[0] if b.math else ""
                if re.fullmatch(NAME, lhs) and lhs not in values:
                    out.append((k, lhs, s.title))
                k += 1
    return out


@pytest.mark.parametrize(("expr", "wrt", "shapes"), NAMED, ids=[n[0][:30] for n in NAMED])
def test_named_results_take_no_variable_letter(expr: str, wrt: str, shapes) -> None:
    # The chain rule used to call its steps z, u, v, ... whatever the variables were called.
    d = derive(expr, wrt, shapes, numeric=False)
    variables = {n.rstrip("0123456789").partition("_")[0].lower() for n in d.shapes}
    found = _definitions(sections(d), d)
    assert {t for _, _, t in found} >= {"The chain rule"}
    for _, name, title in found:
        assert _letter(name) not in variables, (title, name)


def test_the_vec_identity_takes_letters_the_write_up_leaves_free() -> None:
    # vec(A dX B) = (Bᵀ ⊗ A) vec(dX), but A and B are the expression's own matrices here.
    secs = sections(derive("A @ X @ B", "X", numeric=False))
    lead = " ".join(b.lines[-1] for b in _section(secs, "Matrix form").blocks if not b.math)
    identity = re.search(r"\\operatorname\{vec\}\((\w) \\, dX \\, (\w)\)", lead)
    assert identity is not None and not {identity.group(1), identity.group(2)} & {"A", "B", "X"}, lead


@pytest.mark.parametrize(("expr", "wrt", "shapes"), NAMED, ids=[n[0][:30] for n in NAMED])
def test_each_name_is_defined_before_it_appears(expr: str, wrt: str, shapes) -> None:
    # A name's first appearance in the write-up is its definition (no "..., where Z_1 = ..." after it).
    d = derive(expr, wrt, shapes, numeric=False)
    secs = sections(d)
    formulas = [f for s in secs for b in s.blocks for f in _math_of(b)]
    defs = _definitions(secs, d)
    for name in {n for _, n, _ in defs}:
        bare = r"(?<![\\\w{])" + re.escape(name) + r"(?![\w_])"  # U, not \operatorname{Unpool} or U_{1}
        token = re.compile(bare if len(name) == 1 else re.escape(name) + "(?!_)")
        first = next(j for j, f in enumerate(formulas) if token.search(f))
        assert first in {j for j, n, _ in defs if n == name}, (name, formulas[first][:120])


def test_the_matrix_form_names_its_parts_before_the_form() -> None:
    secs = sections(derive(CNN, "K", {"X": (1, 3, 3), "K": (2, 1, 2, 2), "y": (2,)}, numeric=False))
    s = _section(secs, "Matrix form")
    texts = [" ".join(b.lines) for b in s.blocks]
    names_at = next(k for k, t in enumerate(texts) if "Name the parts" in t)
    form_at = next(k for k, t in enumerate(texts) if "Recognise the matrix form" in t)
    assert names_at < form_at
    names = [r.partition(" &= ")[0] for r in s.blocks[names_at + 1].rows]
    form = " ".join(s.blocks[form_at + 1].rows)
    assert names and any(n in form for n in names)
    for k in range(names_at):
        assert not any(n in texts[k] for n in names), texts[k]


# ----- one orientation -----


def test_the_partial_by_a_vector_is_a_row_and_the_gradient_a_column() -> None:
    # d||Ax - b||^2/dx: ∂F/∂x (numerator layout) is a row throughout, ∇F = (∂F/∂x)^T a column.
    secs = sections(derive("norm(A @ x - b)**2", "x", numeric=False))
    lhs = "\\frac{\\partial F}{\\partial \\mathbf{x}}"
    problem = " ".join(b.lines[0] for b in _section(secs, "The problem").blocks if not b.math)
    assert "numerator layout: a row" in problem
    for s in secs:
        for row in (r for b in s.blocks for r in b.rows):
            if row.startswith(lhs + " &= "):
                rhs = row.partition(" &= ")[2]
                one_row = rhs.startswith("\\begin{bmatrix}") and "\\\\" not in rhs
                chain = "\\frac{\\partial F}{\\partial \\mathbf{u}}" in rhs
                assert one_row or chain or rhs.endswith("^{\\top} A"), (s.title, row)
    form = _math(_section(secs, "Matrix form"))
    assert "\\nabla_{\\mathbf{x}} F &= 2 A^{\\top} \\left(A \\mathbf{x} - \\mathbf{b}\\right)" in form


def test_the_gradient_by_a_matrix_is_assembled_as_the_gradient() -> None:
    # d tr(X A)/dX with X 2x3: assembled in X's shape it is ∇_X F, never called ∂F/∂X (which is Xᵀ-shaped).
    secs = sections(derive("trace(X @ A)", "X", {"X": (2, 3)}, numeric=False))
    assembled = _math(_section(secs, "Partial derivatives"))[-1]
    assert assembled.startswith("\\nabla_{X} F &= \\begin{bmatrix}") and assembled.count("\\\\") == 1  # 2 rows


# ----- the gradient-descent step -----


@pytest.mark.parametrize(
    ("expr", "wrt", "step"),
    [
        ("norm(A @ x - b)**2", "x", "\\mathbf{x} - 2 \\gamma A^{\\top} \\left(A \\mathbf{x} - \\mathbf{b}\\right)"),
        ("norm(A @ x - b)**2", "b", "\\mathbf{b} + 2 \\gamma \\left(A \\mathbf{x} - \\mathbf{b}\\right)"),
        ("x @ a", "x", "\\mathbf{x} - \\gamma \\mathbf{a}"),
        ("x @ a + x @ x", "x", "\\mathbf{x} - \\gamma \\left(...\\right)"),  # a sum keeps them: x - γ(2x + a)
    ],
)
def test_the_update_step_has_no_redundant_parentheses(expr: str, wrt: str, step: str) -> None:
    rows_ = _math(_section(sections(derive(expr, wrt, numeric=False)), "Gradient descent"))
    got = rows_[0].partition(" &= ")[2]
    head, dots, tail = step.partition("...")
    assert got.startswith(head) and got.endswith(tail) and (dots or got == step), got
    assert len(rows_) == 1


# ----- KaTeX -----


def _pieces(md: Path) -> list[tuple[bool, str, str]]:
    """Every display ($$...$$) and inline ($...$) formula of a Markdown file, outside code spans."""
    text = re.sub(r"`[^`]*`", "", md.read_text())
    out = [(True, m.strip(), md.name) for m in re.findall(r"\$\$(.*?)\$\$", text, flags=re.S)]
    rest = re.sub(r"\$\$.*?\$\$", "", text, flags=re.S)
    out += [(False, m, md.name) for m in re.findall(r"\$([^$]+)\$", rest)]
    return out


@pytest.mark.skipif(NODE is None, reason="node is not installed (.ci/run installs it)")
def test_every_formula_of_every_markdown_renders_in_katex(written: Path) -> None:
    # The KaTeX the web page vendors, in strict mode (an error, not a warning, for anything it
    # would render differently from LaTeX); every $$ and $ block of every generated .md.
    pieces = [p for md in sorted(written.glob("*/*.md")) for p in _pieces(md)]
    assert len(pieces) > 1000
    run = subprocess.run([NODE, str(RENDER), str(KATEX)], input=json.dumps(pieces), capture_output=True,
                         text=True, timeout=300, check=True)  # fmt: skip
    result = json.loads(run.stdout)
    assert result["bad"] == []
    assert result["rendered"] == len(pieces)


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_katex_check_catches_what_katex_refuses() -> None:
    pieces = [[True, "\\begin{aligned} a &= \\left( b \\\\ &= c \\right) \\end{aligned}", "bad"], [False, "x^", "bad"]]
    run = subprocess.run([NODE, str(RENDER), str(KATEX)], input=json.dumps(pieces), capture_output=True,
                         text=True, timeout=60, check=True)  # fmt: skip
    assert len(json.loads(run.stdout)["bad"]) == 2
