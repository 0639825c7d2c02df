"""One decode step of a Llama-shaped model without ``transformers``' generic forward.

``transformers`` builds a causal mask, routes keyword arguments through every layer and wraps each
output, once per token; for a 135M model on 2 cores that plumbing cost about a third of a decode
step. :func:`llama_step` calls the same modules in the same order (so LoRA layers, their per-row masks
and packed decode weights all apply as usual) and only drops the plumbing that a one-token step with
our own key/value cache does not need. :func:`matches_forward` checks, once per model, that it gives
exactly the logits ``transformers`` gives; a model where it does not keeps the generic forward.

A layer whose base products are all packed int4 ones takes a lean way: its kernels are called directly
on ``(rows, hidden)`` activations, its norms are one call each, and queries and keys are rotated as one
tensor. Each operation gives the same numbers as the way through the modules, so a row decodes alike
whichever way its layers take. Where LoRA adapters wrap the layer, the lean way adds their terms as one
low-rank product per adapter for the layers that read the same input (q/k/v, gate/up), side by side as
the packed product gives their outputs (:meth:`low_rank.LowRank.group`); every row with an adapter takes that way
whatever else is in its batch, and rows without one get exact zeros. On the 2-core reference machine a
SmolLM2-135M step took about 24 ms this way and 29 ms through the modules, of which 13 ms are the packed
kernels themselves; a row with an adapter decoded at 19.5 ms a token this way and 23.4 ms before it took
this way (another 2-core machine, with bf16 units, docs/benchmarks.md). What a lean layer reads (packed
weights, norms, head counts, adapters' terms) is worked out once per set of loaded adapters
(:func:`_lean`), and bf16 norms take one ``rms_norm`` call: on a 2-core CPU with bf16 units a lone row's
step went from 12.2-12.9 ms to 10.8-11.5 ms with the same logits.
"""

from __future__ import annotations

import weakref
from typing import Any, NamedTuple, Sequence

import torch

from .low_rank import LowRank, is_lora, with_terms
from .quantized import GROUP, DecodeLinear

MODEL_TYPES = ("llama", "qwen2")
"""Architectures whose decoder layer is exactly: norm, attention (q/k/v/o, rotary), residual, norm, MLP,
residual."""


def supported(model: Any) -> bool:
    inner = getattr(model, "model", None)
    return (getattr(model.config, "model_type", None) in MODEL_TYPES and inner is not None
            and hasattr(inner, "rotary_emb") and hasattr(inner, "layers") and hasattr(model, "lm_head"))


def project(modules: Sequence[Any], fused: Any, x: Any, low_rank: LowRank | None) -> list[Any]:
    """Each module applied to ``x``: one packed product for their base layers where ``fused`` serves
    them, and each LoRA adapter's term added on top."""
    bases = [m.base_layer if is_lora(m) else m for m in modules]
    outs = fused(x) if fused is not None and fused.serves(bases) else None
    result = []
    for i, module in enumerate(modules):
        if not is_lora(module):
            result.append(outs[i] if outs is not None else module(x))
        elif low_rank is not None:
            result.append(low_rank.project(module, x, outs[i] if outs is not None else None))
        else:
            result.append(module(x))
    return result


def fused_products(model: Any) -> list[tuple[Any, Any]]:
    """Per decoder layer: (q/k/v as one packed product or None, gate/up as one or None)."""
    from .quantized import fuse

    plan = []
    for layer in model.model.layers:
        attn, mlp = layer.self_attn, layer.mlp
        plan.append((fuse([attn.q_proj, attn.k_proj, attn.v_proj]),
                     fuse([mlp.gate_proj, mlp.up_proj]) if hasattr(mlp, "gate_proj") else None))
    return plan


def llama_step(model: Any, input_ids: Any, positions: Any, cache_layers: Sequence[Any],
               row_starts: Sequence[int], fused: Sequence[tuple[Any, Any]] = (),
               low_rank: LowRank | None = None) -> Any:
    """Logits ``(rows, vocab)`` for one new token per row.

    ``positions`` is ``(rows, 1)``; ``cache_layers[i].update(k, v)`` stores the step's keys and values
    and returns the whole cache of layer ``i``; row ``b``'s keys start at ``row_starts[b]`` (left padding).
    ``fused`` (from :func:`fused_products`) replaces products by packed ones where the layers are still
    the ones packed; ``low_rank`` computes LoRA adapters' terms (else PEFT's own layers do).

    Each operation gives, element for element, what the model's own forward gives (:func:`matches_forward`
    checks); fewer of them run: one call per norm where that is exact (:func:`_rms_way`), the rotary
    embedding of queries and keys as one product when q/k/v are one packed product (:func:`_rotate`)."""
    inner = model.model
    hidden = inner.embed_tokens(input_ids)
    cos, sin = inner.rotary_emb(hidden, position_ids=positions)  # (rows, 1, dim) each
    half = cos.shape[-1] // 2
    sin_signed = torch.cat([-sin[..., :half], sin[..., half:]], -1)
    rows = hidden.shape[0]
    hidden = hidden.view(rows, -1)  # one token per row: (rows, hidden size) from here on
    for i, (layer, cache) in enumerate(zip(inner.layers, cache_layers)):
        qkv, gate_up = fused[i] if fused else (None, None)
        lean = _lean(layer, qkv, gate_up, low_rank)
        if lean:
            hidden = _lean_layer(lean, hidden, cache, cos, sin_signed, half, row_starts)
            continue
        parts = layer._modules  # read once: Module.__getattr__ costs about a microsecond a call
        attn, mlp = parts["self_attn"], parts["mlp"]
        dim = attn.head_dim
        x = _rms_way(parts["input_layernorm"])(hidden)
        projected = project((attn.q_proj, attn.k_proj, attn.v_proj), qkv, x[:, None], low_rank)
        q, k, v = (t.view(rows, -1, dim) for t in projected)
        q, k = _rotate(q, cos, sin_signed, half), _rotate(k, cos, sin_signed, half)
        keys, values = cache.update(k[:, :, None], v[:, :, None])
        out = attend(q[:, :, None], keys, values, row_starts, attn.scaling).view(rows, -1)
        hidden = hidden + project((attn.o_proj,), None, out[:, None], low_rank)[0].view(rows, -1)
        x = _rms_way(parts["post_attention_layernorm"])(hidden)
        gate, up = project((mlp.gate_proj, mlp.up_proj), gate_up, x[:, None], low_rank)
        hidden = hidden + project((mlp.down_proj,), None, mlp.act_fn(gate) * up, low_rank)[0].view(rows, -1)
    x = _rms_way(inner.norm)(hidden)
    head = model.lm_head
    if type(head) is DecodeLinear and head.bias is None:  # the packed output layer, called directly
        return head.flat(x)
    return head(x[:, None])[:, -1]


def _activation(module: Any) -> Any:
    """The function an activation module computes, called without the module (SiLU), else the module."""
    global _SILU
    if _SILU is None:
        from transformers.activations import SiLUActivation

        _SILU = (SiLUActivation, torch.nn.SiLU)
    return torch.nn.functional.silu if type(module) in _SILU else module


_SILU: tuple[type, ...] | None = None


def _lean(layer: Any, qkv: Any, gate_up: Any, low_rank: LowRank | None) -> Any:
    """How this decoder layer takes the lean way (a :func:`_lean_plan`), or None where it goes through its
    modules. Worked out once per layer and set of loaded adapters (``low_rank`` keeps it until ``clear()``)."""
    if qkv is None or gate_up is None:
        return None
    if low_rank is None:
        return _lean_plan(layer, qkv, gate_up, None)
    key = (id(layer), id(qkv), id(gate_up))
    plan = low_rank.lean.get(key, False)
    if plan is False:
        plan = low_rank.lean[key] = _lean_plan(layer, qkv, gate_up, low_rank)
    return plan


def _lean_plan(layer: Any, qkv: Any, gate_up: Any, low_rank: LowRank | None) -> Any:
    """The lean way needs every base product packed int4: q/k/v and gate/up still the parts ``qkv`` and
    ``gate_up`` packed, o and down plain int4 layers. Layers wrapped by LoRA adapters take it too when
    ``low_rank`` serves their terms as groups (:meth:`LowRank.group`).

    Returns what :func:`_lean_layer` reads, as plain values (a :class:`LeanPlan`). Read from the modules' own tables
    (``_modules``): ``Module.__getattr__`` costs about a microsecond a call."""
    parts = layer._modules
    attn, mlp = parts["self_attn"]._modules, parts["mlp"]._modules
    q, k, v, o = attn["q_proj"], attn["k_proj"], attn["v_proj"], attn["o_proj"]
    g, u, d = mlp["gate_proj"], mlp["up_proj"], mlp["down_proj"]
    groups: tuple[Any, ...] = (None, None, None, None)
    if not all(type(m) is DecodeLinear for m in (q, k, v, o, g, u, d)):
        if low_rank is None:
            return None
        groups = tuple(low_rank.group(ms) for ms in ((q, k, v), (o,), (g, u), (d,)))
        if any(gr is False for gr in groups):
            return None
        q, k, v, o, g, u, d = (m._modules["base_layer"] if is_lora(m) else m for m in (q, k, v, o, g, u, d))
    if not (qkv.serves((q, k, v)) and gate_up.serves((g, u)) and type(o) is DecodeLinear
            and type(d) is DecodeLinear and o.kind == d.kind == "int4" and o.bias is None and d.bias is None):
        return None
    self_attn = parts["self_attn"]
    dim = self_attn.head_dim
    return LeanPlan(_rms_way(parts["input_layernorm"]), _rms_way(parts["post_attention_layernorm"]),
                    qkv.packed, qkv.scales, groups[0], o.packed, o.scales, groups[1],
                    gate_up.packed, gate_up.scales, groups[2], d.packed, d.scales, groups[3],
                    qkv.sizes[0] // dim, qkv.sizes[1] // dim, dim, gate_up.sizes[0],
                    _activation(parts["mlp"].act_fn), self_attn.scaling)


class LeanPlan(NamedTuple):
    """What one decoder layer's lean way reads (:func:`_lean_layer` unpacks it as a tuple)."""

    norm1: Any
    norm2: Any
    qkv: Any
    qkv_scales: Any
    terms_qkv: Any
    """The adapters' terms of q/k/v (:meth:`LowRank.group`), None where no adapter wraps them; the same below."""
    o: Any
    o_scales: Any
    terms_o: Any
    gate_up: Any
    gate_up_scales: Any
    terms_gate_up: Any
    down: Any
    down_scales: Any
    terms_down: Any
    heads: int
    kv_heads: int
    dim: int
    width: int
    """The MLP's width (gate's outputs)."""
    act: Any
    scale: float


def _lean_layer(plan: LeanPlan, hidden: Any, cache: Any, cos: Any, sin_signed: Any, half: int,
                row_starts: Sequence[int]) -> Any:
    """One decoder layer the lean way: ``hidden`` ``(rows, hidden size)`` in and out. The same operations,
    in the same order, as the way through the modules, minus the calls around them."""
    (norm1, norm2, qkv, qkv_scales, terms_qkv, o, o_scales, terms_o, gate_up, gate_up_scales, terms_gate_up,
     down, down_scales, terms_down, heads, kv_heads, dim, width, act, scale) = plan
    rows = hidden.shape[0]
    x = norm1(hidden)
    both = _packed(x, qkv, qkv_scales)
    if terms_qkv:
        both = with_terms(both, x, terms_qkv)
    split = (heads + kv_heads) * dim
    qk = _rotate(both[:, :split].view(rows, heads + kv_heads, dim), cos, sin_signed, half)
    keys, values = cache.update(qk[:, heads:, None], both[:, split:].view(rows, kv_heads, 1, dim))
    if rows == 1:  # attend's lone-row way, without the call
        start = row_starts[0]
        if start:
            keys, values = keys[:, :, start:], values[:, :, start:]
        query = qk[:, :heads].reshape(1, kv_heads, heads // kv_heads, dim)
        out = torch.nn.functional.scaled_dot_product_attention(query, keys, values, scale=scale).view(1, -1)
    else:
        out = attend(qk[:, :heads, None], keys, values, row_starts, scale).view(rows, -1)
    y = _packed(out, o, o_scales)
    hidden = hidden + (with_terms(y, out, terms_o) if terms_o else y)
    x = norm2(hidden)
    both = _packed(x, gate_up, gate_up_scales)
    if terms_gate_up:
        both = with_terms(both, x, terms_gate_up)
    h = act(both[:, :width]) * both[:, width:]
    y = _packed(h, down, down_scales)
    return hidden + (with_terms(y, h, terms_down) if terms_down else y)


def _packed(x: Any, packed: Any, scales: Any) -> Any:
    """The packed int4 product of ``(rows, in)`` rows, exactly what :meth:`DecodeLinear.flat` gives them."""
    if x.dtype == scales.dtype:
        return torch.ops.aten._weight_int4pack_mm_for_cpu(x.contiguous(), packed, GROUP, scales)
    return torch.ops.aten._weight_int4pack_mm_for_cpu(x.to(scales.dtype).contiguous(), packed, GROUP,
                                                      scales).to(x.dtype)


_RMS_WAYS: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def _rms_way(norm: Any) -> Any:
    """``norm`` itself, or ``torch.nn.functional.rms_norm`` where it gives exactly the module's output
    (transformers' RMSNorm is eight operations from Python; ``rms_norm`` runs the same ones from C++): with the
    weight in fp32, and in bf16 as the module does it (normalised in fp32, rounded, then scaled). Chosen once per
    module, on probes of several sizes and scales."""
    way = _RMS_WAYS.get(norm)
    if way is None:
        way = _RMS_WAYS[norm] = _choose_rms_way(norm)
    return way


def _choose_rms_way(norm: Any) -> Any:
    weight, eps = getattr(norm, "weight", None), getattr(norm, "variance_epsilon", None)
    if not isinstance(weight, torch.Tensor) or not isinstance(eps, float) or not weight.dtype.is_floating_point:
        return norm
    shape = (weight.shape[0],)

    if weight.dtype == torch.float32:
        def fast(x: Any) -> Any:
            return torch.nn.functional.rms_norm(x, shape, weight, eps)
    else:  # transformers normalises in fp32, rounds to the model's dtype, then scales by the weight
        def fast(x: Any) -> Any:
            return weight * torch.nn.functional.rms_norm(x.float(), shape, None, eps).to(x.dtype)

    g = torch.Generator().manual_seed(4)
    probes = [(torch.randn(m, 1, shape[0], generator=g) * scale).to(device=weight.device, dtype=weight.dtype)
              for m in (1, 2, 8) for scale in (0.01, 1.0, 3.0, 50.0)]
    try:
        with torch.inference_mode():
            same = all(torch.equal(fast(p), norm(p)) for p in probes)
    except RuntimeError:
        return norm
    return fast if same else norm


def _rotate(x: Any, cos: Any, sin_signed: Any, half: int) -> Any:
    """The rotary embedding of ``x`` (``(rows, heads, dim)``; ``cos``/``sin_signed`` ``(rows, 1, dim)``):
    transformers' ``x * cos + rotate_half(x) * sin`` element for element, with ``rotate_half(x) * sin``
    taken as ``roll(x) * sin_signed`` (``sin_signed``: the first half of ``sin`` negated; ``-a * b`` and
    ``a * -b`` round alike)."""
    return x * cos + torch.roll(x, half, -1) * sin_signed


def attend(query: Any, key: Any, value: Any, row_starts: Sequence[int], scale: float) -> Any:
    """Decode attention, row by row: ``(rows, heads, 1, dim)`` in, ``(rows, 1, heads, dim)`` out.

    Each row's query heads are grouped by the key/value head they share and handed to SDPA as that
    head's "positions", so the shared key/value heads are read without copying them and a row's left
    padding never enters its sums (on the 2-core reference machine one layer's attention over 100
    cached tokens took 42 us this way, 248 us as two explicit matrix products, and 48 us through SDPA's
    own grouped-query option)."""
    rows, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    if rows == 1:
        q = query.reshape(1, kv_heads, heads // kv_heads, dim)
        k, v = key[:, :, row_starts[0]:], value[:, :, row_starts[0]:]
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=scale).view(1, 1, heads, dim)
    out = []
    for i, start in enumerate(row_starts):
        q = query[i:i + 1].reshape(1, kv_heads, heads // kv_heads, dim)
        k, v = key[i:i + 1, :, start:], value[i:i + 1, :, start:]
        out.append(torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=scale).reshape(1, heads, 1, dim))
    return (out[0] if rows == 1 else torch.cat(out)).transpose(1, 2).contiguous()


def matches_forward(model: Any, run_forward: Any, cache_layer: Any, fused: Sequence[tuple[Any, Any]] = ()) -> bool:
    """Whether :func:`llama_step` gives exactly the logits of ``run_forward`` (the model's own forward
    over our cache, whose layers are ``cache_layer(keys, values, width, room)``) for two rows after a
    short prompt."""
    if not supported(model):
        return False
    try:
        device = next(model.parameters()).device
        with torch.inference_mode():
            prompts = [torch.tensor([[1, 2, 3, 4]], device=device), torch.tensor([[5, 6]], device=device)]
            caches = [model(input_ids=p, use_cache=True).past_key_values for p in prompts]
            lengths = [4, 2]

            def layers() -> list[Any]:
                return [cache_layer([c.layers[i].keys for c in caches], [c.layers[i].values for c in caches], 4, 2)
                        for i in range(len(caches[0].layers))]

            ids, positions = torch.tensor([[7], [8]], device=device), torch.tensor([[n] for n in lengths], device=device)
            starts = [0, 2]
            ours = llama_step(model, ids, positions, layers(), starts, fused)
            theirs = run_forward(ids, positions, layers(), starts)
        return bool(torch.equal(ours, theirs))
    except Exception:  # noqa: BLE001 - any model this does not fit keeps the generic forward
        return False
