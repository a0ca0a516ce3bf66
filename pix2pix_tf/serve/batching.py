"""Server-side batching, TensorFlow Serving's idea: concurrent requests share one model call.

Requests for the same signature and the same per-image shape are queued; a batch
runs when it holds `max_batch` rows or when the oldest request has waited
`timeout_ms`. The model runs in a worker thread, so the event loop keeps accepting
requests meanwhile. A request whose client has gone (`client_gone`) is dropped before
the model runs: its rows are left out of the batch.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from collections.abc import Awaitable, Callable

import numpy as np


class ClientGone(Exception):
    """The client of a request hung up: its work is dropped."""


# Set per request by the app (Starlette's `request.is_disconnected`): the batcher asks
# it just before the model runs, in the request's task or in the batch's.
client_gone: contextvars.ContextVar[Callable[[], Awaitable[bool]] | None] = contextvars.ContextVar(
    "client_gone", default=None
)


async def _gone(check: Callable[[], Awaitable[bool]] | None) -> bool:
    return check is not None and await check()


async def check_client() -> None:
    """Raises ClientGone if the current request's client has hung up."""
    if await _gone(client_gone.get()):
        raise ClientGone()


@dataclasses.dataclass
class _Pending:
    inputs: dict[str, np.ndarray]
    rows: int
    future: asyncio.Future
    gone: Callable[[], Awaitable[bool]] | None = None


class Batcher:
    """Batches calls of one function from name -> array to name -> array along axis 0.

    Args:
        run: the model call (blocking); runs in a worker thread.
        max_batch: rows per model call at most; 1 turns batching off.
        timeout_ms: how long the first request of a batch waits for company.
    """

    def __init__(self, run: Callable[..., dict[str, np.ndarray]], max_batch: int = 1, timeout_ms: float = 0.0):
        self.run, self.max_batch, self.timeout = run, max_batch, timeout_ms / 1000
        self._queues: dict[tuple, list[_Pending]] = {}
        self._timers: dict[tuple, asyncio.TimerHandle] = {}
        self._running: set[asyncio.Task] = set()

    async def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = len(next(iter(inputs.values())))
        if self.max_batch <= 1 or rows >= self.max_batch:
            if await _gone(client_gone.get()):
                raise ClientGone()
            return await asyncio.to_thread(self.run, **inputs)
        key = tuple((name, array.shape[1:], array.dtype.str) for name, array in sorted(inputs.items()))
        loop = asyncio.get_running_loop()
        pending = _Pending(inputs, rows, loop.create_future(), client_gone.get())
        queue = self._queues.setdefault(key, [])
        queue.append(pending)
        if sum(p.rows for p in queue) >= self.max_batch:
            self._flush(key)
        elif key not in self._timers:
            self._timers[key] = loop.call_later(self.timeout, self._flush, key)
        return await pending.future

    def _flush(self, key: tuple) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        queue, batch = self._queues.get(key, []), []
        while queue and sum(p.rows for p in batch) + queue[0].rows <= self.max_batch:
            batch.append(queue.pop(0))
        if queue:  # what did not fit starts the next batch
            self._timers[key] = asyncio.get_running_loop().call_later(self.timeout, self._flush, key)
        if batch:
            task = asyncio.ensure_future(self._run(batch))
            self._running.add(task)  # held until done: the event loop keeps only weak references
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[_Pending]) -> None:
        batch = [p for p in batch if not await self._dropped(p)]
        if not batch:
            return
        names = list(batch[0].inputs)
        joined = {name: np.concatenate([p.inputs[name] for p in batch]) for name in names}
        try:
            outputs = await asyncio.to_thread(self.run, **joined)
        except Exception:
            # One bad request must not fail the others: rerun each alone, so that
            # only the one at fault gets the error.
            for p in batch:
                if await self._dropped(p):
                    continue
                try:
                    result = await asyncio.to_thread(self.run, **p.inputs)
                except Exception as e:
                    if not p.future.done():
                        p.future.set_exception(e)
                else:
                    if not p.future.done():
                        p.future.set_result(result)
            return
        start = 0
        for p in batch:
            if not p.future.done():
                p.future.set_result({name: value[start : start + p.rows] for name, value in outputs.items()})
            start += p.rows

    @staticmethod
    async def _dropped(p: _Pending) -> bool:
        """Whether `p` needs no model call: answered already, or its client hung up (it gets ClientGone)."""
        if p.future.done():
            return True
        if await _gone(p.gone):
            p.future.set_exception(ClientGone())
            return True
        return False
