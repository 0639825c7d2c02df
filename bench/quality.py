"""Answer quality on the sample: every approach, the retrieval-aware adapter, the knowledge update and the judge.

    python bench/quality.py [--json PATH] [--limit N] [--home DIR] [--preset quick|balanced|thorough]
                            [--rag-top-k N] [--repetition-penalty P] [--adapter-repetition-penalty P]

On a fresh workspace it indexes the sample documents, trains a plain adapter on all 80 sample pairs
(default settings) and a retrieval-aware one (``train --with-context``, the ``--preset`` settings:
quick by default, the workshop one), runs the
sample test set through base, prompted, RAG, fine-tuned and hybrid (plain adapter) and the hybrid
with the retrieval-aware adapter, runs the knowledge-update experiment (RAG, fine-tuned, and the
hybrid with the plain adapter) and checks the verdicts against the hand-labelled judge tables.
Greedy decoding, 96 new tokens.

RAG gets its fair best shot first: its passage count is chosen on the training pairs (not the test
set) with ``workbench.tuning`` (1, 2, 3 or 5 passages; about 280 answers), and RAG and the plain
hybrid read that many passages; ``--rag-top-k N`` fixes it instead.

Keys: correct_base, correct_prompted, correct_rag, correct_finetuned, correct_hybrid,
correct_hybrid_raft (share of answerable questions judged correct), format_prompted, format_finetuned
(share of answers in the house format), stale_rag_after_update, stale_finetuned_after_update (share
of the update questions answered with the old value after the document changed), judge_accuracy (all
labelled cases), raft_train_s (the retrieval-aware training call: retrieval, model load, training,
saving), plain_train_s, raft_over_plain_train (ratio, same run), rag_top_k (the passage count RAG and
the plain hybrid read), repetition_penalty and adapter_repetition_penalty (the answers without and
with an adapter; GenerationConfig's defaults unless given) and, when chosen here,
rag_dev_correct_k1/k2/k3/k5 (training questions judged correct with that many passages) and tune_s.
``--home DIR`` reuses a workspace (and its adapters) from an earlier run.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import replace

from _common import parser, report

WS = "quality"


def judge_tables() -> dict[str, tuple[int, int]]:
    """table name -> (right, cases) of the verdicts on the hand-labelled tables."""
    from workbench import samples
    from workbench.scoring import judge_names
    from workbench.evaluation import read_testset
    from workbench.verdicts import judge

    path = samples.sample_dir() / "eval_set.jsonl"
    items, _ = read_testset(path.name, path.read_bytes())
    by_id = {i.id: i for i in items}
    names = judge_names(items)
    out = {}
    for table in sorted(samples.sample_dir().glob("judge_cases*.jsonl")):
        right = total = 0
        for line in table.read_text(encoding="utf-8").splitlines():
            case = json.loads(line)
            item = by_id[case["item"]]
            updated = case["scored_against"] == "updated_reference"
            verdict = judge(case["answer"], item.updated_reference if updated else item.reference,
                            question=item.question, answerable=item.answerable,
                            old_reference=item.reference if updated else None,
                            background=names.background, known=names.known)
            right += verdict.verdict == case["expected"]
            total += 1
        out[table.stem] = (right, total)
    return out


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, help="only the first N test questions (quick runs)")
    p.add_argument("--home", help="reuse this WORKBENCH_HOME (adapters trained by an earlier run are kept)")
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--repetition-penalty", type=float, help="for the answers without an adapter (default: "
                   "GenerationConfig's)")
    p.add_argument("--adapter-repetition-penalty", type=float,
                   help="for the fine-tuned and hybrid answers (default: GenerationConfig's)")
    p.add_argument("--preset", choices=["quick", "balanced", "thorough"], default="quick",
                   help="retrieval-aware training settings (workbench.raft.RAFT_PRESETS)")
    p.add_argument("--rag-top-k", type=int, help="passages for RAG and the plain hybrid (default: chosen on the "
                   "training pairs)")
    args = p.parse_args()
    os.environ["WORKBENCH_HOME"] = args.home or tempfile.mkdtemp(prefix="wb-bench-quality-")
    print(f"workspace home: {os.environ['WORKBENCH_HOME']}")

    from workbench import models, samples
    from workbench.config import GenerationConfig, RetrievalConfig, TrainConfig
    from workbench.documents import parse_uploads
    from workbench.eval_runs import evaluate, knowledge_update
    from workbench.eval_summary import summarize
    from workbench.evaluation import read_testset
    from workbench.index import open_index
    from workbench.pairs import read_pairs
    from workbench.progress import TqdmSink
    from workbench.prompts import example_pool, load_prompts
    from workbench.raft import RAFT_PRESETS
    from workbench.strategies import ComparisonSpec
    from workbench.training import ADAPTER_META, adapters_dir, load_adapter, train_adapter
    from workbench.tuning import save_tuning, tune_passages

    tables = judge_tables()
    index = open_index(WS)
    if not index.documents():
        docs, problems = parse_uploads(samples.sample_documents())
        index.add_documents(docs)
    path = samples.sample_dir() / "training_pairs.jsonl"
    pairs, _ = read_pairs(path.name, path.read_bytes())
    models.get_generator()  # the one-time model conversion is not training time
    prompts = load_prompts(WS)
    timings: dict[str, float] = {}
    raft_name = "raft" if args.preset == "quick" else f"raft-{args.preset}"
    for name, config in [("plain", TrainConfig()), (raft_name, RAFT_PRESETS[args.preset].config)]:
        folder = adapters_dir(WS) / name
        if not (folder / ADAPTER_META).exists():
            sink = TqdmSink()
            started = time.perf_counter()
            train_adapter(pairs, config, workspace=WS, name=name, progress=sink, index=index, prompts=prompts)
            sink.close()
            timings[name] = time.perf_counter() - started
        else:
            timings[name] = load_adapter(folder).wall_s or 0.0
            print(f"reusing adapter {name} (training loop {timings[name]:.0f} s; whole call not measured)")
    plain_adapter, raft_adapter = load_adapter(adapters_dir(WS) / "plain"), load_adapter(adapters_dir(WS) / raft_name)
    plain = plain_adapter.path

    test_path = samples.sample_dir() / "eval_set.jsonl"
    items, _ = read_testset(test_path.name, test_path.read_bytes())
    items = items[: args.limit] if args.limit else items
    generator = models.get_generator()
    embed = models.get_embedder(index.config.embedder_id).embed
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens)
    if args.repetition_penalty is not None:
        gen = replace(gen, repetition_penalty=args.repetition_penalty)
    if args.adapter_repetition_penalty is not None:
        gen = replace(gen, adapter_repetition_penalty=args.adapter_repetition_penalty)
    spec = ComparisonSpec(("hybrid",), generator, adapter=raft_adapter, generation=gen, prompts=prompts,
                          embedder_id=index.config.embedder_id)
    sink = TqdmSink()
    raft_run = evaluate(items, spec, workspace=WS, index=index, progress=sink,
                        label="quality: retrieval-aware adapter")
    print(f"hybrid with the retrieval-aware adapter: {summarize(raft_run)['hybrid']['correct_answerable']:.3f} correct")
    tuning = None
    if args.rag_top_k:
        top_k = args.rag_top_k
    else:
        tuning = tune_passages(pairs, index, generator, prompts=prompts, generation=gen, progress=sink)
        save_tuning(WS, tuning)  # as the Evaluate page would: the workspace's pages start from it
        top_k = tuning.top_k
        print(f"RAG's passage count: {tuning.note()} ({tuning.wall_s:.0f} s)")
    retrieval = RetrievalConfig(top_k=top_k, candidates=max(top_k, RetrievalConfig().candidates))
    spec = replace(spec, modes=("base", "prompted", "rag", "finetuned", "hybrid"), adapter=plain_adapter,
                   examples=example_pool(WS, plain, embed), retrieval=retrieval)
    main_run = evaluate(items, spec, workspace=WS, index=index, progress=sink, label="quality: plain adapter")
    original = dict(samples.sample_documents())["returns-policy.md"]
    update = knowledge_update(items if not args.limit else read_testset(test_path.name, test_path.read_bytes())[0],
                              spec.with_modes(["rag", "finetuned", "hybrid"]), workspace=WS, index=index,
                              updated=samples.updated_document("returns-policy.md"), progress=sink)
    index.add_documents(parse_uploads([("returns-policy.md", original)])[0])  # leave the workspace as found
    sink.close()
    s, sr = summarize(main_run), summarize(raft_run)
    after = update["after_verdicts"]
    stale = {m: after[m]["stale"] / max(1, sum(after[m].values())) for m in after}
    right = sum(r for r, _ in tables.values())
    cases = sum(t for _, t in tables.values())
    n = s["rag"]["n_answerable"]
    rows = [(f"correct_{m}", s[m]["correct_answerable"], f"share of {n} answerable questions judged correct")
            for m in ("base", "prompted", "rag", "finetuned", "hybrid")]
    rows += [
        ("correct_hybrid_raft", sr["hybrid"]["correct_answerable"], f"the same, hybrid with the retrieval-aware adapter ({args.preset} preset)"),
        ("format_prompted", s["prompted"]["format_ok"], "share of answers in the house format"),
        ("format_finetuned", s["finetuned"]["format_ok"], "share of answers in the house format"),
        ("stale_rag_after_update", stale.get("rag", float("nan")),
         f"share of {update['questions']} update questions answered with the old value"),
        ("stale_finetuned_after_update", stale.get("finetuned", float("nan")), "the same, fine-tuned"),
    ]
    # Staleness shows only on questions an approach got right before the update.
    rows += [(f"knew_{m}_before_update", t["knew"], f"of {t['questions']} update questions right before it; then "
              f"updated {t['updated']}, stale {t['stale']}, other {t['other']}")
             for m, t in sorted(update["transitions"].items())]
    rows += [
        ("judge_accuracy", right / cases, f"{right} of {cases} hand-labelled cases ("
         + ", ".join(f"{k}: {r}/{t}" for k, (r, t) in tables.items()) + ")"),
        ("raft_train_s", timings[raft_name], f"s, retrieval-aware training of {len(pairs)} pairs "
         f"({raft_adapter.steps} steps, loop {raft_adapter.wall_s or 0:.0f} s)"),
        ("plain_train_s", timings["plain"], f"s, plain training ({plain_adapter.steps} steps, loop "
         f"{plain_adapter.wall_s or 0:.0f} s)"),
        ("raft_over_plain_train", timings[raft_name] / timings["plain"], "ratio, same run"),
        ("rag_top_k", top_k, "passages RAG and the plain hybrid read (" + ("chosen on the training pairs)"
                                                                          if tuning else "--rag-top-k)")),
        ("repetition_penalty", gen.repetition_penalty, "base, prompted and RAG answers' (1.0: none)"),
        ("adapter_repetition_penalty", gen.adapter_repetition_penalty, "fine-tuned and hybrid answers' (1.0: none)"),
    ]
    if tuning is not None:
        rows += [(f"rag_dev_correct_k{k}", n, f"of {tuning.questions} training questions judged correct, RAG "
                  f"with {k} passage(s)") for k, n in sorted(tuning.correct.items())]
        rows.append(("tune_s", tuning.wall_s, "s, choosing the passage count"))
    for m, v in after.items():
        print(f"after the update, {m}: " + ", ".join(f"{k} {c}" for k, c in v.items() if c))
    report(f"Answer quality on the sample ({len(items)} questions, {generator.model_id}, greedy, "
           f"{args.max_new_tokens} new tokens, {GenerationConfig.penalty_note(gen.to_dict())})", rows, args.json)


if __name__ == "__main__":
    main()
