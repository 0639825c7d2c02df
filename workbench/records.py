"""The nouns every layer shares: timings, usage, generations, answers, runs, adapters.

Records are plain dataclasses with ``to_dict`` for storage and ``from_dict`` for reading it back
(JSON stored by older versions loads too: missing fields take their defaults); every field has a
one-line docstring. Figures derived from a record (tokens per second, retrieval time, machine
seconds) are its properties, so every page, export and the CLI compute them one way.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

#: Stages of answering, in order: retrieval (embedding the question, dense and keyword search, their
#: fusion, the rerank), building the prompt, then generation (time to first token, the rest of the
#: decode). A cache hit has the one stage ``cache_lookup``. Every page, chart, export and the CLI
#: use these names.
RETRIEVAL_STAGES = ("embed_query", "dense_search", "keyword_search", "fusion", "rerank")
GENERATION_STAGES = ("ttft", "decode")
STAGES = (*RETRIEVAL_STAGES, "prompt_build", *GENERATION_STAGES)
CACHE_STAGE = "cache_lookup"


def decode_speed(tokens_out: int, decode_s: float | None) -> float | None:
    """Tokens per second while decoding: the tokens after the first one over the decode time (the first
    token's time is the time to first token). None when too few tokens or no time to tell. The one
    formula every page, record and export uses."""
    if tokens_out <= 1 or not decode_s or decode_s <= 0:
        return None
    return (tokens_out - 1) / decode_s

@dataclass(frozen=True)
class StageTiming:
    """How long one stage of answering took."""

    stage: str
    """Stage name, e.g. ``prompt_build``, ``ttft`` (time to first token), ``decode``."""
    seconds: float
    """Wall-clock seconds spent in the stage."""


@dataclass(frozen=True)
class Usage:
    """Token counts of one or more model calls (add them with ``+``)."""

    tokens_in: int = 0
    """Prompt tokens sent to the model."""
    tokens_out: int = 0
    """Tokens the model generated."""
    estimated: bool = False
    """True when counts were estimated rather than reported by the backend's tokenizer."""

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.tokens_in + other.tokens_in,
            self.tokens_out + other.tokens_out,
            self.estimated or other.estimated,
        )

    @property
    def total(self) -> int:
        return self.tokens_in + self.tokens_out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Usage":
        data = data or {}
        return cls(int(data.get("tokens_in") or 0), int(data.get("tokens_out") or 0), bool(data.get("estimated")))


@dataclass(frozen=True)
class Generation:
    """What a generator returns for one prompt; measured by ``Generator.generate``."""

    text: str
    """The generated text, special tokens removed."""
    model_id: str
    """Registry id of the generator that produced it."""
    usage: Usage
    """Tokens in and out."""
    ttft_s: float
    """Seconds from the call to the first generated text (prefill + first token)."""
    decode_s: float
    """Seconds from the first generated text to the end."""
    total_s: float
    """Seconds for the whole call."""
    finish_reason: str = "stop"
    """``stop`` (end of turn) or ``length`` (hit max_new_tokens)."""
    batch_size: int = 1
    """Rows decoded together in the call that produced it (1: alone)."""

    @property
    def decode_tok_s(self) -> float:
        """Generated tokens per second after the first one (0 when too few to tell)."""
        return decode_speed(self.usage.tokens_out, self.decode_s) or 0.0

    def timings(self) -> list[StageTiming]:
        return [StageTiming("ttft", self.ttft_s), StageTiming("decode", self.decode_s)]


@dataclass
class Answer:
    """One approach's answer to one question, with everything needed to judge and repeat it."""

    mode: str
    """Strategy that produced it: ``base``, ``rag``, ``finetuned``, ``hybrid``."""
    question: str
    """The user's question."""
    text: str
    """The answer shown to the user."""
    model_id: str
    """Registry id of the generator."""
    messages: list[dict[str, str]]
    """The exact chat messages sent to the model."""
    timings: list[StageTiming]
    """Per-stage timings, in order."""
    usage: Usage
    """Token counts."""
    generation_config: dict[str, Any] = field(default_factory=dict)
    """The GenerationConfig used, as a dict."""
    finish_reason: str = "stop"
    """``stop`` or ``length``."""
    citations: list[dict[str, Any]] = field(default_factory=list)
    """Retrieved chunks given to the model, best first (rag, hybrid, stuffed)."""
    adapter: str | None = None
    """Path of the LoRA adapter applied (finetuned, hybrid)."""
    batch_size: int = 1
    """Answers decoded together with this one (its time to first token includes their prefill)."""
    created_at: float = field(default_factory=time.time)
    """Unix time the answer was produced."""
    signature: str | None = None
    """The semantic-cache key of the settings that produced it (stored answers of the Compare history)."""
    cache_hit: dict[str, Any] | None = None
    """For an answer reused from the semantic cache: the earlier run, its question, similarity, threshold."""
    original_usage: Usage | None = None
    """For a cache hit: the tokens the reused answer took when it was generated."""

    @property
    def total_s(self) -> float:
        return sum(t.seconds for t in self.timings)

    def timing(self, stage: str) -> float | None:
        for t in self.timings:
            if t.stage == stage:
                return t.seconds
        return None

    @property
    def stages(self) -> dict[str, float]:
        """stage -> seconds."""
        return {t.stage: t.seconds for t in self.timings}

    @property
    def retrieval_s(self) -> float:
        """Seconds spent retrieving (embedding the question, searching, fusing, reranking)."""
        return sum(t.seconds for t in self.timings if t.stage in RETRIEVAL_STAGES)

    @property
    def tokens_per_s(self) -> float | None:
        """Decode speed (see ``decode_speed``)."""
        return decode_speed(self.usage.tokens_out, self.timing("decode"))

    @property
    def machine_s(self) -> float:
        """Seconds of the measuring machine this answer used: its own stages, plus its share of a
        generation decoded together with ``batch_size - 1`` others."""
        batch = max(1, self.batch_size)
        own = sum(t.seconds for t in self.timings if t.stage not in GENERATION_STAGES)
        generation = sum(t.seconds for t in self.timings if t.stage in GENERATION_STAGES)
        return own + generation / batch

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Answer":
        """An answer as stored by ``to_dict`` (or an evaluation result, which holds the same fields)."""
        original = data.get("original_usage")
        return cls(mode=data.get("mode") or "", question=data.get("question") or "", text=data.get("text") or "",
                   model_id=data.get("model_id") or "", messages=list(data.get("messages") or []),
                   timings=[StageTiming(t["stage"], float(t["seconds"])) for t in data.get("timings") or []],
                   usage=Usage.from_dict(data.get("usage")),
                   generation_config=dict(data.get("generation_config") or {}),
                   finish_reason=data.get("finish_reason") or "stop", citations=list(data.get("citations") or []),
                   adapter=data.get("adapter"), batch_size=int(data.get("batch_size") or 1),
                   created_at=float(data.get("created_at") or 0.0), signature=data.get("signature"),
                   cache_hit=data.get("cache_hit") or None,
                   original_usage=Usage.from_dict(original) if original else None)


@dataclass
class Run:
    """One question put to several approaches on the Compare page or with ``ask``: their answers and
    the settings that produced them. Stored as one JSON file by ``history``."""

    id: str
    """Time-ordered id (``YYYYmmdd-HHMMSS-xxxxxx``)."""
    question: str
    """The question asked."""
    modes: list[str]
    """Approaches asked for, in order."""
    answers: list[Answer] = field(default_factory=list)
    """One per approach that answered (fresh or from the cache), in the order asked."""
    created_at: float = 0.0
    """Unix time of the run."""
    unavailable: dict[str, str] = field(default_factory=dict)
    """mode -> why it could not run."""
    errors: dict[str, str] = field(default_factory=dict)
    """mode -> what went wrong with its backend."""
    settings: dict[str, Any] = field(default_factory=dict)
    """``ComparisonSpec.settings()`` and the index fingerprint."""
    embedder_id: str | None = None
    """Embedder of ``question_vector``."""
    question_vector: list[float] | None = field(default=None, repr=False)
    """The question's embedding: the semantic cache's key (left out of exports)."""
    blind: dict[str, Any] | None = None
    """A blind test: the order shown, the vote (a letter or ``all_bad``) and the winning mode."""

    def answer(self, mode: str) -> Answer | None:
        return next((a for a in self.answers if a.mode == mode), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Run":
        return cls(id=str(data["id"]), question=data.get("question") or "",
                   modes=list(data.get("modes") or [a.get("mode") for a in data.get("answers") or []]),
                   answers=[Answer.from_dict(a) for a in data.get("answers") or []],
                   created_at=float(data.get("created_at") or 0.0), unavailable=dict(data.get("unavailable") or {}),
                   errors=dict(data.get("errors") or {}), settings=dict(data.get("settings") or {}),
                   embedder_id=data.get("embedder_id"), question_vector=data.get("question_vector"),
                   blind=data.get("blind") or None)


@dataclass(frozen=True)
class Adapter:
    """A trained LoRA adapter: its folder and what training recorded about it (``workbench-adapter.json``).

    Built by ``training.load_adapter`` / ``list_adapters`` / ``train_adapter`` and by nothing else, so
    every page, the CLI and the benchmarks read an adapter the same way. Metadata written by older
    versions loads too (missing fields take their defaults)."""

    name: str
    """Its folder's name in the workspace."""
    path: str
    """Its folder (a standard PEFT adapter)."""
    base_model: str
    """Registry id of the model it was trained on; it runs on that model only."""
    method: str = "lora"
    """``lora`` or ``qlora``."""
    created_at: float = 0.0
    """Unix time training finished."""
    wall_s: float | None = None
    """Seconds the training loop took."""
    steps: int | None = None
    """Optimiser steps."""
    pairs: int | None = None
    """Training pairs given (before the validation split)."""
    train_pairs: int | None = None
    """Pairs trained on."""
    final_train_loss: float | None = None
    final_val_loss: float | None = None
    device: str | None = None
    """``cpu`` or ``cuda``."""
    precision: str | None = None
    """``bf16`` (mixed precision) or ``fp32``: how the training steps computed."""
    config: dict[str, Any] = field(default_factory=dict)
    """The TrainConfig, as a dict."""
    system_prompt: str | None = None
    """The system prompt most pairs were trained with (answers through this adapter use it)."""
    retrieval_aware: dict[str, Any] | None = None
    """How retrieved passages were put in its training prompts (None: trained on bare questions)."""
    history: list[dict[str, Any]] = field(default_factory=list, repr=False)
    """Loss (and score) points logged while training."""
    meta: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """Everything training stored, as stored (data hash, length statistics, held-out prompts...)."""

    @classmethod
    def from_meta(cls, meta: dict[str, Any], path: str) -> "Adapter":
        from .config import DEFAULT_GENERATOR

        def number(key: str) -> Any:
            value = meta.get(key)
            return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

        if "system_prompt" in meta:
            system = meta["system_prompt"]
        else:  # stored before the system prompt was: the first held-out prompt's system message
            first = (meta.get("val_questions") or [{}])[0].get("messages", [])
            system = first[0]["content"] if first and first[0].get("role") == "system" else None
        return cls(name=Path(path).name, path=str(path),
                   base_model=meta.get("base_model") or DEFAULT_GENERATOR, method=meta.get("method") or "lora",
                   created_at=float(meta.get("created_at") or 0.0), wall_s=number("wall_s"), steps=number("steps"),
                   pairs=number("pairs"), train_pairs=number("train_pairs"),
                   final_train_loss=number("final_train_loss"), final_val_loss=number("final_val_loss"),
                   device=meta.get("device"), config=dict(meta.get("config") or {}), system_prompt=system,
                   # stored since precision became a setting; before it, CUDA trained in bf16 and CPUs in fp32
                   precision=meta.get("precision") or {"cuda": "bf16", "cpu": "fp32"}.get(meta.get("device") or ""),
                   retrieval_aware=meta.get("retrieval_aware") or None, history=list(meta.get("history") or []),
                   meta=dict(meta))

    @property
    def score_ids(self) -> set[str]:
        """Ids of the test questions scored while training (the score chart's questions)."""
        return {str(i["id"]) for i in self.meta.get("score_items") or [] if isinstance(i, dict) and "id" in i}

    @property
    def val_prompts(self) -> list[list[dict[str, str]]]:
        """The held-out validation prompts (chat messages without the answer)."""
        return [q["messages"][:-1] for q in self.meta.get("val_questions") or [] if q.get("messages")]

    def details(self) -> dict[str, Any]:
        """The stored metadata without the long lists (the Fine-tune page's metadata view)."""
        return {k: v for k, v in self.meta.items() if k not in {"history", "val_questions"}} | {"path": self.path}


@dataclass
class EvalResult(Answer):
    """One approach's answer to one test question, with the question's reference and its scores.

    An ``Answer`` (priced, timed and charted like any other) plus what the evaluation added; stored flat."""

    item_id: str = ""
    """The test question's id."""
    reference: str = ""
    """The expected answer it was scored against (the updated one after a document update)."""
    old_reference: str | None = None
    """After a document update: the answer before it (an answer that still gives it is stale)."""
    source: str | None = None
    """The document the test question is about, if the test set says."""
    answerable: bool = True
    """False: the documents do not answer it, and declining is right."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """``scoring.score_answer``'s figures: the verdict and the facts behind it, F1, grounding, format ..."""
    provenance: dict[str, Any] | None = None
    """Whether the answer is closer to the retrieved passages or to the training pairs."""
    judge: dict[str, Any] | None = None
    """The optional LLM judge's verdict, reason and what it cost."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalResult":
        base = super().from_dict(data)
        return replace(base, item_id=str(data.get("item_id") or ""), reference=data.get("reference") or "",
                       old_reference=data.get("old_reference") or None,
                       source=data.get("source"), answerable=bool(data.get("answerable", True)),
                       metrics=dict(data.get("metrics") or {}), provenance=data.get("provenance"),
                       judge=data.get("judge") or None)


@dataclass
class EvalRun:
    """A test set run through several approaches (``eval_runs.evaluate``): every scored answer and the
    settings that produced them. Saved after every question, so a cancelled or interrupted run keeps
    what it finished."""

    id: str
    """Time-ordered id."""
    created_at: float = 0.0
    """Unix time it started."""
    label: str = ""
    """What the person called it."""
    finished_at: float | None = None
    """Unix time it ended (None while running)."""
    status: str = "running"
    """``running``, ``done``, ``cancelled``, ``failed`` or ``interrupted``."""
    error: str | None = None
    """Why it stopped early."""
    testset: dict[str, Any] = field(default_factory=dict)
    """The test set's name, hash, question count and which reference it was scored against."""
    config: dict[str, Any] = field(default_factory=dict)
    """``ComparisonSpec.settings()`` plus the index, format check, judge and background names."""
    leakage: list[dict[str, Any]] = field(default_factory=list)
    """Test questions that also appear in the adapter's training pairs."""
    unavailable: dict[str, str] = field(default_factory=dict)
    """mode -> why it could not run."""
    errors: list[dict[str, Any]] = field(default_factory=list)
    """Per question: the approaches whose backend failed, and why."""
    done: int = 0
    """Questions finished."""
    results: list[EvalResult] = field(default_factory=list)
    """One per question and approach, in order."""
    experiment: dict[str, Any] | None = None
    """For the knowledge-update experiment's *after* run: the re-index time and both runs' verdicts."""

    @property
    def modes(self) -> list[str]:
        return list(self.config.get("modes") or [])

    @property
    def model_id(self) -> str:
        return self.config.get("model_id") or ""

    def results_of(self, mode: str) -> list[EvalResult]:
        return [r for r in self.results if r.mode == mode]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalRun":
        return cls(id=str(data["id"]), created_at=float(data.get("created_at") or 0.0), label=data.get("label") or "",
                   finished_at=data.get("finished_at"), status=data.get("status") or "done", error=data.get("error"),
                   testset=dict(data.get("testset") or {}), config=dict(data.get("config") or {}),
                   leakage=list(data.get("leakage") or []), unavailable=dict(data.get("unavailable") or {}),
                   errors=list(data.get("errors") or []), done=int(data.get("done") or 0),
                   results=[EvalResult.from_dict(r) for r in data.get("results") or []],
                   experiment=data.get("experiment"))
