"""What the numbers were measured on: CPU, versions, the BLAS kernel threadpoolctl finds, the environment and the
load, which on a shared 2-core machine decides how much the threaded figures can be trusted."""

from __future__ import annotations

import math
import os
import platform
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import sympy as sp

from bench.variants import Peers

ROOT = Path(__file__).resolve().parent.parent
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "XLA_FLAGS")


def read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def cpu_name() -> str:
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def blas_kernels() -> str:
    """The BLAS numpy really uses, as threadpoolctl names it (internal_api, version, architecture, threads)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')} (numpy's build; threadpoolctl not installed)"
    found = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return (
        "; ".join(
            f"{i.get('internal_api')} {i.get('version')}, kernel {i.get('architecture')}, "
            f"{i.get('num_threads')} threads ({i.get('threading_layer')})"
            for i in found
        )
        or "none found by threadpoolctl"
    )


def cpu_busy(seconds: float = 0.5) -> float:
    """The fraction of all CPUs busy over ``seconds`` while this process sleeps (NaN without /proc/stat)."""

    def snap() -> tuple[int, int]:
        fields = [int(v) for v in read("/proc/stat").split("\n", 1)[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)  # idle + iowait, total

    try:
        idle0, total0 = snap()
        time.sleep(seconds)
        idle1, total1 = snap()
    except (ValueError, IndexError):
        return math.nan
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def load_text() -> str:
    """The load average and how busy the CPUs are with other work, with a warning when they are."""
    busy = cpu_busy()
    text = "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    if not math.isfinite(busy):
        return text
    text += f"; CPUs busy with other work: {busy:.0%} (over 0.5 s while the benchmark slept)"
    if busy > 0.2:
        text += (
            " — **another process is using the CPUs**: a 2-thread BLAS call then waits for a scheduler tick and "
            "the default-thread figures are noisy; the 1-thread ratios are the ones to read"
        )
    return text


def git_head() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    changed = [line[3:] for line in dirty.stdout.splitlines() if line[3:]]
    return (head.stdout.strip() or "unknown") + (f" + uncommitted changes to {', '.join(changed)}" if changed else "")


def facts(peers: Peers) -> list[tuple[str, str]]:
    """(fact, value) rows for the report's first table."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    l3 = read("/sys/devices/system/cpu/cpu0/cache/index3/size")
    jax = "not available"
    if peers.jax is not None:
        jax = f"{peers.jax.__version__} (jaxlib {_version('jaxlib')}; {peers.jax.devices()[0].platform}; x64)"
    rows = [
        ("CPU", f"{cpu_name()} ({platform.machine()}), {os.cpu_count()} logical, {usable} usable, L3 {l3 or '?'}"),
        ("Python", platform.python_version()),
        ("numpy", np.__version__),
        ("BLAS (threadpoolctl)", blas_kernels()),
        ("sympy", sp.__version__),
        ("jax", jax),
        ("autograd", _version("autograd") if peers.autograd is not None else "not available"),
        ("derive", git_head()),
        ("at the start", load_text()),
    ]
    return rows + [(v, os.environ.get(v, "(unset)")) for v in ENV_VARS]
