"""RAG's fair best shot: how many passages to show the model, chosen on the workspace's training pairs.

More passages are not always better: a small model given five passages (about 800 tokens) loses the
answer among them. On the sample with the packaged 135M model, RAG was judged correct on 3 of the 42
answerable test questions with five passages and on 6 of 42 with one or two (docs/quality.md).
Comparing approaches with RAG at a setting that handicaps it gives the wrong verdict, so this picks the
number on questions that are not the test set: the training pairs, whose completions are the expected
answers. Each candidate count answers every answerable pair through the RAG approach; the count with
the most answers judged correct wins (ties: the fewer passages, which is also the faster prompt).

The result is stored per workspace (``passages.json``) with what it was measured on (model, index,
prompt, pairs, the correct counts per count), and is used only while the model and the index are the
same: Evaluate and Compare start their passage count from it and say where it came from.

    tuning = tune_passages(pairs, index, generator, prompts=prompts)
    save_tuning("default", tuning)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from . import paths
from .config import GenerationConfig, RetrievalConfig
from .errors import CancelledError, DataError
from .evaluation import TestItem, answer_core
from .pairs import Pair
from .progress import ProgressEvent, ProgressSink, null_sink
from .store import atomic_write_json, read_json

TUNING_FILE = "passages.json"
CANDIDATES = (1, 2, 3, 5)
"""Passage counts tried by default (5 is the retrieval default)."""


@dataclass(frozen=True)
class PassageTuning:
    """The passage count chosen for RAG on one workspace's training pairs, and what it was measured on."""

    top_k: int
    """The chosen count."""
    correct: dict[int, int]
    """Answers judged correct per passage count tried."""
    questions: int
    """Answerable training pairs asked."""
    model_id: str
    """The generator that answered."""
    index_fingerprint: str
    """The index the passages came from."""
    generation: dict[str, Any] = field(default_factory=dict)
    """The generation settings of the answers."""
    prompt: dict[str, str] = field(default_factory=dict)
    """The RAG prompt template used."""
    wall_s: float = 0.0
    created_at: float = 0.0

    def within_noise(self) -> bool:
        """Whether every count's correct share lies inside the chosen count's 95% Wilson range (then the
        measurement cannot tell the counts apart, and the choice rests on the tie rule: fewer passages)."""
        from .eval_summary import wilson

        low, high = wilson(self.correct[self.top_k], self.questions)
        return all(low <= n / self.questions <= high for n in self.correct.values())

    def note(self) -> str:
        """One line for people: the choice, the counts behind it, and how sure it is."""
        counts = ", ".join(f"{self.correct[k]} with {k}" for k in sorted(self.correct))
        return (f"{self.top_k} passage{'s' if self.top_k != 1 else ''}: RAG's best count on {self.questions} "
                f"training questions of this workspace (judged correct: {counts}; model {self.model_id})"
                + ("; the counts are within noise of each other, so the fewest passages among the best is kept"
                   if self.within_noise() else ""))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"correct": {str(k): v for k, v in self.correct.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PassageTuning":
        data = dict(data)
        data["correct"] = {int(k): int(v) for k, v in data.get("correct", {}).items()}
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def training_questions(pairs: list[Pair]) -> list[TestItem]:
    """The answerable training pairs as test questions: the completion's answer is the reference."""
    from .verdicts import is_refusal

    return [TestItem(id=f"pair-{p.line}", question=p.question, reference=answer_core(p.completion), line=p.line)
            for p in pairs if not is_refusal(p.completion)]


def tune_passages(pairs: list[Pair], index: Any, generator: Any, *, prompts: Any = None,
                  candidates: tuple[int, ...] = CANDIDATES, generation: GenerationConfig | None = None,
                  limit: int | None = None, progress: ProgressSink = null_sink, cancel: Any = None) -> PassageTuning:
    """Answer the answerable ``pairs`` through RAG with each passage count in ``candidates`` and return
    the count with the most answers judged correct (ties: the smaller count)."""
    from . import models
    from .prompts import PromptSet
    from .scoring import score_texts
    from .strategies import ComparisonSpec, run_comparison

    if index is None or not index.documents():
        raise DataError("Choosing RAG's passage count needs the workspace's documents indexed: add them on the "
                        "Documents page (or `python -m workbench index PATH`) first.")
    items = training_questions(pairs)[:limit] if limit else training_questions(pairs)
    if not items:
        raise DataError("Expected training pairs with answers to choose RAG's passage count on, found none "
                        "(only refusals, or no pairs): upload pairs on the Fine-tune page first.")
    if not candidates or any(not 1 <= k <= 50 for k in candidates):
        raise DataError(f"Expected passage counts between 1 and 50, got {list(candidates)}.")
    prompts = prompts or PromptSet()
    generation = generation or GenerationConfig(max_new_tokens=96)
    spec = ComparisonSpec(("rag",), generator, generation=generation, prompts=prompts,
                          embedder_id=index.config.embedder_id)
    texts: dict[int, list[str]] = {k: [] for k in candidates}
    started = time.perf_counter()
    total = len(items) * len(candidates)
    done = 0
    for item in items:
        for k in candidates:
            if cancel is not None and cancel.is_set():
                raise CancelledError(f"Cancelled after {done} of {total} answers; nothing was stored.")
            retrieval = replace(RetrievalConfig(), top_k=k, candidates=max(k, RetrievalConfig().candidates))
            comparison = run_comparison(item.question, replace(spec, retrieval=retrieval), index=index)
            if not comparison.answers:  # a failed backend is not a wrong answer: stop and say why
                raise DataError(f"RAG could not answer the training question {item.question!r} with {k} "
                                f"passage(s): {comparison.errors.get('rag') or 'no answer came back'}")
            texts[k].append(comparison.answers[0].text)
            done += 1
        elapsed = time.perf_counter() - started
        progress(ProgressEvent("tune", done, total, f"Question {done // len(candidates)} of {len(items)}",
                               metrics={"eta_s": elapsed / done * (total - done), "elapsed_s": elapsed}))
    # Judged as Evaluate judges: the verdict, and for a reference without key facts its labelled fallback.
    embed = models.get_embedder(index.config.embedder_id).embed
    correct = {k: round(score_texts(items, texts[k], embed) * len(items)) for k in candidates}
    best = max(sorted(candidates), key=lambda k: correct[k])  # max keeps the first: the smallest of a tie
    template = prompts.template("rag")
    return PassageTuning(best, correct, len(items), generator.model_id, index.fingerprint(),
                         generation=asdict(generation), prompt={"system": template.system, "user": template.user},
                         wall_s=round(time.perf_counter() - started, 1), created_at=time.time())


def _file(workspace: str) -> Path:
    return paths.workspace_dir(workspace) / TUNING_FILE


def save_tuning(workspace: str, tuning: PassageTuning) -> None:
    atomic_write_json(_file(workspace), tuning.to_dict())


def load_tuning(workspace: str) -> PassageTuning | None:
    """The stored choice, or None (none yet, or a file this version cannot read)."""
    if not paths.workspace_dir(workspace, create=False).exists():
        return None
    data = read_json(_file(workspace), None)
    try:
        return PassageTuning.from_dict(data) if isinstance(data, dict) else None
    except (TypeError, ValueError):
        return None


def tuned_top_k(workspace: str, model_id: str, index: Any) -> PassageTuning | None:
    """The stored choice while it still applies: same model, same index (else None: measure again)."""
    tuning = load_tuning(workspace)
    if tuning is None or index is None or tuning.model_id != model_id:
        return None
    return tuning if tuning.index_fingerprint == index.fingerprint() else None


def run_note(workspace: str, config: dict[str, Any]) -> tuple[bool, str] | None:
    """How RAG's passage count in an evaluation run (its stored ``config``) stands against the count chosen
    on the workspace's training pairs: (whether it is that count, a sentence); None for a run without RAG."""
    if "rag" not in (config.get("modes") or []):
        return None
    k = int((config.get("retrieval") or {}).get("top_k") or RetrievalConfig().top_k)
    tuning = load_tuning(workspace)
    if (tuning is None or tuning.model_id != config.get("model_id")
            or tuning.index_fingerprint != config.get("index_fingerprint")):
        return False, (f"RAG read {k} passage{'s' if k != 1 else ''} per question in this run. Its best count for this "
                "model and these documents has not been measured: a small model often answers better from fewer "
                "passages (Evaluate, \"RAG's fair best shot\").")
    if tuning.top_k != k:
        return False, (f"RAG read {k} passage{'s' if k != 1 else ''} per question in this run; on this workspace's "
                       f"training questions its best count is {tuning.top_k} (judged correct: "
                       + ", ".join(f"{tuning.correct[c]} with {c}" for c in sorted(tuning.correct))
                       + ("; within noise of each other, so the fewest passages among the best"
                          if tuning.within_noise() else "")
                       + f"). Run the evaluation again with {tuning.top_k} to give RAG its fair best shot.")
    return True, (f"RAG read {k} passage{'s' if k != 1 else ''} per question: its best count on this workspace's "
            f"{tuning.questions} training questions.")
