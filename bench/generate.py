"""Decode speed and time to first token of the local generator, against llama.cpp on the same GGUF.

    python bench/generate.py [--json PATH] [--model ID] [--tokens N] [--repeats N]

Keys: decode_tok_s, ttft_ms, and llamacpp_decode_tok_s / llamacpp_ttft_ms / decode_vs_llamacpp when
the optional ``llama_cpp`` package is importable (it needs a long source build, so it is never part
of ``make run``).
"""

from __future__ import annotations

import importlib.util
import os
import time
from typing import Any

from _common import median, parser, report

PROMPTS = [
    "Write a detailed paragraph about how to care for a vegetable garden in spring.",
    "Explain step by step how a customer support team should handle a damaged parcel.",
    "Describe the water cycle in detail for a school student.",
]


def workbench_runner(model_id: str, tokens: int) -> Any:
    """A warmed-up generator's ``run(i)``: (decode tokens/s, TTFT ms) answering prompt ``i``."""
    from workbench import models
    from workbench.config import GenerationConfig

    gen = models.get_generator(model_id)
    config = GenerationConfig(max_new_tokens=tokens, repetition_penalty=1.1)
    gen.generate([{"role": "user", "content": "Hi"}], GenerationConfig(max_new_tokens=4))  # warm-up

    def run(i: int) -> tuple[float, float]:
        out = gen.generate([{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}], config)
        return out.decode_tok_s, out.ttft_s * 1000
    return run


def bench_workbench(model_id: str, tokens: int, repeats: int) -> tuple[float, float]:
    run = workbench_runner(model_id, tokens)
    rates, ttfts = zip(*(run(i) for i in range(repeats)))
    return median(list(rates)), median(list(ttfts))


def bench_llamacpp(model_id: str, tokens: int, repeats: int, prompt: int = 0) -> tuple[float, float]:
    from llama_cpp import Llama

    from workbench import models
    from workbench.runtime import available_cpus

    llm = Llama(model_path=str(models.PACKAGED[model_id].gguf()), n_ctx=2048, n_threads=available_cpus(), verbose=False)
    rates, ttfts = [], []
    for i in range(repeats):
        start = time.perf_counter()
        first = None
        n = 0
        question = PROMPTS[(prompt + i) % len(PROMPTS)]
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


def _llamacpp_child(args: list[str], what: str) -> dict | None:
    """This script run again with ``args`` as a child process, its last stdout line read as JSON: a crash of
    the native library (or its OpenMP runtime meeting torch's) ends only that process, and is reported, not
    fatal (None)."""
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"llama.cpp failed (exit code {proc.returncode}); {what} is not measured this run. "
              + proc.stderr.strip()[-300:])
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def llamacpp_reference(model_id: str, tokens: int, repeats: int,
                       prompt: int = 0) -> tuple[float, float] | None:
    """llama.cpp's (decode tokens/s, TTFT ms) on prompts ``prompt``, ``prompt + 1``, ..., in a child process."""
    data = _llamacpp_child(["--llamacpp-only", "--model", model_id, "--tokens", str(tokens), "--repeats", str(repeats),
                            "--prompt", str(prompt)], "its reference")
    return None if data is None else (data["decode"], data["ttft"])


def bench_llamacpp_prompts(model_id: str, conversations: list[list[dict]]) -> tuple[float, float]:
    """llama.cpp's median ms from a conversation to its first token (prompt read, one token sampled) and its
    median prompt tokens, each conversation read from scratch (its prompt cache reset), after one warm-up."""
    from llama_cpp import Llama

    from workbench import models
    from workbench.runtime import available_cpus

    llm = Llama(model_path=str(models.PACKAGED[model_id].gguf()), n_ctx=2048, n_threads=available_cpus(), verbose=False)
    times, tokens = [], []
    for i, messages in enumerate([conversations[0], *conversations]):
        llm.reset()
        start = time.perf_counter()
        out = llm.create_chat_completion(messages=messages, max_tokens=1, temperature=0.0)
        if i:
            times.append((time.perf_counter() - start) * 1000)
            tokens.append(out["usage"]["prompt_tokens"])
    return median(times), median(tokens)


def llamacpp_prompt_read(model_id: str, conversations: list[list[dict]]) -> tuple[float, float] | None:
    """``bench_llamacpp_prompts`` in a child process; None when it failed."""
    import json
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(conversations, f)
    try:
        data = _llamacpp_child(["--llamacpp-prompts", f.name, "--model", model_id], "its prompt reading")
    finally:
        os.unlink(f.name)
    return None if data is None else (data["ms"], data["tokens"])


def interleaved(model_id: str, tokens: int, repeats: int) -> tuple[list[Any], list[Any]]:
    """Each prompt answered by the workbench, then by llama.cpp, round after round: a machine whose speed
    drifts during the run (a shared host's does) slows both alike, so their ratio holds. llama.cpp's
    rounds are empty when it failed."""
    run = workbench_runner(model_id, tokens)
    ours, theirs = [], []
    for i in range(repeats):
        ours.append(run(i))
        reference = llamacpp_reference(model_id, tokens, 1, prompt=i)
        if reference is None:
            return ours + [run(j) for j in range(i + 1, repeats)], []
        theirs.append(reference)
    return ours, theirs


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--model", default="local:smollm2-135m")
    p.add_argument("--tokens", type=int, default=128, help="new tokens per answer")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--llamacpp-only", action="store_true", help=argparse_hidden())
    p.add_argument("--prompt", type=int, default=0, help=argparse_hidden())
    p.add_argument("--llamacpp-prompts", help=argparse_hidden())
    args = p.parse_args()
    if args.llamacpp_prompts:
        import json

        with open(args.llamacpp_prompts) as f:
            ms, tokens = bench_llamacpp_prompts(args.model, json.load(f))
        print(json.dumps({"ms": ms, "tokens": tokens}))
        return
    if args.llamacpp_only:
        import json

        decode, ttft = bench_llamacpp(args.model, args.tokens, args.repeats, args.prompt)
        print(json.dumps({"decode": decode, "ttft": ttft}))
        return

    # llama.cpp reads the packaged models' GGUF files; another model has no same-file reference.
    from workbench.models import PACKAGED

    if importlib.util.find_spec("llama_cpp") and args.model in PACKAGED:
        ours, theirs = interleaved(args.model, args.tokens, args.repeats)
    else:
        if importlib.util.find_spec("llama_cpp") is None:
            print("llama_cpp is not installed: the llama.cpp reference is skipped "
                  "(make bench-peers builds it from source, several minutes)")
        run = workbench_runner(args.model, args.tokens)
        ours, theirs = [run(i) for i in range(args.repeats)], []
    decode, ttft = median([r for r, _ in ours]), median([t for _, t in ours])
    rows = [("decode_tok_s", decode, f"tokens/s, {args.model}, median of {args.repeats}"),
            ("ttft_ms", ttft, "ms to first token")]
    if theirs:
        ref_decode, ref_ttft = median([r for r, _ in theirs]), median([t for _, t in theirs])
        rows += [("llamacpp_decode_tok_s", ref_decode, "tokens/s, llama.cpp on the same GGUF, rounds interleaved"),
                 ("llamacpp_ttft_ms", ref_ttft, "ms to first token, llama.cpp"),
                 ("decode_vs_llamacpp", decode / ref_decode, "ratio (workbench / llama.cpp)")]
    from workbench.runtime import decode_weights, inference_dtype_name, pick_device

    device = pick_device()
    report(f"Generation speed ({inference_dtype_name(device)}, decode weights {decode_weights(device)})",
           rows, args.json)


if __name__ == "__main__":
    main()
