"""The GPU path end to end: 4-bit QLoRA training, the four approaches, and an evaluation, on CUDA.

    python bench/gpu_check.py [--json PATH] [--questions 20]     (bench/gpu_check.sh installs and runs it)

With a CUDA GPU: trains the sample adapter (all 80 sample pairs, 3 epochs, method qlora: 4-bit nf4
base, bf16 compute), answers one question four ways (base, RAG, fine-tuned, hybrid in one batched
call), measures single-stream decode, and runs --questions evaluation questions through the four.
Keys: qlora_train_s, qlora_peak_mem_gb (torch's peak allocation during training),
decode_tok_s_gpu, compare4_wall_s_gpu (median of 3 questions, 64 new tokens each), eval_wall_s_gpu,
eval_questions, plus correct_<mode> shares from the evaluation.

Without one it says so, skips every CUDA figure (null in the JSON) and runs the same steps at smoke
size on the CPU (3 documents, 2 training steps of plain LoRA, 8-token answers, 2 evaluation questions), so the
script itself is checked on every machine; ``cuda`` in the JSON says which happened.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from _common import machine, median, parser

MODES = ["base", "rag", "finetuned", "hybrid"]


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--questions", type=int, default=20, help="evaluation questions (CUDA run)")
    args = p.parse_args()
    models_dir = os.environ.get("WORKBENCH_MODELS_DIR") or os.path.join(
        os.environ.get("WORKBENCH_HOME") or os.path.expanduser("~/.workbench"), "models")
    os.environ["WORKBENCH_MODELS_DIR"] = models_dir  # reuse a converted model
    os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="wb-gpu-check-")

    import torch

    from workbench import models, samples
    from workbench.config import DEFAULT_GENERATOR, GenerationConfig, TrainConfig
    from workbench.documents import parse_uploads
    from workbench.eval_runs import evaluate
    from workbench.eval_summary import accuracy
    from workbench.evaluation import read_testset
    from workbench.index import open_index
    from workbench.pairs import read_pairs
    from workbench.strategies import ComparisonSpec, run_comparison
    from workbench.training import train_adapter

    cuda = torch.cuda.is_available()
    started = time.perf_counter()
    out: dict[str, object] = {"cuda": cuda, "machine": machine(),
                              "device": torch.cuda.get_device_name(0) if cuda else "cpu"}
    if not cuda:
        print("No CUDA GPU on this machine: 4-bit QLoRA and every GPU figure are skipped (null in the JSON); "
              "the same steps run at smoke size on the CPU.", flush=True)

    index = open_index("gpu")
    documents = samples.sample_documents()
    index.add_documents(parse_uploads(documents if cuda else documents[:3])[0])  # smoke size: 3 documents
    pairs, _ = read_pairs("training_pairs.jsonl", (samples.sample_dir() / "training_pairs.jsonl").read_bytes())
    config = TrainConfig(method="qlora" if cuda else "lora", val_fraction=0.0, epochs=3.0 if cuda else 1.0)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trained = train_adapter(pairs if cuda else pairs[:12], config, workspace="gpu", name="gpu",
                            max_steps=None if cuda else 2)
    train_s = time.perf_counter() - t0
    print(f"trained: {trained.method} on {trained.meta.get('device_name')}, {trained.steps} steps, {train_s:.1f} s",
          flush=True)
    out["train_method"] = trained.method
    out["qlora_train_s"] = round(train_s, 2) if cuda else None
    out["qlora_peak_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda else None

    generator = models.get_generator(DEFAULT_GENERATOR)
    tokens = 64 if cuda else 8
    gen_config = GenerationConfig(max_new_tokens=tokens, ignore_eos=True)
    rows = [r for r in samples.eval_rows() if r.get("answerable", True)]
    question_count = 3 if cuda else 1
    spec = ComparisonSpec(tuple(MODES), generator, adapter=trained, generation=gen_config)
    run_comparison(rows[0]["question"], spec, index=index)  # warm-up: adapter loaded, caches filled
    walls, answered = [], set()
    for row in rows[:question_count]:
        t0 = time.perf_counter()
        result = run_comparison(row["question"], spec, index=index)
        walls.append(time.perf_counter() - t0)
        answered |= {a.mode for a in result.answers}
    out["compare4_modes_answered"] = sorted(answered)
    out["compare4_wall_s_gpu"] = round(median(walls), 3) if cuda else None

    decode = []
    for prompt in ("Explain step by step how a support team should handle a damaged parcel.",) * (3 if cuda else 1):
        gen = generator.generate([{"role": "user", "content": prompt}],
                                 GenerationConfig(max_new_tokens=128 if cuda else 8, ignore_eos=True))
        decode.append(gen.decode_tok_s)
    out["decode_tok_s_gpu"] = round(median(decode), 1) if cuda else None

    path = samples.sample_dir() / "eval_set.jsonl"
    items, _ = read_testset(path.name, path.read_bytes())
    items = items[: args.questions if cuda else 2]
    t0 = time.perf_counter()
    run = evaluate(items, ComparisonSpec(tuple(MODES), generator, adapter=trained,
                                         generation=GenerationConfig(max_new_tokens=96 if cuda else 8)),
                   workspace="gpu", index=index, testset_name=path.name)
    out["eval_questions"] = len(items)
    out["eval_wall_s_gpu"] = round(time.perf_counter() - t0, 2) if cuda else None
    for mode, share in sorted(accuracy(run).items()):
        out[f"correct_{mode}"] = round(share, 3)
    out["total_s"] = round(time.perf_counter() - started, 1)

    print(f"\nGPU check ({'CUDA: ' + str(out['device']) if cuda else 'no CUDA: CPU smoke run'})\n{machine()}\n")
    width = max(len(k) for k in out)
    for key, value in out.items():
        print(f"  {key.ljust(width)}  {value}")
    text = json.dumps(out, indent=2)
    print("\n" + text)
    if args.json:
        Path(args.json).write_text(text + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
