"""Dynamic batching, as Triton's dynamic batcher: requests that arrive together run as one batch.

Requests queue up; the batcher takes the first, then keeps taking queued requests until the
batch holds ``max_batch`` rows or ``max_wait_ms`` have passed since it started, and runs it in
its one inference thread (ONNX Runtime releases the GIL, so the event loop keeps accepting
requests meanwhile). While a batch runs, new requests wait in the queue and form the next
batch at once. A request larger than ``max_batch`` runs alone, cut into ``max_batch`` chunks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np


@dataclass
class _Item:
    x: np.ndarray
    future: asyncio.Future


class Batcher:
    """``await batcher.submit(x)`` gives ``run``'s output rows for the rows of ``x``.

    ``run(batch)`` is called from one worker thread; ``on_batch(batch, outputs)`` after it,
    in the same thread (metrics, drift)."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], *, max_batch: int, max_wait_ms: float,
                 on_batch: Callable[[np.ndarray, np.ndarray], None] | None = None):
        self.run, self.on_batch = run, on_batch
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000.0
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gaitrun-infer")
        self._task: asyncio.Task | None = None
        self._held: _Item | None = None  # took too many rows for the last batch: starts the next

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.executor.shutdown(wait=True)

    async def submit(self, x: np.ndarray) -> np.ndarray:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put(_Item(x, future))
        return await future

    async def _collect(self) -> list[_Item]:
        first, self._held = self._held, None
        items = [first if first is not None else await self.queue.get()]
        rows, deadline = len(items[0].x), time.monotonic() + self.max_wait
        while rows < self.max_batch:
            try:
                item = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), left)
                except asyncio.TimeoutError:
                    break
            if rows + len(item.x) > self.max_batch:
                self._held = item
                break
            items.append(item)
            rows += len(item.x)
        return items

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        out = np.concatenate([self.run(batch[i:i + self.max_batch]) for i in range(0, len(batch), self.max_batch)])
        if self.on_batch is not None:
            self.on_batch(batch, out)
        return out

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            live = [i for i in items if not i.future.done()]  # a client may have gone
            if not live:
                continue
            batch = live[0].x if len(live) == 1 else np.concatenate([i.x for i in live])
            try:
                out = await loop.run_in_executor(self.executor, self._infer, batch)
            except Exception as exc:  # the runtime failed: every waiting request hears it
                for i in live:
                    if not i.future.done():
                        i.future.set_exception(exc)
                continue
            start = 0
            for i in live:
                if not i.future.done():
                    i.future.set_result(out[start:start + len(i.x)])
                start += len(i.x)
