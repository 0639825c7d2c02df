"""Requests from several callers at once (many sessions on one server) decoded as one batch.

While the model is busy, new requests wait; when it frees up, one waiting caller takes every waiting
request with the same generation settings (up to ``max_rows`` rows) and decodes them all together.
One caller alone takes the same path as before. Batched and one-by-one greedy text are identical (see
``batching``), so merging changes only speed.

**Each caller draws only its own stream.** The thread that runs a batch calls a row's ``emit`` and
``done`` directly only for its own rows; every other caller's pieces go into that caller's inbox, and
the caller's own thread takes them out and calls its callbacks. A web framework that routes output by
the calling thread (Streamlit does) then sends each piece to the session that asked for it.

**A caller that goes away stops only its own rows.** When a caller's callback raises (its page was
closed or rerun), its rows are cancelled at their next token and the error reaches that caller alone;
the other rows of the batch decode on.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from ..config import GenerationConfig

Execute = Callable[[list, GenerationConfig, list, Callable[[int], None]], list]

_TEXT, _DONE, _END, _WAKE = "text", "done", "end", "wake"


class Cancelled(Exception):
    """Raised inside a batch for a row whose caller has gone away (the decode loop drops the row)."""


@dataclass
class _Call:
    requests: list
    config: GenerationConfig
    emits: list
    done: Callable[[int], None]
    owner: int = field(default_factory=threading.get_ident)
    inbox: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    result: list | None = None
    error: BaseException | None = None
    cancelled: bool = False
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = len(self.requests)


class Coalescer:
    """Merges concurrent ``execute(requests, config, emits, done)`` calls that share a config.

    ``execute`` returns one result per request; a result that is an exception is that row's failure
    (it reaches only the caller of that row)."""

    def __init__(self, execute: Execute, max_rows: int = 16):
        self._execute = execute
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._pending: list[_Call] = []
        self._busy = False
        #: Calls merged with at least one other, and the largest merged batch (for tests and the log).
        self.merged_calls = 0
        self.largest_batch = 0

    def run(self, requests: list, config: GenerationConfig, emits: list, done: Callable[[int], None]) -> list:
        call = _Call(requests, config, emits, done)
        with self._lock:
            self._pending.append(call)
        try:
            while True:
                with self._lock:
                    batch = None
                    if not self._busy and self._pending:
                        batch, self._busy = self._take(), True
                if batch is not None:
                    self._run_batch(batch)  # may or may not hold this call; its end arrives in the inbox
                    continue
                kind, *item = call.inbox.get()
                if kind == _TEXT:
                    call.emits[item[0]](item[1])
                elif kind == _DONE:
                    call.done(item[0])
                elif kind == _END:
                    break
        except BaseException:  # this caller went away (or its callback failed): cancel only its own rows
            call.cancelled = True
            with self._lock:
                if call in self._pending:
                    self._pending.remove(call)
            raise
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
        me = threading.get_ident()
        requests, emits, owners = [], [], []
        for c in batch:
            for i in range(c.rows):
                requests.append(c.requests[i])
                emits.append(self._emitter(c, i, me))
                owners.append((c, i))
        if len(batch) > 1:
            self.merged_calls += len(batch)
        self.largest_batch = max(self.largest_batch, len(requests))

        def done(j: int) -> None:
            c, i = owners[j]
            if c.owner == me:
                c.done(i)
            elif not c.cancelled:
                c.inbox.put((_DONE, i))

        try:
            executions: Any = self._execute(requests, batch[0].config, emits, done)
            start = 0
            for c in batch:
                c.result = executions[start:start + c.rows]
                c.error = next((r for r in c.result if isinstance(r, BaseException)), None)
                start += c.rows
        except BaseException as exc:  # the model failed: every caller in the batch sees it
            for c in batch:
                c.error = exc
        finally:
            with self._lock:
                self._busy = False
                for c in batch:
                    c.inbox.put((_END,))
                for c in self._pending:  # the model is free: wake the waiting callers, one of them takes it
                    c.inbox.put((_WAKE,))

    @staticmethod
    def _emitter(c: _Call, i: int, me: int) -> Callable[[Any], None]:
        def emit(piece: Any) -> None:
            if c.cancelled:
                raise Cancelled("the caller went away")
            if c.owner == me:
                try:
                    c.emits[i](piece)
                except BaseException:
                    c.cancelled = True  # this thread's own caller went away: its other rows stop too
                    raise
            else:
                c.inbox.put((_TEXT, i, piece))
        return emit
