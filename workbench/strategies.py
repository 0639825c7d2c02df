"""Strategies: how each approach turns a question into chat messages and an ``Answer``.

- ``base``: the model alone, with a short system prompt.
- ``rag``: the base model with retrieved chunks, told to cite them as [1], [2] ...
- ``finetuned``: the base model with the chosen adapter, the adapter's own system prompt, no retrieval.
- ``hybrid``: the adapter with retrieved chunks and a short prompt (the adapter already knows the format).
- ``stuffed``: every document in the prompt, only when they fit the model's context.

A ``ComparisonSpec`` says what one comparison asks (approaches, models, adapter, settings, prompts);
the Compare and Evaluate pages, the CLI and the benchmarks build one and hand it to the core.
``run_comparison`` answers one question with several strategies, sharing one retrieval. A strategy
whose prerequisite is missing (no index, no adapter, documents too long) is reported as unavailable
with the reason instead of failing.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

from .config import DEFAULT_EMBEDDER, GenerationConfig, RetrievalConfig
from .errors import ConfigError, DataError, WorkbenchError
from .generation.base import Generator, Messages
from .prompts import DEFAULTS, ExamplePool, PromptSet
from .records import Adapter, Answer, StageTiming

MAX_QUESTION_CHARS = 2000


@dataclass(frozen=True)
class ModeSpec:
    """What an approach is and what it needs."""

    label: str
    """Name shown to people."""
    description: str
    """One sentence on how it answers."""
    passages: bool = False
    """Given retrieved passages (or whole documents) in its prompt: needs the index."""
    retrieves: bool = False
    """Asks the retriever for the passages nearest the question (the stuffed mode takes every document)."""
    adapter: bool = False
    """Runs with the fine-tuned adapter."""
    examples: bool = False
    """Given few-shot examples from the training pairs."""


MODE_TABLE: dict[str, ModeSpec] = {
    "base": ModeSpec("Base", "The model alone, with a short system prompt: no documents, no adapter, no examples."),
    "prompted": ModeSpec("Prompted", "The base model told the answer format, with the training pairs nearest to the "
                         "question as examples: prompt engineering, no training.", examples=True),
    "rag": ModeSpec("RAG", "The base model with the retrieved chunks in the prompt, citing them as [1], [2] ...",
                    passages=True, retrieves=True),
    "finetuned": ModeSpec("Fine-tuned", "The base model with your adapter and its system prompt; no retrieval.",
                          adapter=True),
    "hybrid": ModeSpec("Hybrid", "Your adapter with the retrieved chunks in the prompt.", passages=True, adapter=True,
                       retrieves=True),
    "stuffed": ModeSpec("Stuffed", "Every document in the prompt (only when they fit in the model's context).",
                        passages=True),
}
MODES = tuple(MODE_TABLE)
LABELS = {m: spec.label for m, spec in MODE_TABLE.items()}
DESCRIPTIONS = {m: spec.description for m, spec in MODE_TABLE.items()}
BASE_SYSTEM_PROMPT = DEFAULTS["base"].system
RAG_SYSTEM_PROMPT = DEFAULTS["rag"].system


def uses_passages(mode: str) -> bool:
    """Whether ``mode`` is given passages (and so can be judged on grounding)."""
    return MODE_TABLE[mode].passages if mode in MODE_TABLE else False


def uses_adapter(mode: str) -> bool:
    return MODE_TABLE[mode].adapter if mode in MODE_TABLE else False


def retrieves(mode: str) -> bool:
    """Whether ``mode`` retrieves passages for the question (and so can be attributed to retrieval)."""
    return MODE_TABLE[mode].retrieves if mode in MODE_TABLE else False


def validate_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise DataError("Expected a question, got an empty text.")
    question = question.strip()
    if len(question) > MAX_QUESTION_CHARS:
        raise DataError(f"Expected a question of at most {MAX_QUESTION_CHARS} characters, got {len(question)}.")
    return question


def context_block(passages: list[tuple[str, str]]) -> str:
    """Numbered passages: [n] (source) text."""
    return "\n\n".join(f"[{i}] ({source})\n{text.strip()}" for i, (source, text) in enumerate(passages, start=1))


def build_messages(mode: str, question: str, passages: list[tuple[str, str]] | None = None,
                   adapter_system: str | None = None, prompts: PromptSet | None = None,
                   examples: list[dict[str, str]] | None = None, format_text: str = "") -> Messages:
    """The chat messages a strategy sends; ``passages`` are (source, text) pairs for rag/hybrid/stuffed,
    ``examples`` the Prompted approach's few-shot pairs, ``prompts`` the workspace's templates."""
    if mode not in MODE_TABLE:
        raise ConfigError(f"Unknown mode {mode!r}. Known modes: {', '.join(MODES)}.")
    prompts = prompts or PromptSet()
    return prompts.render(mode, question, context=context_block(passages or []) if uses_passages(mode) else "",
                          adapter_system=adapter_system, format_text=format_text,
                          examples=examples if MODE_TABLE[mode].examples else None)


@dataclass(frozen=True)
class ComparisonSpec:
    """What one comparison asks: which approaches answer, on which models, with which settings.

    Built once by a page, the CLI or a benchmark (``ComparisonSpec.build`` resolves per-approach
    backends from the ids people type); ``run_comparison``, ``history.run_and_record`` and
    ``eval_runs.evaluate`` take it, and every stored run keeps ``settings()``."""

    modes: tuple[str, ...]
    """Approaches to run, in the order asked."""
    generator: Generator
    """The local (or chosen) model every approach uses unless ``backends`` says otherwise."""
    adapter: Adapter | None = None
    """The fine-tuned and hybrid approaches' adapter (None: those approaches are unavailable)."""
    backends: dict[str, tuple[Generator, str | None]] = field(default_factory=dict)
    """mode -> (another generator, the adapter it applies: a folder, a served name or None)."""
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    """Retrieval settings (RAG, hybrid)."""
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    """Decoding settings for every approach."""
    prompts: PromptSet = field(default_factory=PromptSet)
    """The workspace's system prompts and templates."""
    examples: ExamplePool | None = None
    """The training pairs the Prompted approach draws its examples from."""
    cache_threshold: float | None = None
    """Semantic cache: reuse an earlier answer to a question at least this similar (None: off)."""
    blind: bool = False
    """Show the answers as A, B, ... in random order for a vote."""
    embedder_id: str = DEFAULT_EMBEDDER
    """Embedder of the question (the semantic cache; the index's own, so retrieval reuses the vector)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "modes", tuple(self.modes))
        for mode in self.modes:
            if mode not in MODES:
                raise ConfigError(f"Unknown mode {mode!r}. Known modes: {', '.join(MODES)}.")
        if self.cache_threshold is not None and not 0.5 <= self.cache_threshold <= 1.0:
            raise DataError(f"Expected a cache threshold between 0.5 and 1.0 (cosine similarity), "
                            f"got {self.cache_threshold}.")

    @classmethod
    def build(cls, modes: list[str] | tuple[str, ...], generator: Generator, *,
              backend_ids: dict[str, str] | None = None, remote_adapter: str | None = None,
              session_key: str | None = None, **settings: Any) -> "ComparisonSpec":
        """A spec whose per-approach backends come from typed or picked ids (``backend_ids``: mode -> id,
        empty for the local model); see ``resolve_backends``. ``settings``: the other fields."""
        adapter = settings.get("adapter")
        backends = resolve_backends({m: i for m, i in (backend_ids or {}).items() if m in modes},
                                    adapter_path=adapter.path if adapter else None,
                                    remote_adapter=remote_adapter, session_key=session_key)
        return cls(tuple(modes), generator, backends=backends, **settings)

    def with_modes(self, modes: list[str] | tuple[str, ...]) -> "ComparisonSpec":
        return replace(self, modes=tuple(modes))

    def backend(self, mode: str) -> tuple[Generator, str | None]:
        """The generator that answers ``mode`` and the adapter it applies (None: none)."""
        if mode in self.backends:
            return self.backends[mode]
        return self.generator, (self.adapter.path if self.adapter and uses_adapter(mode) else None)

    @property
    def adapter_system(self) -> str | None:
        """The system prompt the adapter was trained with (the adapter approaches use it)."""
        return self.adapter.system_prompt if self.adapter else None

    @property
    def adapter_context(self) -> dict[str, Any] | None:
        """How a retrieval-aware adapter was shown passages in training (``top_k``, ``sentences``)."""
        return (self.adapter.meta.get("context") or None) if self.adapter else None

    def settings(self) -> dict[str, Any]:
        """What a stored run keeps of this spec (the keys older runs have too)."""
        adapter = self.adapter
        return {
            "modes": list(self.modes), "model_id": self.generator.model_id,
            "adapter": adapter.name if adapter else None, "adapter_path": adapter.path if adapter else None,
            "adapter_created_at": adapter.created_at if adapter else None, "adapter_system": self.adapter_system,
            "backends": {m: {"model_id": g.model_id, "adapter": a} for m, (g, a) in self.backends.items()},
            "generation": self.generation.to_dict(), "retrieval": self.retrieval.to_dict(),
            "embedder_id": self.embedder_id, "cache_threshold": self.cache_threshold,
            "prompts": {m: asdict(self.prompts.template(m)) for m in self.modes},
            "prompt_examples": ({"k": self.prompts.examples, "origin": self.examples.origin,
                                 "pairs": len(self.examples.pairs)}
                                if self.examples is not None and "prompted" in self.modes else None),
        }


@dataclass
class Comparison:
    """One question answered by several strategies."""

    question: str
    """The question."""
    answers: list[Answer] = field(default_factory=list)
    """One answer per available mode, in the order asked."""
    unavailable: dict[str, str] = field(default_factory=dict)
    """mode -> why it could not run."""
    retrieval: Any = None
    """The shared RetrievalResult, when a mode needed one."""
    errors: dict[str, str] = field(default_factory=dict)
    """mode -> what went wrong with its backend (the other modes still answered)."""


def availability(modes: list[str], *, index: Any = None, adapter: str | None = None,
                 generator: Generator | None = None, max_new_tokens: int = 160,
                 tuned_elsewhere: set[str] | frozenset[str] = frozenset(),
                 examples: ExamplePool | None | bool = True, model_id: str | None = None) -> dict[str, str | None]:
    """mode -> None when it can run, else the reason it cannot.

    ``model_id`` (default: ``generator``'s): an adapter trained on another base model is refused.

    ``tuned_elsewhere``: fine-tuned/hybrid modes served by a remote backend (a fine-tuned API model,
    or an adapter on a server), which need no local adapter. ``examples``: the Prompted approach's
    pool (None or False: there are no training pairs to draw from)."""
    from .model_choice import adapter_base, adapter_mismatch

    out: dict[str, str | None] = {}
    has_docs = bool(index is not None and index.documents())
    model_id = model_id or (generator.model_id if generator is not None else None)
    mismatch = adapter_mismatch(adapter_base(adapter), model_id) if adapter and model_id else None
    for mode in modes:
        if mode not in MODES:
            raise ConfigError(f"Unknown mode {mode!r}. Known modes: {', '.join(MODES)}.")
        reason = None
        spec = MODE_TABLE[mode]
        if spec.passages and not has_docs:
            reason = "No documents indexed yet: add some on the Documents page."
        if spec.examples and not examples:
            reason = ("No training pairs to take the answer format and examples from: train an adapter on the "
                      "Fine-tune page first (its pairs are kept in the workspace).")
        if spec.adapter and not adapter and mode not in tuned_elsewhere:
            reason = (reason + " " if reason else "") + "No adapter chosen: train one on the Fine-tune page."
        if spec.adapter and mismatch and mode not in tuned_elsewhere:
            reason = (reason + " " if reason else "") + mismatch
        if mode == "stuffed" and reason is None and generator is not None:
            total = sum(generator.count_tokens(index.document_text(d["name"])) for d in index.documents())
            room = generator.context_length - max_new_tokens - 200
            if total > room:
                reason = (f"The {len(index.documents())} documents take about {total:,} tokens; the model reads "
                          f"{generator.context_length:,} in all (room for about {room:,} after the answer).")
        out[mode] = reason
    return out


def run_comparison(
    question: str, spec: ComparisonSpec, *, index: Any = None, on_text: Callable[[str, str], None] | None = None,
    on_answer: Callable[[Answer], None] | None = None, query: tuple[Any, float] | None = None,
) -> Comparison:
    """Answer ``question`` with each of ``spec.modes`` (one shared retrieval), measuring every stage.

    A retrieval-aware adapter's hybrid is shown its passages the way it saw them in training.
    ``query``: the question's vector from the index's embedder and its seconds, when already embedded.
    Modes sharing a backend are generated in one call (batched where the backend can); a backend that
    fails marks its modes in ``errors`` while the others still answer."""
    from .retrieval import retrieve

    question = validate_question(question)
    result = Comparison(question)
    modes, config, prompts, examples = list(spec.modes), spec.generation, spec.prompts, spec.examples
    adapter_system = spec.adapter_system
    adapter_context = spec.adapter_context if "hybrid" not in spec.backends else None
    remote_tuned = {m for m in spec.backends if uses_adapter(m)}
    plan = availability(modes, index=index, adapter=spec.adapter.path if spec.adapter else None,
                        generator=spec.generator, max_new_tokens=config.max_new_tokens,
                        tuned_elsewhere=remote_tuned, examples=examples)
    result.unavailable = {m: r for m, r in plan.items() if r}
    runnable = [m for m in modes if not plan[m]]
    hits_needed = [m for m in runnable if retrieves(m)]
    if hits_needed:
        result.retrieval = retrieve(index, question, spec.retrieval, query=query)
    prepared = []
    for mode in runnable:
        started = time.perf_counter()
        citations: list[dict[str, Any]] = []
        timings: list[StageTiming] = []
        passages, shots, format_text = None, None, ""
        if retrieves(mode):
            hits = result.retrieval.hits
            if mode == "hybrid" and adapter_context and adapter_context.get("top_k"):
                hits = hits[: int(adapter_context["top_k"])]
            passages = [(source_label(h.chunk), h.chunk.text) for h in hits]
            if mode == "hybrid" and adapter_context and adapter_context.get("sentences"):
                from .retrieval import best_sentences, sentence_embed

                embed = sentence_embed(index)
                passages = [(src, best_sentences(question, text, int(adapter_context["sentences"]), embed))
                            for src, text in passages]
            citations = [h.to_dict() for h in hits]
            timings += result.retrieval.timings  # shared: every retrieval mode waited for it
        elif mode == "prompted" and examples is not None:
            shots, format_text = examples.select(question, prompts.examples), examples.format_text
        elif mode == "stuffed":
            docs = index.documents()
            passages = [(d["name"], index.document_text(d["name"])) for d in docs]
            citations = [{"doc_name": d["name"], "rank": i + 1} for i, d in enumerate(docs)]
        system = adapter_system if uses_adapter(mode) or examples is None else (examples.system or adapter_system)
        messages = build_messages(mode, question, passages, system, prompts, shots, format_text)
        timings.append(StageTiming("prompt_build", time.perf_counter() - started))
        backend, use_adapter = spec.backend(mode)
        prepared.append((mode, messages, timings, citations, use_adapter, backend))
    if not prepared:
        return result
    # Modes sharing a backend go in one call: a backend that batches decodes them together.
    groups: dict[int, list[int]] = {}
    for i, item in enumerate(prepared):
        groups.setdefault(id(item[5]), []).append(i)
    generations: dict[int, Any] = {}
    for members in groups.values():
        backend = prepared[members[0]][5]
        try:
            outs = backend.generate_many(
                [(prepared[i][1], prepared[i][4]) for i in members], config,
                on_text=(lambda j, piece, members=members: on_text(prepared[members[j]][0], piece)) if on_text else None)
            generations.update(zip(members, outs))
        except WorkbenchError as exc:
            for i in members:
                result.errors[prepared[i][0]] = str(exc)  # its "Fix:" line included
    backend_of = {i: item[5] for i, item in enumerate(prepared)}
    for i, (mode, messages, timings, citations, use_adapter, _) in enumerate(prepared):
        if i not in generations:
            continue
        generation = generations[i]
        answer = Answer(mode=mode, question=question, text=generation.text, model_id=generation.model_id,
                        messages=messages, timings=timings + generation.timings(), usage=generation.usage,
                        generation_config=config.to_dict() | _weights(backend_of[i]),
                        finish_reason=generation.finish_reason,
                        citations=citations, adapter=use_adapter, batch_size=generation.batch_size)
        result.answers.append(answer)
        if on_answer:
            on_answer(answer)
    return result


def _weights(backend: Any) -> dict[str, str]:
    """``{"decode_weights": ..., "compute_dtype": ...}`` for a local model (how its decode steps read the weights,
    what it computes in), else nothing."""
    weights = getattr(backend, "decode_weights", None)
    dtype = getattr(backend, "compute_dtype", None)
    return ({"decode_weights": weights} if isinstance(weights, str) else {}) | (
        {"compute_dtype": dtype} if isinstance(dtype, str) else {})


def source_label(chunk: Any) -> str:
    page = f", page {chunk.page}" if chunk.page else ""
    return f"{chunk.doc_name}{page}" + (f" > {chunk.heading.split(' > ')[-1]}" if chunk.heading else "")


def resolve_backends(model_ids: dict[str, str], *, adapter_path: str | None = None,
                     remote_adapter: str | None = None, session_key: str | None = None
                     ) -> dict[str, tuple[Generator, str | None]]:
    """Per-approach backends from the ids typed or picked on a page or the command line (empty: the local
    model, left out). An approach that uses an adapter runs a remote model with ``remote_adapter`` (the
    name the server serves it under; None: the model itself) and a local one with ``adapter_path``."""
    from . import models

    out = {}
    for mode, model_id in model_ids.items():
        model_id = (model_id or "").strip()
        if not model_id:
            continue
        remote = models.is_remote(model_id)
        tuned = MODE_TABLE[mode].adapter
        out[mode] = (models.backend_for(model_id, session_key),
                     (remote_adapter or None) if tuned and remote else (adapter_path if tuned else None))
    return out


def answer_question(question: str, generator: Generator, mode: str = "base", config: GenerationConfig | None = None,
                    on_text: Callable[[str], None] | None = None, adapter: Adapter | None = None) -> Answer:
    """Answer with one mode that needs no index: ``base``, or ``finetuned`` with ``adapter``."""
    spec = ComparisonSpec((mode,), generator, adapter=adapter, generation=config or GenerationConfig())
    comparison = run_comparison(question, spec, on_text=(lambda m, piece: on_text(piece)) if on_text else None)
    if comparison.unavailable:
        raise ConfigError(f"Mode {mode!r} cannot run here: {comparison.unavailable[mode]}")
    return comparison.answers[0]
