"""What a run shows while it trains, and how Ctrl-C reaches it."""

from __future__ import annotations

import signal
import sys
import time


class Progress:
    """A one-line progress bar on a terminal, a log line every `every` steps otherwise.

    With `show` False (a worker other than the chief) it prints nothing.
    """

    def __init__(self, start: int, total: int, every: int, show: bool = True):
        self.start, self.total, self.every = start, total, every
        self.tty = sys.stdout.isatty() and show
        self.show = show
        self.t0 = time.perf_counter()

    def update(self, step: int, logs: dict[str, float], images_per_s: float):
        if not self.show or (not self.tty and step % self.every and step != self.total):
            return
        done = (step - self.start) / max(self.total - self.start, 1)
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / max(step - self.start, 1) * (self.total - step)
        bar = "=" * int(20 * done) + ">" + "." * (20 - int(20 * done))
        losses = " ".join(f"{k} {logs[k]:.4g}" for k in ("g_total", "g_gan", "g_l1", "d_total"))
        line = f"step {step}/{self.total} [{bar}] {losses} | {images_per_s:.1f} img/s | eta {eta:.0f}s"
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", flush=True)

    def close(self):
        if self.tty:
            print()


class CtrlC:
    """Turns Ctrl-C, and SIGTERM, into a flag checked between calls, so a step is never cut in half.

    SIGTERM is how Kubernetes, batch schedulers and `kill` ask a job to stop: it gets
    the same checkpoint as Ctrl-C.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.pressed = False
        try:
            self.previous = {s: signal.signal(s, self._handler) for s in self.SIGNALS}
        except ValueError:  # not the main thread: Ctrl-C stays a KeyboardInterrupt
            self.previous = {}

    def _handler(self, signum, frame):
        self.pressed = True

    def restore(self):
        """Puts back the handlers that were there before."""
        for s, previous in self.previous.items():
            if previous is not None:  # None: set outside Python, which Python cannot put back
                signal.signal(s, previous)
