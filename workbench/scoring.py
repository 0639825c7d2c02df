"""Scoring one answer against its test item: every metric and the fact-level verdict.

The evaluation job (``eval_runs``) scores each answer with ``score_answer``; training scores its
held-out check with ``score_texts``. Both sit above this module, which needs only the metrics
(``evaluation``), the verdicts and the format check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .eval_summary import CORRECT_SIMILARITY, is_correct
from .evaluation import (TestItem, answer_core, exact_match, groundedness, is_refusal, mentions_source, token_f1)
from .facts import background_names, known_names
from .formats import FormatCheck
from .records import EvalResult, Usage
from .verdicts import UNSCORED, judge


@dataclass(frozen=True)
class TestsetNames:
    """The names of a test set that the verdicts need (see ``verdicts.judge``)."""

    __test__ = False
    background: frozenset[str] = frozenset()
    """Names recurring across the set: context, not key facts."""
    known: frozenset[str] = frozenset()
    """Names its references use: one of them in place of the right one contradicts it."""


def judge_names(items: list[TestItem]) -> TestsetNames:
    return TestsetNames(background_names([[i.question, i.reference, i.updated_reference or ""] for i in items]),
                        known_names([t for i in items for t in (i.reference, i.updated_reference or "")]))


def score_answer(item: TestItem, text: str, citations: list[dict[str, Any]], passages: list[str] | None,
                 check: FormatCheck, embed: Any,
                 reference: str, *, old_reference: str | None = None,
                 names: TestsetNames | None = None) -> dict[str, Any]:
    """Every metric of one answer, and its verdict (``metrics["verdict"]``; the facts behind it in
    ``metrics["verdict_detail"]``).

    ``citations``: the passages it cites from (``Answer.citations``); ``passages``: the texts this
    approach was given (None for approaches without retrieval, which get no grounding score); ``old_reference``: the answer before a document update, to tell stale answers."""
    core = answer_core(text)
    refused = is_refusal(text)
    retrieved_docs = [c["doc_name"] for c in citations]
    names = names or TestsetNames()
    verdict = judge(text, reference, question=item.question, answerable=item.answerable,
                    old_reference=old_reference, background=names.background, known=names.known)
    metrics: dict[str, Any] = {
        "verdict": verdict.verdict,
        "f1": token_f1(core, reference) if item.answerable else None,
        "exact": float(exact_match(core, reference)) if item.answerable else None,
        "similarity": None,
        "grounded": groundedness(text, passages, embed) if passages else None,
        "retrieved": (float(item.source in retrieved_docs) if retrieved_docs else None) if item.source else None,
        # A file named by an approach that was given no passage is written from memory, not cited (Compare
        # flags it as an invented source): like grounding, citing applies to approaches given passages.
        "cited": float(mentions_source(text, item.source, citations)) if item.source and passages is not None
        else None,
        "format_ok": float(check.passes(text)),
        "refused": refused,
        "refusal_ok": float(refused == (not item.answerable)),
    }
    if embed is not None and item.answerable:
        a, r = embed([core, reference])
        metrics["similarity"] = float(sum(x * y for x, y in zip(a, r)))
    if verdict.verdict == UNSCORED:
        similar = metrics["similarity"] is not None and metrics["similarity"] >= CORRECT_SIMILARITY
        verdict.reason += (f" Fallback: similarity {metrics['similarity']:.2f} "
                           f"{'≥' if similar else '<'} {CORRECT_SIMILARITY} to the reference."
                           if metrics["similarity"] is not None else " No similarity available either.")
        metrics["fallback_correct"] = similar
    metrics["verdict_detail"] = verdict.to_dict()
    return metrics


def score_texts(items: list[TestItem], texts: list[str], embed: Any = None) -> float:
    """Share of ``texts`` (answers to ``items``, in order) counted correct (see ``is_correct``)."""
    check = FormatCheck()
    names = judge_names(items)
    results = [EvalResult(mode="", question=i.question, text=t, model_id="", messages=[], timings=[], usage=Usage(),
                          item_id=i.id, reference=i.reference, answerable=i.answerable,
                          metrics=score_answer(i, t, [], None, check, embed, i.reference, names=names))
               for i, t in zip(items, texts)]
    return sum(is_correct(r) for r in results) / len(results) if results else 0.0
