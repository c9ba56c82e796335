"""The physical limit of the ‖Ax − b‖² gradient: it must read A at least once, so memory bandwidth sets a floor."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bench.machine import read
from bench.report import Result, fmt_time, table
from bench.timing import sample
from bench.variants import AUTOGRAD, CAREFUL, DEFAULT, DERIVE, JAX, NAIVE, ONE, label


def measure(megabytes: int, rounds: int) -> tuple[float, float]:
    """(1-thread, 2-thread) median bytes per second of np.copyto, counting bytes read + written."""
    n = megabytes * 2**20 // 8
    src, dst = np.ones(n), np.zeros(n)
    np.copyto(dst, src)
    halves = (slice(0, n // 2), slice(n // 2, n))
    with ThreadPoolExecutor(2) as pool:

        def one() -> None:
            np.copyto(dst, src)

        def two() -> None:  # numpy releases the GIL while copying: two cores, two halves
            list(pool.map(lambda s: np.copyto(dst[s], src[s]), halves))

        t1, t2 = [], []
        for r in range(rounds):
            for f, ts in ((one, t1), (two, t2)) if r % 2 == 0 else ((two, t2), (one, t1)):
                ts.append(sample(f, 1))
    moved = 2 * src.nbytes
    return moved / float(np.median(t1)), moved / float(np.median(t2))


def section(results: Sequence[Result], megabytes: int, rounds: int) -> list[str]:
    bw1, bw2 = measure(megabytes, rounds)
    bw = max(bw1, bw2)
    head = [
        "### The physical limit: memory bandwidth",
        "",
        f"`np.copyto` of a {megabytes} MB float64 array, bytes read + written ÷ time, median of {rounds}: "
        f"{bw1 / 1e9:.1f} GB/s on one thread, {bw2 / 1e9:.1f} GB/s on two. Floor below: n²·8 bytes ÷ "
        f"{bw / 1e9:.1f} GB/s (the gradient must read A at least once; numpy reads it twice).",
        "",
    ]
    big = [r for r in results if r.workload.key == "lsq-grad" and r.size.dims["n"] >= 1000]
    if not big:
        return [*head, "No ‖Ax − b‖² gradient measured at n ≥ 1000 in this mode.", ""]
    floors = [r.size.dims["n"] ** 2 * 8 / bw for r in big]
    rows = [["floor (one read of A)", *map(fmt_time, floors)]]
    for name, threads in [(DERIVE, ONE), (CAREFUL, ONE), (NAIVE, ONE), (DERIVE, DEFAULT), (CAREFUL, DEFAULT),
                          (NAIVE, DEFAULT), (JAX, DEFAULT), (AUTOGRAD, DEFAULT)]:  # fmt: skip
        lab = label(name, threads)
        cells = [
            f"{r.case.median(lab) / f:.2f}× floor" if lab in r.case.times else "—"
            for r, f in zip(big, floors, strict=True)
        ]
        if any(c != "—" for c in cells):
            rows.append([lab, *cells])
    l3 = read("/sys/devices/system/cpu/cpu0/cache/index3/size") or "size unknown"
    sizes = [f"{r.size.label} (A is {r.size.dims['n'] ** 2 * 8 / 1e6:.0f} MB)" for r in big]
    return [
        *head,
        table(["gradient variant", *sizes], rows),
        "",
        f"Where A fits in the last-level cache ({l3}) a variant can beat the DRAM floor.",
        "",
    ]
