"""Polling with a deadline, the one loop every chroma-ops wait uses."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(done: Callable[[], bool], timeout: float, interval: float,
               sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> bool:
    """Ask `done` every `interval` seconds: True as soon as it says so, False once `timeout` has passed."""
    deadline = clock() + timeout
    while not done():
        if clock() > deadline:
            return False
        sleep(interval)
    return True
