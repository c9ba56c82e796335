"""What one derivation may spend, and who is watching: passed explicitly, never global.

A :class:`Context` travels through the pipeline. Its :class:`Limits` bound
the request (expression length and depth, entries written out, CPU seconds
for the proof); its :class:`Budget` counts this thread's CPU time, so a busy
machine does not cut a proof short; its :class:`Progress` says on stderr
what a slow stage is doing, when someone is watching.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .errors import DeriveError

FLAGS = (("length", "--max-length"), ("depth", "--max-depth"), ("entries", "--max-entries"),
         ("seconds", "--max-seconds"))  # fmt: skip


@dataclass(frozen=True)
class Limits:
    """Bounds on the work one request may ask for; each can be raised.

    From Python: ``derive(..., limits=Limits(entries=20000))``; from the command
    line: ``--max-length``, ``--max-depth``, ``--max-entries``, ``--max-seconds``.
    """

    length: int = 2000  # characters in an expression
    depth: int = 60  # nesting of operations in an expression
    entries: int = 5000  # symbols written out in an element-wise proof
    seconds: float = 60.0  # CPU seconds for the whole derivation

    def how_to_raise(self, name: str) -> str:
        flag = dict(FLAGS)[name]
        return f"raise it with {flag}, or derive(..., limits=Limits({name}=...)) in Python"


def seconds_text(seconds: float) -> str:
    """A budget for a message: two significant digits below a second (0.056), hundredths above (48, 123.4)."""
    return f"{seconds:.2g}" if seconds < 1 else f"{round(seconds, 2):g}"


class OutOfTime(Exception):
    """The budget is spent; the stage that was running stops and says so."""


class Budget:
    """A CPU-time budget of ``seconds``, measured on the calling thread from when it is made."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self.start = time.thread_time()
        self.ticks = 0

    def tick(self, every: int = 64) -> None:
        """:meth:`check` on every ``every``-th call: cheap enough for the inner loop of any pass."""
        self.ticks += 1
        if self.ticks % every == 0:
            self.check()

    def spent(self) -> float:
        return time.thread_time() - self.start

    def left(self) -> float:
        return self.seconds - self.spent()

    def check(self) -> None:
        if self.spent() > self.seconds:
            raise OutOfTime(f"{self.seconds:g} s")

    def part(self, fraction: float) -> Budget:
        """A budget for one stage: ``fraction`` of what is left."""
        return Budget(max(self.left(), 0.0) * fraction)


def _say(line: str) -> None:
    """One write, so that a line said from the timer's thread is never split by another (derive: interrupted)."""
    sys.stderr.write(line)
    sys.stderr.flush()


@dataclass(frozen=True)
class Progress:
    """Says ``derive: <stage> ...`` on stderr once a stage has run ``delay`` seconds, if ``enabled``."""

    enabled: bool = False
    delay: float = 2.0

    @contextmanager
    def stage(self, message: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        timer = threading.Timer(self.delay, _say, (f"derive: {message} ...\n",))
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()


@dataclass
class Context:
    """One derivation's limits, budget and progress reporter."""

    limits: Limits = field(default_factory=Limits)
    progress: Progress = field(default_factory=Progress)
    budget: Budget = field(init=False)

    def __post_init__(self) -> None:
        if self.limits.seconds <= 0:
            raise DeriveError("the time budget must be positive")
        self.budget = Budget(self.limits.seconds)
