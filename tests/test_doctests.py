"""The examples in derive's own docstrings are collected and run by the README's test command."""

import doctest
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_docstring_examples_are_collected() -> None:
    finder = doctest.DocTestFinder()
    modules = [p.stem for p in (ROOT / "derive").glob("*.py") if p.stem != "__main__"]
    with_examples = set()
    for name in modules:
        module = importlib.import_module("derive" if name == "__init__" else f"derive.{name}")
        if any(t.examples for t in finder.find(module, module.__name__) if t.name.startswith(module.__name__)):
            with_examples.add(f"derive/{name}.py")
    assert {"derive/__init__.py", "derive/core.py", "derive/claims.py", "derive/gradcheck.py"} <= with_examples
    # `python -m pytest` as the README runs it, from the top of the repository, without arguments
    # testpaths, less tests/ (--ignore=tests would not do: pytest never ignores a path it was given, and testpaths are)
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "--ignore-glob=tests/*"]
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:]
    collected = {line.split("::", 1)[0] for line in r.stdout.splitlines() if line.startswith("derive/")}
    assert collected == with_examples
