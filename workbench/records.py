"""The nouns every layer shares: timings, usage, generations, answers.

Records are plain dataclasses with ``to_dict`` for storage; every field has a one-line docstring.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

#: Stages of answering, in order: retrieval (embedding the question, dense and keyword search, their
#: fusion, the rerank), building the prompt, then generation (time to first token, the rest of the
#: decode). A cache hit has the one stage ``cache_lookup``. Every page, chart, export and the CLI
#: use these names.
RETRIEVAL_STAGES = ("embed_query", "dense_search", "keyword_search", "fusion", "rerank")
GENERATION_STAGES = ("ttft", "decode")
STAGES = (*RETRIEVAL_STAGES, "prompt_build", *GENERATION_STAGES)
CACHE_STAGE = "cache_lookup"


def decode_speed(tokens_out: int, decode_s: float | None) -> float | None:
    """Tokens per second while decoding: the tokens after the first one over the decode time (the first
    token's time is the time to first token). None when too few tokens or no time to tell. The one
    formula every page, record and export uses."""
    if tokens_out <= 1 or not decode_s or decode_s <= 0:
        return None
    return (tokens_out - 1) / decode_s

@dataclass(frozen=True)
class StageTiming:
    """How long one stage of answering took."""

    stage: str
    """Stage name, e.g. ``prompt_build``, ``ttft`` (time to first token), ``decode``."""
    seconds: float
    """Wall-clock seconds spent in the stage."""


@dataclass(frozen=True)
class Usage:
    """Token counts of one or more model calls (add them with ``+``)."""

    tokens_in: int = 0
    """Prompt tokens sent to the model."""
    tokens_out: int = 0
    """Tokens the model generated."""
    estimated: bool = False
    """True when counts were estimated rather than reported by the backend's tokenizer."""

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.tokens_in + other.tokens_in,
            self.tokens_out + other.tokens_out,
            self.estimated or other.estimated,
        )

    @property
    def total(self) -> int:
        return self.tokens_in + self.tokens_out


@dataclass(frozen=True)
class Generation:
    """What a generator returns for one prompt; measured by ``Generator.generate``."""

    text: str
    """The generated text, special tokens removed."""
    model_id: str
    """Registry id of the generator that produced it."""
    usage: Usage
    """Tokens in and out."""
    ttft_s: float
    """Seconds from the call to the first generated text (prefill + first token)."""
    decode_s: float
    """Seconds from the first generated text to the end."""
    total_s: float
    """Seconds for the whole call."""
    finish_reason: str = "stop"
    """``stop`` (end of turn) or ``length`` (hit max_new_tokens)."""
    batch_size: int = 1
    """Rows decoded together in the call that produced it (1: alone)."""

    @property
    def decode_tok_s(self) -> float:
        """Generated tokens per second after the first one (0 when too few to tell)."""
        return decode_speed(self.usage.tokens_out, self.decode_s) or 0.0

    def timings(self) -> list[StageTiming]:
        return [StageTiming("ttft", self.ttft_s), StageTiming("decode", self.decode_s)]


@dataclass
class Answer:
    """One approach's answer to one question, with everything needed to judge and repeat it."""

    mode: str
    """Strategy that produced it: ``base``, ``rag``, ``finetuned``, ``hybrid``."""
    question: str
    """The user's question."""
    text: str
    """The answer shown to the user."""
    model_id: str
    """Registry id of the generator."""
    messages: list[dict[str, str]]
    """The exact chat messages sent to the model."""
    timings: list[StageTiming]
    """Per-stage timings, in order."""
    usage: Usage
    """Token counts."""
    generation_config: dict[str, Any] = field(default_factory=dict)
    """The GenerationConfig used, as a dict."""
    finish_reason: str = "stop"
    """``stop`` or ``length``."""
    citations: list[dict[str, Any]] = field(default_factory=list)
    """Retrieved chunks given to the model, best first (rag, hybrid, stuffed)."""
    adapter: str | None = None
    """Path of the LoRA adapter applied (finetuned, hybrid)."""
    batch_size: int = 1
    """Answers decoded together with this one (its time to first token includes their prefill)."""
    created_at: float = field(default_factory=time.time)
    """Unix time the answer was produced."""

    @property
    def total_s(self) -> float:
        return sum(t.seconds for t in self.timings)

    def timing(self, stage: str) -> float | None:
        for t in self.timings:
            if t.stage == stage:
                return t.seconds
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
