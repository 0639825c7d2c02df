"""Compare history: every question asked, its answers, blind votes, and the semantic cache.

Each run is one JSON file under ``workspaces/NAME/history/``, written atomically, so the history
survives a restart and a crash never leaves half a run. ``run_and_record`` is the one entry point
the Compare page and the CLI share: it looks up the semantic cache, runs the remaining modes
(batched), and stores the run.

Semantic cache: a question whose embedding is close enough (cosine >= threshold) to an earlier
question, asked with the same settings for that mode (model, adapter, generation and retrieval
settings, index content), returns the earlier answer, marked as a cache hit with the measured
lookup time. Settings are part of the key, so a changed document or adapter never serves a stale
answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import secrets
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from . import paths
from .config import GenerationConfig, RetrievalConfig
from .pricing import Pricing, default_pricing
from .errors import DataError
from .records import CACHE_STAGE, Answer, Run, StageTiming, Usage
from .store import atomic_write_json
from .strategies import LABELS, MODE_TABLE, ComparisonSpec, run_comparison, validate_question

log = logging.getLogger("workbench.history")

DEFAULT_CACHE_THRESHOLD = 0.95
BLIND_LETTERS = "ABCDE"
ALL_BAD = "all_bad"
RETRIEVAL_MODES = {m for m, spec in MODE_TABLE.items() if spec.retrieves}
ADAPTER_MODES = {m for m, spec in MODE_TABLE.items() if spec.adapter}
INDEX_MODES = {m for m, spec in MODE_TABLE.items() if spec.passages}


def history_dir(workspace: str) -> Path:
    return paths.workspace_dir(workspace) / "history"


def _run_path(workspace: str, run_id: str) -> Path:
    return paths.record_file(history_dir(workspace), run_id)


def mode_signature(mode: str, *, model_id: str, adapter: str | None, adapter_system: str | None,
                   config: GenerationConfig, retrieval: RetrievalConfig, index_fingerprint: str | None,
                   prompt: str | None = None, examples: str | None = None, weights: str | None = None) -> str:
    """What must match for an earlier answer of ``mode`` to be reused (the prompt template and, for the
    Prompted approach, the pairs its examples come from, included)."""
    key: dict[str, Any] = {"mode": mode, "model": model_id, "generation": config.to_dict()}
    if weights is not None:  # int4 decode weights answer differently from bf16 ones
        key["weights"] = weights
    if prompt is not None:
        key["prompt"] = prompt
    if examples is not None and mode == "prompted":
        key["examples"] = examples
    if mode in ADAPTER_MODES:
        key["adapter"] = [adapter, adapter_system, _adapter_stamp(adapter)]
    if mode in RETRIEVAL_MODES:
        key["retrieval"] = retrieval.to_dict()
    if mode in INDEX_MODES:
        key["index"] = index_fingerprint
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def spec_signature(spec: ComparisonSpec, mode: str, index_fingerprint: str | None) -> str:
    """``mode_signature`` of one approach of ``spec`` (its own backend, adapter and prompt)."""
    backend, adapter = spec.backend(mode)
    return mode_signature(mode, model_id=backend.model_id, adapter=adapter, adapter_system=spec.adapter_system,
                          config=spec.generation, retrieval=spec.retrieval, index_fingerprint=index_fingerprint,
                          prompt=spec.prompts.signature(mode),
                          examples=spec.examples.digest if spec.examples is not None else None,
                          weights=_weights_key(backend))


def _weights_key(backend: Any) -> str | None:
    """How a local model reads its weights, for the cache key: its decode weights, and its compute dtype where
    that is not bf16 (keys of bf16 models are as they were before the dtype could change)."""
    weights, dtype = getattr(backend, "decode_weights", None), getattr(backend, "compute_dtype", None)
    if not isinstance(weights, str):
        return None
    return weights if dtype in (None, "bf16") else f"{weights}/{dtype}"


def _adapter_stamp(adapter: str | None) -> str | None:
    """Changes when an adapter folder is replaced by a new training under the same name."""
    if not adapter:
        return None
    meta = Path(adapter) / "workbench-adapter.json"
    weights = Path(adapter) / "adapter_model.safetensors"
    target = meta if meta.exists() else weights
    return str(target.stat().st_mtime_ns) if target.exists() else None


# -- storing and reading ------------------------------------------------------------------------------
def save_run(workspace: str, run: Run) -> Run:
    atomic_write_json(_run_path(workspace, run.id), run.to_dict())
    return run


def _read_run(path: Path) -> Run:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "answers" not in data or "id" not in data:
        raise ValueError("not a run record")
    return Run.from_dict(data)


def list_runs(workspace: str) -> list[Run]:
    """All stored runs, oldest first. A damaged file is skipped (and logged), never fatal."""
    folder = history_dir(workspace)
    runs = []
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        try:
            runs.append(_read_run(path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("Skipping unreadable history file %s: %s", path, exc)
    return sorted(runs, key=lambda r: r.created_at)


def get_run(workspace: str, run_id: str) -> Run:
    path = _run_path(workspace, run_id)
    if not path.exists():
        raise DataError(f"Expected a stored run {run_id!r} in workspace {workspace!r}; there is none.")
    return _read_run(path)


def clear_history(workspace: str) -> int:
    folder = history_dir(workspace)
    n = 0
    for path in folder.glob("*.json") if folder.exists() else []:
        path.unlink(missing_ok=True)
        n += 1
    return n


def record_vote(workspace: str, run_id: str, vote: str) -> Run:
    """Store a blind vote: a letter shown to the user (A, B, ...) or ``all_bad``; returns the run."""
    run = get_run(workspace, run_id)
    blind = run.blind
    if not blind:
        raise DataError(f"Run {run_id!r} was not a blind comparison; there is nothing to vote on.")
    letters = {BLIND_LETTERS[i]: mode for i, mode in enumerate(blind["order"])}
    if vote != ALL_BAD and vote not in letters:
        raise DataError(f"Expected a vote of {', '.join(letters)} or {ALL_BAD!r}, got {vote!r}.")
    blind["vote"] = vote
    blind["winner"] = letters.get(vote, ALL_BAD)
    blind["voted_at"] = time.time()
    return save_run(workspace, run)


def vote_tally(runs: list[Run]) -> dict[str, Any]:
    """How often each approach won the blind votes it took part in."""
    wins: dict[str, int] = {}
    entered: dict[str, int] = {}
    votes = all_bad = 0
    for run in runs:
        blind = run.blind or {}
        if not blind.get("vote"):
            continue
        votes += 1
        for mode in blind["order"]:
            entered[mode] = entered.get(mode, 0) + 1
        if blind["winner"] == ALL_BAD:
            all_bad += 1
        else:
            wins[blind["winner"]] = wins.get(blind["winner"], 0) + 1
    return {"votes": votes, "all_bad": all_bad, "wins": wins, "entered": entered}


def vote_agreement(runs: list[Run], items: list[Any]) -> dict[str, Any] | None:
    """How often blind votes agree with the verdicts, on voted questions that come from the test set
    ``items``: a vote agrees when it picks an answer judged correct, or says 'all bad' when none is.
    None when no voted question has a checkable reference."""
    from .scoring import judge_names
    from .verdicts import CORRECT, UNSCORED, judge

    def norm(text: str) -> str:
        return " ".join(text.lower().split())

    by_question = {norm(i.question): i for i in items}
    names = judge_names(items)
    checked, disagreements = 0, []
    for run in runs:
        blind, item = run.blind or {}, by_question.get(norm(run.question))
        if not blind.get("vote") or item is None:
            continue
        verdicts = {a.mode: judge(a.text, item.reference, question=item.question, answerable=item.answerable,
                                  background=names.background, known=names.known).verdict
                    for a in run.answers}
        if UNSCORED in verdicts.values():
            continue
        checked += 1
        correct = {m for m, v in verdicts.items() if v == CORRECT}
        winner = blind.get("winner")
        if (winner == ALL_BAD and correct) or (winner != ALL_BAD and winner not in correct):
            disagreements.append({"question": run.question, "vote": LABELS.get(winner, "all bad"),
                                  "verdicts": ", ".join(f"{LABELS.get(m, m)}: {v}" for m, v in verdicts.items())})
    if not checked:
        return None
    return {"n": checked, "agree": checked - len(disagreements), "disagreements": disagreements}


# -- the cache ------------------------------------------------------------------------------------------
def _embedder(index: Any, embedder_id: str) -> Any:
    """The embedder for the question: the index's own (one copy in memory) when it is the same model."""
    if index is not None and getattr(index, "config", None) is not None and index.config.embedder_id == embedder_id:
        return index.embedder()
    from . import models

    return models.get_embedder(embedder_id)


def find_cached(runs: list[Run], vector: list[float], embedder_id: str, signatures: dict[str, str],
                threshold: float) -> dict[str, dict[str, Any]]:
    """mode -> {answer, run_id, question, similarity} for the closest earlier answer with the same settings."""
    best: dict[str, dict[str, Any]] = {}
    for run in runs:
        stored = run.question_vector
        if not stored or run.embedder_id != embedder_id or len(stored) != len(vector):
            continue
        similarity = sum(a * b for a, b in zip(stored, vector))
        if similarity < threshold:
            continue
        for answer in run.answers:
            mode = answer.mode
            if answer.cache_hit or signatures.get(mode) != answer.signature:
                continue
            if mode not in best or similarity > best[mode]["similarity"]:
                best[mode] = {"answer": answer, "run_id": run.id, "question": run.question, "similarity": similarity}
    return best


# -- one question, recorded -------------------------------------------------------------------------------
def run_and_record(
    question: str, spec: ComparisonSpec, *, workspace: str, index: Any = None, blind_order: list[str] | None = None,
    on_text: Callable[[str, str], None] | None = None, on_cached: Callable[[str, Answer], None] | None = None,
) -> Run:
    """Answer ``question`` as ``spec`` asks (cache first when ``spec.cache_threshold`` is set), store the
    run, return it.

    ``spec.blind``: the run gets a random order of its answers (or ``blind_order``, the order the page
    already showed) under letters A, B, ...; ``record_vote`` stores the user's pick."""
    question = validate_question(question)
    modes, cache_threshold, embedder_id = list(spec.modes), spec.cache_threshold, spec.embedder_id
    fingerprint = index.fingerprint() if index is not None else None
    signatures = {m: spec_signature(spec, m, fingerprint) for m in modes}
    # The question is embedded once: for the cache and, with the index's own embedder, for retrieval.
    embedder = _embedder(index, embedder_id)  # loaded before the clock starts
    started = time.perf_counter()
    raw = embedder.embed([question])[0]
    embed_s = time.perf_counter() - started
    vector = [float(x) for x in raw]
    hits: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    if cache_threshold is not None:
        hits = find_cached(list_runs(workspace), vector, embedder_id, signatures, cache_threshold)
    lookup_s = time.perf_counter() - started
    shares_embedder = index is not None and getattr(index, "config", None) is not None \
        and index.config.embedder_id == embedder_id
    cached_answers: dict[str, Answer] = {}
    for mode, hit in hits.items():
        earlier: Answer = hit["answer"]
        answer = replace(earlier, question=question, created_at=time.time(), batch_size=1,
                         timings=[StageTiming("embed_query", embed_s), StageTiming(CACHE_STAGE, lookup_s)],
                         usage=Usage(), original_usage=earlier.usage,
                         cache_hit={"run_id": hit["run_id"], "question": hit["question"],
                                    "similarity": round(hit["similarity"], 4), "threshold": cache_threshold})
        cached_answers[mode] = answer
        if on_cached:
            on_cached(mode, answer)
    to_run = [m for m in modes if m not in cached_answers]
    comparison = run_comparison(question, spec.with_modes(to_run), index=index, on_text=on_text,
                                query=(raw, embed_s) if shares_embedder else None) if to_run else None
    fresh = {a.mode: replace(a, signature=signatures[a.mode]) for a in (comparison.answers if comparison else [])}
    if cache_threshold is not None:  # a miss spent the embedding and the lookup too: every fresh answer carries them
        for mode, answer in fresh.items():
            embedded = answer.timing("embed_query") is not None
            fresh[mode] = replace(answer, timings=([] if embedded else [StageTiming("embed_query", embed_s)])
                                  + [StageTiming(CACHE_STAGE, lookup_s)] + answer.timings)
    answers = [cached_answers.get(m) or fresh[m] for m in modes if m in cached_answers or m in fresh]
    run = Run(id=time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3), question=question, modes=list(modes),
              answers=answers, created_at=time.time(), unavailable=comparison.unavailable if comparison else {},
              errors=comparison.errors if comparison else {},
              settings=spec.settings() | {"index_fingerprint": fingerprint}, embedder_id=embedder_id,
              question_vector=vector)
    if spec.blind and answers:
        order = [a.mode for a in answers]
        if blind_order:
            order = [m for m in blind_order if m in order] + [m for m in order if m not in blind_order]
        else:
            random.SystemRandom().shuffle(order)
        run.blind = {"order": order, "vote": None, "winner": None}
    return save_run(workspace, run)


# -- tables and exports -------------------------------------------------------------------------------
def answer_rows(runs: list[Run], pricing: Pricing | None = None) -> list[dict[str, Any]]:
    """One flat row per answer, numbered by question (1 = oldest), with cost from the measured figures."""
    pricing = pricing or default_pricing()
    rows = []
    for n, run in enumerate(runs, start=1):
        blind = run.blind or {}
        for answer in run.answers:
            cost = pricing.cost(answer)
            rows.append({
                "question_no": n, "run_id": run.id, "created_at": answer.created_at or run.created_at,
                "question": run.question, "mode": answer.mode, "approach": LABELS.get(answer.mode, answer.mode),
                "answer": answer.text, "total_s": answer.total_s, "machine_s": answer.machine_s,
                "ttft_s": answer.timing("ttft"), "decode_s": answer.timing("decode"),
                "retrieval_s": answer.retrieval_s, "tokens_in": answer.usage.tokens_in,
                "tokens_out": answer.usage.tokens_out, "tokens_per_s": answer.tokens_per_s,
                "cost_usd": cost.usd, "cost_basis": cost.basis, "cache_hit": bool(answer.cache_hit),
                "batch_size": answer.batch_size, "finish_reason": answer.finish_reason,
                "model_id": answer.model_id,
                "adapter": run.settings.get("adapter") if answer.mode in ADAPTER_MODES else None,
                "sources": "; ".join(dict.fromkeys(c["doc_name"] for c in answer.citations)),
                "blind_vote_winner": blind.get("winner"),
            })
    return rows


def export_json(runs: list[Run]) -> bytes:
    """The runs as JSON (question vectors left out: they are an internal cache key)."""
    clean = [{k: v for k, v in run.to_dict().items() if k != "question_vector"} for run in runs]
    return paths.portable((json.dumps(clean, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def export_csv(rows: list[dict[str, Any]]) -> bytes:
    """The rows as CSV, their times as ISO 8601 (UTC) rather than seconds since 1970."""
    from datetime import datetime, timezone

    from .store import csv_bytes

    def iso(value: Any) -> Any:
        return datetime.fromtimestamp(value, timezone.utc).isoformat(timespec="seconds") if isinstance(
            value, (int, float)) else value

    return csv_bytes([{**row, "created_at": iso(row.get("created_at"))} if "created_at" in row else row
                      for row in rows])
