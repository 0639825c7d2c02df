"""The generator base class: backends produce text, the base measures.

A backend implements ``_execute(messages, config, emit)``: it calls ``emit(piece)`` for each piece
of text as it is produced and returns an ``Execution`` with token counts. ``Generator.generate``
wraps that call and records time to first token, decode time and total time, so every backend is
measured the same way.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

from ..config import GenerationConfig
from ..errors import DataError
from ..records import Generation, Usage

Messages = list[dict[str, str]]
Emit = Callable[[str], None]

_ROLES = {"system", "user", "assistant"}


@dataclass(frozen=True)
class Execution:
    """What a backend reports after producing its text."""

    tokens_in: int
    """Prompt tokens."""
    tokens_out: int
    """Generated tokens."""
    finish_reason: str = "stop"
    """``stop`` or ``length``."""
    estimated: bool = False
    """True when the counts are estimates."""


def validate_messages(messages: Messages) -> None:
    if not isinstance(messages, list) or not messages:
        raise DataError(f"Expected a non-empty list of chat messages, got {messages!r}.")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str):
            raise DataError(
                f"Expected message {i} to be {{'role': one of {sorted(_ROLES)}, 'content': str}}, got {m!r}."
            )


class Generator(ABC):
    """One language model behind one registry id."""

    #: Registry id, e.g. ``local:smollm2-135m``.
    model_id: str = ""
    #: Largest number of tokens (prompt + answer) the model accepts.
    context_length: int = 2048
    #: How a local model's decode steps read its weights (``int4``, ``int8``, ``bf16``; see
    #: ``generation/quantized.py``); None where the model runs elsewhere. Stored with every answer.
    decode_weights: str | None = None

    def generate(
        self,
        messages: Messages,
        config: GenerationConfig | None = None,
        on_text: Callable[[str], None] | None = None,
        adapter: str | None = None,
    ) -> Generation:
        """Generate a reply to ``messages``; ``on_text`` receives pieces as they stream.

        ``adapter`` is the path of a LoRA adapter folder to apply (None: the base model)."""
        config = config or GenerationConfig()
        validate_messages(messages)
        pieces: list[str] = []
        first: list[float] = []
        start = time.perf_counter()

        def emit(piece: str) -> None:
            if not piece:
                return
            if not first:
                first.append(time.perf_counter())
            pieces.append(piece)
            if on_text is not None:
                on_text(piece)

        execution = self._execute(messages, config, emit, adapter) if adapter else self._execute(messages, config, emit)
        end = time.perf_counter()
        first_at = first[0] if first else end
        return Generation(
            text="".join(pieces).strip(),
            model_id=self.model_id,
            usage=Usage(execution.tokens_in, execution.tokens_out, execution.estimated),
            ttft_s=first_at - start,
            decode_s=end - first_at,
            total_s=end - start,
            finish_reason=execution.finish_reason,
        )

    def generate_many(
        self,
        requests: list[tuple[Messages, str | None]],
        config: GenerationConfig | None = None,
        on_text: Callable[[int, str], None] | None = None,
    ) -> list[Generation]:
        """Generate replies to several ``(messages, adapter)`` requests; ``on_text(i, piece)`` streams row ``i``.

        Backends that can decode rows together (``_execute_many``) do so; their timings are per row,
        measured from the call, so a row's time to first token includes the prefill of rows before it.
        A backend that answers one row after another times each row from its own start: waiting for
        the rows before it is neither its latency nor machine time it used."""
        config = config or GenerationConfig()
        for messages, _ in requests:
            validate_messages(messages)
        n = len(requests)
        pieces: list[list[str]] = [[] for _ in range(n)]
        first: list[float | None] = [None] * n
        ended: list[float | None] = [None] * n
        start = time.perf_counter()

        def emitter(i: int) -> Emit:
            def emit(piece: str) -> None:
                if not piece:
                    return
                if first[i] is None:
                    first[i] = time.perf_counter()
                pieces[i].append(piece)
                if on_text is not None:
                    on_text(i, piece)
            return emit

        def done(i: int) -> None:
            if ended[i] is None:
                ended[i] = time.perf_counter()

        executions = self._execute_many(requests, config, [emitter(i) for i in range(n)], done)
        out = []
        for i, execution in enumerate(executions):
            end = ended[i] or time.perf_counter()
            first_at = first[i] or end
            # One after another: row i started when row i - 1 ended.
            began = start if self.batches or i == 0 else min(ended[i - 1] or start, first_at)
            out.append(Generation(
                text="".join(pieces[i]).strip(), model_id=self.model_id,
                usage=Usage(execution.tokens_in, execution.tokens_out, execution.estimated),
                ttft_s=first_at - began, decode_s=end - first_at, total_s=end - began,
                finish_reason=execution.finish_reason, batch_size=n if self.batches else 1,
            ))
        return out

    #: True when ``_execute_many`` decodes rows together (else rows run one after another).
    batches: bool = False

    def _execute_many(self, requests: list[tuple[Messages, str | None]], config: GenerationConfig,
                      emits: list[Emit], done: Callable[[int], None]) -> list[Execution]:
        """Default: one request after another."""
        executions = []
        for i, (messages, adapter) in enumerate(requests):
            executions.append(self._execute(messages, config, emits[i], adapter) if adapter
                              else self._execute(messages, config, emits[i]))
            done(i)
        return executions

    @abstractmethod
    def _execute(self, messages: Messages, config: GenerationConfig, emit: Emit, adapter: str | None = None
                 ) -> Execution:
        """Produce the reply, calling ``emit`` with each new piece of text (with ``adapter`` applied)."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's tokenizer."""

    def render_prompt(self, messages: Messages) -> str:
        """The exact text the model sees for ``messages`` (for display)."""
        return "\n".join(f"[{m['role']}] {m['content']}" for m in messages)
