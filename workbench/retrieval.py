"""Retrieval: dense search, BM25 keyword search, reciprocal rank fusion and a rerank stage, each timed.

    result = retrieve(index, "What is the return window?", RetrievalConfig())
    result.hits       # the top_k chunks, best first, with the score of every stage
    result.timings    # StageTiming per stage: embed_query, dense_search, keyword_search, fusion, rerank

The offline default reranker ``local:sentence-maxsim`` needs no cross-encoder: it embeds each
candidate's sentences with the index's own embedder and scores a candidate by its best-matching
sentence together with the whole chunk, which favours chunks that state the answer in one sentence
over chunks that are only about the same topic. Any sentence-transformers CrossEncoder plugs in as
``cross:<id or folder>``.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .config import RetrievalConfig
from .errors import ConfigError, DataError
from .index import Chunk, KnowledgeIndex
from .records import StageTiming


@dataclass
class Hit:
    """One retrieved chunk and how every stage scored it."""

    chunk: Chunk
    """The chunk."""
    score: float
    """Final score (rerank score when reranked, else the fused or dense score)."""
    rank: int = 0
    """1-based final rank."""
    dense_score: float | None = None
    """Cosine similarity to the question (None if dense search did not return it)."""
    dense_rank: int | None = None
    """1-based rank in the dense results."""
    keyword_score: float | None = None
    """BM25 score (None if keyword search did not return it)."""
    keyword_rank: int | None = None
    """1-based rank in the keyword results."""
    fused_score: float | None = None
    """Reciprocal rank fusion score."""
    rank_before_rerank: int | None = None
    """1-based rank among the candidates before reranking."""
    rerank_score: float | None = None
    """Reranker score."""

    def to_dict(self) -> dict[str, Any]:
        return {"chunk_id": self.chunk.id, "doc_name": self.chunk.doc_name, "heading": self.chunk.heading,
                "page": self.chunk.page, "text": self.chunk.text, "score": self.score, "rank": self.rank,
                "dense_score": self.dense_score, "dense_rank": self.dense_rank,
                "keyword_score": self.keyword_score, "keyword_rank": self.keyword_rank,
                "fused_score": self.fused_score, "rank_before_rerank": self.rank_before_rerank,
                "rerank_score": self.rerank_score}


@dataclass
class RetrievalResult:
    """What one retrieval returned, and how long each stage took."""

    question: str
    """The question as searched."""
    hits: list[Hit]
    """Final hits, best first."""
    timings: list[StageTiming] = field(default_factory=list)
    """Per-stage wall times."""
    config: dict[str, Any] = field(default_factory=dict)
    """The RetrievalConfig used."""

    @property
    def total_s(self) -> float:
        return sum(t.seconds for t in self.timings)


# -- rerankers -----------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_IDENTIFIER = re.compile(r"[a-z]*\d[\w.-]*", re.IGNORECASE)


def content_terms(text: str) -> set[str]:
    """Lower-cased words of 3+ letters, stop words removed, crudely stemmed (plural s)."""
    words = re.findall(r"[a-z]{3,}", text.lower())
    return {w[:-1] if w.endswith("s") and len(w) > 4 else w for w in words if w not in _STOP}


def identifiers(text: str) -> set[str]:
    """Tokens with a digit in them (error codes, model numbers, prices, versions), lower-cased."""
    return {m.group(0).lower().rstrip(".-") for m in _IDENTIFIER.finditer(text)}


def split_sentences(text: str) -> list[str]:
    """Sentences and lines of a chunk (headings and list items count as sentences)."""
    parts = [p.strip(" -*#\t") for p in _SENTENCE_END.split(text)]
    return [p for p in parts if len(p) >= 12]


def best_sentences(question: str, text: str, n: int, embed: Any = None) -> str:
    """The ``n`` consecutive sentences of a passage nearest to the question: a shorter passage for a
    prompt that must stay short. A window rather than scattered sentences keeps a fact with what it is
    about ("Model number: BM-F800. Price: EUR 219.00." stays next to its product). Nearness is the
    embedding similarity (``embed(texts) -> vectors``; it knows that "cost" asks for a "price") plus
    shared words and codes; without ``embed``, shared words and codes alone."""
    sentences = [s for s in split_sentences(text) if not s.lstrip().startswith("#")]
    if len(sentences) <= n:
        return " ".join(sentences) if sentences else text.strip()
    terms, ids = content_terms(question), identifiers(question)
    similarity = [0.0] * len(sentences)
    if embed is not None:
        import numpy as np

        vectors = np.asarray(embed([question] + sentences), dtype=float)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
        similarity = list(vectors[1:] @ vectors[0])
    scores = [similarity[i] + 0.15 * len(content_terms(s) & terms) + 0.1 * bool(identifiers(s))
              + 0.3 * len(identifiers(s) & ids) for i, s in enumerate(sentences)]
    start = max(range(len(sentences) - n + 1), key=lambda i: (sum(scores[i:i + n]), -i))
    return " ".join(sentences[start:start + n])


@runtime_checkable
class Reranker(Protocol):
    """Rescores retrieved candidates; higher is better. ``reranker_id`` names it in a run's settings."""

    reranker_id: str

    def score(self, question: str, question_vector: Any, hits: list[Hit]) -> list[float]:
        """One score per hit, in order."""


class SentenceMaxSimReranker:
    """Offline reranker built on the index's embedder (see the module docstring).

    A candidate's score is a weighted sum of four features: the chunk's cosine similarity to the
    question, the best sentence's cosine similarity, the share of the question's content words the
    chunk contains, and the share of the question's codes and numbers it contains verbatim (which
    embeddings blur). The weights were chosen on the sample training pairs' questions, not on the
    evaluation set (``python bench/tune_reranker.py`` repeats the search). A coverage weight of 0.8
    scored a little higher there, but let shared words override synonyms the embedding understands
    ("cost" vs "price"), so the shipped default keeps it at 0.4.
    """

    reranker_id = "local:sentence-maxsim"
    #: Weights of (chunk cosine, best sentence cosine, content-word coverage, identifier match).
    weights = (0.5, 0.5, 0.4, 0.2)

    def __init__(self, embedder: Any, cache_size: int = 20_000, weights: tuple[float, ...] | None = None):
        self.embedder = embedder
        if weights is not None:
            self.weights = weights
        self._cache: OrderedDict[str, Any] = OrderedDict()  # sentence -> vector
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _vectors(self, sentences: list[str]) -> dict[str, Any]:
        with self._lock:
            missing = [s for s in dict.fromkeys(sentences) if s not in self._cache]
        if missing:
            vectors = self.embedder.embed(missing, batch_size=64)
            with self._lock:
                for s, v in zip(missing, vectors):
                    self._cache[s] = v
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        with self._lock:
            return {s: self._cache[s] for s in sentences}

    def features(self, question: str, question_vector: Any, hits: list[Hit]) -> list[tuple[float, ...]]:
        """The sentences are compared with the question embedded by this reranker's embedder, as they are
        (``question_vector``, the index's, may be another precision); a chunk's own similarity is its dense score."""
        import numpy as np

        per_hit = [split_sentences(h.chunk.text) or [h.chunk.text] for h in hits]
        vectors = self._vectors([s for sents in per_hit for s in sents])
        question_vector = self.embedder.embed([question])[0]
        ids_wanted = identifiers(question)
        terms_wanted = content_terms(question)
        rows = []
        for hit, sents in zip(hits, per_hit):
            best = max(float(np.dot(vectors[s], question_vector)) for s in sents)
            chunk_sim = hit.dense_score if hit.dense_score is not None else best
            text = hit.chunk.embedded_text
            terms = len(terms_wanted & content_terms(text)) / len(terms_wanted) if terms_wanted else 0.0
            ids = len(ids_wanted & identifiers(text)) / len(ids_wanted) if ids_wanted else 0.0
            rows.append((chunk_sim, best, terms, ids))
        return rows

    def score(self, question: str, question_vector: Any, hits: list[Hit]) -> list[float]:
        return [sum(w * f for w, f in zip(self.weights, row))
                for row in self.features(question, question_vector, hits)]


class CrossEncoderReranker:
    """Any sentence-transformers CrossEncoder (a local folder, or a hub id with internet)."""

    def __init__(self, reranker_id: str):
        from sentence_transformers import CrossEncoder

        self.reranker_id = reranker_id
        self.model = CrossEncoder(reranker_id.split(":", 1)[1], trust_remote_code=False)

    def score(self, question: str, question_vector: Any, hits: list[Hit]) -> list[float]:
        """The cross-encoder reads the question and each chunk together (the vector is not needed)."""
        return [float(s) for s in self.model.predict([(question, h.chunk.text) for h in hits])]


_rerankers: dict[tuple[str, str, str], Any] = {}
_rerankers_lock = threading.Lock()


def clear_rerankers() -> None:
    """Drop the loaded rerankers and their sentence-vector caches.

    With the int8 embedder a sentence's vector depends slightly on the other sentences embedded in
    the same batch (dynamic quantisation scales activations per batch), so cached vectors carry the
    history of earlier queries; a measurement that must be repeatable starts from empty caches."""
    with _rerankers_lock:
        _rerankers.clear()


def sentence_embed(index: KnowledgeIndex) -> Any:
    """``embed(texts) -> vectors`` for sentences of the index's chunks, through the offline reranker's
    sentence cache: the sentences a query just reranked are not embedded twice."""
    reranker = get_reranker(SentenceMaxSimReranker.reranker_id, index)

    def embed(texts: list[str]) -> list[Any]:
        vectors = reranker._vectors(list(texts))
        return [vectors[t] for t in texts]

    return embed


def get_reranker(reranker_id: str, index: KnowledgeIndex) -> Any:
    key = (reranker_id, index.config.embedder_id, index.config.precision)
    with _rerankers_lock:
        if key not in _rerankers:
            if reranker_id == SentenceMaxSimReranker.reranker_id:
                from . import models

                # Sentences are embedded at full precision whatever the index's: int8's dynamic quantisation
                # scales a whole batch at once, so a sentence's vector would depend on which sentences were
                # embedded with it first (the same sentence alone and beside a long one: cosine 0.97), and a
                # question's passages on what else this process had reranked. At fp32 it is the same vector
                # in any batch, and on 2 cores no slower (docs/quality.md).
                _rerankers[key] = SentenceMaxSimReranker(models.get_embedder(index.config.embedder_id))
            elif reranker_id.startswith("cross:") and len(reranker_id) > 6:
                _rerankers[key] = CrossEncoderReranker(reranker_id)
            else:
                raise ConfigError(f"Unknown reranker {reranker_id!r}. Known: local:sentence-maxsim, "
                                  "cross:<CrossEncoder id or folder>.")
        return _rerankers[key]


# -- retrieval -----------------------------------------------------------------------------------

def _timed(timings: list[StageTiming], stage: str, start: float) -> float:
    now = time.perf_counter()
    timings.append(StageTiming(stage, now - start))
    return now


def retrieve(index: KnowledgeIndex, question: str, config: RetrievalConfig | None = None, *,
             query: tuple[Any, float] | None = None) -> RetrievalResult:
    """Find the chunks that answer ``question``. ``query``: its vector from the index's embedder and the
    seconds that took, when the caller already embedded it (a comparison embeds its question once)."""
    config = config or RetrievalConfig()
    question = (question or "").strip()
    if not question:
        raise DataError("Expected a question to search for, got an empty text.")
    if not index.documents():
        raise DataError("The index is empty: upload documents on the Documents page (or `python -m workbench index PATH`).")
    timings: list[StageTiming] = []
    collection = index.collection()
    embedder = index.embedder()  # loaded before the clock starts: load time is not query time
    reranker = get_reranker(config.reranker_id, index) if config.rerank else None
    n_chunks = collection.count()
    n_candidates = min(config.candidates if (config.rerank or config.keyword) else config.top_k, n_chunks)

    t = time.perf_counter()
    if query is None:
        qvec = embedder.embed([question])[0]
        t = _timed(timings, "embed_query", t)
    else:
        qvec = query[0]
        timings.append(StageTiming("embed_query", float(query[1])))
    got = collection.query(query_embeddings=[qvec.tolist()], n_results=n_candidates,
                           include=["documents", "metadatas", "distances"])
    t = _timed(timings, "dense_search", t)
    hits: dict[str, Hit] = {}
    for rank, (cid, text, meta, dist) in enumerate(
            zip(got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0]), start=1):
        hits[cid] = Hit(Chunk.from_chroma(cid, text, meta), score=1.0 - dist, dense_score=1.0 - dist, dense_rank=rank)
    order = list(hits)

    if config.keyword:
        import bm25s

        retriever, ids = index.keyword_index()
        tokens = bm25s.tokenize([question], stopwords="en", return_ids=False, show_progress=False)
        keyword: list[tuple[str, float]] = []
        if ids and tokens and tokens[0]:
            docs, scores = retriever.retrieve(tokens, k=min(n_candidates, len(ids)), show_progress=False)
            keyword = [(ids[int(i)], float(s)) for i, s in zip(docs[0], scores[0]) if float(s) > 0]
        t = _timed(timings, "keyword_search", t)
        missing = [cid for cid, _ in keyword if cid not in hits]
        if missing:  # keyword-only hits: fetch them with their stored vectors (no re-embedding)
            import numpy as np

            extra = collection.get(ids=missing, include=["documents", "metadatas", "embeddings"])
            for cid, text, meta, vec in zip(extra["ids"], extra["documents"], extra["metadatas"],
                                            extra["embeddings"]):
                sim = float(np.dot(np.asarray(vec, dtype="float32"), qvec))
                hits[cid] = Hit(Chunk.from_chroma(cid, text, meta), score=0.0, dense_score=sim)
        for rank, (cid, score) in enumerate(keyword, start=1):
            hits[cid].keyword_score, hits[cid].keyword_rank = score, rank
        for hit in hits.values():
            fused = 0.0
            if hit.dense_rank is not None:
                fused += config.dense_weight / (config.rrf_k + hit.dense_rank)
            if hit.keyword_rank is not None:
                fused += config.keyword_weight / (config.rrf_k + hit.keyword_rank)
            hit.fused_score = hit.score = fused
        order = sorted(hits, key=lambda cid: hits[cid].fused_score or 0.0, reverse=True)[:n_candidates]
        t = _timed(timings, "fusion", t)

    candidates = [hits[cid] for cid in order]
    for i, hit in enumerate(candidates, start=1):
        hit.rank_before_rerank = i
    if reranker is not None and candidates:
        scores = reranker.score(question, qvec, candidates)
        for hit, score in zip(candidates, scores):
            hit.rerank_score = hit.score = score
        candidates.sort(key=lambda h: h.rerank_score, reverse=True)
        t = _timed(timings, "rerank", t)
    final = candidates[: config.top_k]
    for i, hit in enumerate(final, start=1):
        hit.rank = i
    return RetrievalResult(question, final, timings, config.to_dict())


# -- measuring retrieval ---------------------------------------------------------------------------

def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:[.,-][a-z0-9]+)*", text.lower())


def answer_chunk_id(index: KnowledgeIndex, source: str, reference: str) -> str | None:
    """The chunk of ``source`` that best contains ``reference`` (most reference words it covers)."""
    ref = set(_words(reference)) - _STOP
    best, best_score = None, -1.0
    for chunk in index.chunks(source):
        covered = len(ref & set(_words(chunk.text))) / max(1, len(ref))
        if covered > best_score:
            best, best_score = chunk.id, covered
    return best


def score_retrieval(index: KnowledgeIndex, rows: list[dict[str, Any]], config: RetrievalConfig) -> dict[str, float]:
    """hit@k and MRR over answerable evaluation rows, at two levels: the expected source document, and
    the answer-bearing chunk of that document (stricter). Also the median and p95 retrieval time."""
    answerable = [r for r in rows if r.get("answerable", True) and r.get("source")]
    if not answerable:
        raise DataError("Expected evaluation rows with a 'source' document; none found.")
    doc_hits = chunk_hits = 0
    doc_rr = chunk_rr = 0.0
    times = []
    for row in answerable:
        target = answer_chunk_id(index, row["source"], row["reference"])
        result = retrieve(index, row["question"], config)
        times.append(result.total_s)
        names = [h.chunk.doc_name for h in result.hits]
        ids = [h.chunk.id for h in result.hits]
        if row["source"] in names:
            doc_hits += 1
            doc_rr += 1 / (names.index(row["source"]) + 1)
        if target in ids:
            chunk_hits += 1
            chunk_rr += 1 / (ids.index(target) + 1)
    n = len(answerable)
    times.sort()
    return {"questions": n, "doc_hit_at_k": doc_hits / n, "doc_mrr": doc_rr / n, "chunk_hit_at_k": chunk_hits / n,
            "chunk_mrr": chunk_rr / n, "p50_ms": times[n // 2] * 1000, "p95_ms": times[min(n - 1, int(n * 0.95))] * 1000}


_STOP = set("a an the is are was were be to of in on at for and or with you your we our it its by from as "
            "that this can do does i my me if not no yes how what when where which who why will would should "
            "could have has had there their they them any all about into than then also just get got".split())
