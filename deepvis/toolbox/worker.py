"""The network thread: forward and back on the newest frame only (original-toolbox §3.3).

The main loop never waits on it: it reads `results` (replaced whole, never mutated) and
is told through `on_result` that a new one is there.
"""
from __future__ import annotations

import sys
import threading
import time
import traceback

from .network import NetRunner


class Worker(threading.Thread):
    """Runs `request()` through the runner whenever it asks for something new.

    `request()` returns the current Request (or None before the first frame); it is called
    under no lock of ours, so it must take the app's. Nothing runs until `pause_after_keys`
    seconds after the last key, so typing stays smooth (the original's 0.1 s).
    """

    def __init__(self, runner: NetRunner, request, on_result, lifeline,
                 pause_after_keys: float = 0.1, idle_sleep: float = 0.01):
        super().__init__(name="deepvis-network", daemon=True)
        self.runner, self.request, self.on_result = runner, request, on_result
        self.lifeline = lifeline
        self.pause_after_keys, self.idle_sleep = pause_after_keys, idle_sleep
        self.results = None
        self.error = ""
        self.last_key_at = 0.0
        self.completions: list[float] = []     # the last two finish times (for FPS)
        self._failed = None

    def key_pressed(self) -> None:
        self.last_key_at = time.monotonic()

    def fps(self, now: float | None = None) -> float:
        """1 / the interval between the last two completions, if the last was < 2 s ago."""
        now = time.monotonic() if now is None else now
        if len(self.completions) < 2 or now - self.completions[-1] >= 2.0:
            return 0.0
        return 1.0 / (self.completions[-1] - self.completions[-2] + 1e-6)

    def run(self) -> None:
        while self.lifeline.alive():
            if time.monotonic() - self.last_key_at < self.pause_after_keys:
                self.lifeline.sleep(self.idle_sleep)
                continue
            request = self.request()
            if request is None or request.key == self._failed \
                    or self.runner.up_to_date(request, self.results):
                self.lifeline.sleep(self.idle_sleep)
                continue
            try:
                results = self.runner.run(request, self.results)
            except Exception as exc:  # keep the window alive; show what went wrong
                self._failed = request.key
                self.error = f"network error: {exc}"
                traceback.print_exc(file=sys.stderr)
                self.on_result()
                continue
            self.results, self.error = results, ""
            self.completions = [*self.completions[-1:], time.monotonic()]
            self.on_result()
