"""Choose the offline reranker's feature weights on the sample *training pairs'* questions (not on the
evaluation set), then report the evaluation set with the chosen weights.

    python bench/tune_reranker.py [--json PATH]

Target: the answer-bearing chunk of the pair's first cited source (the chunk that covers most words
of the pair's Answer line). Score: chunk-level MRR over the top 5.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile

from _common import parser, report


def training_rows() -> list[dict]:
    from workbench.samples import sample_dir

    rows = []
    for line in (sample_dir() / "training_pairs.jsonl").read_text().splitlines():
        msgs = json.loads(line)["messages"]
        answer = msgs[-1]["content"]
        sources = answer.rsplit("Sources: ", 1)[1].strip()
        if sources == "none":
            continue
        reference = answer.split("Answer: ", 1)[1].split("\nSources:", 1)[0]
        rows.append({"question": msgs[1]["content"], "reference": reference,
                     "source": sources.split(",")[0].strip(), "answerable": True})
    return rows


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="wb-tune-"))
    from workbench import retrieval, samples
    from workbench.config import RetrievalConfig
    from workbench.documents import parse_uploads
    from workbench.index import open_index

    index = open_index("tune")
    if not index.documents():
        index.add_documents(parse_uploads(samples.sample_documents())[0])
    train, evalset = training_rows(), samples.eval_rows()
    grid = [(1.0 - s, s, t, i) for s, t, i in itertools.product((0.0, 0.25, 0.5), (0.0, 0.2, 0.4, 0.6, 0.8), (0.0, 0.2))]
    best = None
    shipped = retrieval.SentenceMaxSimReranker.weights
    for weights in grid:
        retrieval.clear_rerankers()
        retrieval.SentenceMaxSimReranker.weights = weights
        m = retrieval.score_retrieval(index, train, RetrievalConfig(keyword=False))
        if best is None or m["chunk_mrr"] > best[1]["chunk_mrr"] + 1e-9:
            best = (weights, m)
        print(f"  weights {weights}: train chunk MRR {m['chunk_mrr']:.3f}")
    weights, best_m = best
    print(f"best weights on the training questions (chunk, sentence, terms, identifiers): {weights}, "
          f"chunk MRR {best_m['chunk_mrr']:.3f}")
    retrieval.clear_rerankers()
    retrieval.SentenceMaxSimReranker.weights = shipped
    train_m = retrieval.score_retrieval(index, train, RetrievalConfig(keyword=False))
    dense = retrieval.score_retrieval(index, evalset, RetrievalConfig(keyword=False, rerank=False))
    rerank = retrieval.score_retrieval(index, evalset, RetrievalConfig(keyword=False))
    full = retrieval.score_retrieval(index, evalset, RetrievalConfig())
    print(f"shipped default weights: {shipped}")
    report("Reranker weights chosen on training questions, scored on the evaluation set", [
        ("train_chunk_mrr_dense", retrieval.score_retrieval(index, train, RetrievalConfig(keyword=False, rerank=False))["chunk_mrr"], "training questions, dense only"),
        ("train_chunk_mrr_rerank", train_m["chunk_mrr"], "training questions, shipped default weights"),
        ("eval_chunk_mrr_dense", dense["chunk_mrr"], "evaluation set, dense only"),
        ("eval_chunk_mrr_rerank", rerank["chunk_mrr"], "evaluation set, dense + rerank (shipped weights)"),
        ("eval_chunk_mrr_full", full["chunk_mrr"], "evaluation set, dense + BM25 fusion + rerank"),
        ("eval_chunk_hit5_dense", dense["chunk_hit_at_k"], ""),
        ("eval_chunk_hit5_full", full["chunk_hit_at_k"], ""),
    ], args.json)


if __name__ == "__main__":
    main()
