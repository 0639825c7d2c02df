"""How often the passages an approach is shown hold the expected answer, per way of shaping them.

    python bench/passages.py [--json PATH] [--home DIR]

For each answerable sample question it retrieves the top k passages (default retrieval settings, the
packaged embedder) and checks, with the verdict judge's fact matching, whether one of them holds every
key fact of the reference, for whole passages and for the n consecutive sentences nearest the
question (what a retrieval-aware adapter trained with ``context_sentences=n`` is shown at answer
time). This is the ceiling of any approach reading those passages: no model can answer from a
passage that does not hold the answer. No model generates here; it takes about half a minute.

Keys: ``holds_top{k}_whole`` and ``holds_top{k}_s{n}`` (share of the answerable questions) for
k in 1, 2, 3, 5 and n in 2, 3, 4, 5 (the balanced preset shows 5).
"""

from __future__ import annotations

import os
import tempfile

from _common import parser, report

WS = "passages"


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--home", help="reuse this WORKBENCH_HOME (an indexed sample workspace is kept)")
    args = p.parse_args()
    os.environ["WORKBENCH_HOME"] = args.home or tempfile.mkdtemp(prefix="wb-bench-passages-")

    from workbench import samples
    from workbench.config import RetrievalConfig
    from workbench.documents import parse_uploads
    from workbench.scoring import judge_names
    from workbench.evaluation import read_testset
    from workbench.evidence import passage_holds
    from workbench.index import open_index
    from workbench.retrieval import best_sentences, retrieve, sentence_embed

    index = open_index(WS)
    if not index.documents():
        index.add_documents(parse_uploads(samples.sample_documents())[0])
    path = samples.sample_dir() / "eval_set.jsonl"
    items = read_testset(path.name, path.read_bytes())[0]
    background = judge_names(items).background
    answerable = [i for i in items if i.answerable]
    embed = sentence_embed(index)
    rows = []
    for k in (1, 2, 3, 5):
        config = RetrievalConfig(top_k=k, candidates=max(20, k))
        counts = {"whole": 0, "s2": 0, "s3": 0, "s4": 0, "s5": 0}
        for item in answerable:
            hits = retrieve(index, item.question, config).hits
            if any(passage_holds(item, h.chunk.text, h.chunk.doc_name, background=background) for h in hits):
                counts["whole"] += 1
            for n in (2, 3, 4, 5):
                if any(passage_holds(item, best_sentences(item.question, h.chunk.text, n, embed), h.chunk.doc_name,
                                     background=background) for h in hits):
                    counts[f"s{n}"] += 1
        for shape, c in counts.items():
            what = "whole passages" if shape == "whole" else f"the {shape[1:]} sentences nearest the question"
            rows.append((f"holds_top{k}_{shape}", c / len(answerable),
                         f"{c} of {len(answerable)} answerable questions: top {k}, {what}"))
    report(f"Passages that hold the expected answer ({len(answerable)} answerable sample questions)", rows, args.json)


if __name__ == "__main__":
    main()
