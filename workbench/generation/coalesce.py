"""Requests from several callers at once (many sessions on one server) decoded as one batch.

While the model is busy, new requests wait; when it frees up, the first waiting caller takes every
waiting request with the same generation settings (up to ``max_rows`` rows) and decodes them all
together, streaming each row to its own caller. One caller alone takes the same path as before.
Batched and one-by-one greedy text are identical (see ``batching``), so merging changes only speed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from ..config import GenerationConfig

Execute = Callable[[list, GenerationConfig, list, Callable[[int], None]], list]


@dataclass
class _Call:
    requests: list
    config: GenerationConfig
    emits: list
    done: Callable[[int], None]
    result: list | None = None
    error: BaseException | None = None
    finished: bool = False
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = len(self.requests)


class Coalescer:
    """Merges concurrent ``execute(requests, config, emits, done)`` calls that share a config."""

    def __init__(self, execute: Execute, max_rows: int = 16):
        self._execute = execute
        self.max_rows = max_rows
        self._cond = threading.Condition()
        self._pending: list[_Call] = []
        self._busy = False
        #: Calls merged with at least one other, and the largest merged batch (for tests and the log).
        self.merged_calls = 0
        self.largest_batch = 0

    def run(self, requests: list, config: GenerationConfig, emits: list, done: Callable[[int], None]) -> list:
        call = _Call(requests, config, emits, done)
        with self._cond:
            self._pending.append(call)
        while True:
            with self._cond:
                while not call.finished and self._busy:
                    self._cond.wait()
                if call.finished:
                    break
                batch = self._take()
                self._busy = True
            self._run_batch(batch)
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]

    def _take(self) -> list[_Call]:
        """The oldest waiting call and every later one with the same config, up to ``max_rows`` rows."""
        first = self._pending[0]
        batch, rows = [], 0
        for c in list(self._pending):
            if c.config == first.config and (not batch or rows + c.rows <= self.max_rows):
                batch.append(c)
                rows += c.rows
                self._pending.remove(c)
        return batch

    def _run_batch(self, batch: list[_Call]) -> None:
        requests, emits, owners = [], [], []
        for c in batch:
            for i in range(c.rows):
                requests.append(c.requests[i])
                emits.append(c.emits[i])
                owners.append((c, i))
        if len(batch) > 1:
            self.merged_calls += len(batch)
        self.largest_batch = max(self.largest_batch, len(requests))
        try:
            executions: Any = self._execute(requests, batch[0].config, emits,
                                            lambda j: owners[j][0].done(owners[j][1]))
            start = 0
            for c in batch:
                c.result = executions[start:start + c.rows]
                start += c.rows
        except BaseException as exc:  # every caller in the batch sees the failure
            for c in batch:
                c.error = exc
        finally:
            with self._cond:
                for c in batch:
                    c.finished = True
                self._busy = False
                self._cond.notify_all()
