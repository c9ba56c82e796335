"""The web server's JSON API, through Starlette's test client.

Results are checked against mathematics computed here (numpy, SymPy), bad
input against the command line's own one-line message, and the limits
(body size, time budget, a full pool) by synchronising on events, never
on the clock.
"""

from __future__ import annotations

import dataclasses
import html.parser
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import threading
import types
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

pytest.importorskip("starlette", reason="the web extra is not installed: pip install -e '.[web]'")
pytest.importorskip("httpx", reason="Starlette's test client needs httpx")

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2; httpx still works
    warnings.filterwarnings("ignore", "Using `httpx` with")
    from starlette.testclient import TestClient

from derive import Limits, derive
from derive.article import CNN
from derive.cli import main as cli_main
from derive.web.app import CSP, EXAMPLES, STATIC, create_app

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with")

ROOT = Path(__file__).resolve().parent.parent
LSQ = {"expr": "norm(A @ x - b)**2", "wrt": "x"}


def _load(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


test_parse = _load("derive_test_parse", Path(__file__).with_name("test_parse.py"))  # the hostile set, not a copy


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app()) as c:
        yield c


def post(c: TestClient, path: str, body: object) -> object:
    return c.post(path, json=body)


def module_from(text: str, name: str) -> types.ModuleType:
    """Import a downloaded .py (derive's generated code) from its text."""
    m = types.ModuleType(name)
    exec(compile(text, f"<{name}>", "exec"), m.__dict__)
    return m


# ----- results -----


def test_the_articles_example(client: TestClient) -> None:
    # d||Ax-b||^2/dx = 2 A^T (A x - b)
    r = post(client, "/api/derive", LSQ)
    assert r.status_code == 200
    j = r.json()
    assert j["kind"] == "gradient"
    assert j["text"] == "2 Aᵀ(A x - b)"
    assert "A^{\\top}" in j["latex"]
    assert j["proof"]["status"] == "proven" and j["proof"]["ok"]
    assert j["proof"]["exact"] is True and j["proof"]["bits"] is None
    assert j["proof"]["sizes"] == {"A": [2, 3], "x": [3], "b": [2]}
    assert j["notes"] == [] and j["conventions"] == []
    assert j["numeric"]["ok"] and j["numeric"]["error"] < 1e-6
    assert "denominator layout" in j["convention"]
    titles = [s["title"] for s in j["steps"]]
    assert titles[:3] == ["The problem", "Element by element", "Partial derivatives"]
    assert "What was proven" in titles
    # The downloaded module computes 2 A^T (A x - b), checked here with numpy.
    py = post(client, "/api/download", {**LSQ, "format": "py", "name": "lsq"})
    assert py.status_code == 200
    assert py.headers["content-disposition"] == 'attachment; filename="lsq.py"'
    m = module_from(py.text, "lsq")
    rng = np.random.default_rng(1)
    A, x, b = rng.standard_normal((5, 3)), rng.standard_normal(3), rng.standard_normal(5)
    np.testing.assert_allclose(m.grad_lsq(A, x, b), 2 * A.T @ (A @ x - b), rtol=1e-12)


def test_downloads_are_made_in_memory(client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    tex = post(client, "/api/download", {**LSQ, "format": "tex"})
    md = post(client, "/api/download", {**LSQ, "format": "md"})
    assert tex.status_code == md.status_code == 200
    assert tex.text.lstrip().startswith("%") and "\\begin{document}" in tex.text and "\\end{document}" in tex.text
    assert "$$" in md.text and "`norm(A @ x - b)**2`" in md.text
    assert tex.headers["content-disposition"].endswith('.tex"')
    assert list(tmp_path.iterdir()) == []


def test_a_hessian(client: TestClient) -> None:
    # d^2||Ax-b||^2/dx dx = 2 A^T A
    r = post(client, "/api/derive", {"expr": "norm(A @ x - b)**2", "wrt": "x, x"})
    assert r.status_code == 200
    j = r.json()
    assert j["kind"] == "hessian" and j["wrt"] == ["x", "x"]
    assert j["text"] == "2 Aᵀ A"
    assert j["proof"]["ok"] and j["numeric"]["ok"]
    py = post(client, "/api/download", {"expr": "norm(A @ x - b)**2", "wrt": ["x", "x"], "format": "py", "name": "h"})
    A = np.random.default_rng(2).standard_normal((4, 3))
    np.testing.assert_allclose(module_from(py.text, "h").hess_h(A, np.ones(3), np.ones(4)), 2 * A.T @ A, rtol=1e-12)


def test_shapes_and_layout(client: TestClient) -> None:
    # dz/dW for z = Wx + b, numerator layout: x^T (x) I, one row per entry of z
    r = post(client, "/api/derive", {"expr": "W @ x + b", "wrt": "W", "shapes": "W=3,2", "layout": "numerator"})
    assert r.status_code == 200
    j = r.json()
    assert j["text"] == "xᵀ ⊗ I"
    assert j["shapes"] == {"W": [3, 2], "x": [2], "b": [3]}
    # The proof writes out small sizes of its own, W never square (a transpose cannot pass by accident);
    # the numeric check runs the generated code at the declared sizes.
    m, n = j["proof"]["sizes"]["W"]
    assert m != n and j["proof"]["sizes"]["x"] == [n] and j["proof"]["sizes"]["b"] == [m]
    assert j["numeric"]["ok"] and j["numeric"]["sizes"] == {"W": [3, 2], "x": [2], "b": [3]}
    assert j["layout"] == "numerator"
    same = post(client, "/api/derive", {"expr": "W @ x + b", "wrt": ["W"], "shapes": {"W": [3, 2]}})
    assert same.json()["text"] == j["text"]


def test_a_check_that_holds(client: TestClient) -> None:
    r = post(client, "/api/check", {**LSQ, "claim": "2 * A.T @ (A @ x - b)"})
    assert r.status_code == 200
    assert r.json()["ok"] is True and r.json()["counterexample"] is None


def test_a_check_that_fails(client: TestClient) -> None:
    r = post(client, "/api/check", {**LSQ, "claim": "A.T @ (A @ x - b)"})
    assert r.status_code == 200
    j = r.json()
    assert j["ok"] is False
    assert j["mistake"] == "a missing factor of 2"
    cx = j["counterexample"]
    assert cx["entry"] == [1]
    claimed, correct = sp.sympify(cx["claimed"]), sp.sympify(cx["correct"])
    assert sp.expand(correct - 2 * claimed) == 0 and sp.expand(correct - claimed) != 0
    assert j["message"].startswith("the claim fails at")
    assert "missing factor of 2" in j["message"]


def test_a_claim_about_the_value(client: TestClient) -> None:
    # The article's expansion of Ax - b, whose second row subtracts b1: wrong in entry 2.
    r = post(
        client, "/api/check", {"expr": "A @ x - b", "wrt": "", "claim": "[a11*x1 + a12*x2 - b1, a21*x1 + a22*x2 - b1]"}
    )
    assert r.status_code == 200
    assert r.json()["ok"] is False and r.json()["counterexample"]["entry"] == [2]


# ----- symmetric and diagonal variables, notes, conventions, how sure the proof is -----

GAUSS = "(x - m) @ inv(S) @ (x - m)"  # the exponent of a Gaussian's density


def test_symmetric_and_diagonal_variables_reach_the_engine(client: TestClient) -> None:
    # d/dm (x - m)^T S^-1 (x - m) = -(S^-T + S^-1)(x - m), with S symmetric: what derive says in-process
    r = post(client, "/api/derive", {"expr": GAUSS, "wrt": "m", "symmetric": "S"})
    assert r.status_code == 200
    assert r.json()["text"] == derive(GAUSS, "m", symmetric=("S",)).text
    # by a symmetric S the gradient is sym(G) = (G + G^T)/2, not G: the answer differs from the plain one
    sym = post(client, "/api/derive", {"expr": GAUSS, "wrt": "S", "symmetric": ["S"]}).json()
    assert sym["text"] == derive(GAUSS, "S", symmetric=("S",)).text != derive(GAUSS, "S").text
    assert sym["proof"]["ok"] and sym["numeric"]["ok"]
    assert len(sym["conventions"]) == 1 and "sym(G) = (G + Gᵀ)/2" in sym["conventions"][0]
    # by a diagonal D: diag(diag(G)), G = x x^T
    diag = post(client, "/api/derive", {"expr": "x @ D @ x", "wrt": "D", "diagonal": "D"}).json()
    assert diag["text"] == "diag(x^∘2)" and diag["proof"]["ok"]
    assert diag["conventions"] == [derive("x @ D @ x", "D", diagonal=("D",)).notes[0]]
    # a check compares against the symmetric S's entries: 2 S x holds only when s12 = s21
    claim = {"expr": "x @ S @ x", "wrt": "x", "claim": "2 * S @ x"}
    assert post(client, "/api/check", {**claim, "symmetric": "S"}).json()["ok"] is True
    assert post(client, "/api/check", claim).json()["ok"] is False


def test_notes_and_conventions_come_with_the_result(client: TestClient) -> None:
    # a shape chosen for the user: 'a' could be a scalar, and is taken as a vector
    j = post(client, "/api/derive", {"expr": "sum(a * x)", "wrt": "x"}).json()
    assert j["notes"] == list(derive("sum(a * x)", "x").problem.notes)
    assert len(j["notes"]) == 1 and j["notes"][0].startswith("'a', 'x' taken as vectors of one length")
    # the subgradient conventions of relu and max pooling
    j = post(client, "/api/derive", {"expr": "sum(maxpool(relu(X), 2) * G)", "wrt": "X", "shapes": "X=4,4"}).json()
    assert j["notes"] == [] and j["proof"]["ok"]
    assert any(c.startswith("relu′(0) = 0") for c in j["conventions"])
    assert any(c.startswith("max pooling: each window's gradient goes to its maximum") for c in j["conventions"])


def test_a_probabilistic_proof_says_so() -> None:
    from dataclasses import replace

    from derive.web.engine import derivation_json

    d = derive("norm(A @ x - b)**2", "x")
    exact = derivation_json(d)["proof"]
    assert (exact["ok"], exact["exact"], exact["bits"]) == (True, True, None)
    likely = derivation_json(replace(d, proof=replace(d.proof, exact=False, bits=90)))["proof"]
    assert (likely["ok"], likely["exact"], likely["bits"]) == (True, False, 90)


# ----- bad input -----


def _jsonable(value: object) -> object:
    """JSON for a value from the parser's hostile table; bytes become an object (not a string)."""
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _cli_line(text: str, capsys: pytest.CaptureFixture) -> str:
    assert cli_main(["--wrt", "x", "--format", "py", "-o", "never-written", "--", text]) == 2
    err = capsys.readouterr().err
    assert err.startswith("derive: error: ") and err.count("\n") == 1
    return err[len("derive: error: ") : -1]


def test_every_hostile_string_is_a_400_with_one_line_and_no_side_effect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    canary_before = Path(test_parse.CANARY).exists()
    cases = [p.values for p in test_parse.BAD]
    assert len(cases) >= 100
    compared = 0
    with TestClient(create_app()) as c:
        for text, shapes, fragments in cases:
            body = {"expr": _jsonable(text), "wrt": "x", "shapes": _jsonable(shapes)}
            for path in ("/api/derive", "/api/check", "/api/download"):
                extra = {"claim": "x"} if path == "/api/check" else {"format": "py"} if path == "/api/download" else {}
                r = c.post(path, json={**body, **extra})
                assert r.status_code == 400, (path, text, r.text)
                assert r.headers["content-type"].startswith("application/json")
                message = r.json()["error"]
                assert message.strip() and "\n" not in message and "Traceback" not in message, message
                if path == "/api/derive" and isinstance(text, str) and shapes is None:
                    for fragment in fragments:
                        assert fragment in message, (fragment, message)
                    assert message == _cli_line(text, capsys)  # the line the command prints
                    compared += 1
    assert compared >= 80
    assert list(work.iterdir()) == [] and list(home.iterdir()) == []
    assert canary_before or not Path(test_parse.CANARY).exists()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"expr": "x"}, "'wrt' is empty"),
        ({"wrt": "x"}, "'expr' must be a string"),
        ({"expr": "x", "wrt": 3}, "'wrt' must be"),
        ({"expr": "x", "wrt": "x", "shapes": 5}, "'shapes' must be"),
        ({"expr": "x", "wrt": "x", "shapes": "x=3x"}, "--shape 'x=3x'"),
        ({"expr": "x", "wrt": "x", "layout": "sideways"}, "unknown layout 'sideways'"),
        ({"expr": "x", "wrt": "x", "symmetric": "S"}, "'S' is declared symmetric but is not in the expression"),
        ({"expr": "x @ x", "wrt": "x", "diagonal": "x"}, "'x' is declared diagonal, so it must be a square matrix"),
        ({"expr": "x", "wrt": "x", "symmetric": 5}, "'symmetric' must be a name"),
        ({"expr": "x", "wrt": "z"}, "variable 'z' is not in the expression"),
        ({"expr": "x", "wrt": "x", "format": "pdf"}, None),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_fields_are_named(client: TestClient, body: object, fragment: str | None) -> None:
    r = post(client, "/api/derive", body)
    if fragment is None:  # a derivation ignores 'format'; a download does not
        assert r.status_code == 200
        r = post(client, "/api/download", body)
        fragment = "'format' must be one of tex, md, py"
    assert r.status_code == 400
    assert fragment in r.json()["error"]


def test_not_json_and_wrong_content_type(client: TestClient) -> None:
    r = client.post("/api/derive", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = client.post("/api/derive", content=json.dumps(LSQ), headers={"content-type": "text/plain"})
    assert r.status_code == 415  # a cross-site form cannot send JSON without a preflight
    deep = "[" * 100_000 + "]" * 100_000
    r = client.post("/api/derive", content=deep[:60_000], headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_body_size_limit() -> None:
    with TestClient(create_app(body_limit=1000)) as c:
        small = {"expr": "x", "wrt": "x", "pad": "a" * 900}
        assert c.post("/api/derive", json=small).status_code == 200
        big = {"expr": "x", "wrt": "x", "pad": "a" * 1000}
        r = c.post("/api/derive", json=big)
        assert r.status_code == 413 and "limit is 1000" in r.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts as it reads
            yield b'{"expr": "x", "wrt": "x", "pad": "'
            for _ in range(20):
                yield b"a" * 100
            yield b'"}'

        r = c.post("/api/derive", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"] == "the request body is over the limit of 1000 bytes"


def test_the_default_body_limit_is_64_kb(client: TestClient) -> None:
    r = post(client, "/api/derive", {"expr": "x" * 70_000, "wrt": "x"})
    assert r.status_code == 413


def test_host_and_origin_checks() -> None:
    with TestClient(create_app(allowed_hosts=("127.0.0.1", "localhost")), base_url="http://127.0.0.1:8000") as c:
        assert c.get("/api/info").status_code == 200
        r = c.get("/", headers={"host": "attacker.example"})  # DNS rebinding
        assert r.status_code == 400 and r.headers["content-security-policy"] == CSP
        r = c.post("/api/derive", json=LSQ, headers={"origin": "http://attacker.example"})
        assert r.status_code == 403
        assert c.post("/api/derive", json=LSQ, headers={"origin": "null"}).status_code == 403
        assert c.post("/api/derive", json=LSQ, headers={"origin": "http://127.0.0.1:8000"}).status_code == 200


# ----- security headers and escaping -----


def test_csp_on_every_response() -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug\nwith a second line")

    with TestClient(create_app(derive_fn=broken), raise_server_exceptions=False) as c:
        responses = [
            c.get("/"),
            c.get("/api/info"),
            c.get("/static/app.js"),
            c.get("/static/vendor/katex/katex.min.css"),
            c.get("/static/vendor/katex/fonts/KaTeX_Main-Regular.woff2"),
            c.get("/nowhere"),
            c.get("/api/derive"),  # 405
            c.post("/api/derive", json={"expr": 5, "wrt": "x"}),  # 400, refused before the engine
            c.post("/api/derive", content=b"x", headers={"content-type": "text/plain"}),  # 415
            c.post("/api/derive", json={"expr": "x", "wrt": "x"}),  # 500 from the broken engine
        ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 404, 405, 400, 415, 500]
    for r in responses:
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-content-type-options"] == "nosniff"
    error = responses[-1].json()["error"]
    assert "internal error" in error and "\n" not in error and "a bug" not in error
    assert "script-src 'self';" in CSP and "unsafe" not in CSP and "default-src 'none'" in CSP


def test_the_page_has_no_inline_script_or_style() -> None:
    class Scan(html.parser.HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.problems: list[str] = []
            self.sources: list[str] = []
            self.in_script = False

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            self.problems += [f"{tag} {k}" for k in a if k == "style" or k.startswith("on")]
            if tag == "style":
                self.problems.append("<style>")
            if tag == "script":
                self.in_script = True
                self.sources.append(a.get("src") or "")
            for k in ("src", "href"):
                if a.get(k) and a[k].startswith(("http:", "https:", "//")):
                    self.problems.append(f"{tag} loads {a[k]}")

        def handle_endtag(self, tag: str) -> None:
            self.in_script = self.in_script and tag != "script"

        def handle_data(self, data: str) -> None:
            if self.in_script and data.strip():
                self.problems.append("inline script")

    scan = Scan()
    scan.feed((STATIC / "index.html").read_text())
    assert scan.problems == []
    assert scan.sources == ["/static/vendor/katex/katex.min.js", "/static/app.js"]


def test_the_script_puts_text_into_the_page_only_as_text() -> None:
    js = (STATIC / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "renderToString", "eval(",
                 "new Function", "setAttribute(\"style\""):  # fmt: skip
        assert sink not in js, sink
    assert "textContent" in js
    assert "http://" not in js.replace('"http://www.w3.org', "") and "https://" not in js


def test_markup_in_an_expression_comes_back_as_json_text(client: TestClient) -> None:
    r = post(client, "/api/derive", {"expr": "<script>alert(1)</script>", "wrt": "x"})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/json"
    assert "column 1" in r.json()["error"]
    r = post(client, "/api/derive", {"expr": "x", "wrt": "<img/src/onerror=alert(1)>"})
    assert r.status_code == 400 and "'<img/src/onerror=alert(1)>'" in r.json()["error"]


def test_variable_names_that_look_like_latex_commands(client: TestClient) -> None:
    # Names are identifiers, so LaTeX gets them as plain letters, never as \href or \url.
    r = post(client, "/api/derive", {"expr": "norm(href @ url - textbf)**2", "wrt": "url"})
    assert r.status_code == 200
    latex = r.json()["latex"]
    assert "\\href" not in latex and "\\url" not in latex and "\\textbf" not in latex


# ----- the pool, the budget, concurrency -----

PARALLEL = [
    {"expr": "norm(A @ x - b)**2", "wrt": "x"},
    {"expr": "norm(A @ x - b)**2", "wrt": "x, x"},
    {"expr": "sigmoid(W @ x + b)", "wrt": "W"},
    {"expr": "sigmoid(W @ x + b)", "wrt": "x", "layout": "denominator"},
    {"expr": "sum(maxpool(relu(X), 2) * G)", "wrt": "X", "shapes": "X=4,4"},
    {"expr": "sum(maxpool(X, 2) * G)", "wrt": "X", "shapes": "X=2,6"},
    {"expr": GAUSS, "wrt": "S", "symmetric": "S"},
    {"expr": "x @ D @ x", "wrt": "D", "diagonal": "D"},
]


CLAIMS = ("2 * A.T @ (A @ x - b)", "A.T @ A @ x")


def _timeless(j: dict) -> dict:
    j = json.loads(json.dumps(j))
    for key in ("seconds", "text"):
        j["proof"].pop(key)
    return j


def test_concurrent_requests_give_the_sequential_results() -> None:
    # The real engine, eight requests at once (max pooling and structured variables among them), four workers.
    with TestClient(create_app(cache=0, budget=600)) as c:
        sequential = [_timeless(post(c, "/api/derive", b).json()) for b in PARALLEL]
        claims = [post(c, "/api/check", {**LSQ, "claim": k}).json() for k in CLAIMS]
    assert all(j["proof"]["ok"] and j["numeric"]["ok"] for j in sequential)
    start = threading.Barrier(len(PARALLEL) + len(CLAIMS))

    def together(c: TestClient, path: str, body: dict) -> object:
        start.wait(timeout=60)
        return post(c, path, body)

    with TestClient(create_app(cache=0, budget=600, workers=4, backlog=8)) as c, ThreadPoolExecutor(10) as ex:
        futures = [ex.submit(together, c, "/api/derive", b) for b in PARALLEL]
        checks = [ex.submit(together, c, "/api/check", {**LSQ, "claim": k}) for k in CLAIMS]
        parallel = [f.result() for f in futures]
        assert [r.status_code for r in parallel] == [200] * len(PARALLEL)
        assert [_timeless(r.json()) for r in parallel] == sequential
        assert [f.result().json() for f in checks] == claims
    assert claims[0]["ok"] and not claims[1]["ok"]


class Gate:
    """A derive() that blocks until released, then derives; it records the keywords it was called with."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.calls: list[dict] = []

    def __call__(self, expr: str, wrt: object, shapes: object = None, **kw: object) -> object:
        self.calls.append(kw)
        self.started.set()
        assert self.release.wait(timeout=60), "the test never released the gate"
        return derive(expr, wrt, shapes, **kw)


def test_a_request_past_the_budget_gets_a_clear_503_and_the_pool_stays_bounded() -> None:
    gate = Gate()
    app = create_app(derive_fn=gate, budget=0.2, workers=1, backlog=0, cache=0)
    with TestClient(app) as c:
        r = post(c, "/api/derive", LSQ)  # blocks in the engine until released: past the budget
        assert r.status_code == 503
        assert r.json()["error"] == "no answer within the time budget of 0.2 s (derive serve --budget raises it)"
        assert gate.started.is_set() and app.state.pool.in_flight == 1  # still running, in the background
        r = post(c, "/api/derive", {"expr": "W @ x", "wrt": "W"})  # the one worker is taken, no backlog
        assert r.status_code == 503 and "busy" in r.json()["error"]
        assert len(gate.calls) == 1  # refused before any work
        gate.release.set()
        assert app.state.pool.wait_idle(timeout=60)  # the abandoned derivation finished, unseen
        assert app.state.pool.submit(lambda: "free").result(timeout=60) == "free"  # and its place is free again


def test_a_proof_past_its_seconds_is_not_finished_and_the_form_still_comes() -> None:
    # The real engine, with a proof at 100 x 100 (its first, modular check alone takes about a second of CPU)
    # and 0.5 s for everything: the proof stops and says so, and the numeric check still runs in what is left
    # (at least a fifth of the budget).
    def slow_proof(*args: object, **kw: object) -> object:
        return derive(*args, proof_sizes={"m": 100, "n": 100}, limits=Limits(entries=20000), **kw)

    with TestClient(create_app(derive_fn=slow_proof, max_seconds=0.5, cache=0)) as c:
        r = post(c, "/api/derive", LSQ)
        assert r.status_code == 200
        j = r.json()
        assert j["proof"]["status"] == "not finished" and not j["proof"]["ok"]
        assert j["proof"]["exact"] is False and j["proof"]["bits"] is None
        assert re.search(r"not finished in 0\.\d+ s of CPU time", j["proof"]["method"]), j["proof"]["method"]
        assert j["text"] == "2 Aᵀ(A x - b)" and j["latex"]
        assert j["numeric"]["ok"]  # the generated code is still checked numerically
        md = post(c, "/api/download", {**LSQ, "format": "md"})
        assert md.status_code == 200 and "Proof status: not finished" in md.text


def test_the_proof_gets_a_share_of_the_budget() -> None:
    gate = Gate()
    gate.release.set()
    with TestClient(create_app(derive_fn=gate, budget=8, workers=2, cache=0)) as c:
        assert post(c, "/api/derive", LSQ).status_code == 200
    seconds = gate.calls[-1]["max_seconds"]
    assert 0 < seconds <= 8 * 0.5 / 2  # half the budget left, split between the two workers
    assert gate.calls[-1]["symmetric"] == () and gate.calls[-1]["diagonal"] == ()
    with TestClient(create_app(derive_fn=gate, budget=8, max_seconds=3, cache=0)) as c:
        bad = {**LSQ, "shapes": "A=3,2", "symmetric": "A"}
        assert post(c, "/api/derive", bad).status_code == 400  # A is declared, and not square
    assert gate.calls[-1] == {"layout": None, "symmetric": ("A",), "diagonal": (), "max_seconds": 3}


def test_a_tiny_budget_gives_a_clear_503_or_a_proof_not_finished() -> None:
    # Whichever comes first, the server's clock or the engine's, the answer says what happened.
    app = create_app(budget=0.01, cache=0)
    with TestClient(app) as c:
        for body in (LSQ, {"expr": "sigmoid(W @ x + b)", "wrt": "W"}):
            r = post(c, "/api/derive", body)
            if r.status_code == 503:
                assert r.json() == {
                    "error": "no answer within the time budget of 0.01 s (derive serve --budget raises it)"
                }
            else:
                assert r.status_code == 200 and r.json()["proof"]["status"] == "not finished", r.text
        assert app.state.pool.wait_idle(timeout=600)


def test_a_slow_derivation_does_not_block_another() -> None:
    gate = Gate()

    def engine(expr: str, wrt: object, shapes: object = None, **kw: object) -> object:
        return gate(expr, wrt, shapes, **kw) if expr.startswith("sigmoid") else derive(expr, wrt, shapes, **kw)

    app = create_app(derive_fn=engine, workers=2, budget=120)
    with TestClient(app) as c, ThreadPoolExecutor(1) as ex:
        slow = ex.submit(post, c, "/api/derive", {"expr": "sigmoid(W @ x)", "wrt": "W"})
        assert gate.started.wait(timeout=60)
        fast = post(c, "/api/derive", LSQ)  # answered while the slow one is still in the engine
        assert fast.status_code == 200 and not slow.done()
        gate.release.set()
        assert slow.result().status_code == 200


def test_the_info_lists_every_example(client: TestClient) -> None:
    info = client.get("/api/info").json()
    assert info["examples"] == [dataclasses.asdict(e) for e in EXAMPLES]
    assert any(e["symmetric"] == "S" for e in info["examples"])
    assert info["katex"] == "0.16.47" and "features" not in info


# ----- the examples, and every LaTeX string the page renders, in the vendored KaTeX -----


def _fields(e: object) -> dict:
    return {"expr": e.expr, "wrt": e.wrt, "shapes": e.shapes, "symmetric": e.symmetric, "diagonal": e.diagonal}


def test_every_example_works(client: TestClient) -> None:
    quick = [e for e in EXAMPLES if "slow" not in e.label]
    assert len(quick) == 6
    for e in quick:
        r = post(client, "/api/derive", _fields(e))
        assert r.status_code == 200, (e, r.text)
        assert r.json()["proof"]["ok"] and r.json()["numeric"]["ok"]
    sym = next(e for e in EXAMPLES if e.symmetric)
    assert post(client, "/api/derive", _fields(sym)).json()["text"] == derive(sym.expr, sym.wrt, symmetric=("S",)).text
    slow = next(e for e in EXAMPLES if "slow" in e.label)  # the tiny CNN: its golden write-up is in output/
    assert (slow.expr, slow.wrt, slow.shapes) == (CNN, "K", "X=1,3,3; K=2,1,2,2; y=2")


NODE = shutil.which("node")


def _latex_pieces(j: dict) -> Iterator[str]:
    if j["latex"]:
        yield j["latex"]
    for s in j["steps"]:
        for b in s["blocks"]:
            for line in b["lines"]:
                yield from ([line] if b["math"] else line.split("$")[1::2])


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_vendored_katex_renders_everything_derive_writes(client: TestClient) -> None:
    pieces: list[str] = []
    for e in (e for e in EXAMPLES if "slow" not in e.label):
        pieces += _latex_pieces(post(client, "/api/derive", _fields(e)).json())
    for md in sorted((ROOT / "output").glob("*.md")):  # the golden write-ups, the tiny CNN's included
        text = md.read_text()
        blocks = text.split("$$")[1::2]
        pieces += [b.strip() for b in blocks]
        pieces += [p for chunk in text.split("$$")[0::2] for p in chunk.split("$")[1::2]]
    assert len(pieces) > 500
    script = (
        "const katex = require(process.argv[1]); let bad = [];"
        "for (const t of JSON.parse(require('fs').readFileSync(0, 'utf8'))) {"
        " try { katex.renderToString(t, {throwOnError: true, strict: 'error'}); }"
        " catch (e) { bad.push(t.slice(0, 80) + ' :: ' + e.message); } }"
        "console.log(JSON.stringify(bad));"
    )
    katex = STATIC / "vendor" / "katex" / "katex.min.js"
    r = subprocess.run([NODE, "-e", script, str(katex)], input=json.dumps(pieces), capture_output=True, text=True,
                       timeout=300, check=True)  # fmt: skip
    assert json.loads(r.stdout) == []


# ----- derive serve -----


def test_serve_without_the_extra_says_how_to_install_it() -> None:
    code = "import sys; sys.modules['uvicorn'] = None; from derive.cli import main; sys.exit(main(['serve']))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr == "derive serve needs the web extra: pip install 'derive[web]'\n"
    assert r.stdout == ""


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--port", "70000"], "--port must be from 0 to 65535"),
        (["--workers", "0"], "--workers must be from 1 to 64"),
        (["--budget", "-1"], "--budget must be"),
        (["--bogus"], "unrecognized arguments"),
        (["--host", "192.0.2.1"], "cannot listen on 192.0.2.1:8000"),  # an address of no interface here
    ],
)
def test_serve_bad_options_are_one_line(args: list[str], fragment: str, capsys: pytest.CaptureFixture) -> None:
    # in this process (test_serve_on_a_port_in_use runs the command in its own): nothing is served
    assert cli_main(["serve", *args]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("derive serve: error: ") and err.count("\n") == 1 and out == ""
    assert fragment in err


def test_serve_on_a_port_in_use() -> None:
    from derive.web.serve import listen

    taken = listen("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "derive", "serve", "--port", str(port)], capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    finally:
        taken.close()
    assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in r.stderr


def test_an_expression_called_serve_is_still_derived(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["serve", "--wrt", "serve", "--format", "py", "-o", str(tmp_path)]) == 0
    assert "proven" in capsys.readouterr().out
    assert [p.suffix for p in tmp_path.iterdir()] == [".py"]  # derived and written, not served


def test_stopping_answers_a_waiting_request_at_once() -> None:
    from derive.web.app import stop

    gate = Gate()
    app = create_app(derive_fn=gate, budget=600, cache=0)
    with TestClient(app) as c, ThreadPoolExecutor(1) as ex:
        waiting = ex.submit(post, c, "/api/derive", LSQ)
        assert gate.started.wait(timeout=60)
        c.portal.call(stop, app)
        r = waiting.result(timeout=60)
        gate.release.set()
    assert r.status_code == 503 and r.json()["error"] == "the server is stopping"


def test_ctrl_c_answers_the_waiting_request_and_exits_cleanly() -> None:
    import signal
    import urllib.error
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-m", "derive", "serve", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        url = proc.stdout.readline().split()[3]  # derive: serving on URL (Ctrl-C stops)
        slow = {"expr": CNN, "wrt": "K", "shapes": "X=1,3,3; K=2,1,2,2; y=2"}  # seconds of proof: still running
        request = urllib.request.Request(
            url + "api/derive", json.dumps(slow).encode(), {"content-type": "application/json"}
        )

        def ask() -> tuple[int, dict]:
            try:
                with urllib.request.urlopen(request, timeout=600) as r:
                    return r.status, json.load(r)
            except urllib.error.HTTPError as e:
                return e.code, json.load(e)

        with ThreadPoolExecutor(1) as ex:
            answer = ex.submit(ask)
            for _ in range(10_000):  # until the server has the derivation in hand (bounded, not timed)
                with urllib.request.urlopen(url + "api/info", timeout=60) as r:
                    if json.load(r)["in_flight"] == 1:
                        break
            else:
                pytest.fail("the derivation never started")
            proc.send_signal(signal.SIGINT)
            status, body = answer.result(timeout=600)
        assert (status, body) == (503, {"error": "the server is stopping"})
        assert proc.wait(timeout=600) == 0
        assert proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ----- the pieces: pool, engine, package data -----


def test_the_pool_bounds_work_and_skips_what_was_given_up() -> None:
    from derive.web.pool import Busy, Pool

    pool = Pool(workers=1, backlog=2)
    release, ran = threading.Event(), []

    def job(name: str) -> object:
        def run() -> str:
            if name == "a":
                assert release.wait(timeout=60)
            ran.append(name)
            return name

        return run

    a, b, c = pool.submit(job("a")), pool.submit(job("b")), pool.submit(job("c"))
    with pytest.raises(Busy):
        pool.submit(job("d"))  # one running, two queued: full
    assert b.cancel()  # its request gave up while it was queued
    assert pool.in_flight == 2
    d = pool.submit(job("d"))  # the cancelled one freed its place at once
    release.set()
    assert [f.result(timeout=60) for f in (a, c, d)] == ["a", "c", "d"]
    assert pool.wait_idle(timeout=60) and ran == ["a", "c", "d"]
    pool.close()
    with pytest.raises(Busy):
        pool.submit(job("e"))


def test_the_engine_drops_work_whose_request_gave_up() -> None:
    from derive.web.engine import Abandoned, Engine

    calls: list[str] = []
    engine = Engine(lambda expr, *a, **k: calls.append(expr), cache=0)
    with pytest.raises(Abandoned):
        engine.derive(LSQ, cancelled=lambda: True)
    assert calls == []


def test_the_wheel_ships_every_file_of_the_page() -> None:
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "derive.web" in data["tool"]["setuptools"]["packages"]
    globs = data["tool"]["setuptools"]["package-data"]["derive.web"]
    base = STATIC.parent
    files = [f.relative_to(base) for f in STATIC.rglob("*") if f.is_file()]
    assert len(files) == 28  # the page (4), KaTeX (js, css, LICENSE, README) and its 20 woff2 fonts
    missing = [str(f) for f in files if not any(f.match(g) and len(f.parts) == len(Path(g).parts) for g in globs)]
    assert missing == []
    assert (STATIC / "vendor" / "katex" / "LICENSE").read_text().startswith("The MIT License")
    extras = data["project"]["optional-dependencies"]
    assert {"starlette", "uvicorn"} <= {re.split(r"[<>=\[]", r)[0] for r in extras["web"]}
    assert {"starlette", "uvicorn", "httpx", "selenium"} <= {re.split(r"[<>=\[]", r)[0] for r in extras["test"]}
    assert not any("starlette" in r or "uvicorn" in r for r in data["project"]["dependencies"])
