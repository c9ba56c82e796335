"""Installing derive: every sdist and wheel carries the templates, and an installed wheel works anywhere.

The distributions are built from a copy of the files a checkout has, with
``python -m build --no-isolation`` (build and setuptools come with the test
extra), so no network is needed. CI (.ci/run) also installs the wheel in a
fresh virtual environment and runs the article's example from another
directory.
"""

import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

import derive

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted(p.name for p in (ROOT / "templates").glob("*.j2"))
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "derive", "templates")


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An sdist, and a wheel built from that sdist (what ``python -m build`` does by default)."""
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("dist")
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, src / name)
    shutil.rmtree(src / "derive" / "__pycache__", ignore_errors=True)
    run = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    (sdist,) = out.glob("derive-*.tar.gz")
    (wheel,) = out.glob("derive-*.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_templates_exist() -> None:
    assert TEMPLATES == ["fragment.tex.j2", "module.py.j2", "writeup.md.j2", "writeup.tex.j2"]


def test_sdist_carries_templates_and_license(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {f"templates/{t}" for t in TEMPLATES} <= names
    assert {"LICENSE", "pyproject.toml", "README.md", "derive/cli.py"} <= names


def test_wheel_carries_templates_inside_the_package(dists: dict[str, Path]) -> None:
    with zipfile.ZipFile(dists["wheel"]) as whl:
        names = set(whl.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = whl.read(metadata).decode()
    assert {f"derive/templates/{t}" for t in TEMPLATES} <= names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: MIT" in meta
    assert f"Version: {derive.__version__}" in meta


def test_installed_wheel_works_from_another_directory(dists: dict[str, Path], tmp_path: Path) -> None:
    site, work = tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    with zipfile.ZipFile(dists["wheel"]) as whl:
        whl.extractall(site)
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    where = subprocess.run(
        [sys.executable, "-c", "import derive.render as r; print(r.__file__); print(r.templates())"],
        cwd=work, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr
    module, templates = where.stdout.split()
    assert module.startswith(str(site)) and templates == str(site / "derive" / "templates")
    argv = ["-m", "derive", "norm(A @ x - b)**2", "--wrt", "x", "--name", "least_squares", "-o", "out"]
    run = subprocess.run([sys.executable, *argv], cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "2 Aᵀ(A x - b)" in run.stdout and "proven" in run.stdout
    made = sorted(p.name for p in (work / "out").iterdir())
    assert made == ["least_squares.fragment.tex", "least_squares.md", "least_squares.py", "least_squares.tex"]


def test_license_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text


def test_version_option(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "derive", "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0
    assert run.stdout == f"derive {derive.__version__}\n"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "derive.__version__"}
