"""How worker threads know to stop: the main loop quits, or stops beating (original §3.7)."""
from __future__ import annotations

import threading
import time


class Lifeline:
    """The main loop calls `beat()` every iteration and `stop()` on quit; a worker keeps
    going while `alive()`. A main loop that hangs for `timeout` seconds lets its workers go."""

    def __init__(self, timeout: float = 15.0):
        self.timeout = float(timeout)
        self._stopped = threading.Event()
        self._last = time.monotonic()

    def beat(self) -> None:
        self._last = time.monotonic()

    def stop(self) -> None:
        self._stopped.set()

    def alive(self, timeout: float | None = None) -> bool:
        """Not stopped, and the main loop beat less than `timeout` (default: the lifeline's
        own) seconds ago."""
        limit = self.timeout if timeout is None else timeout
        return not self._stopped.is_set() and time.monotonic() - self._last < limit

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early on stop."""
        self._stopped.wait(seconds)
