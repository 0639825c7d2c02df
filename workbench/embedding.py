"""Embedders: text to unit-length vectors, for the index and for metrics.

``SentenceTransformerEmbedder`` wraps any sentence-transformers model (a local folder or a hub id);
the offline default is the packaged all-MiniLM-L6-v2. Each embedder carries its registry id and
dimension, so an index can record which embedder built it.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from .errors import ModelLoadError


@runtime_checkable
class Embedder(Protocol):
    """What the index, the retriever and the metrics need of an embedder (every one in the registry)."""

    model_id: str
    """Its registry id, recorded by the index it builds."""
    dimension: int
    """Length of its vectors."""
    precision: str
    """'fp32', or 'int8' for a quantized copy."""
    max_tokens: int
    """The longest text it reads; chunks are cut to fit."""

    def embed(self, texts: Sequence[str], batch_size: int = ...) -> Any:
        """Unit-length vectors (a numpy array, one row per text)."""

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as it counts them (chunk sizes)."""

    def quantized(self) -> "Embedder":
        """A smaller, faster copy (itself where there is none)."""


class SentenceTransformerEmbedder:
    """A sentence-transformers model behind one registry id."""

    def __init__(self, model_id: str, source: str, *, device: str | None = None):
        from .runtime import configure_threads, pick_device

        from sentence_transformers import SentenceTransformer

        configure_threads()
        self.model_id = model_id
        self.source = source
        self.device = device or pick_device()
        started = time.perf_counter()
        try:
            self.model = SentenceTransformer(source, device=self.device, trust_remote_code=False)
        except OSError as exc:
            raise ModelLoadError(
                f"Expected a sentence-transformers folder or a model id reachable offline; could not load {source!r}: {exc}",
                fix="Use a local folder, or run once with internet so the model is in the Hugging Face cache.",
            ) from exc
        self.load_s = time.perf_counter() - started
        self.dimension = int(self.model.get_embedding_dimension())
        #: Longer inputs are truncated silently by the model: chunks must stay under this.
        self.max_tokens = int(self.model.max_seq_length)

    precision = "fp32"

    def quantized(self) -> "SentenceTransformerEmbedder":
        """An int8 copy (dynamic quantisation of the linear layers): faster on CPU, vectors drift slightly,
        so an index built with one precision must be queried with the same one. Torch's dynamic int8
        products exist on the CPU only, so the copy runs there even where the model itself is on a GPU."""
        import copy
        import warnings

        import torch

        clone = copy.copy(self)
        source = self.model if self.device == "cpu" else copy.deepcopy(self.model).to("cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clone.model = torch.ao.quantization.quantize_dynamic(source, {torch.nn.Linear}, dtype=torch.qint8)
        clone.device = "cpu"
        clone.precision = "int8"
        return clone

    def embed(self, texts: Sequence[str], batch_size: int = 16) -> Any:
        """Unit-normalised float32 vectors, one row per text."""
        return self.model.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this embedder's tokenizer (without special tokens)."""
        return len(self.model.tokenizer(text, add_special_tokens=False)["input_ids"])

    def tokenizer_json(self) -> str:
        """The tokenizer as JSON, for the chunker (chunks are measured in this embedder's tokens)."""
        return self.model.tokenizer.backend_tokenizer.to_str()


class OpenAICompatEmbedder:
    """Embeddings from OpenAI (``openai:text-embedding-3-small``) or any compatible server
    (``compat:BASE_URL#MODEL``). Tokens used are counted (``tokens_used``) so their cost can be shown.

    Chunks are measured with the packaged all-MiniLM-L6-v2 tokenizer (no OpenAI tokenizer is available
    offline); its word pieces are at least as many as OpenAI's tokens for English text, so a chunk
    never exceeds the size it was cut to."""

    precision = "fp32"
    max_tokens = 8191

    def __init__(self, model_id: str, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 60.0,
                 local: Callable[[], Any] | None = None):
        """``local``: returns the packaged local embedder, whose tokenizer measures chunks (given by the
        registry, so this module needs no registry)."""
        from openai import OpenAI

        self.model_id, self.base_url, self.model = model_id, base_url, model
        self._key = api_key
        self._local_embedder = local
        self.client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=2)
        self.tokens_used = 0
        self.load_s = 0.0
        started = time.perf_counter()
        self.dimension = len(self._call(["dimension check"])[0])
        self.load_s = time.perf_counter() - started

    def quantized(self) -> "OpenAICompatEmbedder":
        return self  # remote: precision is the server's business

    def _call(self, texts: list[str]) -> list[list[float]]:
        from .generation.openai_compat import redact
        from .errors import BackendError

        try:
            response = self.client.embeddings.create(model=self.model, input=texts)
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            raise BackendError(f"Embedding with {self.model!r} at {self.base_url} failed "
                               f"({type(exc).__name__}{f' {status}' if status else ''}): "
                               f"{redact(str(exc), self._key)[:200]}",
                               fix="Check the server, the model name and the key on the Settings page.") from None
        if getattr(response, "usage", None) is not None:
            self.tokens_used += int(response.usage.prompt_tokens or 0)
        return [d.embedding for d in sorted(response.data, key=lambda d: d.index)]

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        import numpy as np

        rows: list[list[float]] = []
        texts = list(texts)
        for start in range(0, len(texts), batch_size):
            rows.extend(self._call(texts[start:start + batch_size]))
        vectors = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)

    def _local(self) -> Any:
        if self._local_embedder is None:
            raise ModelLoadError("This remote embedder was made without the local tokenizer that measures chunks.")
        return self._local_embedder()

    def count_tokens(self, text: str) -> int:
        return self._local().count_tokens(text)

    def tokenizer_json(self) -> str:
        return self._local().tokenizer_json()
