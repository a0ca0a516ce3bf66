"""Helpers shared by the tests (imported as `from helpers import ...`, as conftest's are)."""

from __future__ import annotations


class FakeClock:
    """Fixed step timings for the trainer, whatever the machine and its load.

    Installed, it replaces `pacing.clock` (the trainer's call sizing and speed, and the
    demo's and `train`'s deadline) and advances only when a model of the next `train`
    calls runs steps: `first_call` seconds for a model's first call (the one that
    traces), `per_step` seconds a step otherwise. `sizes` records every call's steps.
    """

    def __init__(self, per_step: float, first_call: float | None = None):
        self.now, self.per_step, self.first_call = 0.0, per_step, first_call
        self.sizes: list[int] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def install(self, monkeypatch) -> FakeClock:
        from pix2pix_tf.train import pacing, startup

        clock = self
        monkeypatch.setattr(pacing, "clock", self)

        class Timed(startup.Pix2Pix):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                run, calls = self.train_steps, []

                def timed(iterator, n):
                    result = run(iterator, n)
                    first = not calls and clock.first_call is not None
                    clock.advance(clock.first_call if first else int(n) * clock.per_step)
                    calls.append(int(n))
                    clock.sizes.append(int(n))
                    return result

                self.train_steps = timed

        monkeypatch.setattr(startup, "Pix2Pix", Timed)
        return self
