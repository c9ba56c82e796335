"""Shared test setup: numpy is seeded; golden files refresh only with --update; the tiny CNN is derived once
per process; tests marked slow run first, and xdist keeps each module of SHARED_FIXTURES on one worker; the
fuzz figures are printed at the end."""

import numpy as np
import pytest

from derive import Derivation, derive
from derive.article import CNN

#: Modules whose tests share an expensive module-scoped fixture (a benchmark run, built distributions, the
#: article's files, every write-up compiled): under pytest-xdist each runs whole on one worker, so its fixture
#: is made once. Every other test goes to whichever worker is free.
SHARED_FIXTURES = frozenset(
    f"tests/{name}.py" for name in ("test_bench", "test_install", "test_output", "test_writeup")
)

#: The article's part-two sizes (derive.article.PART_TWO): a 3x3 input, two 2x2 kernels, two classes.
CNN_SHAPES = {"X": (1, 3, 3), "K": (2, 1, 2, 2), "y": (2,)}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update", action="store_true", help="rewrite the golden files in output/")


@pytest.fixture
def update(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update"))


@pytest.fixture(autouse=True)
def _seed() -> None:
    np.random.seed(0)


@pytest.fixture(scope="session")
def tiny_cnn() -> dict[str, Derivation]:
    """The tiny CNN's loss by K, W and X, derived once per process (each xdist worker that runs a test using it)."""
    return {wrt: derive(CNN, wrt, CNN_SHAPES) for wrt in ("K", "W", "X")}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures each fuzzing property recorded (tests/test_fuzz.py), one line each, from any xdist worker."""
    lines = [
        f"{report.nodeid.split('::')[-1]}: {value}"
        for report in terminalreporter.stats.get("passed", [])
        for key, value in report.user_properties
        if key == "fuzz" and report.when == "call"
    ]
    if lines:
        terminalreporter.write_sep("-", "fuzz figures")
        for line in sorted(lines):
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked slow first (a stable sort: the rest keep their order), so that no worker starts one late."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``-n`` without ``--dist``: test by test, but the modules of SHARED_FIXTURES each as one unit (sent first:
    xdist orders units by their number of tests). Other ``--dist`` modes are left to xdist."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in SHARED_FIXTURES else nodeid

    return SharedFixtureScheduling(config, log)
