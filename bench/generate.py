"""Decode speed and time to first token of the local generator, against llama.cpp on the same GGUF.

    python bench/generate.py [--json PATH] [--model ID] [--tokens N] [--repeats N]

Keys: decode_tok_s, ttft_ms, and llamacpp_decode_tok_s / llamacpp_ttft_ms / decode_vs_llamacpp when
the optional ``llama_cpp`` package is importable (it needs a long source build, so it is never part
of ``make run``).
"""

from __future__ import annotations

import importlib.util
import time

from _common import median, parser, report

PROMPTS = [
    "Write a detailed paragraph about how to care for a vegetable garden in spring.",
    "Explain step by step how a customer support team should handle a damaged parcel.",
    "Describe the water cycle in detail for a school student.",
]


def bench_workbench(model_id: str, tokens: int, repeats: int) -> tuple[float, float]:
    from workbench import models
    from workbench.config import GenerationConfig

    gen = models.get_generator(model_id)
    config = GenerationConfig(max_new_tokens=tokens, repetition_penalty=1.1)
    gen.generate([{"role": "user", "content": "Hi"}], GenerationConfig(max_new_tokens=4))  # warm-up
    rates, ttfts = [], []
    for i in range(repeats):
        out = gen.generate([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], config)
        rates.append(out.decode_tok_s)
        ttfts.append(out.ttft_s * 1000)
    return median(rates), median(ttfts)


def bench_llamacpp(model_id: str, tokens: int, repeats: int) -> tuple[float, float]:
    from llama_cpp import Llama

    from workbench import models
    from workbench.runtime import available_cpus

    llm = Llama(model_path=str(models.PACKAGED[model_id].gguf()), n_ctx=2048, n_threads=available_cpus(), verbose=False)
    rates, ttfts = [], []
    for i in range(repeats):
        start = time.perf_counter()
        first = None
        n = 0
        question = PROMPTS[i % len(PROMPTS)]
        if llm.metadata.get("tokenizer.chat_template"):
            stream = llm.create_chat_completion(messages=[{"role": "user", "content": question}],
                                                max_tokens=tokens, temperature=0.0, repeat_penalty=1.1, stream=True)
            pieces = (chunk["choices"][0]["delta"].get("content") for chunk in stream)
        else:  # a base model: the same plain turns the workbench gives it
            stream = llm.create_completion(f"User: {question}\n\nAssistant:", max_tokens=tokens, temperature=0.0,
                                           repeat_penalty=1.1, stream=True)
            pieces = (chunk["choices"][0].get("text") for chunk in stream)
        for piece in pieces:
            if piece:
                n += 1
                first = first or time.perf_counter()
        end = time.perf_counter()
        if first and n > 1:
            rates.append((n - 1) / (end - first))
            ttfts.append((first - start) * 1000)
    return median(rates), median(ttfts)


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


def llamacpp_reference(model_id: str, tokens: int, repeats: int) -> tuple[float, float] | None:
    """llama.cpp's (decode tokens/s, TTFT ms), measured in a child process: a crash of the native library
    (or its OpenMP runtime meeting torch's) ends only that process, and is reported, not fatal."""
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, __file__, "--llamacpp-only", "--model", model_id, "--tokens", str(tokens),
                           "--repeats", str(repeats)], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"llama.cpp failed (exit code {proc.returncode}); its reference is not measured this run. "
              + proc.stderr.strip()[-300:])
        return None
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return data["decode"], data["ttft"]


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--model", default="local:smollm2-135m")
    p.add_argument("--tokens", type=int, default=128, help="new tokens per answer")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--llamacpp-only", action="store_true", help=argparse_hidden())
    args = p.parse_args()
    if args.llamacpp_only:
        import json

        decode, ttft = bench_llamacpp(args.model, args.tokens, args.repeats)
        print(json.dumps({"decode": decode, "ttft": ttft}))
        return

    decode, ttft = bench_workbench(args.model, args.tokens, args.repeats)
    rows = [("decode_tok_s", decode, f"tokens/s, {args.model}, median of {args.repeats}"),
            ("ttft_ms", ttft, "ms to first token")]
    # llama.cpp reads the packaged models' GGUF files; another model has no same-file reference.
    from workbench.models import PACKAGED

    reference = (llamacpp_reference(args.model, args.tokens, args.repeats)
                 if importlib.util.find_spec("llama_cpp") and args.model in PACKAGED else None)
    if reference is not None:
        ref_decode, ref_ttft = reference
        rows += [("llamacpp_decode_tok_s", ref_decode, "tokens/s, llama.cpp on the same GGUF"),
                 ("llamacpp_ttft_ms", ref_ttft, "ms to first token, llama.cpp"),
                 ("decode_vs_llamacpp", decode / ref_decode, "ratio (workbench / llama.cpp)")]
    elif importlib.util.find_spec("llama_cpp") is None:
        print("llama_cpp is not installed: the llama.cpp reference is skipped "
              "(make bench-peers builds it from source, several minutes)")
    from workbench.runtime import decode_weights, inference_dtype_name, pick_device

    device = pick_device()
    report(f"Generation speed ({inference_dtype_name(device)}, decode weights {decode_weights(device)})",
           rows, args.json)


if __name__ == "__main__":
    main()
