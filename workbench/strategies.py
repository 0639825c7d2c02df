"""Strategies: how each approach turns a question into chat messages and an ``Answer``.

A strategy builds the prompt; the generator's base class measures the call; the strategy adds its
own stages (prompt build now; retrieval stages for RAG and hybrid) to the answer's timings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from .config import GenerationConfig
from .errors import ConfigError, DataError
from .generation.base import Generator, Messages
from .records import Answer, StageTiming

BASE_SYSTEM_PROMPT = (
    "You are a helpful customer support assistant. Answer the customer's question briefly. "
    "If you do not know the answer, say that you don't know."
)
MAX_QUESTION_CHARS = 2000


@dataclass(frozen=True)
class Strategy:
    """One approach to answering."""

    mode: str
    """Short id: ``base``."""
    label: str
    """Name shown to users."""
    description: str
    """One line on what it does."""
    build_messages: Callable[[str], Messages]
    """question -> chat messages."""


def _base_messages(question: str) -> Messages:
    return [{"role": "system", "content": BASE_SYSTEM_PROMPT}, {"role": "user", "content": question}]


STRATEGIES: dict[str, Strategy] = {
    "base": Strategy("base", "Base", "The model alone, with a short system prompt: no documents, no adapter.",
                     _base_messages),
}


def get_strategy(mode: str) -> Strategy:
    if mode not in STRATEGIES:
        raise ConfigError(f"Unknown mode {mode!r}. Known modes: {', '.join(STRATEGIES)}.")
    return STRATEGIES[mode]


def validate_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise DataError("Expected a question, got an empty text.")
    question = question.strip()
    if len(question) > MAX_QUESTION_CHARS:
        raise DataError(f"Expected a question of at most {MAX_QUESTION_CHARS} characters, got {len(question)}.")
    return question


def answer_question(
    question: str,
    generator: Generator,
    mode: str = "base",
    config: GenerationConfig | None = None,
    on_text: Callable[[str], None] | None = None,
) -> Answer:
    """Answer ``question`` with the strategy ``mode``, measuring every stage."""
    question = validate_question(question)
    strategy = get_strategy(mode)
    config = config or GenerationConfig()
    started = time.perf_counter()
    messages = strategy.build_messages(question)
    build_s = time.perf_counter() - started
    generation = generator.generate(messages, config, on_text=on_text)
    return Answer(
        mode=mode,
        question=question,
        text=generation.text,
        model_id=generation.model_id,
        messages=messages,
        timings=[StageTiming("prompt_build", build_s), *generation.timings()],
        usage=generation.usage,
        generation_config=config.to_dict(),
        finish_reason=generation.finish_reason,
    )
