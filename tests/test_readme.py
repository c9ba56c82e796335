"""The README's examples run as written: every Python example, every shell example, the command's synopsis.

Shell examples run in an empty temporary directory against the installed
package (the ``derive`` command next to this Python). Skipped, and only these:
the install commands themselves (``python3 -m venv``, activating it, ``pip
install``: they need the network, and the package is installed already), the
test command's own run of this suite (``ruff check .``, ``python -m pytest``:
CI runs that command verbatim), and the benchmark (``python bench/run.py``:
jax and autograd come from the network and it takes minutes;
tests/test_bench.py runs its smoke size).
"""

import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from derive.cli import parser

README = Path(__file__).resolve().parent.parent / "README.md"
TEXT = README.read_text()
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```", TEXT, flags=re.S | re.M)
SHELL = [body for lang, body in BLOCKS if lang == "sh"]

#: command prefixes that are not run, and why
SKIPPED = {
    "python3 -m venv": "an install command (the package is installed already)",
    ". .venv/bin/activate": "an install command (the package is installed already)",
    "pip install": "an install command: needs the network",
    "ruff check .": "the test command's own lint (CI runs the command verbatim)",
    "python -m pytest": "this test suite itself (CI runs the command verbatim)",
    "python bench/run.py": "the benchmark: jax and autograd from the network, minutes (test_bench.py runs it small)",
}


def commands(block: str) -> tuple[list[str], list[str]]:
    """The block's commands split at ``&&``: those to run, and those skipped (with their reasons)."""
    run, skipped = [], []
    for line in block.splitlines():
        line = line.split("  #", 1)[0].strip()
        for cmd in filter(None, (c.strip() for c in line.split(" && "))):
            reason = next((why for prefix, why in SKIPPED.items() if cmd.startswith(prefix)), None)
            (skipped.append(f"{cmd}: {reason}") if reason else run.append(cmd))
    return run, skipped


def normalized(text: str) -> str:
    """Timings and the last digits of rounding errors vary between machines; the rest must not."""
    text = re.sub(r"\d+\.\d\d s\b", "#.## s", text)
    return re.sub(r"\d\.\de-\d\d", "#.#e-##", text)


def test_every_python_example_runs() -> None:
    python = [body for lang, body in BLOCKS if lang == "python"]
    assert python and all(body.lstrip().startswith(">>>") for body in python), "a Python example doctest cannot run"
    result = doctest.testfile(str(README), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= sum(body.count(">>>") for body in python)
    assert result.failed == 0


def test_every_shell_command_is_run_or_skipped_for_a_reason() -> None:
    assert len(SHELL) >= 4
    for block in SHELL:
        run, skipped = commands(block)
        assert run or skipped
        for cmd in run:
            assert cmd.startswith("derive "), f"a README command this test does not know how to run: {cmd}"


@pytest.mark.parametrize("block", SHELL, ids=[b.split("&&")[-1].strip()[:40] for b in SHELL])
def test_shell_example_runs_as_written(block: str, tmp_path: Path) -> None:
    run, skipped = commands(block)
    if not run:
        pytest.skip("; ".join(skipped))
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run(["bash", "-c", " && ".join(run)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    if "--name least_squares -o output" in block:  # the article's example: the README shows its output
        shown = TEXT.split(block, 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
        assert normalized(r.stdout) == normalized(shown)
        made = sorted(p.name for p in (tmp_path / "output").iterdir())
        assert made == ["least_squares.fragment.tex", "least_squares.md", "least_squares.py", "least_squares.tex"]


def test_synopsis_lists_every_option() -> None:
    synopsis = TEXT.split("## Command line", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    shown = set(re.findall(r"--[a-z][a-z-]*", synopsis)) | set(re.findall(r"(?<![\w-])-[a-z]\b", synopsis))
    actions = [a.option_strings for a in parser()._actions if a.option_strings]
    assert shown <= {s for strings in actions for s in strings}, "the README names an option derive does not have"
    missing = [strings for strings in actions if not shown & set(strings)]
    assert not missing, f"options the README's synopsis leaves out: {missing}"
