"""Low-bit weights for decoding on CPU: each decode step reads 4-bit (or 8-bit) weights, not bf16.

A decode step of a small model is bound by reading its weights from memory: on the 2-core reference
machine a SmolLM2-135M step took 88 ms with bf16 weights, 51 ms with int8 and 34 ms with int4
(``bench/generate.py``; llama.cpp reads the same GGUF's 4-bit blocks directly). Prefill is the
opposite case, bound by arithmetic, where torch's bf16 matrix product is 5-8 times faster than the
packed kernels. So a :class:`DecodeLinear` keeps both forms of one set of weights:

* the packed low-bit form, read by every product over one token per row (decode steps, and the
  last-token logits of a prefill);
* a copy in the model's own dtype (bf16, or fp32 on a CPU without bf16 units, ``runtime.inference_dtype_name``) of exactly the values the
  packed form holds, read by prompt prefills.

Both forms hold the same numbers, so a prompt's prefill and its decode use one model. The kernels read
bf16 activations; a model running in fp32 (the default on a CPU without bf16 units, where torch's bf16 products
are slow) rounds a decode step's activations to bf16 for them, and reads its prompts with fp32 products. The packaged
GGUFs store their layers as 4-bit blocks of 32 with a scale and a minimum (Q4_1); ``int4`` here is
that same layout (groups of 32 along the input, a scale and a zero per group), so it holds those
weights without further loss. The output layer is kept at 8 bits per row (the packaged model's
embedding table is Q8_0; 4 bits would round its logits more than the layers).

The packed kernels compute each row on its own, so a row's output does not depend on what else is
in the batch (checked for every layer when it is packed; a layer that fails keeps its weights as loaded).

``WORKBENCH_DECODE_WEIGHTS`` chooses (``runtime.decode_weights``): ``auto`` (the default on CPU: 4 bits
for each layer already stored at 4 bits, 8 bits for the others), ``int4`` (every layer at 4 bits),
``int8``, or ``bf16`` (the weights as loaded, bf16 or fp32, no packing). On CUDA and Apple GPUs they stay as loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

GROUP = 32
"""Input features per int4 group (Q4_1's block size)."""
AUTO_INT4_CHANGE = 0.01
"""``auto`` packs a layer at 4 bits only if that moves no weight by more than 1% of the layer's largest
(bf16 rounding of a layer already stored at 4 bits moved SmolLM2's by at most 0.4%; 4 bits from scratch
moves some weights by up to 1/15 of it), else at 8 bits (at most 1/254)."""


@dataclass(frozen=True)
class Packing:
    """What :func:`pack_for_decode` did to a model (shown with the model and stored with its answers)."""

    weights: str
    """The setting: ``auto``, ``int4``, ``int8`` or ``bf16`` (nothing packed)."""
    layers: int
    """Linear layers packed."""
    int4_layers: int
    """Of those, the ones packed at 4 bits (the rest, the output layer included, at 8)."""
    kept: int
    """Linear layers left as loaded (a shape or platform the packed kernels do not take)."""
    max_change: float
    """Largest change of any weight by packing, relative to its layer's largest weight (0 for weights
    that were already on the grid, as a Q4_1 GGUF's are)."""

    def label(self) -> str:
        if self.weights == "bf16" or not self.layers:
            return "weights as loaded"
        return f"decode steps read {self.int4_layers} layers at 4 bits and {self.layers - self.int4_layers} at 8"


class DecodeLinear(torch.nn.Linear):
    """A ``Linear`` whose one-token-per-row products read packed low-bit weights.

    It stays a ``torch.nn.Linear`` (``weight`` and ``bias`` as before) so LoRA adapters wrap it as usual."""

    def __init__(self, linear: torch.nn.Linear, kind: str, packed: Any, scales: Any):
        torch.nn.Module.__init__(self)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias
        self.kind = kind
        self.register_buffer("packed", packed, persistent=False)
        self.register_buffer("scales", scales, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[-2] != 1 or x.dtype not in (self.scales.dtype, torch.float32):
            return torch.nn.functional.linear(x, self.weight, self.bias)
        # The kernels read bf16 activations: an fp32 model's are rounded to bf16 for them (on an AVX2 CPU the
        # kernels took 16 (int4) and 5 (int8) times longer on fp32 activations).
        flat = x.reshape(-1, self.in_features).to(self.scales.dtype).contiguous()
        if self.kind == "int4":
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(flat, self.packed, GROUP, self.scales)
        else:
            y = torch.ops.aten._weight_int8pack_mm(flat, self.packed, self.scales)
        y = y.to(x.dtype)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        """The packed product of ``(rows, in)`` one-token rows, exactly what ``forward`` gives them (a layer
        without bias; the decode step calls it with no reshaping on the way, and no dtype round trip where the
        activations are already in the kernels' dtype)."""
        same = x.dtype == self.scales.dtype
        rows = (x if same else x.to(self.scales.dtype)).contiguous()
        if self.kind == "int4":
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(rows, self.packed, GROUP, self.scales)
        else:
            y = torch.ops.aten._weight_int8pack_mm(rows, self.packed, self.scales)
        return y if same else y.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, decode={self.kind}"


def _int4(weight: torch.Tensor) -> tuple[Any, Any, torch.Tensor]:
    """Asymmetric 4-bit groups of ``GROUP`` along the input: (packed, scales and zeros, dequantized)."""
    n, k = weight.shape
    groups = weight.float().reshape(n, k // GROUP, GROUP)
    low, high = groups.amin(-1), groups.amax(-1)
    scale = ((high - low) / 15).clamp(min=1e-12)
    q = torch.clamp(torch.round((groups - low[..., None]) / scale[..., None]), 0, 15)
    # The kernel computes (q - 8) * scale + zero, in the activations' dtype: round scale and zero to it
    # first and dequantize with the rounded values, so the bf16 copy equals what the kernel reads.
    scale_b = scale.to(weight.dtype)
    zero_b = (low + 8 * scale).to(weight.dtype)
    dequant = ((q - 8) * scale_b.float()[..., None] + zero_b.float()[..., None]).reshape(n, k)
    scales = torch.stack([scale_b, zero_b], -1).transpose(0, 1).contiguous()
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.reshape(n, k).to(torch.int32).contiguous(), 1)
    return packed, scales, dequant


def _int8(weight: torch.Tensor) -> tuple[Any, Any, torch.Tensor]:
    """Symmetric 8-bit rows: (int8 weights, per-row scales, dequantized)."""
    w = weight.float()
    scale = (w.abs().amax(1) / 127).clamp(min=1e-12).to(weight.dtype)
    q = torch.clamp(torch.round(w / scale.float()[:, None]), -127, 127)
    return q.to(torch.int8).contiguous(), scale, q * scale.float()[:, None]


def _change(dequant: torch.Tensor, weight: torch.Tensor) -> float:
    """Largest change of a weight, relative to the layer's largest weight."""
    return float((dequant - weight.float()).abs().max() / weight.float().abs().max().clamp(min=1e-12))


def _pack(linear: torch.nn.Linear, kind: str, tied: bool) -> tuple[DecodeLinear, float] | None:
    """``linear`` as a :class:`DecodeLinear`, or None when the kernels refuse it or change its rows.

    ``kind`` ``auto``: int4 where that moves no weight by more than ``AUTO_INT4_CHANGE`` (the layer was
    stored at 4 bits in groups of 32 already), else int8."""
    weight = linear.weight.data
    if kind in ("int4", "auto") and weight.shape[1] % GROUP:
        kind = "int8"
    try:
        packed = None
        if kind == "auto":
            packed, scales, dequant = _int4(weight.to(torch.bfloat16))
            kind = "int4" if _change(dequant, weight) <= AUTO_INT4_CHANGE else "int8"
            packed = packed if kind == "int4" else None
        if packed is None:
            packed, scales, dequant = (_int4 if kind == "int4" else _int8)(weight.to(torch.bfloat16))
        change = _change(dequant, weight)
        module = DecodeLinear(linear, kind, packed, scales)
        if not tied:  # prefill reads the same values as the packed form
            linear.weight.data = dequant.to(weight.dtype)
        probe = torch.randn(3, 1, linear.in_features, generator=torch.Generator().manual_seed(0)).to(weight.dtype)
        together = module(probe)
        alone = torch.cat([module(probe[i:i + 1]) for i in range(3)])
        bias = linear.bias.float() if linear.bias is not None else None
        reference = torch.nn.functional.linear(probe.float(), dequant if not tied else weight.float(), bias)
        if not torch.equal(together, alone) or (together.float() - reference).abs().max() > 0.05 * (
                reference.abs().max() + 1e-6):
            linear.weight.data = weight
            return None
        return module, change
    except (RuntimeError, NotImplementedError, AttributeError):  # no such kernel on this platform or shape
        linear.weight.data = weight
        return None


def pack_for_decode(model: Any, weights: str) -> Packing:
    """Replace ``model``'s linear layers by :class:`DecodeLinear` in the ``weights`` format (in place)."""
    if weights == "bf16" or next(model.parameters()).dtype not in (torch.bfloat16, torch.float32):
        return Packing("bf16", 0, 0, 0, 0.0)
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    inputs = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    layers = kept = int4 = 0
    worst = 0.0
    with torch.no_grad():
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is not torch.nn.Linear:
                    continue
                is_output = child is output
                tied = is_output and inputs is not None and child.weight is getattr(inputs, "weight", None)
                done = _pack(child, "int8" if is_output else weights, tied)
                if done is None:
                    kept += 1
                    continue
                setattr(parent, name, done[0])
                layers += 1
                int4 += done[0].kind == "int4"
                if not tied:
                    worst = max(worst, done[1])
    return Packing(weights if layers else "bf16", layers, int4, kept, worst)


class Fused:
    """Several int4 layers that read the same input, packed as one product (q, k and v; gate and up).

    A decode step then makes one kernel call where it made three (or two); each part's output is
    exactly what the part alone gives (checked when built)."""

    def __init__(self, parts: list[DecodeLinear]):
        self.parts = parts
        self.sizes = [p.out_features for p in parts]
        self.packed = torch.cat([p.packed for p in parts])
        self.scales = torch.cat([p.scales for p in parts], 1)

    def __call__(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.flat(x).reshape(*x.shape[:-1], -1).split(self.sizes, -1))

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        """The parts' outputs side by side, one row per row of ``x`` (``(rows, sum of sizes)``)."""
        same = x.dtype == self.scales.dtype
        flat = x.reshape(-1, x.shape[-1])
        y = torch.ops.aten._weight_int4pack_mm_for_cpu((flat if same else flat.to(self.scales.dtype)).contiguous(),
                                                       self.packed, GROUP, self.scales)
        return y if same else y.to(x.dtype)

    def serves(self, modules: list[Any]) -> bool:
        """Whether ``modules`` are still exactly these parts (not wrapped by a LoRA adapter since)."""
        parts = self.parts
        return len(modules) == len(parts) and all(m is p for m, p in zip(modules, parts))


def fuse(parts: list[Any]) -> Fused | None:
    """``parts`` as one :class:`Fused` product, or None where they cannot be (not all int4, a bias, a
    kernel that does not give each part's own output: the CPU kernel packs rows in blocks of 64, so every
    part but the last needs a multiple of 64 outputs)."""
    if not all(type(p) is DecodeLinear and p.kind == "int4" and p.bias is None for p in parts):
        return None
    if len({p.in_features for p in parts}) != 1:
        return None
    try:
        fused = Fused(parts)
        probe = torch.randn(2, 1, parts[0].in_features, generator=torch.Generator().manual_seed(2)).to(
            parts[0].scales.dtype)
        if all(torch.equal(a, p(probe)) for a, p in zip(fused(probe), parts)):
            return fused
    except (RuntimeError, NotImplementedError):
        pass
    return None
