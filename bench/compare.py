"""Four approaches on one question: batched wall time against the RAG answer alone, in one run.

    python bench/compare.py [--json PATH] [--questions 5] [--tokens 64] [--adapter PATH]

Builds the sample index in a temporary workspace and, unless --adapter is given, trains a small
LoRA adapter there with the shipped settings (rank 16 on every linear layer; a few steps: its
quality does not matter for speed). For each of the first --questions answerable evaluation
questions, through the same ``run_comparison`` the Compare page uses, it times:

- ``rag``: the RAG answer alone (retrieval + prompt + generation);
- ``compare4``: base + RAG + fine-tuned + hybrid in one call (one retrieval, one batched decode);
- ``sequential4``: the same four modes one call each (what batching saves).

Every answer generates exactly --tokens new tokens (``ignore_eos``) so the three are comparable.
Keys: compare4_wall_s, rag_wall_s, compare4_over_rag, rag_ttft_ms (question asked to the RAG answer's
first streamed token: embedding, search, prompt and prefill), rag_prefill_ms, sequential4_wall_s, batch_speedup,
prefill_share, decode_tok_s (single stream, from bench/generate.py), and, when the optional llama_cpp package
is importable, llamacpp_decode_tok_s / decode_vs_llamacpp and llamacpp_rag_prefill_ms / rag_prefill_vs_llamacpp
(llama.cpp reading the very RAG prompts of this run, from scratch each time, to its first token).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time

from _common import median, parser, report

MODES = ["base", "rag", "finetuned", "hybrid"]


def setup(adapter: str | None) -> tuple[object, object]:
    from workbench import samples
    from workbench.config import TrainConfig
    from workbench.documents import parse_uploads
    from workbench.index import open_index
    from workbench.pairs import read_pairs
    from workbench.training import load_adapter, train_adapter

    index = open_index("bench")
    index.add_documents(parse_uploads(samples.sample_documents())[0])
    if adapter is None:
        pairs, _ = read_pairs("training_pairs.jsonl", (samples.sample_dir() / "training_pairs.jsonl").read_bytes())
        print("training a small adapter for the benchmark (8 steps) ...", flush=True)
        trained = train_adapter(pairs, TrainConfig(epochs=1, batch_size=4), workspace="bench", name="bench",
                                max_steps=8)
    else:
        trained = load_adapter(adapter)
    return index, trained


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--questions", type=int, default=5)
    p.add_argument("--tokens", type=int, default=64, help="new tokens per answer")
    p.add_argument("--adapter", help="an adapter folder to use instead of training a small one")
    args = p.parse_args()
    models_dir = os.environ.get("WORKBENCH_MODELS_DIR") or os.path.join(
        os.environ.get("WORKBENCH_HOME") or os.path.expanduser("~/.workbench"), "models")
    os.environ["WORKBENCH_MODELS_DIR"] = models_dir  # reuse the converted model
    os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="wb-bench-")

    from workbench import models, samples
    from workbench.config import GenerationConfig
    from workbench.strategies import ComparisonSpec, run_comparison

    index, adapter = setup(args.adapter)
    generator = models.get_generator("local:smollm2-135m")
    config = GenerationConfig(max_new_tokens=args.tokens, ignore_eos=True)
    questions = [r["question"] for r in samples.eval_rows() if r.get("answerable", True)][: args.questions]

    first: list[float] = []

    def timed(question: str, modes: list[str]) -> tuple[float, list]:
        first.clear()
        start = time.perf_counter()
        spec = ComparisonSpec(tuple(modes), generator, adapter=adapter, generation=config)
        result = run_comparison(question, spec, index=index, on_text=lambda mode, piece: first or first.append(time.perf_counter()))
        if first:
            first[0] -= start
        return time.perf_counter() - start, result.answers

    timed(questions[0], MODES)  # warm-up: loads the adapter, fills caches
    rag, four, sequential, prefill_share, prompt_tokens, rag_first, rag_prefill = [], [], [], [], [], [], []
    rag_messages: list[list[dict]] = []
    for i, question in enumerate(questions):
        # Alternate the order so slow drift of the machine does not favour one side.
        order = ["rag", "four", "seq"] if i % 2 == 0 else ["seq", "four", "rag"]
        for what in order:
            if what == "rag":
                seconds, answers = timed(question, ["rag"])
                rag.append(seconds)
                prompt_tokens.append(answers[0].usage.tokens_in)
                rag_first.append(first[0] if first else seconds)
                rag_prefill.append(answers[0].timing("ttft"))
                rag_messages.append(answers[0].messages)
            elif what == "four":
                seconds, answers = timed(question, MODES)
                four.append(seconds)
                last_first_token = max(a.timing("ttft") for a in answers)
                prefill_share.append(last_first_token / seconds)
            else:
                sequential.append(sum(timed(question, [mode])[0] for mode in MODES))
        print(f"  q{i + 1}: rag {rag[-1]:.2f} s, four batched {four[-1]:.2f} s, four one by one "
              f"{sequential[-1]:.2f} s ({prompt_tokens[-1]} RAG prompt tokens)", flush=True)

    rows = [
        ("compare4_wall_s", median(four), f"s, base+RAG+fine-tuned+hybrid batched, {args.tokens} new tokens each, "
                                          f"median of {len(questions)} questions"),
        ("rag_wall_s", median(rag), "s, the RAG answer alone (retrieval included)"),
        ("compare4_over_rag", median(four) / median(rag), "ratio (goal <= 1.3)"),
        ("sequential4_wall_s", median(sequential), "s, the four modes one call each"),
        ("batch_speedup", median(sequential) / median(four), "ratio (one by one / batched)"),
        ("prefill_share", median(prefill_share), "share of the batched wall time before the last row's first token"),
        ("rag_prompt_tokens", median(prompt_tokens), "tokens in the RAG prompt (top 5 chunks)"),
        ("rag_ttft_ms", median(rag_first) * 1000, "ms from the question to the RAG answer's first token (goal <= 500)"),
        ("rag_prefill_ms", median(rag_prefill) * 1000, "ms of that in the model (prompt read to first token)"),
    ]
    from generate import bench_workbench, llamacpp_prompt_read, llamacpp_reference

    read = llamacpp_prompt_read("local:smollm2-135m", rag_messages) if importlib.util.find_spec("llama_cpp") else None
    if read is not None:
        rows += [("llamacpp_rag_prefill_ms", read[0], f"ms, llama.cpp reading the same RAG prompts to a first token "
                                                      f"({read[1]:.0f} tokens by its count), median"),
                 ("rag_prefill_vs_llamacpp", median(rag_prefill) * 1000 / read[0],
                  "ratio (workbench's prompt read / llama.cpp's; below 1 is faster)")]

    decode, _ = bench_workbench("local:smollm2-135m", 128, 3)
    rows.append(("decode_tok_s", decode, "tokens/s, single stream, short prompt (bench/generate.py)"))
    reference = llamacpp_reference("local:smollm2-135m", 128, 3) if importlib.util.find_spec("llama_cpp") else None
    if reference is not None:
        ref = reference[0]
        rows += [("llamacpp_decode_tok_s", ref, "tokens/s, llama.cpp on the same GGUF"),
                 ("decode_vs_llamacpp", decode / ref, "ratio (workbench / llama.cpp)")]
    elif importlib.util.find_spec("llama_cpp") is None:
        print("llama_cpp is not installed: the llama.cpp reference is skipped (make bench-peers).")
    from workbench.runtime import decode_weights, inference_dtype_name, pick_device

    device = pick_device()
    report(f"Compare: four approaches batched vs the RAG answer alone ({inference_dtype_name(device)}, decode weights "
           f"{decode_weights(device)})", rows, args.json)


if __name__ == "__main__":
    main()
