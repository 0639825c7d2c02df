"""Embedders: text to unit-length vectors, for the index and for metrics.

``SentenceTransformerEmbedder`` wraps any sentence-transformers model (a local folder or a hub id);
the offline default is the packaged all-MiniLM-L6-v2. Each embedder carries its registry id and
dimension, so an index can record which embedder built it.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from .errors import ModelLoadError


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
        so an index built with one precision must be queried with the same one."""
        import copy
        import warnings

        import torch

        clone = copy.copy(self)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clone.model = torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8)
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
