"""Progress on stderr for slow stages, only when a person is watching.

The command line turns it on when stderr is a terminal; a stage that ends
within ``DELAY`` seconds prints nothing.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

DELAY = 2.0
enabled = False


@contextmanager
def stage(message: str) -> Iterator[None]:
    """Say ``message`` on stderr if the enclosed work is still running after DELAY seconds."""
    if not enabled:
        yield
        return
    timer = threading.Timer(DELAY, lambda: print(f"derive: {message} ...", file=sys.stderr, flush=True))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
