"""What an answer cost, from what was measured and a price table.

- Local models (``local:``, ``hf:``): the machine's seconds times a $/hour hardware rate (0 for a
  laptop you already own). Answers decoded in one batch share the machine, so each is charged its
  retrieval and prompt time plus its generation time divided by the number of answers in the batch.
- API models (``openai:``, ``compat:``): tokens times the model's published $ per million tokens.
  A model without a price is *unknown*, never $0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GENERATION_STAGES = ("ttft", "decode")


@dataclass(frozen=True)
class ApiPrice:
    """Published price of one API model."""

    input_per_m: float
    """$ per 1M prompt tokens."""
    output_per_m: float
    """$ per 1M generated tokens."""
    as_of: str
    """When the price was published (YYYY-MM), so users know how old it is."""
    source: str
    """Where it comes from."""


#: Defaults; users edit them on the Costs page. Prices as announced by OpenAI at each model's launch.
API_PRICES: dict[str, ApiPrice] = {
    "openai:gpt-4o-mini": ApiPrice(0.15, 0.60, "2024-07", "OpenAI pricing page at the model's launch"),
    "openai:gpt-4o": ApiPrice(2.50, 10.00, "2024-08", "OpenAI pricing page (gpt-4o-2024-08-06)"),
    "openai:gpt-4.1-mini": ApiPrice(0.40, 1.60, "2025-04", "OpenAI pricing page at the model's launch"),
}


#: $ per 1M input tokens of API embedding models, as announced by OpenAI (2024-01).
EMBEDDING_PRICES: dict[str, tuple[float, str]] = {
    "openai:text-embedding-3-small": (0.02, "2024-01"),
    "openai:text-embedding-3-large": (0.13, "2024-01"),
}


def embedding_cost(model_id: str, tokens: int) -> float | None:
    """$ for embedding ``tokens`` with ``model_id``; 0 for local embedders; None when no price is known."""
    if model_id.split(":", 1)[0] in {"local", "st"}:
        return 0.0
    price = EMBEDDING_PRICES.get(model_id)
    return None if price is None else tokens * price[0] / 1e6


@dataclass(frozen=True)
class Cost:
    """One answer's cost."""

    usd: float | None
    """Dollars; None when no price is known for the model."""
    basis: str
    """How it was computed, in words."""


def is_local(model_id: str) -> bool:
    return model_id.split(":", 1)[0] in {"local", "hf"}


def machine_seconds(answer: dict[str, Any]) -> float:
    """Seconds of this machine an answer used (generation shared within its batch)."""
    timings = answer.get("timings") or []
    batch = max(1, int(answer.get("batch_size") or 1))
    own = sum(t["seconds"] for t in timings if t["stage"] not in GENERATION_STAGES)
    generation = sum(t["seconds"] for t in timings if t["stage"] in GENERATION_STAGES)
    return own + generation / batch


def answer_cost(answer: dict[str, Any], hardware_per_hour: float,
                api_prices: dict[str, ApiPrice] | None = None) -> Cost:
    """The cost of one stored answer (``Answer.to_dict()``)."""
    if hardware_per_hour < 0:
        raise ValueError(f"Expected a hardware rate of 0 or more $ per hour, got {hardware_per_hour}.")
    model_id = answer.get("model_id", "")
    if answer.get("cache_hit"):
        seconds = machine_seconds(answer)
        return Cost(seconds * hardware_per_hour / 3600, f"cache hit: {seconds * 1000:.0f} ms of this machine")
    if is_local(model_id) or model_id.startswith("fake:"):
        seconds = machine_seconds(answer)
        return Cost(seconds * hardware_per_hour / 3600, f"{seconds:.2f} s of this machine at ${hardware_per_hour:g}/h")
    price = (api_prices if api_prices is not None else API_PRICES).get(model_id)
    if price is None:
        return Cost(None, f"no price known for {model_id}")
    usage = answer.get("usage") or {}
    usd = (usage.get("tokens_in", 0) * price.input_per_m + usage.get("tokens_out", 0) * price.output_per_m) / 1e6
    return Cost(usd, f"tokens at ${price.input_per_m:g}/${price.output_per_m:g} per 1M in/out ({price.as_of})")
