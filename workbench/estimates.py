"""Time estimates before long work starts, from speeds measured on this machine: the workspace's own
training runs and evaluations (never a guessed constant; with nothing measured, no estimate)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Estimate:
    seconds: float
    basis: str
    """What the figure was derived from, in words."""

    def text(self) -> str:
        return f"about {_duration(self.seconds)} ({self.basis})"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(5, round(seconds / 5) * 5):.0f} s"
    return f"{seconds / 60:.0f} min"


def training_estimate(workspace: str, pairs: int, median_tokens: float, config: Any,
                      base_model: str | None = None, precision: str | None = None) -> Estimate | None:
    """Seconds to train ``pairs`` pairs of about ``median_tokens`` tokens (for retrieval-aware training:
    with their passages) with ``config``, from the workspace's newest adapter trained the same way
    (retrieval-aware or not, same layer choice, LoRA dropout on or off, on ``base_model`` and in
    ``precision`` when given: each changes the speed)."""
    from .training import list_adapters

    raft = bool(getattr(config, "context_passages", 0))
    for adapter in list_adapters(workspace):  # newest first
        cfg = adapter.config
        stats = adapter.meta.get("length_stats") or {}
        steps, wall = adapter.steps, adapter.wall_s
        if not (steps and wall and stats.get("median") and cfg.get("batch_size")):
            continue
        if bool(cfg.get("context_passages")) != raft or cfg.get("top_layers", 0) != getattr(config, "top_layers", 0):
            continue
        if base_model is not None and adapter.base_model != base_model:
            continue
        if precision is not None and adapter.precision != precision:
            continue
        if bool(cfg.get("dropout", 0.05)) != bool(getattr(config, "dropout", 0.05)):
            continue
        per_token = wall / (steps * cfg["batch_size"] * stats["median"])
        train_pairs = max(1, round(pairs * (1 - config.val_fraction)))
        new_steps = math.ceil(train_pairs / config.batch_size) * config.epochs
        seconds = per_token * new_steps * config.batch_size * median_tokens
        return Estimate(seconds, f"at the speed measured when training {adapter.name}: "
                                 f"{per_token * 1000:.1f} ms per token")
    return None


def evaluation_estimate(workspace: str, questions: int, modes: list[str], model_id: str | None = None
                        ) -> Estimate | None:
    """Seconds to run ``questions`` questions through ``modes``, from the workspace's newest evaluation
    (on ``model_id`` when given), its wall time per question scaled by the share of these modes it ran."""
    from .eval_runs import list_eval_runs

    for run in list_eval_runs(workspace):
        done, started, finished, ran = run.done, run.created_at, run.finished_at, run.modes
        if not (done and started and finished and ran):
            continue
        if model_id is not None and (run.model_id or model_id) != model_id:
            continue
        per_answer = (finished - started) / (done * len(ran))
        return Estimate(per_answer * questions * len(modes),
                        f"{per_answer:.0f} s per answer in evaluation run {run.id}")
    return None
