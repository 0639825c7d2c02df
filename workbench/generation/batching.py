"""Batched decoding of several prompts, each with its own adapter, in one loop.

Comparing four approaches on one question means four generations. On a small model decode is
bound by reading the weights, so decoding the four rows together costs little more than one. The
loop here:

1. prefills each prompt on its own (no padding, no wasted work), with its adapter;
2. joins the per-row key/value caches into one, left-padded;
3. decodes all rows together, one token per row per step; PEFT applies each row's adapter
   (``adapter_names``; ``__base__`` for rows without one).

Greedy output is the same whether a prompt is decoded alone or in a batch: every matrix product
here computes each row independently, and decode attention slices each row's own keys (padding
never enters a sum, so sums are taken in the same order). A test checks this.

Attention during prefill uses PyTorch's SDPA; during decode ``decode_step.attend``, which reads the
shared key/value heads of grouped-query attention without copying them. A Llama-shaped model decodes
through ``decode_step.llama_step`` (the same modules without ``transformers``' per-token plumbing)
once it has been checked to give the same logits. The key/value cache reserves room for the answer
and writes each step in place instead of concatenating.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from transformers.cache_utils import DynamicLayer  # this module is imported only when a local model loads

ATTENTION_NAME = "workbench"
_state = threading.local()
_registered = False


def register_attention() -> None:
    """Register the ``workbench`` attention with transformers (once per process)."""
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, _attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)
    _registered = True


def _attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
               scaling: float | None = None, **kwargs: Any) -> tuple[Any, None]:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from .decode_step import attend

    starts = getattr(_state, "row_starts", None)
    if query.shape[2] != 1 or starts is None or len(starts) != query.shape[0]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    return attend(query, key, value, starts, scaling if scaling is not None else query.shape[-1] ** -0.5), None


@dataclass
class Row:
    """One prompt being decoded."""

    input_ids: Any
    """1-D tensor of prompt token ids."""
    adapter: str | None
    """PEFT adapter name, or None for the base weights."""
    max_new: int
    """Most tokens to generate."""
    on_token: Callable[[int], None]
    """Receives each generated token id."""
    on_done: Callable[[], None]
    """Called once when the row has finished."""
    out: list[int] = field(default_factory=list)
    finished: bool = False
    stopped: bool = False
    """True when the row ended with an end-of-turn token (else it hit ``max_new``)."""
    error: BaseException | None = None
    """What a callback of this row raised (its caller went away, say): the row stops, the others go on."""


@dataclass(frozen=True)
class Sampling:
    greedy: bool
    temperature: float
    top_p: float
    repetition_penalty: float
    seed: int
    penalize_prompt: bool = False
    """Whether the penalty also counts the prompt's tokens (transformers' ``generate`` does), not only the answer's."""
    adapter_repetition_penalty: float | None = None
    """The penalty for rows with an adapter (None: ``repetition_penalty``)."""

    def penalty(self, row: "Row") -> float:
        tuned = self.adapter_repetition_penalty
        return tuned if row.adapter is not None and tuned is not None else self.repetition_penalty


def decode(forward: Callable[..., Any], rows: list[Row], eos_ids: set[int], sampling: Sampling,
           adapter_context: Callable[[list[str | None]], Any], pair_lone_rows: bool = True,
           step: Callable[..., Any] | None = None) -> None:
    """Prefill each row, then decode all rows together until each stops or reaches its limit.

    ``forward(**kwargs)`` runs the model (PEFT-wrapped when adapters are in use);
    ``adapter_context(names)`` returns a context manager that applies ``names[i]`` to batch row ``i``;
    ``pair_lone_rows``: whether a row decoding alone must be paired with a copy of itself (see below);
    ``step(input_ids, positions, cache_layers, row_starts)`` gives one decode step's logits (default:
    ``forward`` over a ``DynamicCache``, see :func:`generic_step`).
    """
    import torch

    generators = [torch.Generator().manual_seed(sampling.seed) for _ in rows]
    # The tokens the repetition penalty counts; sampling happens on the CPU, wherever the model is.
    seen = [torch.unique(r.input_ids.cpu()) if sampling.penalize_prompt else r.input_ids.cpu()[:0] for r in rows]
    caches: list[Any] = [None] * len(rows)
    # Shortest prompts first: their answers start streaming soonest.
    for i in sorted(range(len(rows)), key=lambda i: int(rows[i].input_ids.shape[0])):
        row = rows[i]
        with adapter_context([row.adapter]):
            out = forward(input_ids=row.input_ids[None], use_cache=True, logits_to_keep=1)
        caches[i] = out.past_key_values
        token = _pick(out.logits[0, -1], seen[i], sampling, generators[i], sampling.penalty(row))
        _accept_guarded(row, token, eos_ids)
        seen[i] = _seen_with(seen[i], token)
    active = [i for i, r in enumerate(rows) if not r.finished]
    if not active:
        return
    if not all(type(layer) is DynamicLayer for i in active for layer in caches[i].layers):
        raise NotImplementedError("batched decode needs plain dynamic key/value caches")
    # Where a matrix product gives the same rows for any batch of 2 or more but a single row takes another
    # kernel with other rounding, a row decoding alone is paired with a copy of itself. The caller knows
    # (``rows_independent``): packed decode weights and most bf16 products on current CPUs need no copy.
    slots = _slots(active, pair_lone_rows)
    lengths = {i: int(rows[i].input_ids.shape[0]) for i in active}
    width = max(lengths.values())
    room = max(rows[i].max_new for i in active)
    layers = []
    for li in range(len(caches[active[0]].layers)):
        keys = [caches[i].layers[li].keys for i in slots]
        values = [caches[i].layers[li].values for i in slots]
        layers.append(GrowingLayer(keys, values, width, room))
    del caches
    step = step or generic_step(forward)
    starts = [width - lengths[i] for i in slots]
    device = rows[active[0]].input_ids.device  # step inputs live where the model does (CUDA too)
    positions = torch.tensor([lengths[i] for i in slots], device=device)[:, None]
    names: list[str | None] | None = None
    with contextlib.ExitStack() as stack:
        while slots:
            if names != [rows[i].adapter for i in slots]:  # a new adapter scope only when the rows change
                names = [rows[i].adapter for i in slots]
                stack.close()
                stack.enter_context(adapter_context(names))
            current = torch.tensor([rows[i].out[-1] for i in slots], device=device)[:, None]
            logits = step(current, positions, layers, starts)
            for b, i in enumerate(slots):
                if b > 0 and slots[b - 1] == i:  # the copy of a lone row
                    continue
                token = _pick(logits[b], seen[i], sampling, generators[i], sampling.penalty(rows[i]))
                _accept_guarded(rows[i], token, eos_ids)
                seen[i] = _seen_with(seen[i], token)
            positions = positions + 1
            if any(rows[i].finished for i in slots):  # drop finished rows: the others decode faster
                keep = [b for b, i in enumerate(slots) if not rows[i].finished]
                if not keep:
                    break
                if pair_lone_rows and (len(keep) == 1 or (len(keep) == 2 and slots[keep[0]] == slots[keep[1]])):
                    keep = [keep[0], keep[0]]
                index = torch.tensor(keep, device=device)
                for layer in layers:
                    layer.batch_select_indices(index)
                positions = positions[index]
                starts = [starts[b] for b in keep]
                slots = [slots[b] for b in keep]


def generic_step(forward: Callable[..., Any]) -> Callable[..., Any]:
    """A decode step through the model's own forward (any architecture the loop accepts)."""

    def step(input_ids: Any, positions: Any, layers: list[Any], starts: list[int]) -> Any:
        from transformers.cache_utils import DynamicCache

        cache = DynamicCache()
        cache.layers = layers
        _state.row_starts = starts
        try:
            out = forward(input_ids=input_ids, position_ids=positions, past_key_values=cache, use_cache=True)
        finally:
            _state.row_starts = None
        return out.logits[:, -1]
    return step


class RowMask(torch.nn.Module):
    """Multiplies a LoRA layer's input by a per-row 0/1 mask (it stands in for LoRA's dropout)."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.mask = mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


class GrowingLayer(DynamicLayer):
    """A key/value cache layer with room reserved for the answer: a step writes its column in place.

    (``DynamicLayer`` concatenates the whole cache at every step, which on CPU cost more than the
    model itself once four rows hold 800-token prompts.) Rows are left-padded to ``width``."""

    is_sliding = False

    def __init__(self, keys: list[Any], values: list[Any], width: int, room: int):
        import torch

        super().__init__()
        self.is_initialized = True
        first = keys[0]
        shape = (len(keys), first.shape[1], width + room + 1, first.shape[3])
        self._k = torch.zeros(shape, dtype=first.dtype, device=first.device)
        self._v = torch.zeros(shape, dtype=first.dtype, device=first.device)
        for b, (k, v) in enumerate(zip(keys, values)):
            n = k.shape[2]
            self._k[b, :, width - n:width] = k[0]
            self._v[b, :, width - n:width] = v[0]
        self.dtype, self.device = first.dtype, first.device
        self.length = width
        self._views()

    def _views(self) -> None:
        self.keys = self._k[:, :, :self.length]
        self.values = self._v[:, :, :self.length]

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        n = key_states.shape[-2]
        self._k[:, :, self.length:self.length + n] = key_states
        self._v[:, :, self.length:self.length + n] = value_states
        self.length += n
        self._views()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def get_max_length(self) -> int:
        return -1

    def batch_select_indices(self, indices: Any) -> None:
        self._k, self._v = self._k[indices], self._v[indices]
        self._views()


def _slots(active: list[int], pair_lone_rows: bool) -> list[int]:
    return active * 2 if pair_lone_rows and len(active) == 1 else list(active)


def rows_independent(module: Any, in_features: int, dtype: Any) -> bool:
    """Whether ``module`` gives each row of a one-token batch exactly what that row gives alone."""
    device = next((p.device for p in module.parameters()), None)  # the module's own device (CUDA too)
    probe = torch.randn(3, 1, in_features, generator=torch.Generator().manual_seed(1)).to(device=device, dtype=dtype)
    with torch.inference_mode():
        together = module(probe)
        return all(torch.equal(together[i:i + 1], module(probe[i:i + 1])) for i in range(3))


def _accept(row: Row, token: int, eos_ids: set[int]) -> None:
    if token in eos_ids:
        row.finished = row.stopped = True
        row.on_done()
        return
    row.out.append(token)
    row.on_token(token)
    if len(row.out) >= row.max_new:
        row.finished = True
        row.on_done()


def _accept_guarded(row: Row, token: int, eos_ids: set[int]) -> None:
    """``_accept``, with a failing callback ending only its own row (kept in ``row.error``)."""
    try:
        _accept(row, token, eos_ids)
    except BaseException as exc:  # noqa: BLE001 - a stopped script raises a BaseException; others still decode
        row.error, row.finished = exc, True


def _seen_with(seen: Any, token: int) -> Any:
    import torch

    return torch.cat([seen, torch.tensor([token], dtype=seen.dtype)])


def _pick(logits: Any, seen: Any, sampling: Sampling, generator: Any, penalty: float | None = None) -> int:
    """Next token from one row's logits: repetition penalty (``penalty``, default the sampling's), then greedy
    or nucleus sampling."""
    import torch

    penalty = sampling.repetition_penalty if penalty is None else penalty
    scores = logits.float().cpu()
    if penalty != 1.0:
        picked = scores[seen]
        scores = scores.clone()
        scores[seen] = torch.where(picked < 0, picked * penalty, picked / penalty)
    if sampling.greedy:  # numpy's argmax: the same first maximum (NaN counts as one), 4 us against torch's 45 here
        return int(scores.numpy().argmax())
    probs = torch.softmax(scores / sampling.temperature, dim=-1)
    if sampling.top_p < 1.0:
        ordered, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(ordered, dim=-1) - ordered < sampling.top_p
        probs = torch.zeros_like(probs).scatter_(0, order[keep], ordered[keep])
    return int(torch.multinomial(probs, 1, generator=generator))
