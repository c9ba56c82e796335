"""The files derive writes: golden copies in output/, LaTeX that compiles, modules that run."""

import difflib
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from derive import derive
from derive.article import CNN, EXAMPLES, PART_TWO, generate
from derive.cli import main, parse_shape
from derive.files import write_all
from derive.gradcheck import check_grad
from derive.writeup import documents

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "output"


RUNS = [(n, e, w, []) for n, e, w in EXAMPLES] + PART_TWO


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory, tiny_cnn: dict) -> Path:
    """output/ made afresh, as ``python -m derive.article`` makes it.

    The tiny CNN's derivations are the session's (tests/conftest.py; their proofs
    are most of the work), written as the command writes them; the rest run
    through the command itself.
    """
    out = tmp_path_factory.mktemp("output")
    for name, expr, wrt, shapes in RUNS:
        if expr == CNN:
            d = tiny_cnn[wrt]
            declared = dict(parse_shape(s) for s in shapes)
            assert {n: tuple(int(x) for x in s) for n, s in d.shapes.items()} == {**declared, "W": (2, 2)}
            write_all(documents(d, name), out, force=False)
        else:
            flags = [f for s in shapes for f in ("--shape", s)]
            assert main([expr, "--wrt", wrt, *flags, "--name", name, "-o", str(out)]) == 0
    return out


def test_article_generate_writes_what_the_fixture_wrote(fresh: Path, tmp_path: Path, monkeypatch) -> None:
    # python -m derive.article: the same files; the tiny CNN is left out here (the fixture wrote it as the command does)
    monkeypatch.setattr("derive.article.PART_TWO", [r for r in PART_TWO if r[1] != CNN])
    assert generate(str(tmp_path)) == 0
    made = sorted(p.name for p in tmp_path.iterdir())
    assert len(made) == 4 * (len(EXAMPLES) + 2)
    for name in made:
        assert (tmp_path / name).read_bytes() == (fresh / name).read_bytes(), name


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_golden_files_match(fresh: Path, update: bool) -> None:
    made = sorted(p.name for p in fresh.iterdir() if not p.name.startswith("."))
    if update:
        for name in made:
            shutil.copy(fresh / name, GOLDEN / name)
    kept = sorted(p.name for p in GOLDEN.iterdir() if p.suffix in {".tex", ".md", ".py"})
    assert made == kept, "output/ has other files than derive makes; run pytest --update"
    diffs = []
    for name in made:
        want = (GOLDEN / name).read_text()
        got = (fresh / name).read_text()
        if want != got:
            diffs.append("".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True), name, name)))
    assert not diffs, "golden files differ (refresh with pytest --update):\n" + "\n".join(diffs)


def test_same_input_gives_identical_bytes(fresh: Path, tmp_path: Path) -> None:
    for name, expr, wrt in EXAMPLES:
        assert main([expr, "--wrt", wrt, "--name", name, "-o", str(tmp_path)]) == 0
    for p in tmp_path.iterdir():
        assert (fresh / p.name).read_bytes() == p.read_bytes(), p.name


ALL = [e[0] for e in EXAMPLES + PART_TWO]


@pytest.mark.parametrize("name", ALL)
def test_markdown_math_is_balanced(fresh: Path, name: str) -> None:
    text = (fresh / f"{name}.md").read_text()
    assert text.count("$$") % 2 == 0
    outside = re.sub(r"\$\$.*?\$\$", "", text, flags=re.S)
    assert outside.count("$") % 2 == 0
    for block in re.findall(r"\$\$(.*?)\$\$", text, flags=re.S):
        assert len(re.findall(r"\\left\W", block)) == len(re.findall(r"\\right\W", block))
        assert block.count("{") == block.count("}")
        assert block.count("\\begin{bmatrix}") == block.count("\\end{bmatrix}")


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed (.ci/run installs it)")
@pytest.mark.parametrize("name", ALL)
def test_tex_compiles(fresh: Path, tmp_path: Path, name: str) -> None:
    shutil.copy(fresh / f"{name}.tex", tmp_path / f"{name}.tex")
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:]
    assert (tmp_path / f"{name}.pdf").stat().st_size > 1000


@pytest.mark.parametrize(("name", "expr", "wrt"), EXAMPLES)
def test_module_matches_central_differences(fresh: Path, name: str, expr: str, wrt: str) -> None:
    mod = load(fresh / f"{name}.py")
    assert mod.__all__[:2] == [name, mod.__all__[1]] and mod.__all__[1].endswith(name)
    rng = np.random.default_rng(1)
    shapes = {"A": (3, 2), "W": (3, 2), "x": (2,), "b": (3,)}
    params = list(derive(expr, wrt).shapes)
    args = [rng.standard_normal(shapes[p]) for p in params]
    f, df, both = (getattr(mod, n) for n in mod.__all__)
    assert check_grad(f, df, args, wrt=params.index(wrt)) < 1e-7
    value, deriv = both(*args)
    np.testing.assert_allclose(value, f(*args))
    np.testing.assert_allclose(deriv, df(*args))


def test_generated_module_says_what_it_is(fresh: Path) -> None:
    text = (fresh / "least_squares.py").read_text()
    assert "Generated by derive from templates/module.py.j2" in text
    assert "Do NOT modify by hand" in text
    assert "norm(A @ x - b)**2" in text


def test_article_gradient_descent_reaches_the_solution(fresh: Path) -> None:
    # The article's 4x4 system, column vectors, learning rate 0.01, 5000 steps.
    mod = load(fresh / "least_squares.py")
    A = np.array([[1, 3, 2, -1], [5, 2, 1, -2], [0, 1, 2, 4], [1, 1, -1, -3]], dtype=np.float64)
    b = np.array([[9], [4], [24], [-12]], dtype=np.float64)
    x = np.random.default_rng(0).random((4, 1))
    for _ in range(5000):
        x -= 0.01 * mod.grad_least_squares(A, x, b)
    assert x.shape == (4, 1)
    np.testing.assert_allclose(x.ravel(), [1, 2, 3, 4], atol=1e-6)
    np.testing.assert_allclose(A @ x, b, atol=1e-5)


def test_column_vector_gradient_keeps_its_orientation(fresh: Path) -> None:
    mod = load(fresh / "least_squares.py")
    A = np.arange(6.0).reshape(3, 2)
    x, b = np.ones((2, 1)), np.ones((3, 1))
    g = mod.grad_least_squares(A, x, b)
    assert g.shape == (2, 1)
    np.testing.assert_allclose(g, 2 * A.T @ (A @ x - b))  # the article's own formula
