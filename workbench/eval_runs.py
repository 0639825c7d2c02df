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
from dataclasses import fields
from pathlib import Path
from typing import Any

from . import paths
from .config import GenerationConfig
from .errors import CancelledError, DataError
from .evaluation import TestItem, answer_core, cosine, leakage, testset_hash
from .eval_summary import accuracy, update_transitions, verdict_counts
from .formats import FormatCheck, workspace_check
from .generation.base import Generator
from .progress import ProgressEvent, ProgressSink, null_sink
from .records import Answer, EvalResult, EvalRun
from .store import atomic_write_json
from .scoring import TestsetNames, judge_names, score_answer
from .strategies import ComparisonSpec, run_comparison
from .verdicts import JUDGE_VERSION

log = logging.getLogger("workbench.eval")

RUNNING, DONE, CANCELLED, FAILED, INTERRUPTED = "running", "done", "cancelled", "failed", "interrupted"
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


def provenance(text: str, chunk_vectors: Any, pairs: list[dict[str, str]], pair_vectors: Any, embed: Any
               ) -> dict[str, Any] | None:
    """Is the answer closer to the retrieved chunks or to the training pairs? ``chunk_vectors``: the
    question's retrieved chunks embedded once for all its answers."""
    if embed is None or (not len(chunk_vectors) and not pairs):
        return None
    vector = embed([answer_core(text) or text])[0]
    out: dict[str, Any] = {"chunk_similarity": None, "pair_similarity": None, "nearest_pair": None}
    if len(chunk_vectors):
        out["chunk_similarity"] = round(max(cosine(vector, v) for v in chunk_vectors), 4)
    if pairs and pair_vectors is not None:
        sims = [cosine(vector, v) for v in pair_vectors]
        best = max(range(len(sims)), key=sims.__getitem__)
        out["pair_similarity"] = round(sims[best], 4)
        out["nearest_pair"] = pairs[best]["question"]
    if out["chunk_similarity"] is not None and out["pair_similarity"] is not None:
        out["closer_to"] = "training pairs" if out["pair_similarity"] > out["chunk_similarity"] else "documents"
    return out


def evaluate(
    items: list[TestItem], spec: ComparisonSpec, *, workspace: str, index: Any = None,
    testset_name: str = "test set", check: FormatCheck | None = None, use_updated_reference: bool = False,
    label: str = "", progress: ProgressSink = null_sink, cancel: threading.Event | None = None,
    run_id: str | None = None, judge: Generator | None = None, names: TestsetNames | None = None,
) -> EvalRun:
    """Run every item through ``spec.modes`` (one batched comparison per question), scoring each answer.

    ``names``: the test set's background and known names for the verdicts (default: from ``items``).
    Results are saved after every question; on cancel the partial run is kept (status ``cancelled``)."""
    from . import models
    from .retrieval import retrieve

    if not items:
        raise DataError("Expected at least one test question, got none.")
    if not spec.modes:
        raise DataError("Expected at least one approach to evaluate, got none.")
    retrieval_config = spec.retrieval
    if check is None:
        check, check_origin = workspace_check(workspace, spec.adapter.path if spec.adapter else None)
    else:
        check_origin = "given"
    embed = models.get_embedder(spec.embedder_id).embed
    pairs = training_pairs_of(spec.adapter.path if spec.adapter else None)
    pair_vectors = embed([p["answer"] for p in pairs]) if pairs else None
    if names is None:
        names = judge_names(items)
    run = EvalRun(
        id=run_id or time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3), label=label, created_at=time.time(),
        testset={"name": testset_name, "hash": testset_hash(items), "count": len(items),
                 "reference": "updated_reference" if use_updated_reference else "reference"},
        config=spec.settings() | {
            "index_fingerprint": index.fingerprint() if index is not None else None,
            "index_documents": len(index.documents()) if index is not None else 0,
            "format_check": {"kind": check.kind, "pattern": check.pattern, "lines": list(check.lines),
                             "origin": check_origin},
            "judge": judge.model_id if judge is not None else None, "judge_version": JUDGE_VERSION,
            "background_names": sorted(names.background)},
        leakage=leakage([i.question for i in items], [p["question"] for p in pairs], embed) if pairs else [])
    with _active_lock:
        _active.add(run.id)
    path = _path(workspace, run.id)
    atomic_write_json(path, run.to_dict())
    started = time.perf_counter()
    try:
        for n, item in enumerate(items, start=1):
            if cancel is not None and cancel.is_set():
                raise CancelledError(f"Cancelled after {n - 1} of {len(items)} questions; their results are kept.")
            reference = (item.updated_reference or item.reference) if use_updated_reference else item.reference
            comparison = run_comparison(item.question, spec, index=index)
            run.unavailable = comparison.unavailable
            if comparison.errors:
                run.errors.append({"item_id": item.id, **comparison.errors})
            hits = comparison.retrieval.hits if comparison.retrieval is not None else None
            given = [h.chunk.text for h in hits or []]
            if hits is None and index is not None and index.documents():
                hits = retrieve(index, item.question, retrieval_config).hits  # provenance: documents vs pairs
            chunks = [h.chunk.text for h in hits or []]
            chunk_vectors = embed(chunks) if chunks else []
            old_reference = item.reference if use_updated_reference and item.updated_reference else None
            for answer in comparison.answers:
                passages = _passages_given(answer.mode, given, index)
                metrics = score_answer(item, answer.text, answer.citations, passages, check, embed, reference,
                                       old_reference=old_reference, names=names)
                verdict = judge_answer(judge, item.question, reference, answer.text) if judge is not None else None
                if verdict is not None:
                    metrics["judge"] = verdict["verdict"]
                # The exact prompt is kept (the Costs page counts its tokens with another model's tokenizer);
                # of each citation, only which passage it was.
                citations = [{"doc_name": c["doc_name"], "chunk_id": c.get("chunk_id"), "rank": c.get("rank")}
                             for c in answer.citations]
                run.results.append(EvalResult(
                    **{f.name: getattr(answer, f.name) for f in fields(Answer)} | {"citations": citations},
                    item_id=item.id, reference=reference, old_reference=old_reference, source=item.source,
                    answerable=item.answerable,
                    metrics=metrics, provenance=provenance(answer.text, chunk_vectors, pairs, pair_vectors, embed),
                    judge=verdict))
            run.done = n
            atomic_write_json(path, run.to_dict())
            elapsed = time.perf_counter() - started
            progress(ProgressEvent("evaluate", n, len(items), f"Question {n} of {len(items)}",
                                   metrics={"eta_s": elapsed / n * (len(items) - n), "elapsed_s": elapsed}))
        run.status = DONE
    except CancelledError as exc:
        run.status, run.error = CANCELLED, str(exc)
    except Exception as exc:
        run.status, run.error = FAILED, f"{type(exc).__name__}: {exc}"
        raise
    finally:
        run.finished_at = time.time()
        atomic_write_json(path, run.to_dict())
        with _active_lock:
            _active.discard(run.id)
    return run


def _passages_given(mode: str, chunks: list[str], index: Any) -> list[str] | None:
    """The texts an approach was shown: retrieved chunks (RAG, hybrid), every document (stuffed), else None."""
    from .strategies import uses_passages

    if not uses_passages(mode):
        return None
    if mode == "stuffed" and index is not None:
        return [index.document_text(d["name"]) for d in index.documents()]
    return chunks


# -- reading ----------------------------------------------------------------------------------------------
def list_eval_runs(workspace: str) -> list[EvalRun]:
    """Stored runs, newest first; a run left ``running`` by a stopped process is reported interrupted.
    A damaged file is skipped (and logged), never fatal."""
    folder = evals_dir(workspace)
    runs = []
    for path in folder.glob("*.json") if folder.exists() else []:
        try:
            run = _read(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("Skipping unreadable evaluation file %s: %s", path, exc)
            continue
        if run.status == RUNNING:
            with _active_lock:
                live = run.id in _active
            if not live:
                run.status = INTERRUPTED
                run.error = f"The server stopped during this run; the {run.done} questions finished before are kept."
                atomic_write_json(path, run.to_dict())
        runs.append(run)
    return sorted(runs, key=lambda r: r.created_at, reverse=True)


def _read(path: Path) -> EvalRun:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "id" not in data:
        raise ValueError("not an evaluation run")
    return EvalRun.from_dict(data)


def get_eval_run(workspace: str, run_id: str) -> EvalRun:
    path = _path(workspace, run_id)
    if not path.exists():
        raise DataError(f"Expected an evaluation run {run_id!r} in workspace {workspace!r}; there is none.")
    return _read(path)


def delete_eval_run(workspace: str, run_id: str) -> None:
    _path(workspace, run_id).unlink(missing_ok=True)


# -- the knowledge-update experiment ---------------------------------------------------------------------
def judge_version(run: EvalRun) -> int:
    """The version of the fact judge that gave a run's verdicts (1: runs from before versions were stored)."""
    return int(run.config.get("judge_version") or 1)


def rejudge(workspace: str, run_id: str) -> EvalRun:
    """Give a stored run's answers the current judge's verdicts (nothing is generated again; F1,
    similarity, grounding and the LLM judge's verdicts stay as they were), and save it. A run whose format
    check was assumed (the sample's, before checks were read from the workspace's pairs) is checked again
    against ``workspace_check``.

    The test set's names come from the run (its background names, and the references' names as the
    known ones). Raises DataError for a run made after a document update before the old answers were
    stored with it: without them a stale answer cannot be told from a wrong one."""
    from .facts import known_names
    from .verdicts import UNSCORED
    from .verdicts import judge as fact_judge
    from .eval_summary import CORRECT_SIMILARITY

    with _active_lock:
        if run_id in _active:
            raise DataError(f"Run {run_id} is still running; re-judge it when it has finished.")
    run = get_eval_run(workspace, run_id)
    if run.testset.get("reference") == "updated_reference" and "judge_version" not in run.config:
        raise DataError("This run was scored against updated references before the old ones were stored with it, "
                        "so stale answers cannot be told from wrong ones.",
                        fix="Run the knowledge-update experiment again; its runs can be re-judged.")
    background = frozenset(run.config.get("background_names") or [])
    known = known_names([r.reference for r in run.results] + [r.old_reference or "" for r in run.results])
    for r in run.results:
        v = fact_judge(r.text, r.reference, question=r.question, answerable=r.answerable,
                       old_reference=r.old_reference, background=background, known=known)
        similarity = r.metrics.get("similarity")
        r.metrics.pop("fallback_correct", None)
        if v.verdict == UNSCORED:
            similar = similarity is not None and similarity >= CORRECT_SIMILARITY
            v.reason += (f" Fallback: similarity {similarity:.2f} {'≥' if similar else '<'} {CORRECT_SIMILARITY} to "
                         "the reference." if similarity is not None else " No similarity available either.")
            r.metrics["fallback_correct"] = similar
        r.metrics["verdict"], r.metrics["verdict_detail"] = v.verdict, v.to_dict()
    run.config = run.config | {"judge_version": JUDGE_VERSION, "rejudged_at": time.time()}
    if not (run.config.get("format_check") or {}).get("origin"):  # checked before formats were read from the pairs
        adapter = run.config.get("adapter_path")
        check, origin = workspace_check(workspace, adapter if adapter and Path(adapter).is_dir() else None)
        for r in run.results:
            r.metrics["format_ok"] = float(check.passes(r.text))
        run.config["format_check"] = {"kind": check.kind, "pattern": check.pattern, "lines": list(check.lines),
                                      "origin": origin}
    if run.experiment:
        run.experiment = run.experiment | {"after_accuracy": accuracy(run), "after_verdicts": verdict_counts(run)}
        before_id = run.experiment.get("before_run")
        if before_id and _path(workspace, before_id).is_file():  # the before run's verdicts as they now stand
            run.experiment["transitions"] = update_transitions(get_eval_run(workspace, before_id), run)
    atomic_write_json(_path(workspace, run.id), run.to_dict())
    return run


def decision_runs(workspace: str) -> list[EvalRun]:
    """Finished evaluation runs the advisor, the memo's costs and the leaderboard can read, newest first. The
    two runs of a knowledge-update experiment are left out (``is_update_run``): before, running the
    experiment after a full evaluation silently replaced the evidence behind the recommendation."""
    runs = [r for r in list_eval_runs(workspace) if r.status == DONE and r.results and not is_update_run(r)]
    return sorted(runs, key=lambda r: r.created_at, reverse=True)


#: The label of a knowledge-update experiment's runs ("knowledge update: before" and ": after").
UPDATE_LABEL = "knowledge update"


def is_update_run(run: EvalRun) -> bool:
    """Whether a run is one half of a knowledge-update experiment: a few questions about one document, the
    second half scored against its updated answers. Such a run says who caught up, not which approach
    answers best in general, so the advisor and the leaderboard do not read it."""
    return (bool(run.experiment) or run.testset.get("reference") == "updated_reference"
            or (run.label or "").startswith(UPDATE_LABEL))


def update_questions(items: list[TestItem], document: str) -> list[TestItem]:
    """Test questions about ``document`` whose right answer changes with its update."""
    return [i for i in items if i.source == document and i.updated_reference]


def knowledge_update(
    items: list[TestItem], spec: ComparisonSpec, *, workspace: str, index: Any, updated: tuple[str, bytes],
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
    common = dict(workspace=workspace, cancel=cancel, names=judge_names(items))

    def stage(prefix: str) -> ProgressSink:
        return lambda e: progress(ProgressEvent(e.stage, e.step, e.total, f"{prefix}: {e.message}", e.metrics))

    before = evaluate(subset, spec, index=index, testset_name=f"{name} questions, before the update",
                      label=f"{UPDATE_LABEL}: before", progress=stage("Before the update"), **common)
    if before.status != DONE:
        return {"before": before, "after": None}
    progress(ProgressEvent("reindex", 0, 1, f"Replacing {name} with its updated version and re-indexing"))
    started = time.perf_counter()
    report = index.add_documents(docs)
    reindex_s = time.perf_counter() - started
    progress(ProgressEvent("reindex", 1, 1, f"Re-indexed {name} in {reindex_s:.1f} s"))
    after = evaluate(subset, spec, index=index, testset_name=f"{name} questions, after the update",
                     label=f"{UPDATE_LABEL}: after", use_updated_reference=True,
                     progress=stage("After the update"), **common)
    adapter = spec.adapter
    meta = adapter.meta if adapter else {}
    experiment = {
        "document": name, "questions": len(subset), "reindex_s": reindex_s,
        "reindexed_chunks": report.chunks_added,
        "retrain_s": meta.get("wall_s"),
        "retrain_basis": (f"measured: the last training of adapter {adapter.name if adapter else None!r} ({meta.get('train_pairs')} pairs, "
                          f"{meta.get('steps')} steps, {meta.get('device_name', meta.get('device'))}); retraining also "
                          "needs new training pairs that state the new facts") if meta.get("wall_s") else
                         "unknown: no adapter with a recorded training time",
        "before_run": before.id, "after_run": after.id,
        "before_accuracy": accuracy(before), "after_accuracy": accuracy(after),
        "before_verdicts": verdict_counts(before), "after_verdicts": verdict_counts(after),
        "transitions": update_transitions(before, after),
    }
    after.experiment = experiment
    atomic_write_json(_path(workspace, after.id), after.to_dict())
    return {"before": before, "after": after, **experiment}
