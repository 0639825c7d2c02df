"""Summaries of evaluation runs: verdict shares with their intervals, per-approach metrics, latency
and cost, per-question tables, run comparisons and the agreement of an LLM judge with the verdicts.

Everything here reads stored runs (``eval_runs.evaluate`` writes them) and computes; nothing runs a
model. Runs stored before verdicts existed are judged when read.
"""

from __future__ import annotations

import math
from typing import Any

from .records import STAGES, Answer, EvalResult, EvalRun
from .pricing import Pricing, default_pricing
from .evaluation import percentile
from .strategies import LABELS
from .verdicts import CORRECT, STALE, UNSCORED, VERDICTS, judge

#: Metrics shown per approach, with what they mean (higher is better for all).
METRICS = {
    "verdict_correct": "Answerable questions whose answer holds every key fact of the reference, none contradicted",
    "f1": "Token F1 against the reference (answer line of formatted answers)",
    "exact": "Exact match with the reference (normalised)",
    "similarity": "Embedding similarity to the reference",
    "grounded": "Share of answer sentences supported by a retrieved chunk",
    "retrieved": "Expected source among the retrieved chunks",
    "cited": "Expected source named or cited in the answer (approaches given passages only)",
    "format_ok": "Answer follows the trained format",
    "refusal_ok": "Refused exactly when the documents cannot answer",
}

def verdict_shares(verdicts: list[str]) -> dict[str, float]:
    """verdict -> share of the given verdicts (every verdict listed, 0.0 when absent)."""
    n = len(verdicts)
    return {v: (sum(x == v for x in verdicts) / n if n else 0.0) for v in VERDICTS}


def _mean(values: list[Any]) -> float | None:
    values = [float(v) for v in values if v is not None]
    return sum(values) / len(values) if values else None


def summarize(run: EvalRun, pricing: Pricing | None = None) -> dict[str, dict[str, Any]]:
    """mode -> mean of every metric, refusal rates, latency p50/p95 (total and per stage), tokens and
    cost per 1,000 queries, and the share of answers closer to the training pairs than to the documents."""
    pricing = pricing or default_pricing()
    out: dict[str, dict[str, Any]] = {}
    for mode in run.modes:
        rows = run.results_of(mode)
        if not rows:
            continue
        totals = [r.total_s for r in rows]
        summary: dict[str, Any] = {"mode": mode, "approach": LABELS.get(mode, mode), "answers": len(rows)}
        for metric in METRICS:
            summary[metric] = _mean([r.metrics.get(metric) for r in rows])
        unanswerable = [r for r in rows if not r.answerable]
        answerable = [r for r in rows if r.answerable]
        summary.update(verdict_summary(rows))
        summary["refused_when_should"] = _mean([r.metrics["refused"] for r in unanswerable])
        summary["refused_when_should_not"] = _mean([r.metrics["refused"] for r in answerable])
        summary["latency_p50_s"] = percentile(totals, 0.5)
        summary["latency_p95_s"] = percentile(totals, 0.95)
        for stage in STAGES:
            values = [r.timing(stage) for r in rows]
            summary[f"{stage}_p50_s"] = percentile([v for v in values if v is not None], 0.5)
            summary[f"{stage}_p95_s"] = percentile([v for v in values if v is not None], 0.95)
        summary["tokens_in_per_1k"] = _mean([r.usage.tokens_in for r in rows]) * 1000
        summary["tokens_out_per_1k"] = _mean([r.usage.tokens_out for r in rows]) * 1000
        costs = [pricing.cost(r).usd for r in rows]
        summary["cost_per_1k_usd"] = None if any(c is None for c in costs) else sum(costs) / len(costs) * 1000
        summary["machine_s_per_answer"] = _mean([r.machine_s for r in rows])
        judged = [r.judge for r in rows if r.judge]
        if judged:
            summary["judge"] = _mean([j["verdict"] for j in judged])
            judge_costs = [pricing.cost(Answer.from_dict(j["record"])).usd for j in judged]
            summary["judge_cost_usd"] = None if any(c is None for c in judge_costs) else sum(judge_costs)
            summary["judge_tokens"] = sum(j["tokens_in"] + j["tokens_out"] for j in judged)
        closer = [r.provenance.get("closer_to") for r in rows if r.provenance and r.provenance.get("closer_to")]
        summary["closer_to_training"] = (sum(c == "training pairs" for c in closer) / len(closer)) if closer else None
        out[mode] = summary
    return out


def verdict_of(result: EvalResult) -> str:
    """The stored verdict of one result (results stored before verdicts existed are judged now)."""
    verdict = result.metrics.get("verdict")
    if verdict is None:
        verdict = judge(result.text, result.reference, question=result.question,
                        answerable=result.answerable).verdict
        result.metrics["verdict"] = verdict
    return verdict


def is_correct(result: EvalResult) -> bool:
    """Correct by its verdict; an unscored answer (no fact to check) by its labelled fallback."""
    verdict = verdict_of(result)
    if verdict == UNSCORED:
        m = result.metrics
        if m.get("judge") is not None:
            return m["judge"] == 1.0
        return bool(m.get("fallback_correct", (m.get("similarity") or 0) >= CORRECT_SIMILARITY))
    return verdict == CORRECT


#: Answerable questions before correctness ranks approaches ("best", stars, a recommendation).
MIN_QUESTIONS = 20
#: Blind votes before a win rate is shown.
MIN_VOTES = 5
#: Unanswerable questions below which a decline rate is shown only as a count, never in a chart.
MIN_UNANSWERABLE = 5


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval of k successes in n trials (None for n = 0)."""
    if n <= 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def verdict_summary(rows: list[EvalResult]) -> dict[str, Any]:
    """Counts and shares of the verdicts on answerable questions, the correct share with its interval,
    and how unanswerable questions were handled."""
    answerable = [r for r in rows if r.answerable]
    unanswerable = [r for r in rows if not r.answerable]
    verdicts = [verdict_of(r) for r in answerable]
    correct = sum(is_correct(r) for r in answerable)
    out: dict[str, Any] = {"n_answerable": len(answerable), "n_unanswerable": len(unanswerable),
                           "correct_answerable": correct / len(answerable) if answerable else None,
                           "correct_answerable_ci": wilson(correct, len(answerable)),
                           "declined_unanswerable": (sum(verdict_of(r) == CORRECT for r in unanswerable) /
                                                     len(unanswerable)) if unanswerable else None,
                           "unscored_by_fallback": sum(v == UNSCORED for v in verdicts)}
    for verdict, share in verdict_shares(verdicts).items():
        out[f"verdict_{verdict}"] = share if answerable else None
    return out


def per_question(run: EvalRun) -> list[dict[str, Any]]:
    """One row per question with every mode's answer, verdict and the reason for it side by side."""
    rows: dict[str, dict[str, Any]] = {}
    for r in run.results:
        row = rows.setdefault(r.item_id, {"id": r.item_id, "question": r.question, "reference": r.reference,
                                          "answerable": r.answerable})
        row[f"{r.mode}_answer"] = r.text
        row[f"{r.mode}_verdict"] = verdict_of(r)
        row[f"{r.mode}_why"] = (r.metrics.get("verdict_detail") or {}).get("reason", "")
        row[f"{r.mode}_correct"] = is_correct(r)
    modes = run.modes
    for row in rows.values():
        verdicts = {row.get(f"{m}_verdict") for m in modes if f"{m}_verdict" in row}
        row["disagree"] = len(verdicts) > 1
    return list(rows.values())


def result_rows(run: EvalRun) -> list[dict[str, Any]]:
    """One flat row per scored answer (the answers CSV): the question, the answer, every metric, tokens,
    time and provenance."""
    import json

    rows = []
    for r in run.results:
        rows.append({"item_id": r.item_id, "question": r.question, "reference": r.reference, "source": r.source,
                     "answerable": r.answerable, "mode": r.mode, "approach": LABELS.get(r.mode, r.mode),
                     "text": r.text, "model_id": r.model_id, "batch_size": r.batch_size,
                     "finish_reason": r.finish_reason}
                    | {k: v for k, v in r.metrics.items()}
                    | {"tokens_in": r.usage.tokens_in, "tokens_out": r.usage.tokens_out, "total_s": r.total_s,
                       "closer_to": (r.provenance or {}).get("closer_to"),
                       "nearest_pair": (r.provenance or {}).get("nearest_pair"),
                       "judge_reason": (r.judge or {}).get("reason"),
                       "messages": json.dumps(r.messages, ensure_ascii=False)})
    return rows


#: An unscored answer (its reference holds no checkable fact) falls back to this embedding similarity.
CORRECT_SIMILARITY = 0.8


def rag_score_on(run: EvalRun, item_ids: set[str], mode: str = "rag") -> float | None:
    """Share of ``mode``'s answers counted correct in ``run``, on the given questions only."""
    rows = [r for r in run.results_of(mode) if r.item_id in item_ids]
    return sum(is_correct(r) for r in rows) / len(rows) if rows else None


def accuracy(run: EvalRun) -> dict[str, float]:
    """mode -> share of answers counted correct (see ``is_correct``; unanswerable questions count as
    correct when declined)."""
    out: dict[str, list[bool]] = {}
    for r in run.results:
        out.setdefault(r.mode, []).append(is_correct(r))
    return {m: sum(v) / len(v) for m, v in out.items()}


def verdict_counts(run: EvalRun) -> dict[str, dict[str, int]]:
    """mode -> verdict -> how many answers got it (after a document update: updated = ``correct``)."""
    out: dict[str, dict[str, int]] = {}
    for r in run.results:
        counts = out.setdefault(r.mode, {v: 0 for v in VERDICTS})
        counts[verdict_of(r)] += 1
    return out


def update_transitions(before: EvalRun, after: EvalRun) -> dict[str, dict[str, int]]:
    """mode -> what became of each question across a document update, matched by question.

    ``knew``: answered correctly before the update; of those, ``updated`` (the new value after it),
    ``stale`` (still the old value) or ``other`` (wrong, partial, refused). ``learned``: not right before,
    updated after. An approach that knew none of the old answers cannot show whether it goes stale: its
    after-update verdicts then say nothing about freshness, only that it never had these facts."""
    was_right = {(r.mode, r.item_id or r.question): is_correct(r) for r in before.results}
    out: dict[str, dict[str, int]] = {}
    for r in after.results:
        counts = out.setdefault(r.mode, {"questions": 0, "knew": 0, "updated": 0, "stale": 0, "other": 0,
                                         "learned": 0})
        counts["questions"] += 1
        right, stale = is_correct(r), verdict_of(r) == STALE
        if was_right.get((r.mode, r.item_id or r.question)):
            counts["knew"] += 1
            counts["updated" if right else "stale" if stale else "other"] += 1
        elif right:
            counts["learned"] += 1
    return out


def judge_agreement(run: EvalRun) -> dict[str, Any] | None:
    """How often the optional LLM judge agrees with the verdicts (correct or not), and where it does not;
    None when the run had no judge. Unscored answers are left out: the judge decides those."""
    pairs = [(r, r.metrics["judge"]) for r in run.results
             if r.metrics.get("judge") is not None and verdict_of(r) != UNSCORED]
    if not pairs:
        return None
    disagreements = [{"question": r.question, "approach": LABELS.get(r.mode, r.mode), "answer": r.text,
                      "verdict": verdict_of(r), "judge": "correct" if j == 1.0 else "incorrect",
                      "judge_reason": (r.judge or {}).get("reason", "")}
                     for r, j in pairs if (verdict_of(r) == CORRECT) != (j == 1.0)]
    return {"n": len(pairs), "agree": len(pairs) - len(disagreements),
            "share": (len(pairs) - len(disagreements)) / len(pairs), "disagreements": disagreements}


def compare_runs(a: EvalRun, b: EvalRun, pricing: Pricing | None = None) -> list[dict[str, Any]]:
    """Per mode and metric: the value in run ``a``, in run ``b`` and the change (b - a)."""
    sa, sb = summarize(a, pricing), summarize(b, pricing)
    acc_a, acc_b = accuracy(a), accuracy(b)
    rows = []
    for mode in [m for m in sa if m in sb]:
        for metric in ["accuracy", *METRICS, "latency_p50_s", "cost_per_1k_usd"]:
            va = acc_a.get(mode) if metric == "accuracy" else sa[mode].get(metric)
            vb = acc_b.get(mode) if metric == "accuracy" else sb[mode].get(metric)
            rows.append({"approach": LABELS.get(mode, mode), "metric": metric, "run_a": va, "run_b": vb,
                         "change": None if va is None or vb is None else vb - va})
    return rows


def same_answers(a: EvalRun, b: EvalRun) -> float:
    """Share of (question, mode) answers that are identical in both runs (1.0: a repeat reproduced them)."""
    ta = {(r.item_id, r.mode): r.text for r in a.results}
    tb = {(r.item_id, r.mode): r.text for r in b.results}
    common = set(ta) & set(tb)
    return sum(ta[k] == tb[k] for k in common) / len(common) if common else 0.0
