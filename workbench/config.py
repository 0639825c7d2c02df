"""Typed, frozen configuration objects.

Each field has a default and a help text (``field(metadata={"help": ...})``) that the CLI and the
pages reuse; cross-field checks live in ``__post_init__`` and raise ``ConfigError``. Core code takes
these objects as arguments and never reads Streamlit state or secrets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import ConfigError

#: The offline default models, shipped by PyPI packages (see ``workbench.models``).
DEFAULT_GENERATOR = "local:smollm2-135m"
DEFAULT_EMBEDDER = "local:all-minilm-l6-v2"


def _help(text: str, default: Any) -> Any:
    return field(default=default, metadata={"help": text})


def help_for(config_cls: type, name: str) -> str:
    """The help text of field ``name`` of a config dataclass (for widgets and ``--help``)."""
    for f in fields(config_cls):
        if f.name == name:
            return f.metadata.get("help", "")
    raise KeyError(name)


@dataclass(frozen=True)
class GenerationConfig:
    """How a generator produces one answer."""

    max_new_tokens: int = _help("Upper limit on generated tokens per answer.", 160)
    temperature: float = _help("0 means greedy decoding (repeatable); above 0 samples.", 0.0)
    top_p: float = _help("Nucleus sampling mass, used only when temperature > 0.", 0.9)
    repetition_penalty: float = _help(
        "Penalty above 1.0 discourages repeating tokens (small models loop without it); for answers without an "
        "adapter (see adapter_repetition_penalty).", 1.1
    )
    penalize_prompt: bool = _help(
        "Whether the repetition penalty also counts the prompt's tokens, as transformers' generate does. Off (the "
        "default), only the answer's own tokens count, so an answer can copy a figure, a name or the answer format "
        "from its passages or examples without a penalty.", False)
    adapter_repetition_penalty: float = _help(
        "The penalty for answers given with an adapter (fine-tuned, hybrid). An adapter trained on whole answers "
        "ends them without looping, and its answer format restates the Summary line's figure on the Answer line, "
        "which a penalty pushes it away from; 1.0 (the default) is none.", 1.0)
    seed: int = _help("Random seed for sampling.", 0)
    ignore_eos: bool = _help("Benchmarks only: keep generating to max_new_tokens past the end of the answer.", False)

    def __post_init__(self) -> None:
        if not 1 <= self.max_new_tokens <= 4096:
            raise ConfigError(f"Expected max_new_tokens between 1 and 4096, got {self.max_new_tokens}.")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"Expected temperature between 0 and 2, got {self.temperature}.")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"Expected top_p in (0, 1], got {self.top_p}.")
        for name in ("repetition_penalty", "adapter_repetition_penalty"):
            if not 1.0 <= getattr(self, name) <= 2.0:
                raise ConfigError(f"Expected {name} between 1.0 and 2.0, got {getattr(self, name)}.")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def penalty(self, adapter: str | None) -> float:
        """The repetition penalty for an answer given with ``adapter`` (None: the base model)."""
        return self.adapter_repetition_penalty if adapter else self.repetition_penalty

    @staticmethod
    def penalty_note(stored: dict[str, Any]) -> str:
        """How a stored run's generation settings penalised repeats, in words (runs from before
        ``adapter_repetition_penalty`` gave adapters the same penalty as the base model)."""
        base = stored.get("repetition_penalty", 1.1)
        tuned = stored.get("adapter_repetition_penalty", base)
        words = lambda p: "none" if p == 1.0 else f"{p:g}"  # noqa: E731
        if tuned == base:
            return f"repetition penalty {words(base)}"
        return f"repetition penalty {words(base)} ({words(tuned)} for answers with an adapter)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IndexConfig:
    """How documents are chunked and embedded; recorded with the index that it built."""

    embedder_id: str = _help("Registry id of the embedder that builds and queries the index.", DEFAULT_EMBEDDER)
    chunk_tokens: int = _help(
        "Chunk size in the embedder's tokens, heading prefix included (all-MiniLM-L6-v2 reads 256 at most).", 200
    )
    overlap_tokens: int = _help("Tokens shared by consecutive chunks of one section.", 30)
    precision: str = _help(
        "Embedder weights while indexing and querying: 'int8' (dynamic quantisation, faster on CPU) or 'fp32'.",
        "int8",
    )
    chroma_url: str = _help(
        "Empty for the embedded store in the workspace; or a Chroma server, e.g. http://127.0.0.1:8000.", ""
    )

    def __post_init__(self) -> None:
        if not 32 <= self.chunk_tokens <= 8192:
            raise ConfigError(f"Expected chunk_tokens between 32 and 8192, got {self.chunk_tokens}.")
        if not 0 <= self.overlap_tokens < self.chunk_tokens // 2:
            raise ConfigError(
                f"Expected overlap_tokens between 0 and half the chunk size ({self.chunk_tokens // 2 - 1}), "
                f"got {self.overlap_tokens}."
            )
        if self.precision not in {"int8", "fp32"}:
            raise ConfigError(f"Expected precision 'int8' or 'fp32', got {self.precision!r}.")
        if self.chroma_url and not self.chroma_url.startswith(("http://", "https://")):
            raise ConfigError(f"Expected chroma_url to start with http:// or https://, got {self.chroma_url!r}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RetrievalConfig:
    """How a question is turned into hits."""

    top_k: int = _help("Chunks given to the model (after reranking).", 5)
    candidates: int = _help("Chunks fetched by the first stage before reranking.", 20)
    keyword: bool = _help("Also search by keywords (BM25) and fuse with the dense results.", True)
    dense_weight: float = _help("Weight of the dense ranking in reciprocal rank fusion.", 1.0)
    keyword_weight: float = _help("Weight of the keyword ranking in reciprocal rank fusion.", 1.0)
    rrf_k: int = _help("Reciprocal rank fusion constant: higher flattens the rank differences.", 60)
    rerank: bool = _help("Rerank the candidates with the reranker.", True)
    reranker_id: str = _help(
        "Reranker: 'local:sentence-maxsim' (offline default) or 'cross:<CrossEncoder id or folder>'.",
        "local:sentence-maxsim",
    )

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= 50:
            raise ConfigError(f"Expected top_k between 1 and 50, got {self.top_k}.")
        if not self.top_k <= self.candidates <= 200:
            raise ConfigError(f"Expected candidates between top_k ({self.top_k}) and 200, got {self.candidates}.")
        if self.dense_weight < 0 or self.keyword_weight < 0 or self.dense_weight + self.keyword_weight == 0:
            raise ConfigError(
                f"Expected non-negative fusion weights, not both 0; got {self.dense_weight} and {self.keyword_weight}."
            )
        if self.rrf_k < 1:
            raise ConfigError(f"Expected rrf_k of at least 1, got {self.rrf_k}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainConfig:
    """How an adapter is trained; saved with the adapter it made."""

    method: str = _help("'auto' (QLoRA on CUDA, LoRA on CPU), 'lora' or 'qlora' (4-bit nf4 base).", "auto")
    rank: int = _help("LoRA rank r: capacity of the adapter.", 16)
    alpha: int = _help("LoRA alpha: scale of the adapter's update (often 2 x rank).", 32)
    dropout: float = _help(
        "Dropout on the LoRA layers. Each layer draws a random mask every step, which is slow on a CPU: on 2 cores "
        "it was 42% of a bf16 step and 26% of an fp32 one (0 skips it).", 0.05)
    target_modules: str = _help(
        "Layers that get adapters: 'all-linear', or a comma list such as 'q_proj,v_proj'.", "all-linear"
    )
    epochs: float = _help("Passes over the training pairs.", 3.0)
    learning_rate: float = _help("Peak learning rate (linear decay).", 1e-3)
    max_length: int = _help("Longest pair in tokens (prompt + answer); longer pairs are truncated or dropped.", 256)
    batch_size: int = _help(
        "Pairs per optimisation step; each batch is padded only to its longest pair. On 2 CPU cores the same 2 "
        "epochs of retrieval-aware training took 153 s in batches of 2, 237 s in batches of 4 and 264 s one by one.", 4)
    seed: int = _help("Seed for the split, the shuffling and the adapter's initial weights.", 0)
    val_fraction: float = _help("Share of pairs held out for validation loss and the before/after check.", 0.1)
    overflow: str = _help("Pairs longer than max_length: 'truncate' or 'drop'.", "truncate")
    gradient_checkpointing: bool = _help("Trade speed for memory (useful on small GPUs; slower).", False)
    precision: str = _help(
        "'auto' (bf16 mixed precision on a CUDA GPU or on a CPU with bf16 units (Intel AMX, AVX512-BF16), else fp32), "
        "'bf16' or 'fp32'. The adapter's own weights stay fp32 either way.", "auto")
    top_layers: int = _help(
        "Adapt only the top N transformer layers (0: all). Backpropagation then stops at the lowest adapted "
        "layer, so each step is faster; the adapter is smaller.", 0)
    context_passages: int = _help(
        "Retrieval-aware training: passages the workspace's index retrieves for each pair's question, put in its "
        "prompt in the hybrid's own format (0: plain training on bare questions).", 0)
    context_sentences: int = _help(
        "Keep each passage's N sentences nearest to the question (0: whole passages). Shorter prompts train "
        "faster; the hybrid then shows the adapter passages shortened the same way.", 0)
    distractor_share: float = _help(
        "Share of answerable pairs shown only unrelated passages and taught to say the documents do not answer.",
        0.1)

    def __post_init__(self) -> None:
        if self.method not in {"auto", "lora", "qlora"}:
            raise ConfigError(f"Expected method 'auto', 'lora' or 'qlora', got {self.method!r}.")
        if not 1 <= self.rank <= 256:
            raise ConfigError(f"Expected rank between 1 and 256, got {self.rank}.")
        if not 1 <= self.alpha <= 1024:
            raise ConfigError(f"Expected alpha between 1 and 1024, got {self.alpha}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"Expected dropout in [0, 1), got {self.dropout}.")
        if not self.target_modules.strip():
            raise ConfigError("Expected target modules ('all-linear' or a comma list), got nothing.")
        if not 0 < self.epochs <= 100:
            raise ConfigError(f"Expected epochs between 0 and 100, got {self.epochs}.")
        if not 0 < self.learning_rate <= 1e-1:
            raise ConfigError(f"Expected a learning rate between 0 and 0.1, got {self.learning_rate}.")
        if not 32 <= self.max_length <= 8192:
            raise ConfigError(f"Expected max_length between 32 and 8192 tokens, got {self.max_length}.")
        if not 1 <= self.batch_size <= 256:
            raise ConfigError(f"Expected batch_size between 1 and 256, got {self.batch_size}.")
        if not 0.0 <= self.val_fraction <= 0.5:
            raise ConfigError(f"Expected val_fraction between 0 and 0.5, got {self.val_fraction}.")
        if not 0 <= self.top_layers <= 512:
            raise ConfigError(f"Expected top_layers between 0 (all) and 512, got {self.top_layers}.")
        if not 0 <= self.context_passages <= 10:
            raise ConfigError(f"Expected context_passages between 0 and 10, got {self.context_passages}.")
        if not 0 <= self.context_sentences <= 20:
            raise ConfigError(f"Expected context_sentences between 0 and 20, got {self.context_sentences}.")
        if not 0.0 <= self.distractor_share <= 0.5:
            raise ConfigError(f"Expected distractor_share between 0 and 0.5, got {self.distractor_share}.")
        if self.precision not in {"auto", "bf16", "fp32"}:
            raise ConfigError(f"Expected precision 'auto', 'bf16' or 'fp32', got {self.precision!r}.")
        if self.overflow not in {"truncate", "drop"}:
            raise ConfigError(f"Expected overflow 'truncate' or 'drop', got {self.overflow!r}.")

    def modules(self) -> str | list[str]:
        t = self.target_modules.strip()
        return "all-linear" if t == "all-linear" else [m.strip() for m in t.split(",") if m.strip()]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
