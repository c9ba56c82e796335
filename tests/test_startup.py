"""Start-up: the command is light to import, and Ctrl-C while numpy and SymPy load is one line and exit 130.

The interrupt is delivered at a known point, not after a guessed delay: a
``sitecustomize`` module on PYTHONPATH (Python imports it at start-up) puts an
import hook in place that sends the process SIGINT, as Ctrl-C does, when the
named module starts to load.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TRIPWIRE = '''\
import os, signal, sys


class Tripwire:
    """Ctrl-C (SIGINT to this process) when the module named in DERIVE_TEST_TRIP starts to load."""

    def find_spec(self, name, path=None, target=None):
        if name == os.environ.get("DERIVE_TEST_TRIP"):
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None


sys.meta_path.insert(0, Tripwire())
'''

SCRIPT = Path(sys.executable).parent / "derive"  # the console script pip installed
COMMANDS = {"console script": [str(SCRIPT)], "python -m derive": [sys.executable, "-m", "derive"]}


def ctrl_c_default() -> None:
    """In the child: Ctrl-C does what it does at a terminal, even if this run inherited it ignored (cmd &)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def tripwire(tmp_path: Path) -> dict[str, str]:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(TRIPWIRE)
    return os.environ | {"PYTHONPATH": str(hook)}


def test_the_command_module_loads_no_heavy_library() -> None:
    probe = "import sys, derive, derive.cli; print(sorted(n for n in ('numpy', 'sympy', 'jinja2') if n in sys.modules))"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


@pytest.mark.skipif(not SCRIPT.exists(), reason="the derive console script is not installed")
@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("module", ["numpy", "sympy", "jinja2"])
def test_ctrl_c_while_loading_is_one_line_and_130(tripwire: dict, tmp_path: Path, command: str, module: str) -> None:
    out = tmp_path / "out"
    argv = [*COMMANDS[command], "norm(A @ x - b)**2", "--wrt", "x", "-o", str(out)]
    trip = tripwire | {"DERIVE_TEST_TRIP": module}
    r = subprocess.run(argv, capture_output=True, text=True, env=trip, preexec_fn=ctrl_c_default)
    assert r.returncode == 130, (r.returncode, r.stderr)
    assert r.stderr == "derive: interrupted\n"
    assert not out.exists() or not any(out.iterdir())


def test_tripwire_itself_works(tripwire: dict) -> None:
    # the hook really interrupts: without derive's handler, Python prints a traceback and exits 130 (-SIGINT)
    r = subprocess.run([sys.executable, "-c", "import numpy"], capture_output=True, text=True,
                       env=tripwire | {"DERIVE_TEST_TRIP": "numpy"}, preexec_fn=ctrl_c_default)  # fmt: skip
    assert "KeyboardInterrupt" in r.stderr
    assert r.returncode != 0
