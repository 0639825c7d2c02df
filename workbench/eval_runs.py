"""Evaluation runs: the batch job, its stored results, summaries per approach, and comparisons.

A run is one JSON file, ``workspaces/NAME/evaluations/<id>.json``, rewritten atomically after every
question: a cancelled, failed or killed run keeps every question it finished, and the file always
holds the full configuration (model, adapter, retrieval and generation settings, seed, test set
hash) needed to repeat it.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from . import paths
from .config import DEFAULT_EMBEDDER, GenerationConfig, RetrievalConfig
from .costs import answer_cost, machine_seconds
from .errors import CancelledError, DataError
from .evaluation import (TestItem, answer_core, cosine, exact_match, groundedness, is_refusal, leakage,
                         mentions_source, percentile, testset_hash, token_f1)
from .formats import FormatCheck
from .generation.base import Generator
from .progress import ProgressEvent, ProgressSink, null_sink
from .store import atomic_write_json
from .strategies import LABELS, run_comparison

log = logging.getLogger("workbench.eval")

RUNNING, DONE, CANCELLED, FAILED, INTERRUPTED = "running", "done", "cancelled", "failed", "interrupted"
#: Metrics shown per approach, with what they mean (higher is better for all).
METRICS = {
    "f1": "Token F1 against the reference (answer line of formatted answers)",
    "exact": "Exact match with the reference (normalised)",
    "similarity": "Embedding similarity to the reference",
    "grounded": "Share of answer sentences supported by a retrieved chunk",
    "retrieved": "Expected source among the retrieved chunks",
    "cited": "Expected source named or cited in the answer",
    "format_ok": "Answer follows the trained format",
    "refusal_ok": "Refused exactly when the documents cannot answer",
}
STAGES = ("embed_query", "dense_search", "keyword_search", "fusion", "rerank", "prompt_build", "ttft", "decode")
_active: set[str] = set()
_active_lock = threading.Lock()


def evals_dir(workspace: str) -> Path:
    return paths.workspace_dir(workspace) / "evaluations"


def _path(workspace: str, run_id: str) -> Path:
    return paths.record_file(evals_dir(workspace), run_id, "evaluation run")


def training_pairs_of(adapter: str | None) -> list[dict[str, str]]:
    """The (question, answer) pairs an adapter was trained on, when its folder keeps them."""
    if not adapter:
        return []
    path = Path(adapter) / "training_pairs.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            out.append({"question": rec["question"], "answer": rec["answer"]})
    return out


def score_answer(item: TestItem, answer: dict[str, Any], chunks: list[str], check: FormatCheck, embed: Any,
                 reference: str) -> dict[str, Any]:
    """Every metric of one answer."""
    text = answer["text"]
    core = answer_core(text)
    refused = is_refusal(text)
    retrieved_docs = [c["doc_name"] for c in answer.get("citations", [])]
    metrics: dict[str, Any] = {
        "f1": token_f1(core, reference) if item.answerable else None,
        "exact": float(exact_match(core, reference)) if item.answerable else None,
        "similarity": None,
        "grounded": groundedness(text, chunks, embed),
        "retrieved": (float(item.source in retrieved_docs) if retrieved_docs else None) if item.source else None,
        "cited": float(mentions_source(text, item.source, answer.get("citations", []))) if item.source else None,
        "format_ok": float(check.passes(text)),
        "refused": refused,
        "refusal_ok": float(refused == (not item.answerable)),
    }
    if embed is not None and item.answerable:
        a, r = embed([core, reference])
        metrics["similarity"] = float(sum(x * y for x, y in zip(a, r)))
    return metrics


JUDGE_PROMPT = (
    "You grade answers of a customer support assistant. Compare the ANSWER with the REFERENCE answer to the "
    "QUESTION. Reply with exactly one word first, CORRECT or INCORRECT, then one short sentence with the reason. "
    "An answer is CORRECT when it states the same facts as the reference (wording may differ); when the reference "
    "says the information is not available, only an answer that says it does not know is CORRECT.")


def judge_answer(judge: Generator, question: str, reference: str, answer: str) -> dict[str, Any]:
    """Ask ``judge`` whether ``answer`` is right; returns verdict (1.0/0.0/None), reason, and what it cost."""
    messages = [{"role": "system", "content": JUDGE_PROMPT},
                {"role": "user", "content": f"QUESTION: {question}\nREFERENCE: {reference}\nANSWER: {answer}"}]
    result = judge.generate(messages, GenerationConfig(max_new_tokens=60))
    first = result.text.strip().split(maxsplit=1)
    word = first[0].strip(".:,*").upper() if first else ""
    verdict = 1.0 if word == "CORRECT" else 0.0 if word == "INCORRECT" else None
    record = {"model_id": judge.model_id, "usage": {"tokens_in": result.usage.tokens_in,
                                                   "tokens_out": result.usage.tokens_out},
              "timings": [{"stage": "ttft", "seconds": result.ttft_s}, {"stage": "decode", "seconds": result.decode_s}]}
    return {"verdict": verdict, "reason": result.text.strip()[:300], "judge_model": judge.model_id,
            "tokens_in": result.usage.tokens_in, "tokens_out": result.usage.tokens_out,
            "estimated": result.usage.estimated, "record": record}


def provenance(text: str, chunks: list[str], pairs: list[dict[str, str]], pair_vectors: Any, embed: Any
               ) -> dict[str, Any] | None:
    """Is the answer closer to the retrieved chunks or to the training pairs?"""
    if embed is None or (not chunks and not pairs):
        return None
    vector = embed([answer_core(text) or text])[0]
    out: dict[str, Any] = {"chunk_similarity": None, "pair_similarity": None, "nearest_pair": None}
    if chunks:
        out["chunk_similarity"] = round(max(cosine(vector, v) for v in embed(chunks)), 4)
    if pairs and pair_vectors is not None:
        sims = [cosine(vector, v) for v in pair_vectors]
        best = max(range(len(sims)), key=sims.__getitem__)
        out["pair_similarity"] = round(sims[best], 4)
        out["nearest_pair"] = pairs[best]["question"]
    if out["chunk_similarity"] is not None and out["pair_similarity"] is not None:
        out["closer_to"] = "training pairs" if out["pair_similarity"] > out["chunk_similarity"] else "documents"
    return out


def evaluate(
    items: list[TestItem], modes: list[str], generator: Generator, *, workspace: str, index: Any = None,
    adapter: str | None = None, adapter_name: str | None = None, adapter_system: str | None = None,
    retrieval_config: RetrievalConfig | None = None, config: GenerationConfig | None = None,
    testset_name: str = "test set", check: FormatCheck | None = None, embedder_id: str = DEFAULT_EMBEDDER,
    use_updated_reference: bool = False, label: str = "", progress: ProgressSink = null_sink,
    cancel: threading.Event | None = None, run_id: str | None = None, judge: Generator | None = None,
    backends: dict[str, tuple[Generator, str | None]] | None = None,
) -> dict[str, Any]:
    """Run every item through ``modes`` (one batched comparison per question), scoring each answer.

    Results are saved after every question; on cancel the partial run is kept (status ``cancelled``)."""
    from . import models
    from .retrieval import retrieve

    if not items:
        raise DataError("Expected at least one test question, got none.")
    if not modes:
        raise DataError("Expected at least one approach to evaluate, got none.")
    config = config or GenerationConfig()
    retrieval_config = retrieval_config or RetrievalConfig()
    check = check or FormatCheck()
    embedder = models.get_embedder(embedder_id)
    embed = embedder.embed
    pairs = training_pairs_of(adapter)
    pair_vectors = embed([p["answer"] for p in pairs]) if pairs else None
    adapter_meta = _adapter_meta(adapter)
    run: dict[str, Any] = {
        "id": run_id or time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3),
        "label": label, "created_at": time.time(), "finished_at": None, "status": RUNNING, "error": None,
        "testset": {"name": testset_name, "hash": testset_hash(items), "count": len(items),
                    "reference": "updated_reference" if use_updated_reference else "reference"},
        "config": {"modes": list(modes), "model_id": generator.model_id, "adapter": adapter_name,
                   "adapter_path": adapter, "adapter_created_at": adapter_meta.get("created_at"),
                   "adapter_system": adapter_system, "generation": config.to_dict(),
                   "retrieval": retrieval_config.to_dict(), "embedder_id": embedder_id,
                   "index_fingerprint": index.fingerprint() if index is not None else None,
                   "index_documents": len(index.documents()) if index is not None else 0,
                   "format_check": {"kind": check.kind, "pattern": check.pattern, "lines": list(check.lines)},
                   "judge": judge.model_id if judge is not None else None,
                   "backends": {m: {"model_id": g.model_id, "adapter": a} for m, (g, a) in (backends or {}).items()}},
        "leakage": leakage([i.question for i in items], [p["question"] for p in pairs], embed) if pairs else [],
        "unavailable": {}, "done": 0, "results": [],
    }
    with _active_lock:
        _active.add(run["id"])
    path = _path(workspace, run["id"])
    atomic_write_json(path, run)
    started = time.perf_counter()
    try:
        for n, item in enumerate(items, start=1):
            if cancel is not None and cancel.is_set():
                raise CancelledError(f"Cancelled after {n - 1} of {len(items)} questions; their results are kept.")
            reference = (item.updated_reference or item.reference) if use_updated_reference else item.reference
            comparison = run_comparison(item.question, modes, generator, index=index, adapter=adapter,
                                        adapter_system=adapter_system, retrieval_config=retrieval_config,
                                        config=config, backends=backends)
            run["unavailable"] = comparison.unavailable
            if comparison.errors:
                run.setdefault("errors", []).append({"item_id": item.id, **comparison.errors})
            hits = comparison.retrieval.hits if comparison.retrieval is not None else None
            if hits is None and index is not None and index.documents():
                hits = retrieve(index, item.question, retrieval_config).hits  # to judge grounding of every mode
            chunks = [h.chunk.text for h in hits or []]
            for answer in comparison.answers:
                record = answer.to_dict()
                run["results"].append({
                    "item_id": item.id, "question": item.question, "reference": reference, "source": item.source,
                    "answerable": item.answerable, "mode": answer.mode, "text": answer.text,
                    "model_id": answer.model_id, "timings": record["timings"], "usage": record["usage"],
                    "batch_size": answer.batch_size, "finish_reason": answer.finish_reason,
                    # the exact prompt: lets the Costs page count tokens with another model's tokenizer
                    "messages": record["messages"],
                    "citations": [{"doc_name": c["doc_name"], "chunk_id": c.get("chunk_id"), "rank": c.get("rank")}
                                  for c in record["citations"]],
                    "metrics": score_answer(item, record, chunks, check, embed, reference),
                    "provenance": provenance(answer.text, chunks, pairs, pair_vectors, embed),
                })
                if judge is not None:
                    verdict = judge_answer(judge, item.question, reference, answer.text)
                    run["results"][-1]["metrics"]["judge"] = verdict["verdict"]
                    run["results"][-1]["judge"] = verdict
            run["done"] = n
            atomic_write_json(path, run)
            elapsed = time.perf_counter() - started
            progress(ProgressEvent("evaluate", n, len(items), f"Question {n} of {len(items)}",
                                   metrics={"eta_s": elapsed / n * (len(items) - n), "elapsed_s": elapsed}))
        run["status"] = DONE
    except CancelledError as exc:
        run["status"], run["error"] = CANCELLED, str(exc)
    except Exception as exc:
        run["status"], run["error"] = FAILED, f"{type(exc).__name__}: {exc}"
        raise
    finally:
        run["finished_at"] = time.time()
        atomic_write_json(path, run)
        with _active_lock:
            _active.discard(run["id"])
    return run


def _adapter_meta(adapter: str | None) -> dict[str, Any]:
    if not adapter:
        return {}
    meta = Path(adapter) / "workbench-adapter.json"
    return json.loads(meta.read_text()) if meta.exists() else {}


# -- reading ----------------------------------------------------------------------------------------------
def list_eval_runs(workspace: str) -> list[dict[str, Any]]:
    """Stored runs, newest first; a run left ``running`` by a stopped process is reported interrupted."""
    folder = evals_dir(workspace)
    runs = []
    for path in folder.glob("*.json") if folder.exists() else []:
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("Skipping unreadable evaluation file %s: %s", path, exc)
            continue
        if run.get("status") == RUNNING:
            with _active_lock:
                live = run["id"] in _active
            if not live:
                run["status"] = INTERRUPTED
                run["error"] = (f"The server stopped during this run; the {run.get('done', 0)} questions finished "
                                "before are kept.")
                atomic_write_json(path, run)
        runs.append(run)
    return sorted(runs, key=lambda r: r["created_at"], reverse=True)


def get_eval_run(workspace: str, run_id: str) -> dict[str, Any]:
    path = _path(workspace, run_id)
    if not path.exists():
        raise DataError(f"Expected an evaluation run {run_id!r} in workspace {workspace!r}; there is none.")
    return json.loads(path.read_text(encoding="utf-8"))


def delete_eval_run(workspace: str, run_id: str) -> None:
    _path(workspace, run_id).unlink(missing_ok=True)


def _mean(values: list[Any]) -> float | None:
    values = [float(v) for v in values if v is not None]
    return sum(values) / len(values) if values else None


def summarize(run: dict[str, Any], hardware_per_hour: float = 0.0) -> dict[str, dict[str, Any]]:
    """mode -> mean of every metric, refusal rates, latency p50/p95 (total and per stage), tokens and
    cost per 1,000 queries, and the share of answers closer to the training pairs than to the documents."""
    out: dict[str, dict[str, Any]] = {}
    for mode in run["config"]["modes"]:
        rows = [r for r in run["results"] if r["mode"] == mode]
        if not rows:
            continue
        totals = [sum(t["seconds"] for t in r["timings"]) for r in rows]
        summary: dict[str, Any] = {"mode": mode, "approach": LABELS.get(mode, mode), "answers": len(rows)}
        for metric in METRICS:
            summary[metric] = _mean([r["metrics"].get(metric) for r in rows])
        unanswerable = [r for r in rows if not r["answerable"]]
        answerable = [r for r in rows if r["answerable"]]
        summary["refused_when_should"] = _mean([r["metrics"]["refused"] for r in unanswerable])
        summary["refused_when_should_not"] = _mean([r["metrics"]["refused"] for r in answerable])
        summary["latency_p50_s"] = percentile(totals, 0.5)
        summary["latency_p95_s"] = percentile(totals, 0.95)
        for stage in STAGES:
            values = [next((t["seconds"] for t in r["timings"] if t["stage"] == stage), None) for r in rows]
            summary[f"{stage}_p50_s"] = percentile([v for v in values if v is not None], 0.5)
            summary[f"{stage}_p95_s"] = percentile([v for v in values if v is not None], 0.95)
        summary["tokens_in_per_1k"] = _mean([r["usage"]["tokens_in"] for r in rows]) * 1000
        summary["tokens_out_per_1k"] = _mean([r["usage"]["tokens_out"] for r in rows]) * 1000
        costs = [answer_cost(r, hardware_per_hour).usd for r in rows]
        summary["cost_per_1k_usd"] = None if any(c is None for c in costs) else sum(costs) / len(costs) * 1000
        summary["machine_s_per_answer"] = _mean([machine_seconds(r) for r in rows])
        judged = [r["judge"] for r in rows if r.get("judge")]
        if judged:
            summary["judge"] = _mean([j["verdict"] for j in judged])
            judge_costs = [answer_cost(j["record"], hardware_per_hour).usd for j in judged]
            summary["judge_cost_usd"] = None if any(c is None for c in judge_costs) else sum(judge_costs)
            summary["judge_tokens"] = sum(j["tokens_in"] + j["tokens_out"] for j in judged)
        closer = [r["provenance"].get("closer_to") for r in rows if r.get("provenance") and
                  r["provenance"].get("closer_to")]
        summary["closer_to_training"] = (sum(c == "training pairs" for c in closer) / len(closer)) if closer else None
        out[mode] = summary
    return out


def per_question(run: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per question with every mode's answer and F1/refusal side by side."""
    rows: dict[str, dict[str, Any]] = {}
    for r in run["results"]:
        row = rows.setdefault(r["item_id"], {"id": r["item_id"], "question": r["question"],
                                              "reference": r["reference"], "answerable": r["answerable"]})
        row[f"{r['mode']}_answer"] = r["text"]
        row[f"{r['mode']}_correct"] = _correct(r)
    modes = run["config"]["modes"]
    for row in rows.values():
        verdicts = {row.get(f"{m}_correct") for m in modes if f"{m}_correct" in row}
        row["disagree"] = len(verdicts) > 1
    return list(rows.values())


#: An answer counts as correct at this token F1 or embedding similarity (answerable questions) ...
CORRECT_F1 = 0.5
CORRECT_SIMILARITY = 0.8


def _correct(result: dict[str, Any]) -> bool:
    """... and, for unanswerable questions, when it refuses."""
    m = result["metrics"]
    if not result["answerable"]:
        return bool(m["refused"])
    if m["refused"]:
        return False
    return (m.get("f1") or 0) >= CORRECT_F1 or (m.get("similarity") or 0) >= CORRECT_SIMILARITY


def score_texts(items: list[TestItem], texts: list[str], embed: Any = None) -> float:
    """Share of ``texts`` (answers to ``items``, in order) counted correct (see ``_correct``)."""
    check = FormatCheck()
    results = [{"answerable": i.answerable, "metrics": score_answer(i, {"text": t}, [], check, embed, i.reference)}
               for i, t in zip(items, texts)]
    return sum(_correct(r) for r in results) / len(results) if results else 0.0


def rag_score_on(run: dict[str, Any], item_ids: set[str], mode: str = "rag") -> float | None:
    """Share of ``mode``'s answers counted correct in ``run``, on the given questions only."""
    rows = [r for r in run["results"] if r["mode"] == mode and r["item_id"] in item_ids]
    return sum(_correct(r) for r in rows) / len(rows) if rows else None


def accuracy(run: dict[str, Any]) -> dict[str, float]:
    """mode -> share of answers counted correct (see ``_correct``)."""
    out: dict[str, list[bool]] = {}
    for r in run["results"]:
        out.setdefault(r["mode"], []).append(_correct(r))
    return {m: sum(v) / len(v) for m, v in out.items()}


def compare_runs(a: dict[str, Any], b: dict[str, Any], hardware_per_hour: float = 0.0) -> list[dict[str, Any]]:
    """Per mode and metric: the value in run ``a``, in run ``b`` and the change (b - a)."""
    sa, sb = summarize(a, hardware_per_hour), summarize(b, hardware_per_hour)
    acc_a, acc_b = accuracy(a), accuracy(b)
    rows = []
    for mode in [m for m in sa if m in sb]:
        for metric in ["accuracy", *METRICS, "latency_p50_s", "cost_per_1k_usd"]:
            va = acc_a.get(mode) if metric == "accuracy" else sa[mode].get(metric)
            vb = acc_b.get(mode) if metric == "accuracy" else sb[mode].get(metric)
            rows.append({"approach": LABELS.get(mode, mode), "metric": metric, "run_a": va, "run_b": vb,
                         "change": None if va is None or vb is None else vb - va})
    return rows


def same_answers(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Share of (question, mode) answers that are identical in both runs (1.0: a repeat reproduced them)."""
    ta = {(r["item_id"], r["mode"]): r["text"] for r in a["results"]}
    tb = {(r["item_id"], r["mode"]): r["text"] for r in b["results"]}
    common = set(ta) & set(tb)
    return sum(ta[k] == tb[k] for k in common) / len(common) if common else 0.0


# -- the knowledge-update experiment ---------------------------------------------------------------------
def update_questions(items: list[TestItem], document: str) -> list[TestItem]:
    """Test questions about ``document`` whose right answer changes with its update."""
    return [i for i in items if i.source == document and i.updated_reference]


def knowledge_update(
    items: list[TestItem], modes: list[str], generator: Generator, *, workspace: str, index: Any,
    updated: tuple[str, bytes], adapter: str | None = None, adapter_name: str | None = None,
    adapter_system: str | None = None, retrieval_config: RetrievalConfig | None = None,
    config: GenerationConfig | None = None, embedder_id: str = DEFAULT_EMBEDDER,
    progress: ProgressSink = null_sink, cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Ask the questions about a document, replace it with its updated version (timing the re-index),
    ask again against the updated answers, and estimate how long each approach needs to catch up.

    Returns ``{"before": run, "after": run, "reindex_s", "retrain_s", "retrain_basis", ...}``, also
    stored in the *after* run under ``experiment``."""
    from .documents import parse_uploads

    name, data = updated
    subset = update_questions(items, name)
    if not subset:
        raise DataError(f"Expected test questions with source {name!r} and an 'updated_reference'; found none. "
                        "Add 'updated_reference' to the questions whose answer the new version changes.")
    if name not in {d["name"] for d in index.documents()}:
        raise DataError(f"Expected {name!r} to be indexed before its update; it is not. Add it on the Documents page.")
    docs, problems = parse_uploads([(name, data)])
    if problems or not docs:
        raise DataError(f"Could not read the updated {name}: {problems or 'no text'}")
    current = next(d for d in index.documents() if d["name"] == name)
    if current.get("hash") == docs[0].content_hash:
        raise DataError(f"The index already holds the updated {name}, so there is nothing to catch up on.",
                        fix="Restore the original document first (Restore button), then run the experiment.")
    common = dict(workspace=workspace, adapter=adapter, adapter_name=adapter_name, adapter_system=adapter_system,
                  retrieval_config=retrieval_config, config=config, embedder_id=embedder_id, cancel=cancel)

    def stage(prefix: str) -> ProgressSink:
        return lambda e: progress(ProgressEvent(e.stage, e.step, e.total, f"{prefix}: {e.message}", e.metrics))

    before = evaluate(subset, modes, generator, index=index, testset_name=f"{name} questions, before the update",
                      label="knowledge update: before", progress=stage("Before the update"), **common)
    if before["status"] != DONE:
        return {"before": before, "after": None}
    progress(ProgressEvent("reindex", 0, 1, f"Replacing {name} with its updated version and re-indexing"))
    started = time.perf_counter()
    report = index.add_documents(docs)
    reindex_s = time.perf_counter() - started
    progress(ProgressEvent("reindex", 1, 1, f"Re-indexed {name} in {reindex_s:.1f} s"))
    after = evaluate(subset, modes, generator, index=index, testset_name=f"{name} questions, after the update",
                     label="knowledge update: after", use_updated_reference=True,
                     progress=stage("After the update"), **common)
    meta = _adapter_meta(adapter)
    experiment = {
        "document": name, "questions": len(subset), "reindex_s": reindex_s,
        "reindexed_chunks": report.chunks_added,
        "retrain_s": meta.get("wall_s"),
        "retrain_basis": (f"measured: the last training of adapter {adapter_name!r} ({meta.get('train_pairs')} pairs, "
                          f"{meta.get('steps')} steps, {meta.get('device_name', meta.get('device'))}); retraining also "
                          "needs new training pairs that state the new facts") if meta.get("wall_s") else
                         "unknown: no adapter with a recorded training time",
        "before_run": before["id"], "after_run": after["id"],
        "before_accuracy": accuracy(before), "after_accuracy": accuracy(after),
    }
    after["experiment"] = experiment
    atomic_write_json(_path(workspace, after["id"]), after)
    return {"before": before, "after": after, **experiment}
