"""Retrieval-aware fine-tuning: training pairs that carry the passages the index retrieves for them.

A plain adapter learns from bare questions and is then asked, as the hybrid, to read five passages
it has never seen the like of. Here each pair's prompt is rebuilt exactly as the hybrid builds it
at answer time (same template, same numbered passages), so the adapter learns to take its facts
from the passages. A share of answerable pairs gets only unrelated passages (distractors) and
the data set's own "not in the documents" answer, so it also learns to say when the passages do not
hold the answer (the RAFT recipe).

    pairs, info = with_retrieved_context(pairs, index, TrainConfig(context_passages=3), prompts)

Passages can be cut to the few consecutive sentences nearest the question and its answer
(``context_sentences``): the prompts get several times shorter, which is what makes this train in
workshop time on a CPU; the hybrid then shows this adapter passages cut the same way, by the question
(``info["context"]``, saved with the adapter).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from .config import RetrievalConfig, TrainConfig
from .errors import ConfigError
from .pairs import Pair
from .progress import ProgressEvent, ProgressSink, null_sink
from .records import Adapter
from .verdicts import is_refusal

NOT_IN_DOCUMENTS = "Not in the documents"


def refusal_completion(pairs: list[Pair]) -> str | None:
    """The data set's own answer for "the documents do not say" (its most common refusal), with the
    lines that differ between its refusals (a per-question summary) made generic; None without one."""
    refusals = [p.completion for p in pairs if is_refusal(p.completion)]
    if not refusals:
        return None
    common = Counter(refusals).most_common(1)[0][0]
    lines = common.splitlines()
    others = [r.splitlines() for r in refusals]
    out = []
    for i, line in enumerate(lines):
        label, sep, _ = line.partition(":")
        varies = any(len(o) > i and o[i] != line for o in others)
        out.append(f"{label}: {NOT_IN_DOCUMENTS}" if sep and varies and label.strip() and len(label) < 25 else line)
    return "\n".join(out)


def _system(pair: Pair) -> str | None:
    return next((c for r, c in pair.messages if r == "system"), None)


def with_retrieved_context(pairs: list[Pair], index: Any, config: TrainConfig, prompts: Any = None,
                           progress: ProgressSink = null_sink) -> tuple[list[Pair], dict[str, Any]]:
    """Each pair with the passages the index retrieves for its question, in the hybrid's prompt format;
    returns the new pairs (same order, same lines) and what was done (for the adapter's record)."""
    from .retrieval import best_sentences, retrieve, sentence_embed
    from .strategies import source_label, build_messages

    if config.context_passages <= 0:
        raise ConfigError("Expected context_passages of at least 1 for retrieval-aware training, got 0.")
    if index is None or not index.documents():
        raise ConfigError("Retrieval-aware training needs the workspace's documents indexed: add them on the "
                          "Documents page (or `python -m workbench index PATH`) first.")
    retrieval = RetrievalConfig(top_k=config.context_passages, candidates=max(20, config.context_passages))
    started = time.perf_counter()
    retrieved: list[list[tuple[str, str, str]]] = []  # (doc name, source label, text) per pair
    for i, pair in enumerate(pairs):
        hits = retrieve(index, pair.question, retrieval).hits
        retrieved.append([(h.chunk.doc_name, source_label(h.chunk), h.chunk.text) for h in hits])
        if i % 10 == 0 or i == len(pairs) - 1:
            progress(ProgressEvent("context", i + 1, len(pairs), f"Retrieving passages for pair {i + 1} of {len(pairs)}"))
    refusal = refusal_completion(pairs)
    embed = sentence_embed(index)
    rng = random.Random(config.seed)
    answerable = [i for i, p in enumerate(pairs) if not is_refusal(p.completion)]
    n_distract = round(config.distractor_share * len(answerable)) if refusal else 0
    distracted = set(rng.sample(answerable, n_distract)) if n_distract else set()
    out: list[Pair] = []
    prompt_tokens = 0
    for i, pair in enumerate(pairs):
        passages = retrieved[i]
        completion = pair.completion
        if i in distracted:
            own = {doc for doc, _, _ in passages}
            others = [j for j in range(len(pairs)) if j != i and not own & {d for d, _, _ in retrieved[j]}]
            if not others:
                distracted.discard(i)
            else:
                passages, completion = retrieved[rng.choice(others)], refusal
        # Cut by the question and the answer to be learned: a cut by the question alone can drop the very
        # sentence that holds the answer, and the adapter would learn to answer without reading.
        focus = pair.question if i in distracted else f"{pair.question} {pair.completion}"
        shown = [(label, best_sentences(focus, text, config.context_sentences, embed)
                  if config.context_sentences else text) for _, label, text in passages]
        messages = build_messages("hybrid", pair.question, shown, _system(pair), prompts)
        prompt_tokens += sum(len(m["content"]) for m in messages) // 4
        out.append(Pair(tuple((m["role"], m["content"]) for m in messages), completion, pair.line))
    info = {
        "passages": config.context_passages, "sentences": config.context_sentences,
        "distractor_share": config.distractor_share, "distractor_pairs": len(distracted),
        "refusal_completion": refusal, "retrieval": retrieval.to_dict(),
        "index_fingerprint": index.fingerprint(), "embedder_id": index.config.embedder_id,
        "index_documents": len(index.documents()), "prompt_chars_per_pair": round(prompt_tokens * 4 / max(1, len(out))),
        "retrieve_s": round(time.perf_counter() - started, 2),
        "context": {"top_k": config.context_passages, "sentences": config.context_sentences},
    }
    return out, info


#: The settings a retrieval-aware training starts from (the Fine-tune page, ``train --with-context``,
#: bench/quality.py): chosen to train the 80 sample pairs within the workshop budget on 2 CPU cores
#: (docs/quality.md).
#: One whole passage rather than three cut to their 2 best sentences: the passage shown at answer time
#: holds the expected answer for 35 of the 42 answerable sample questions, against 24 for the cut
#: passages (cut by the question, as at answer time, the window misses the answer's sentence).
#: Every layer adapted, in batches of 2: adapting only the top 8 layers (backpropagation stopping there)
#: got 1-3 of 42 right; all layers in batches of 4, 4; in batches of 2 (twice the optimisation steps
#: for the same work), 10; one by one, 10 again at 1.7 times the time; a third epoch, 9. What pays for
#: it is bf16 mixed precision on CPUs with bf16 units and no LoRA dropout (whose random masks were 42%
#: of a bf16 step): the training loop took 153 s (docs/quality.md).
RAFT_DEFAULTS = TrainConfig(context_passages=1, context_sentences=0, distractor_share=0.05, top_layers=0,
                            epochs=2.0, max_length=384, dropout=0.0, batch_size=2)
#: Three whole passages per pair and three epochs, in batches of 4: the hybrid reads its passages best
#: (13 of 42), at six times the quick preset's training time.
RAFT_THOROUGH = replace(RAFT_DEFAULTS, context_passages=3, epochs=3.0, max_length=768, batch_size=4)
#: The thorough preset with each passage cut to its 5 sentences nearest the question (and, in training, the
#: answer): steps 0.62 times as long, the same hybrid quality on the default seed (14 of 42), and a
#: training loop under five minutes on 2 cores with bf16 units. With seed 1: 10 of 42, thorough 6. With
#: adapters answering without a repetition penalty (``GenerationConfig.adapter_repetition_penalty``): 16-17,
#: 12 and 16 of 42 for seeds 0, 1 and 2.
RAFT_BALANCED = replace(RAFT_THOROUGH, context_sentences=5)


@dataclass(frozen=True)
class RaftPreset:
    """A named starting point for retrieval-aware training, with what it did on the sample."""

    label: str
    """Name shown to people."""
    config: TrainConfig
    """The settings it fills in."""
    measured: str
    """Its training time and the hybrid's answers on the sample, measured, with the machine and date."""


RAFT_PRESETS = {
    "quick": RaftPreset(
        "Quick (workshop)", RAFT_DEFAULTS,
        "80 sample pairs: the training loop took 153 s on 2 CPU cores with bf16 units, and 261 s when repeated "
        "later the same day (2026-12-03; the same adapter, on a machine whose speed varied). The hybrid with it was judged correct on "
        "10 of the 42 answerable sample questions with the packaged 135M model; 8 held up in a hand check. "
        "On another 2-core CPU with bf16 units (2026-12-04, after training computed the output layer at the "
        "answer only): a 135 s training loop, and 8 of 42, with or without the repetition penalty "
        "(docs/quality.md)."),
    "balanced": RaftPreset(
        "Balanced", RAFT_BALANCED,
        "80 sample pairs: the training loop took 285 s on 2 CPU cores with bf16 units (2026-12-05; 296 s with "
        "retrieval and model load); the thorough preset's 3 passages and 3 epochs, each passage cut to its 5 "
        "sentences nearest the question. The hybrid with it was judged correct on 14 of the 42 answerable sample "
        "questions with the packaged 135M model, as the thorough preset was; trained again with seed 1, 10 of 42 "
        "(the thorough preset: 6) (judge version 3; docs/quality.md). With the adapter answering "
        "without a repetition penalty (the default since): 16 to 17 of 42 in three benchmark runs, 13 of 17 holding "
        "up in a hand check; seeds 1 and 2: 12 and 16. "
        "About twice as long on a CPU without bf16 units."),
    "thorough": RaftPreset(
        "Thorough", RAFT_THOROUGH,
        "80 sample pairs: the training loop took 947 s (16 minutes) on 2 CPU cores with bf16 units "
        "(2026-12-03; 1,437 s in fp32 with LoRA dropout). The hybrid with it was judged correct on 13 of the 42 "
        "answerable sample questions with the packaged 135M model; 11 held up in a hand check. On another "
        "2-core CPU with bf16 units (2026-12-04, after training computed the output layer at the answer only): "
        "a 483 s training loop, and 14 of 42 (judge version 3); trained again with seed 1 (2026-12-05), 6 of 42 "
        "(docs/quality.md); without the repetition penalty (the default since), 14 and 9. Too long "
        "for a workshop slot on a laptop; a GPU trains it in a fraction of that."),
}


def adapter_label(adapter: Adapter, model_id: str | None = None) -> str:
    """An adapter's name, marked when it was trained with retrieved passages, and with its base model
    when that is not ``model_id`` (it cannot run on that model)."""
    from .model_choice import adapter_mismatch

    label = adapter.name + (" (retrieval-aware)" if adapter.retrieval_aware else "")
    if model_id is not None and adapter_mismatch(adapter, model_id):
        label += f" · for {adapter.base_model.split(':')[-1]}"  # short: a picker cuts long labels
    return label
