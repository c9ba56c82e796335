"""Progress on stderr for slow stages, only when a person is watching.

The command line turns it on when stderr is a terminal; a stage that ends
within ``DELAY`` seconds prints nothing.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

DELAY = float(os.environ.get("DERIVE_PROGRESS_DELAY", "2.0"))  # seconds before a stage speaks
enabled = False


def _say(line: str) -> None:
    """One write, so that a line said from the timer's thread is never split by another (derive: interrupted)."""
    sys.stderr.write(line)
    sys.stderr.flush()


@contextmanager
def stage(message: str) -> Iterator[None]:
    """Say ``message`` on stderr if the enclosed work is still running after DELAY seconds."""
    if not enabled:
        yield
        return
    timer = threading.Timer(DELAY, _say, (f"derive: {message} ...\n",))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
