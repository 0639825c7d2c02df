"""Batched generation on the real packaged model: several prompts (with and without an adapter)
decoded together give exactly the text each gives alone, stream per row, and keep their own timings."""

import pytest

from workbench import models
from workbench.config import GenerationConfig

pytestmark = pytest.mark.slow

CONTEXT = " ".join(f"Passage {i}: Brindlemoss planters can be returned within 45 days; lamps carry a two-year "
                   f"warranty; the restocking fee is 8 percent." for i in range(12))
PROMPTS = [
    [{"role": "user", "content": "How long is the warranty on a lamp?"}],
    [{"role": "system", "content": "Answer from the context."},
     {"role": "user", "content": f"Context: {CONTEXT}\n\nQuestion: How long is the warranty on a lamp?"}],
    [{"role": "user", "content": "What is the restocking fee?"}],
    [{"role": "user", "content": f"Context: {CONTEXT}\n\nQuestion: What is the restocking fee?"}],
]


@pytest.fixture(scope="module")
def smollm2():
    return models.get_generator("local:smollm2-135m")


def _random_adapter(smollm2, folder, seed: int, targets="all-linear") -> str:
    """A real PEFT LoRA adapter with random (non-zero) weights: it changes the output, which is all
    these tests need (training itself is tested in test_training)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(smollm2.source, dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=targets, init_lora_weights=False))
    peft.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def random_adapter(smollm2, tmp_path_factory):
    folder = _random_adapter(smollm2, tmp_path_factory.mktemp("adapter") / "random", 0)
    yield folder
    smollm2.unload_adapter(folder)


@pytest.fixture(scope="module")
def second_adapter(smollm2, tmp_path_factory):
    """Another adapter, on fewer layers (attention only), so the two touch different modules too."""
    folder = _random_adapter(smollm2, tmp_path_factory.mktemp("adapter") / "second", 1, ["q_proj", "v_proj"])
    yield folder
    smollm2.unload_adapter(folder)


def test_rows_with_different_adapters_decode_together_with_the_same_text(smollm2, random_adapter, second_adapter):
    requests = [(PROMPTS[0], random_adapter), (PROMPTS[2], second_adapter), (PROMPTS[1], None),
                (PROMPTS[3], second_adapter)]
    config = GenerationConfig(max_new_tokens=24)
    batched = smollm2.generate_many(requests, config)
    alone = [smollm2.generate(messages, config, adapter=adapter) for messages, adapter in requests]
    assert [b.text for b in batched] == [a.text for a in alone]
    assert all(b.batch_size == 4 for b in batched)
    assert smollm2.most_adapters_in_batch >= 2
    # The adapters' terms were computed by the decode step's own low-rank products, not PEFT's layers.
    assert any(f is not None for f in smollm2._low_rank._factors.values())
    # Each adapter really changed its rows: the two give different answers to the same question.
    assert smollm2.generate(PROMPTS[0], config, adapter=second_adapter).text != alone[0].text


def test_batched_and_one_by_one_greedy_give_the_same_text(smollm2, random_adapter):
    assert smollm2.batches
    requests = [(PROMPTS[0], None), (PROMPTS[1], None), (PROMPTS[2], random_adapter), (PROMPTS[3], random_adapter)]
    config = GenerationConfig(max_new_tokens=32)
    batched = smollm2.generate_many(requests, config)
    alone = [smollm2.generate(messages, config, adapter=adapter) for messages, adapter in requests]
    assert [b.text for b in batched] == [a.text for a in alone]
    assert [b.usage for b in batched] == [a.usage for a in alone]
    assert all(b.batch_size == 4 for b in batched) and all(a.batch_size == 1 for a in alone)
    # The adapter really changed the answers it was applied to.
    plain = smollm2.generate(PROMPTS[2], config)
    assert plain.text != alone[2].text


def test_sampling_with_a_seed_is_the_same_batched_or_alone(smollm2, random_adapter):
    config = GenerationConfig(max_new_tokens=20, temperature=0.9, seed=7)
    requests = [(PROMPTS[0], None), (PROMPTS[2], random_adapter)]
    batched = smollm2.generate_many(requests, config)
    alone = [smollm2.generate(messages, config, adapter=adapter) for messages, adapter in requests]
    assert [b.text for b in batched] == [a.text for a in alone]


def test_rows_stream_separately_and_keep_their_own_timings(smollm2):
    pieces: dict[int, list[str]] = {0: [], 1: []}
    config = GenerationConfig(max_new_tokens=16, ignore_eos=True)
    out = smollm2.generate_many([(PROMPTS[0], None), (PROMPTS[1], None)], config,
                                on_text=lambda i, piece: pieces[i].append(piece))
    for i, generation in enumerate(out):
        assert generation.text == "".join(pieces[i]).strip()
        assert generation.usage.tokens_out == 16 and generation.finish_reason == "length"
        assert 0 < generation.ttft_s <= generation.total_s
    # The short prompt is prefilled first, so its first token comes first.
    assert out[0].ttft_s < out[1].ttft_s
    assert out[1].usage.tokens_in > 5 * out[0].usage.tokens_in


def test_a_row_that_stops_early_leaves_the_others_running(smollm2):
    config = GenerationConfig(max_new_tokens=40)
    out = smollm2.generate_many([([{"role": "user", "content": "Reply with the single word: yes"}], None),
                                 ([{"role": "user", "content": "Write a long story about a cat."}], None)], config)
    assert out[0].finish_reason == "stop" and out[0].usage.tokens_out < 40
    assert out[1].usage.tokens_out == 40 and out[1].finish_reason == "length"
    assert out[1].text == smollm2.generate(*([{"role": "user", "content": "Write a long story about a cat."}],),
                                           config).text


def test_concurrent_callers_are_decoded_together_with_the_same_text(smollm2, random_adapter):
    """Sessions asking at once: their requests join one batch, and each gets exactly its own answer."""
    import threading

    config = GenerationConfig(max_new_tokens=16)
    alone = [smollm2.generate(PROMPTS[i], config, adapter=random_adapter if i == 3 else None).text for i in range(4)]
    merged_before = smollm2._coalescer.merged_calls
    results: dict[int, str] = {}
    start = threading.Barrier(4)

    def ask(i: int) -> None:
        start.wait()
        results[i] = smollm2.generate(PROMPTS[i], config, adapter=random_adapter if i == 3 else None).text

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert [results[i] for i in range(4)] == alone
    assert smollm2._coalescer.merged_calls > merged_before  # at least the callers that waited were merged


def test_each_caller_draws_its_own_stream_and_a_caller_that_leaves_stops_only_itself(smollm2, random_adapter):
    """The thread that runs a merged batch never calls another caller's callbacks: each caller's pieces
    arrive in its own thread (a web framework routes output by thread). A caller whose callback fails
    (its page went away) gets the error; the others get their whole answers."""
    import threading

    config = GenerationConfig(max_new_tokens=24)
    alone = [smollm2.generate(PROMPTS[i], config, adapter=random_adapter if i % 2 else None).text for i in range(4)]
    results: dict[int, object] = {}
    wrong_thread: list[int] = []
    start = threading.Barrier(4)

    class Gone(Exception):
        pass

    def ask(i: int) -> None:
        me = threading.get_ident()
        seen = []

        def on_text(piece: str) -> None:
            if threading.get_ident() != me:
                wrong_thread.append(i)
            seen.append(piece)
            if i == 2 and len(seen) == 3:
                raise Gone("page closed")

        start.wait()
        try:
            results[i] = smollm2.generate(PROMPTS[i], config, on_text=on_text,
                                          adapter=random_adapter if i % 2 else None).text
        except Gone as exc:
            results[i] = exc

    merged_before = smollm2._coalescer.merged_calls
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert wrong_thread == []
    assert isinstance(results[2], Gone)
    assert [results[i] for i in (0, 1, 3)] == [alone[i] for i in (0, 1, 3)]
    assert smollm2._coalescer.merged_calls > merged_before


def test_low_rank_products_are_batch_independent_on_this_cpu():
    """The way chosen for an adapter's terms gives each row the same result alone and in any batch
    (on an AVX2-only CPU one fp32 product of several rows rounded them differently per batch size)."""
    import torch

    from workbench.generation.low_rank import _batch_independent_way, low_rank_product

    a, b = torch.randn(8, 576), torch.randn(1536, 8)
    way = _batch_independent_way(a, b)
    assert way in ("pairs", "rows")
    factors = (a, b) if way == "pairs" else (a.t().contiguous(), b.t().contiguous())
    x = torch.randn(5, 576)
    full = low_rank_product(way, x, *factors)
    assert all(torch.equal(low_rank_product(way, x[i:i + 1], *factors), full[i:i + 1]) for i in range(5))
    assert torch.allclose(full, x @ a.T @ b.T, rtol=1e-4, atol=1e-3)


def test_adapter_rows_take_the_lean_way_with_their_terms_added_per_group(smollm2, random_adapter, second_adapter):
    """With adapters loaded, every layer still calls the packed kernels directly and adds each adapter's
    terms as one product per group of layers: the row without an adapter gets exactly the logits of the way
    through the modules, the adapter's row the same logits up to the rounding of its low-rank products."""
    import torch

    from workbench.generation.batching import GrowingLayer
    from workbench.generation.decode_step import _lean, llama_step

    keys = [smollm2._ensure_adapter(random_adapter), smollm2._ensure_adapter(second_adapter)]
    model, fused, low_rank = smollm2.model, smollm2._step.keywords["fused"], smollm2._low_rank
    prompts = [torch.tensor([[1, 2, 3, 4]]), torch.tensor([[5, 6]]), torch.tensor([[7, 8, 9]])]
    with torch.inference_mode():
        with smollm2._peft.disable_adapter():
            caches = [model(input_ids=p, use_cache=True).past_key_values for p in prompts]

        def layers():
            return [GrowingLayer([c.layers[i].keys for c in caches], [c.layers[i].values for c in caches], 4, 2)
                    for i in range(len(caches[0].layers))]

        ids, positions, starts = torch.tensor([[7], [8], [9]]), torch.tensor([[4], [2], [3]]), [0, 2, 1]
        with smollm2._adapter_scope([keys[0], None, keys[1]]):
            assert all(_lean(layer, qkv, gate_up, low_rank) is not None
                       for layer, (qkv, gate_up) in zip(model.model.layers, fused))
            lean = llama_step(model, ids, positions, layers(), starts, fused, low_rank)
            modules = llama_step(model, ids, positions, layers(), starts, (), low_rank)
        with smollm2._peft.disable_adapter():
            plain = llama_step(model, ids, positions, layers(), starts, fused, low_rank)
    assert torch.equal(lean[1], modules[1]) and torch.equal(lean[1], plain[1])
    for row in (0, 2):
        assert torch.allclose(lean[row], modules[row], rtol=1e-4, atol=1e-3)
        assert not torch.allclose(lean[row], plain[row], atol=1e-2)  # the adapter's terms were added
