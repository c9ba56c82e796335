"""A bounded pool of worker threads for derivations.

A thread cannot be stopped, so a request past its time budget is answered
while its work runs on; the pool bounds how much such work there can be.
At most ``workers`` calls run at once and at most ``workers + backlog``
are in flight (running or queued); past that, :meth:`Pool.submit` raises
:class:`Busy` at once. A queued call whose request gave up is cancelled
before it starts. The threads are daemons: stopping the server never
waits for a runaway derivation.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class Busy(Exception):
    """Every worker is busy and the backlog is full."""


class Pool:
    """``workers`` daemon threads, started on first use; ``close()`` stops them when idle."""

    def __init__(self, workers: int, backlog: int) -> None:
        if workers < 1 or backlog < 0:
            raise ValueError("a pool needs at least one worker and a backlog of zero or more")
        self.workers, self.backlog = workers, backlog
        self._queue: queue.SimpleQueue[tuple[Future, Callable[[], Any]] | None] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._threads: list[threading.Thread] = []
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Calls submitted and not yet finished or cancelled."""
        with self._cond:
            return self._in_flight

    def submit(self, fn: Callable[[], Any]) -> Future:
        """Queue ``fn``; its Future. Raises Busy when ``workers + backlog`` calls are in flight."""
        with self._cond:
            if self._closed:
                raise Busy
            if self._in_flight >= self.workers + self.backlog:
                raise Busy
            self._in_flight += 1
            if len(self._threads) < self.workers:
                t = threading.Thread(target=self._work, name=f"derive-worker-{len(self._threads) + 1}", daemon=True)
                self._threads.append(t)
                t.start()
        f: Future = Future()
        f.add_done_callback(self._release)  # on completion, or on cancel while queued
        self._queue.put((f, fn))
        return f

    def _release(self, _: Future) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            f, fn = item
            if not f.set_running_or_notify_cancel():
                continue  # cancelled while queued
            try:
                result = fn()
            except BaseException as e:  # handed to the request, which reports it
                f.set_exception(e)
            else:
                f.set_result(result)

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is in flight (True), or ``timeout`` seconds pass (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._in_flight == 0, timeout)

    def close(self) -> None:
        """Refuse new work; each thread exits once it has finished its current call."""
        with self._cond:
            self._closed = True
            threads = len(self._threads)
        for _ in range(threads):
            self._queue.put(None)
