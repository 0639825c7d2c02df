"""Indexing throughput, query latency at 10,000 chunks, and retrieval quality on the sample set.

    python bench/retrieval.py [--json PATH] [--chunks 10000] [--copies 8]

Indexing: the sample documents (copied --copies times with a marker so their hashes differ) are
indexed with the shipped defaults (int8 embedder, batch 16) and, as the reference in the same run,
with a straightforward fp32 sentence-transformers run (batch 32). Quality (hit@5) is measured on
the sample evaluation set for both precisions.

Latency: an index of --chunks chunks: the real sample chunks plus filler whose texts are shuffled
sample sentences and whose vectors are the real vectors plus noise (HNSW and BM25 cost depend on the
collection's size, not on what the filler says). Queries are the evaluation questions.
Keys: index_chunks_per_s, index_chunks_per_s_reference, index_speedup, query_p50_ms, query_p95_ms,
query_rerank_p50_ms, query_rerank_p95_ms, query_rerank_warm_p50_ms, hit_at_5_dense, hit_at_5_rerank,
hit_at_5_dense_fp32, chunk_mrr_dense, chunk_mrr_rerank.
"""

from __future__ import annotations

import os
import random
import tempfile
import time

from _common import parser, report


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--chunks", type=int, default=10_000)
    p.add_argument("--copies", type=int, default=8, help="copies of the sample documents for the throughput run")
    args = p.parse_args()
    os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="wb-bench-")

    import dataclasses

    import numpy as np

    from workbench import samples
    from workbench.config import IndexConfig, RetrievalConfig
    from workbench.documents import parse_uploads
    from workbench.index import open_index
    from workbench.retrieval import retrieve, score_retrieval

    docs = parse_uploads(samples.sample_documents())[0]
    copies = [dataclasses.replace(d, name=f"c{i}-{d.name}", text=f"{d.text}\n(copy {i})\n", content_hash="")
              for i in range(args.copies) for d in docs]

    # -- indexing throughput: shipped defaults vs a plain fp32 run ------------------------------
    rates = {}
    for label, precision, batch in (("reference", "fp32", 32), ("shipped", "int8", 16)):
        from workbench import embedding

        embedding.SentenceTransformerEmbedder.embed.__defaults__ = (batch,)
        index = open_index(f"tp-{label}", IndexConfig(precision=precision))
        index.add_documents(docs[:1])  # warm-up: model load and first batch
        r = index.add_documents(copies)
        rates[label] = r.chunks_added / r.seconds
        print(f"{label}: {precision}, batch {batch}: {r.chunks_added} chunks in {r.seconds:.1f} s "
              f"({rates[label]:.1f} chunks/s; embedding {r.embed_seconds:.1f} s)")
    embedding.SentenceTransformerEmbedder.embed.__defaults__ = (16,)

    # -- quality on the evaluation set, both precisions ------------------------------------------
    rows = samples.eval_rows()
    quality = {}
    for precision in ("fp32", "int8"):
        index = open_index(f"q-{precision}", IndexConfig(precision=precision))
        index.add_documents(docs)
        quality[precision] = {
            "dense": score_retrieval(index, rows, RetrievalConfig(keyword=False, rerank=False)),
            "full": score_retrieval(index, rows, RetrievalConfig()),
        }
        print(f"quality {precision}: dense {quality[precision]['dense']}, full {quality[precision]['full']}")

    # -- latency at N chunks ----------------------------------------------------------------------
    index = open_index("latency", IndexConfig())
    index.add_documents(docs)
    real = index.collection().get(include=["embeddings", "documents", "metadatas"])
    sentences = [s for t in real["documents"] for s in t.split(". ") if len(s) > 20]
    rng = random.Random(0)
    npr = np.random.default_rng(0)
    need = args.chunks - len(real["ids"])
    col = index.collection()
    t0 = time.perf_counter()
    for start in range(0, need, 1000):
        n = min(1000, need - start)
        base = np.asarray([real["embeddings"][rng.randrange(len(real["ids"]))] for _ in range(n)], dtype="float32")
        vecs = base + npr.normal(0, 0.04, base.shape).astype("float32")
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        ids = [f"filler-{start + i}" for i in range(n)]
        texts = [". ".join(rng.sample(sentences, 6)) for _ in range(n)]
        metas = [{"doc_name": f"filler-{(start + i) // 50}.md", "doc_hash": "f", "position": i, "start": 0,
                  "heading": "", "tokens": 150} for i in range(n)]
        col.add(ids=ids, embeddings=vecs.tolist(), documents=texts, metadatas=metas)
    index.revision += 1  # the keyword index must see the filler too
    print(f"filled to {col.count()} chunks in {time.perf_counter() - t0:.1f} s")
    questions = [r["question"] for r in rows]
    retrieve(index, questions[0], RetrievalConfig())  # warm-up: BM25 build, reranker
    dense_ms, rerank_ms, warm_ms = [], [], []
    for q in questions:
        dense_ms.append(retrieve(index, q, RetrievalConfig(keyword=False, rerank=False)).total_s * 1000)
    for q in questions:
        rerank_ms.append(retrieve(index, q, RetrievalConfig()).total_s * 1000)
    for q in questions:
        warm_ms.append(retrieve(index, q, RetrievalConfig()).total_s * 1000)

    n = col.count()
    report(f"Retrieval (int8 embedder; latency at {n} chunks; quality on {quality['int8']['dense']['questions']} "
           "answerable evaluation questions)", [
        ("index_chunks_per_s", rates["shipped"], "chunks/s, int8 embedder, batch 16 (shipped default)"),
        ("index_chunks_per_s_reference", rates["reference"], "chunks/s, fp32 sentence-transformers, batch 32"),
        ("index_speedup", rates["shipped"] / rates["reference"], "ratio shipped / reference"),
        ("query_p50_ms", percentile(dense_ms, 0.5), f"ms, embed + dense search, k=5, {n} chunks"),
        ("query_p95_ms", percentile(dense_ms, 0.95), "ms"),
        ("query_rerank_p50_ms", percentile(rerank_ms, 0.5), "ms, + BM25 + fusion + rerank of 20 (first time)"),
        ("query_rerank_p95_ms", percentile(rerank_ms, 0.95), "ms"),
        ("query_rerank_warm_p50_ms", percentile(warm_ms, 0.5), "ms, same questions again (sentence cache warm)"),
        ("hit_at_5_dense", quality["int8"]["dense"]["doc_hit_at_k"], "source document in top 5, dense only"),
        ("hit_at_5_rerank", quality["int8"]["full"]["doc_hit_at_k"], "source document in top 5, fusion + rerank"),
        ("hit_at_5_dense_fp32", quality["fp32"]["dense"]["doc_hit_at_k"], "same, fp32 embedder (before int8)"),
        ("chunk_mrr_dense", quality["int8"]["dense"]["chunk_mrr"], "answer-bearing chunk, MRR, dense only"),
        ("chunk_mrr_rerank", quality["int8"]["full"]["chunk_mrr"], "answer-bearing chunk, MRR, fusion + rerank"),
        ("chunk_mrr_dense_fp32", quality["fp32"]["dense"]["chunk_mrr"], "answer-bearing chunk, MRR, fp32 dense"),
    ], args.json)


if __name__ == "__main__":
    main()
