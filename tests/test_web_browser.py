"""The page in a real browser: ``derive serve`` driven by headless Chromium.

Starts ``derive serve --port 0`` (the server picks a free port and prints
it), waits for that line, and drives Debian's chromium through
chromedriver: types the article's expression, waits for KaTeX's rendering
of the matrix form, opens the element-wise steps, downloads the .tex,
checks a wrong claim, tries markup in the box, runs the symmetric-matrix
example from the optional fields, and takes a screenshot
(``pytest --update`` copies it to output/web.png for the README).
Every wait is on a condition in the page, bounded; none is a sleep.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from derive.cli import default_name  # noqa: E402

pytest.importorskip("starlette", reason="the web extra is not installed: pip install -e '.[web]'")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason="chromium is not installed (apt-get install chromium chromium-driver)",
)

ROOT = Path(__file__).resolve().parent.parent
WAIT = 120  # seconds at most for any one condition; a busy machine is slow, a broken page never gets there
LATEX = "2 A^{\\top} \\left(A \\mathbf{x} - \\mathbf{b}\\right)"  # d||Ax-b||^2/dx = 2 A^T (A x - b)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``derive serve --port 0`` in an empty directory with an empty HOME; its URL and that directory."""
    work = tmp_path_factory.mktemp("serve-cwd")
    home = tmp_path_factory.mktemp("serve-home")
    proc = subprocess.Popen(
        [sys.executable, "-m", "derive", "serve", "--port", "0"],
        cwd=work,
        env={**os.environ, "HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], WAIT)  # the line comes once the port listens
        line = proc.stdout.readline() if ready else ""
        match = re.fullmatch(r"derive: serving on (http://127\.0\.0\.1:\d+/) \(Ctrl-C stops\)\n", line)
        assert match, f"no 'serving on' line: {line!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        yield match.group(1), work
        assert list(work.iterdir()) == [] and list(home.iterdir()) == [], "the server wrote a file"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, downloads: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--window-size=1100,1500", "--force-device-scale-factor=1",
    ):  # fmt: skip
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver
    finally:
        driver.quit()


def until(driver: webdriver.Chrome, condition: object, what: str) -> object:
    return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(lambda d: condition(d), message=what)


def text(driver: webdriver.Chrome, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


@pytest.mark.slow
def test_the_page(server: tuple[str, Path], browser: webdriver.Chrome, downloads: Path, update: bool,
                  tmp_path: Path) -> None:  # fmt: skip
    url, _ = server
    d = browser
    d.get(url)
    until(d, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true", "the page starts")
    labels = [b.text for b in d.find_elements(By.CSS_SELECTOR, "button.example")]
    assert labels[:4] == ["‖Ax − b‖² by x", "Wx + b by W", "σ(Wx + b) by W", "Hessian of ‖Ax − b‖²"]

    # Markup typed into the boxes comes back in the error as text, never as elements.
    expr, wrt = d.find_element(By.ID, "expr"), d.find_element(By.ID, "wrt")
    title = d.title
    markup = "<img/src/onerror=document.title=1>"
    expr.send_keys("norm(A @ x - b)**2")
    wrt.send_keys(markup)
    until(d, lambda d: d.find_element(By.ID, "error").is_displayed(), "the error next to the box")
    assert text(d, "error") == f"variable '{markup}' is not in the expression (its variables are A, x, b)"
    assert d.execute_script("return document.querySelectorAll('#error *, img').length") == 0
    assert "&lt;img/src/onerror" in d.execute_script("return document.getElementById('error').innerHTML")
    assert d.title == title

    # The article's example, typed: the rendered matrix form appears.
    wrt.clear()
    wrt.send_keys("x")
    until(d, lambda d: not d.find_element(By.ID, "error").is_displayed(), "the error goes away")
    until(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#form .katex"), "KaTeX renders the matrix form")
    until(d, lambda d: "norm(A @ x - b)**2" in text(d, "what"), "the result is for the expression typed")
    annotation = d.find_element(By.CSS_SELECTOR, "#form annotation").get_attribute("textContent")
    assert annotation == LATEX  # KaTeX rendered exactly derive's LaTeX
    shown = re.sub(r"\s+", "", d.find_element(By.CSS_SELECTOR, "#form .katex-html").text)
    assert shown.startswith("2A") and shown.endswith("(Ax−b)")
    assert text(d, "what") == "The gradient of norm(A @ x - b)**2 by x"
    assert text(d, "proof-badge") == "✓ proven exactly" and text(d, "numeric-badge") == "✓ agrees"
    assert text(d, "proof-text").startswith("the matrix form equals the element-wise derivative")
    assert "denominator layout" in text(d, "convention")
    assert not d.find_element(By.ID, "notes").is_displayed()  # nothing was chosen for the user
    assert not d.find_element(By.ID, "conventions").is_displayed()

    # KaTeX's sizes apply under the page's CSP (set through the CSSOM), and its fonts come from the page.
    heights = d.execute_script(
        "return Array.from(document.querySelectorAll('#form .strut'))"
        ".map(s => [s.style.height, s.getBoundingClientRect().height])"
    )
    assert heights and all(h.endswith("em") and px > 0 for h, px in heights)
    until(
        d,
        lambda d: d.execute_script(
            "return Array.from(document.fonts).some(f => f.family.includes('KaTeX_Main') && f.status === 'loaded')"
        ),
        "KaTeX's font loads",
    )

    # Copy the LaTeX (clipboard access granted to this page), then read the clipboard back.
    d.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": url.rstrip("/"), "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    d.find_element(By.ID, "copy").click()
    until(d, lambda d: text(d, "action-status") == "Copied the LaTeX", "the LaTeX is copied")
    pasted = d.execute_async_script("navigator.clipboard.readText().then(arguments[0], e => arguments[0]('' + e))")
    assert pasted == LATEX

    # The optional fields, symmetric and diagonal variables included, are always there (under their summary).
    assert not d.find_element(By.ID, "symmetric").is_displayed()
    options = d.find_element(By.CSS_SELECTOR, "#options summary")
    assert options.text == "Shapes, symmetric and diagonal variables, layout"
    options.click()
    for name in ("shapes", "symmetric", "diagonal", "layout"):
        field = d.find_element(By.ID, name)
        assert field.is_displayed() and field.is_enabled(), name
    options.click()

    # The symmetric-matrix example: S reaches the engine, and the convention it rests on is shown.
    d.find_element(By.XPATH, "//button[@class='example'][contains(., 'by a symmetric S')]").click()
    until(d, lambda d: text(d, "what").endswith("by S"), "the symmetric example's result")
    assert text(d, "what") == "The gradient of (x - m) @ inv(S) @ (x - m) by S"
    assert d.find_element(By.ID, "symmetric").get_attribute("value") == "S"
    assert d.find_element(By.ID, "symmetric").is_displayed()  # the example opened the options
    assert text(d, "proof-badge") == "✓ proven exactly"
    conventions = [li.text for li in d.find_elements(By.CSS_SELECTOR, "#conventions li")]
    assert len(conventions) == 1 and conventions[0].startswith("By a symmetric S: the gradient is sym(G) = (G + Gᵀ)/2")
    assert "S^{-1}" in d.find_element(By.CSS_SELECTOR, "#form annotation").get_attribute("textContent")

    # Back to the article's example, by its button: the symmetric field is emptied again.
    d.find_element(By.XPATH, "//button[@class='example'][. = '‖Ax − b‖² by x']").click()
    until(d, lambda d: text(d, "what") == "The gradient of norm(A @ x - b)**2 by x", "back to the article's example")
    assert d.find_element(By.ID, "symmetric").get_attribute("value") == ""
    assert not d.find_element(By.ID, "conventions").is_displayed()
    options.click()  # close the options again, for the screenshot

    # Enter derives at once; a second variable gives the Hessian.
    wrt.send_keys(", x", Keys.ENTER)
    until(d, lambda d: text(d, "what").startswith("The Hessian of"), "the Hessian")
    hessian = d.find_element(By.CSS_SELECTOR, "#form annotation").get_attribute("textContent")
    assert hessian == "2 A^{\\top} A"  # d^2||Ax-b||^2/dx^2 = 2 A^T A
    wrt.send_keys(Keys.BACKSPACE * 3, Keys.ENTER)
    until(d, lambda d: text(d, "what") == "The gradient of norm(A @ x - b)**2 by x", "back to the gradient")

    # The element-wise steps, collapsed until opened.
    assert not d.find_element(By.ID, "steps-body").is_displayed()
    d.find_element(By.CSS_SELECTOR, "#steps summary").click()
    until(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#steps-body h3")) >= 5, "the steps render")
    titles = [h.text for h in d.find_elements(By.CSS_SELECTOR, "#steps-body h3")]
    assert titles[:3] == ["The problem", "Element by element", "Partial derivatives"] and "The chain rule" in titles
    assert len(d.find_elements(By.CSS_SELECTOR, "#steps-body .katex")) > 10
    assert d.find_elements(By.CSS_SELECTOR, ".tex-fallback") == []
    d.find_element(By.CSS_SELECTOR, "#steps summary").click()

    # Download the .tex: the file is the write-up of this derivation.
    d.find_element(By.CSS_SELECTOR, "button.download[data-format='tex']").click()
    name = default_name("norm(A @ x - b)**2", ["x"]) + ".tex"  # the name the command line gives the same files
    assert name.startswith("norm_A_matmul_x_minus_b_pow_2_") and name.endswith("_by_x.tex")
    tex = downloads / name
    until(d, lambda d: tex.exists() and not list(downloads.glob("*.crdownload")), "the .tex is downloaded")
    content = tex.read_text()
    assert "Generated by derive" in content and "\\begin{document}" in content and "\\end{document}" in content
    assert LATEX.replace("2 A", "2A") in content.replace("2 A", "2A")
    assert f"Downloaded {name}" in text(d, "action-status")

    # A wrong claim: a cross, the counterexample, the mistake named.
    claim = d.find_element(By.ID, "claim")
    claim.send_keys("A.T @ (A @ x - b)", Keys.ENTER)
    until(d, lambda d: text(d, "verdict-mark") in ("✓", "✗"), "the verdict")
    assert text(d, "verdict-mark") == "✗"
    assert text(d, "mistake") == "It looks like a missing factor of 2."
    assert text(d, "cx-claimed") == "a11*(a11*x1 - b1)" and text(d, "cx-correct") == "2*a11*(a11*x1 - b1)"
    assert text(d, "verdict-text").startswith("the claim fails at m=1, n=1, entry (1,)")

    # Nothing from the network, no CSP violation, no error in the console.
    origin = url.rstrip("/")
    resources = d.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(r.startswith(origin + "/") for r in resources), resources
    log = d.get_log("browser")
    expected = [e for e in log if e.get("source") == "network" and re.search(r"/api/derive - .* 400 ", e["message"])]
    assert expected, "the bad variable name above was answered with HTTP 400"
    unexpected = [e for e in log if e not in expected and (e["level"] == "SEVERE" or "Security Policy" in e["message"])]
    assert unexpected == [], unexpected

    d.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "web.png"
    assert d.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if update:
        shutil.copyfile(shot, ROOT / "output" / "web.png")
