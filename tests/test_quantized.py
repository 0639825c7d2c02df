"""Packed decode weights (generation/quantized.py) and the direct decode step (generation/decode_step.py)."""

from contextlib import nullcontext

import pytest
import torch

from workbench import runtime
from workbench.errors import ConfigError
from workbench.generation.quantized import DecodeLinear, fuse, pack_for_decode


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Linear(64, 128, bias=False)
        self.b = torch.nn.Linear(64, 32, bias=False)
        self.c = torch.nn.Linear(128, 64, bias=True)
        self.to(torch.bfloat16)


def test_int4_packing_keeps_one_set_of_weights_for_prefill_and_decode():
    model = Tiny()
    before = model.a.weight.detach().float().clone()
    packing = pack_for_decode(model, "int4")
    assert packing.weights == "int4" and packing.layers == packing.int4_layers == 3 and packing.kept == 0
    assert all(type(m) is DecodeLinear for m in (model.a, model.b, model.c))
    # The bf16 copy prefill reads is the packed values: a one-token step and a prompt agree on them.
    x = torch.randn(2, 5, 64, dtype=torch.bfloat16)
    step = torch.cat([model.a(x[:, i:i + 1]) for i in range(5)], 1)
    prompt = model.a(x)
    assert (step.float() - prompt.float()).abs().max() < 0.05 * prompt.float().abs().max()
    # 4 bits per weight change it by at most half a step of its group (1/30 of the group's range, at most
    # 1/15 of the layer's largest weight), plus bf16 rounding of the group's scale and zero.
    assert 0 < packing.max_change < 1 / 15 * 1.1
    assert (model.a.weight.float() - before).abs().max() > 0
    # A row's output does not depend on its neighbours in the batch.
    rows = torch.randn(4, 1, 64, dtype=torch.bfloat16)
    assert torch.equal(model.a(rows), torch.cat([model.a(rows[i:i + 1]) for i in range(4)]))
    # The bias is added on the packed path too.
    assert torch.allclose(model.c(torch.ones(1, 1, 128, dtype=torch.bfloat16)).float(),
                          torch.nn.functional.linear(torch.ones(1, 1, 128), model.c.weight.float(),
                                                     model.c.bias.float()), rtol=0.02, atol=0.05)


def test_weights_already_on_the_4_bit_grid_pack_without_change_and_auto_keeps_the_others_at_8_bits():
    """A Q4_1 GGUF's layers are already 4-bit groups of 32: packing them again loses nothing. ``auto``
    packs those at 4 bits and any other layer at 8."""
    model = Tiny()
    pack_for_decode(model, "int4")
    again = Tiny()
    for name in ("a", "b"):  # on the grid; c keeps its fresh random weights
        getattr(again, name).weight.data = getattr(model, name).weight.data.clone()
    packing = pack_for_decode(again, "auto")
    assert packing.weights == "auto" and packing.layers == 3 and packing.int4_layers == 2
    assert again.a.kind == again.b.kind == "int4" and again.c.kind == "int8"
    assert packing.max_change < 0.01 and "2 layers at 4 bits and 1 at 8" in packing.label()


def test_int8_and_bf16_choices():
    model = Tiny()
    assert pack_for_decode(model, "int8").weights == "int8" and model.a.kind == "int8"
    plain = Tiny()
    assert pack_for_decode(plain, "bf16").layers == 0 and type(plain.a) is torch.nn.Linear
    half = Tiny().half()  # the CPU kernels take bf16 and fp32 activations: an fp16 model stays as it is
    assert pack_for_decode(half, "int4").weights == "bf16" and type(half.a) is torch.nn.Linear


def test_an_fp32_model_packs_too():
    """On a CPU without bf16 units the model runs in fp32: its decode steps read the same packed weights
    (the kernels take its activations rounded to bf16) and its prefill reads the fp32 copy of the packed
    values."""
    model = Tiny().float()
    packing = pack_for_decode(model, "int4")
    assert packing.weights == "int4" and packing.layers == 3 and model.a.scales.dtype == torch.bfloat16
    assert model.a.weight.dtype == torch.float32
    x = torch.randn(2, 5, 64)
    step = torch.cat([model.a(x[:, i:i + 1]) for i in range(5)], 1)
    prompt = model.a(x)
    assert step.dtype == torch.float32 and (step - prompt).abs().max() < 0.02 * prompt.abs().max()
    rows = torch.randn(4, 1, 64)
    assert torch.equal(model.a(rows), torch.cat([model.a(rows[i:i + 1]) for i in range(4)]))


def test_inference_dtype_setting(monkeypatch):
    monkeypatch.delenv(runtime.INFERENCE_DTYPE_ENV, raising=False)
    monkeypatch.setattr(runtime, "cpu_bf16_units", lambda: False)
    # auto: fp32 on a CPU that would emulate bf16 products, bf16 on a GPU
    assert runtime.inference_dtype_name("cpu") == "fp32" and runtime.inference_dtype("cpu") == torch.float32
    assert runtime.inference_dtype_name("cuda") == "bf16"
    assert "compute in fp32 (this CPU has no bf16 units, so fp32 reads prompts" in runtime.decode_weights_note("cpu")
    monkeypatch.setenv(runtime.INFERENCE_DTYPE_ENV, "bf16")
    assert runtime.inference_dtype("cpu") == torch.bfloat16
    assert "no bf16 units: fp32 would read prompts several times faster" in runtime.decode_weights_note("cpu")
    monkeypatch.delenv(runtime.INFERENCE_DTYPE_ENV)
    monkeypatch.setattr(runtime, "cpu_bf16_units", lambda: True)
    assert runtime.inference_dtype_name("cpu") == "bf16"
    assert "no bf16 units" not in runtime.decode_weights_note("cpu")
    monkeypatch.setenv(runtime.INFERENCE_DTYPE_ENV, "FP32")
    assert runtime.inference_dtype_name("cpu") == runtime.inference_dtype_name("cuda") == "fp32"
    assert runtime.inference_dtype("cpu") == torch.float32
    monkeypatch.setenv(runtime.INFERENCE_DTYPE_ENV, "fp16")
    with pytest.raises(ConfigError, match="found 'fp16'"):
        runtime.inference_dtype_name("cpu")


@pytest.mark.parametrize("penalize_prompt", [False, True])
def test_the_repetition_penalty_counts_the_answer_not_the_prompt_unless_asked(penalize_prompt):
    """An answer that copies a figure from its passages must not be penalised for it: by default only the
    answer's own tokens count (transformers' generate counts the prompt too; one setting away)."""
    from types import SimpleNamespace

    from workbench.generation.batching import Row, Sampling, decode

    prompt_token, other = 7, 3
    logits = torch.full((1, 1, 16), 0.0)
    logits[0, 0, prompt_token], logits[0, 0, other] = 2.0, 1.5  # the prompt's token wins unless penalised

    def forward(**kwargs):
        return SimpleNamespace(logits=logits, past_key_values=None)

    got = []
    row = Row(torch.tensor([1, prompt_token, 2]), None, 1, got.append, lambda: None)
    decode(forward, [row], set(), Sampling(True, 0.0, 1.0, 1.5, 0, penalize_prompt), lambda names: nullcontext())
    assert got == [other if penalize_prompt else prompt_token]


def test_fused_products_give_each_part_its_own_output():
    model = Tiny()
    pack_for_decode(model, "int4")
    fused = fuse([model.a, model.b])
    assert fused is not None and fused.serves([model.a, model.b])
    x = torch.randn(3, 1, 64, dtype=torch.bfloat16)
    a, b = fused(x)
    assert torch.equal(a, model.a(x)) and torch.equal(b, model.b(x))
    assert fuse([model.a, model.c]) is None  # different inputs (and a bias)
    # Where the kernel packs outputs in blocks of 64 (AVX-512), 32 then 128 does not fuse; where it fuses
    # (AVX2 here), each part still gets exactly its own output.
    odd = fuse([model.b, model.a])
    assert odd is None or all(torch.equal(p, m(x)) for p, m in zip(odd(x), (model.b, model.a)))
    assert not fused.serves([torch.nn.Linear(64, 128), model.b])  # a layer wrapped since is not served


def test_decode_weights_setting(monkeypatch):
    monkeypatch.delenv(runtime.DECODE_WEIGHTS_ENV, raising=False)
    assert runtime.decode_weights("cpu") == "auto"
    assert runtime.decode_weights("cuda") == "bf16"
    monkeypatch.setenv(runtime.DECODE_WEIGHTS_ENV, "BF16")
    assert runtime.decode_weights("cpu") == "bf16"
    assert "as loaded" in runtime.decode_weights_note("cpu")
    monkeypatch.setenv(runtime.DECODE_WEIGHTS_ENV, "fp8")
    with pytest.raises(ConfigError, match="found 'fp8'") as err:
        runtime.decode_weights("cpu")
    assert "bf16" in err.value.fix


@pytest.mark.slow
def test_the_packaged_model_decodes_packed_through_the_direct_step():
    from workbench import models
    from workbench.config import GenerationConfig
    from workbench.generation.batching import GrowingLayer, generic_step
    from workbench.generation.decode_step import fused_products, matches_forward

    gen = models.get_generator("local:smollm2-135m")
    assert gen.decode_weights == "auto" and gen.packing.kept == 0
    assert gen.packing.layers == 30 * 7 + 1  # every projection and the output layer
    assert gen.packing.int4_layers == 30 * 7  # the GGUF's Q4_1 layers stay at 4 bits; the output layer at 8
    # The GGUF's layers are Q4_1: packing them again barely moves a weight (bf16 rounding only).
    assert gen.packing.max_change < 0.01
    assert gen._step is not None and not gen.pair_lone_rows
    plan = fused_products(gen.model)
    assert all(qkv is not None and gate_up is not None for qkv, gate_up in plan)
    assert matches_forward(gen.model, generic_step(gen.model), GrowingLayer, plan)  # the lean way (kernels direct)
    assert matches_forward(gen.model, generic_step(gen.model), GrowingLayer)  # the way through each module
    out = gen.generate([{"role": "user", "content": "What is the capital of France?"}],
                       GenerationConfig(max_new_tokens=12))
    assert "Paris" in out.text


def test_the_settings_note_says_what_packing_did_to_the_loaded_model(fake_generator):
    from workbench import model_choice, models

    assert "4 bits" in model_choice.describe("default")["decode"]
    gen = models.get_generator(fake_generator)
    gen.packing = pack_for_decode(Tiny(), "int4")
    model_choice.choose("default", fake_generator)
    assert "Loaded now: decode steps read 3 layers at 4 bits and 0 at 8." in model_choice.describe("default")["decode"]


def test_the_command_line_takes_the_penalty_scope():
    from workbench.cli import build_parser

    for command in (["ask", "q"], ["evaluate"]):
        assert build_parser().parse_args(command).penalize_prompt is False
        assert build_parser().parse_args(command + ["--penalize-prompt"]).penalize_prompt is True


def test_the_decode_step_rotates_and_normalises_exactly_as_transformers():
    from transformers.models.llama.modeling_llama import LlamaRMSNorm, apply_rotary_pos_emb

    from workbench.generation.decode_step import _rms_way, _rotate

    g = torch.Generator().manual_seed(5)
    q, k = torch.randn(3, 9, 1, 64, generator=g), torch.randn(3, 3, 1, 64, generator=g)
    angles = torch.randn(3, 1, 64, generator=g)
    cos, sin = angles.cos(), angles.sin()
    want_q, want_k = apply_rotary_pos_emb(q, k, cos, sin)
    signed = torch.cat([-sin[..., :32], sin[..., 32:]], -1)
    assert torch.equal(_rotate(q[:, :, 0], cos, signed, 32), want_q[:, :, 0])
    assert torch.equal(_rotate(k[:, :, 0], cos, signed, 32), want_k[:, :, 0])
    norm = LlamaRMSNorm(64, eps=1e-5)
    norm.weight.data = torch.randn(64, generator=g)
    x = torch.randn(4, 64, generator=g) * 3
    assert _rms_way(norm) is not norm  # fp32: one fused call
    assert torch.equal(_rms_way(norm)(x), norm(x))
    half = LlamaRMSNorm(64).to(torch.bfloat16)
    half.weight.data = torch.randn(64, generator=g).to(torch.bfloat16)
    assert _rms_way(half) is not half  # bf16: normalised in fp32 by one call, rounded, scaled, as the module does
    for rows in (1, 3, 8):
        for scale in (1e-3, 1.0, 7.0, 300.0):
            y = (torch.randn(rows, 64, generator=g) * scale).to(torch.bfloat16)
            assert torch.equal(_rms_way(half)(y), half(y))


def test_a_norm_that_the_fused_call_does_not_match_keeps_its_module():
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    from workbench.generation.decode_step import _rms_way

    class Shifted(LlamaRMSNorm):  # not what rms_norm computes: the probes must catch it
        def forward(self, x):
            return super().forward(x) + 1

    norm = Shifted(64)
    assert _rms_way(norm) is norm
